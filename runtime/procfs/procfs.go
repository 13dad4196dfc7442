// Package procfs reads and decodes /proc/PID/stat, /proc/PID/statm and the
// signal masks of /proc/PID/status into api/v1 types.
//
// Parsing is pure and never panics: short or garbled input is an error
// wrapping ErrMalformed. Reading is tuned for hot paths (one read into a
// pooled buffer, no os.File). This package must not keep per-process state,
// start processes or decide policy; the only global state is the cached
// system clock (ticks per second, page size, boot time), computed once.
package procfs

import (
	"bytes"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
)

// ErrMalformed is wrapped by every parse error.
var ErrMalformed = errors.New("malformed procfs data")

// Clock holds the system constants needed to decode /proc times and sizes.
type Clock struct {
	// TicksPerSecond is sysconf(_SC_CLK_TCK), the unit of /proc times.
	TicksPerSecond int64
	// PageSize is the page size in bytes, the unit of rss and statm.
	PageSize int64
	// BootTime is the wall-clock time of boot, the origin of starttime.
	BootTime time.Time
}

// atClkTck is AT_CLKTCK from <elf.h>: the auxv entry holding CLK_TCK.
const atClkTck = 17

var (
	systemOnce  sync.Once
	systemClock Clock // written once under systemOnce, read-only after
)

// SystemClock returns this machine's Clock. It is computed on first use and
// cached: CLK_TCK from the ELF auxiliary vector (AT_CLKTCK; 100 if absent,
// which is what Linux uses on every architecture Go supports), the page
// size, and the boot time as CLOCK_REALTIME − CLOCK_BOOTTIME, which is
// exact to the nanosecond, unlike now − /proc/uptime.
func SystemClock() Clock {
	systemOnce.Do(func() {
		systemClock = Clock{TicksPerSecond: clkTck(), PageSize: int64(unix.Getpagesize()), BootTime: bootTime()}
	})
	return systemClock
}

func clkTck() int64 {
	if auxv, err := unix.Auxv(); err == nil {
		for _, kv := range auxv {
			if kv[0] == atClkTck && kv[1] > 0 {
				return int64(kv[1])
			}
		}
	}
	return 100
}

// bootTime reads CLOCK_REALTIME and CLOCK_BOOTTIME back to back and takes
// the pair with the smallest gap out of a few tries.
func bootTime() time.Time {
	var best time.Time
	bestGap := time.Duration(1<<63 - 1)
	for range 5 {
		var r1, b, r2 unix.Timespec
		if unix.ClockGettime(unix.CLOCK_REALTIME, &r1) != nil ||
			unix.ClockGettime(unix.CLOCK_BOOTTIME, &b) != nil ||
			unix.ClockGettime(unix.CLOCK_REALTIME, &r2) != nil {
			continue
		}
		gap := time.Duration(r2.Nano() - r1.Nano())
		if gap < bestGap {
			bestGap = gap
			mid := r1.Nano() + int64(gap)/2
			best = time.Unix(0, mid-b.Nano()).UTC()
		}
	}
	if best.IsZero() {
		return time.Now().UTC() // no clock: unreachable on Linux
	}
	return best
}

// statFields is the number of fields /proc/PID/stat has had since Linux
// 3.5 (exit_code is the 52nd).
const statFields = 52

func malformed(what string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(what, args...))
}

// ParseStat decodes the contents of /proc/PID/stat as proc(5) describes
// it. comm is the text between the first "(" and the last ")", so it may
// hold spaces, parentheses and newlines. tty_nr becomes [major, minor] as
// the kernel encodes it (major bits 8-19, minor bits 0-7 and 20-31); a
// tpgid of -1 becomes nil; times become seconds; starttime becomes a wall
// time; rss becomes bytes; the decimal signal bitmaps become names (bit
// n-1 is signal n, all 64 bits); an exit_signal of 0 becomes nil. All 52
// fields are required.
func ParseStat(data []byte, c Clock) (*v1.ProcStat, error) {
	if c.TicksPerSecond <= 0 || c.PageSize <= 0 {
		return nil, fmt.Errorf("procfs: bad clock %+v", c)
	}
	open := bytes.IndexByte(data, '(')
	closeP := bytes.LastIndexByte(data, ')')
	if open < 0 || closeP < open {
		return nil, malformed("stat: no (comm)")
	}
	pid, ok := parseInt(bytes.TrimSpace(data[:open]), 0, 1<<31-1)
	if !ok {
		return nil, malformed("stat: bad pid %q", data[:open])
	}
	st := &v1.ProcStat{Pid: int(pid), Comm: string(data[open+1 : closeP])}

	// Fields 3..52 follow, separated by single spaces.
	var f [statFields + 1][]byte // f[i] is field i (1-based); 1 and 2 unused
	rest := data[closeP+1:]
	n := 2
	for len(rest) > 0 && n < statFields {
		if rest[0] != ' ' {
			return nil, malformed("stat: expected a space after field %d", n)
		}
		rest = rest[1:]
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		n++
		f[n] = rest[:end]
		rest = rest[end:]
		if len(rest) > 0 && rest[0] == '\n' {
			rest = rest[1:]
			if len(bytes.TrimSpace(rest)) != 0 {
				return nil, malformed("stat: data after newline")
			}
			break
		}
	}
	if n < statFields {
		return nil, malformed("stat: %d fields, want %d", n, statFields)
	}
	var err error
	i64 := func(i int) int64 {
		v, ok := parseInt(f[i], -1<<63, 1<<63-1)
		if !ok && err == nil {
			err = malformed("stat: field %d: bad integer %q", i, f[i])
		}
		return v
	}
	u64 := func(i int) uint64 {
		v, ok := parseUint(f[i])
		if !ok && err == nil {
			err = malformed("stat: field %d: bad unsigned integer %q", i, f[i])
		}
		return v
	}
	// i32 reads an int field and range-checks it.
	i32 := func(i int) int64 {
		v := i64(i)
		if (v < -1<<31 || v > 1<<31-1) && err == nil {
			err = malformed("stat: field %d: %d out of int range", i, v)
		}
		return v
	}
	u32 := func(i int) uint32 {
		v := u64(i)
		if v > 1<<32-1 && err == nil {
			err = malformed("stat: field %d: %d out of unsigned int range", i, v)
		}
		return uint32(v)
	}
	tps := c.TicksPerSecond
	secs := func(ticks float64) float64 { return ticks / float64(tps) }

	if len(f[3]) == 0 {
		return nil, malformed("stat: empty state")
	}
	st.State = string(f[3])
	st.Ppid = int(i32(4))
	st.Pgrp = int(i32(5))
	st.Session = int(i32(6))
	tty := uint32(i32(7))
	st.TtyNr = [2]uint32{(tty >> 8) & 0xfff, (tty & 0xff) | ((tty >> 12) & 0xfff00)}
	if tpgid := i32(8); tpgid != -1 {
		v := int(tpgid)
		st.Tpgid = &v
	}
	st.Flags = u32(9)
	st.Minflt, st.Cminflt, st.Majflt, st.Cmajflt = u64(10), u64(11), u64(12), u64(13)
	st.Utime, st.Stime = secs(float64(u64(14))), secs(float64(u64(15)))
	st.Cutime, st.Cstime = secs(float64(i64(16))), secs(float64(i64(17)))
	st.Priority, st.Nice, st.NumThreads = i64(18), i64(19), i64(20)
	start := u64(22)
	st.Starttime = c.BootTime.Add(ticksToDuration(start, tps)).UTC()
	st.Vsize = u64(23)
	rss := i64(24)
	st.Rss = satMul(rss, c.PageSize)
	st.Rsslim = u64(25)
	st.Signal, st.Blocked = signalSet(u64(31)), signalSet(u64(32))
	st.Sigignore, st.Sigcatch = signalSet(u64(33)), signalSet(u64(34))
	st.Wchan = u64(35)
	if es := i32(38); es != 0 {
		name := signals.Name(int(es))
		st.ExitSignal = &name
	}
	st.Processor = int32(i32(39))
	st.RtPriority, st.Policy = u32(40), u32(41)
	st.DelayacctBlkioTicks = secs(float64(u64(42)))
	st.GuestTime = secs(float64(u64(43)))
	st.CguestTime = secs(float64(i64(44)))
	st.ExitCode = int32(i32(52))
	// Check the skipped fields are numbers too, so garbage is rejected.
	for _, i := range []int{21, 26, 27, 28, 29, 30, 36, 37, 45, 46, 47, 48, 49, 50, 51} {
		u64(i)
	}
	if err != nil {
		return nil, err
	}
	return st, nil
}

// signalSet is signals.Set with the slice allocated once at its final
// size (signals.Set grows it by appending, which dominated ReadStat's
// allocations for processes that catch many signals).
func signalSet(mask uint64) []string {
	out := make([]string, 0, bits.OnesCount64(mask))
	for m := mask; m != 0; m &= m - 1 {
		out = append(out, signals.Name(bits.TrailingZeros64(m)+1))
	}
	return out
}

// ticksToDuration converts clock ticks to a Duration without overflow for
// any value /proc can print (saturating past ~292 years).
func ticksToDuration(ticks uint64, tps int64) time.Duration {
	t := uint64(tps)
	whole, frac := ticks/t, ticks%t
	if whole > uint64(1<<63-1)/uint64(time.Second)-1 {
		return 1<<63 - 1
	}
	return time.Duration(whole)*time.Second + time.Duration(frac*uint64(time.Second)/t)
}

func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	r := a * b
	if r/b != a {
		if (a < 0) != (b < 0) {
			return -1 << 63
		}
		return 1<<63 - 1
	}
	return r
}

// parseUint parses a decimal u64 without allocating.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// parseInt parses a decimal integer with an optional '-' in [lo, hi].
func parseInt(b []byte, lo, hi int64) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	u, ok := parseUint(b)
	if !ok {
		return 0, false
	}
	var v int64
	switch {
	case !neg && u <= 1<<63-1:
		v = int64(u)
	case neg && u <= 1<<63:
		v = -int64(u) // -(1<<63) wraps to itself, which is right
	default:
		return 0, false
	}
	if v < lo || v > hi {
		return 0, false
	}
	return v, true
}

// ParseStatm decodes /proc/PID/statm (size resident shared text lib data
// dt, in pages) into bytes. lib and dt are ignored.
func ParseStatm(data []byte, pageSize int) (*v1.ProcStatm, error) {
	if pageSize <= 0 {
		return nil, fmt.Errorf("procfs: bad page size %d", pageSize)
	}
	var v [7]uint64
	rest := bytes.TrimRight(data, "\n")
	for i := range v {
		end := bytes.IndexByte(rest, ' ')
		if i == len(v)-1 {
			end = len(rest)
		} else if end < 0 {
			return nil, malformed("statm: %d fields, want 7", i+1)
		}
		var ok bool
		if v[i], ok = parseUint(rest[:end]); !ok {
			return nil, malformed("statm: field %d: bad number %q", i+1, rest[:end])
		}
		if i < len(v)-1 {
			rest = rest[end+1:]
		}
	}
	ps := uint64(pageSize)
	b := func(pages uint64) uint64 {
		if pages > (1<<64-1)/ps {
			return 1<<64 - 1
		}
		return pages * ps
	}
	return &v1.ProcStatm{Size: b(v[0]), Resident: b(v[1]), Shared: b(v[2]), Text: b(v[3]), Data: b(v[5])}, nil
}

// bufSize fits any stat or statm line (comm is at most 64 bytes, numbers
// at most 20 digits each) and /proc/PID/status of current kernels.
const bufSize = 4096

// bufPool holds *[bufSize]byte read buffers.
var bufPool = sync.Pool{New: func() any { return new([bufSize]byte) }}

// readProcFile reads /proc/PID/NAME with one read into a pooled buffer and
// calls parse on the bytes, which parse must not keep.
func readProcFile[T any](pid int, name string, parse func([]byte) (T, error)) (T, error) {
	var zero T
	var pathBuf [48]byte
	path := append(pathBuf[:0], "/proc/"...)
	path = strconv.AppendInt(path, int64(pid), 10)
	path = append(path, '/')
	path = append(path, name...)
	fd, err := unix.Open(string(path), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return zero, fmt.Errorf("open /proc/%d/%s: %w", pid, name, err)
	}
	defer unix.Close(fd)
	buf := bufPool.Get().(*[bufSize]byte)
	defer bufPool.Put(buf)
	n, err := readFull(fd, buf[:], name == "stat" || name == "statm")
	if err != nil {
		return zero, fmt.Errorf("read /proc/%d/%s: %w", pid, name, err)
	}
	if n == len(buf) {
		return zero, fmt.Errorf("read /proc/%d/%s: %w: larger than %d bytes", pid, name, ErrMalformed, bufSize)
	}
	return parse(buf[:n])
}

// readFull reads until EOF or a full buffer. With oneLine (stat and statm,
// one line each, made whole by one show call of a seq_file), a read that
// stops short at a newline is the whole file: the EOF read is skipped.
func readFull(fd int, buf []byte, oneLine bool) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			break
		}
		short := m < len(buf)-n
		n += m
		if oneLine && short && buf[n-1] == '\n' {
			break
		}
	}
	return n, nil
}

// ReadStat reads and decodes /proc/PID/stat with SystemClock. A process
// that does not exist gives an error for which errors.Is(err,
// fs.ErrNotExist) holds.
func ReadStat(pid int) (*v1.ProcStat, error) {
	c := SystemClock()
	return readProcFile(pid, "stat", func(b []byte) (*v1.ProcStat, error) { return ParseStat(b, c) })
}

// StartTicks returns when pid started, in clock ticks after boot (field 22
// of /proc/PID/stat). With the pid it names one process across pid reuse,
// and it reads the same from every process, unlike Starttime, which adds
// each reader's boot time estimate.
func StartTicks(pid int) (uint64, error) {
	return readProcFile(pid, "stat", parseStartTicks)
}

func parseStartTicks(data []byte) (uint64, error) {
	closeP := bytes.LastIndexByte(data, ')')
	if closeP < 0 {
		return 0, malformed("stat: no (comm)")
	}
	// Fields 3 onwards follow the comm; starttime is field 22.
	f := bytes.Fields(data[closeP+1:])
	if len(f) < 22-2 {
		return 0, malformed("stat: %d fields, want at least 22", len(f)+2)
	}
	v, ok := parseUint(f[22-3])
	if !ok {
		return 0, malformed("stat: field 22: bad unsigned integer %q", f[22-3])
	}
	return v, nil
}

// ReadStatm reads and decodes /proc/PID/statm.
func ReadStatm(pid int) (*v1.ProcStatm, error) {
	ps := int(SystemClock().PageSize)
	return readProcFile(pid, "statm", func(b []byte) (*v1.ProcStatm, error) { return ParseStatm(b, ps) })
}

// sigMasks are the SigBlk and SigIgn masks of a process.
type sigMasks struct{ blocked, ignored uint64 }

// SignalState returns the blocked and ignored signal masks of pid (bit
// n-1 is signal n) from the SigBlk and SigIgn lines of /proc/PID/status.
func SignalState(pid int) (blocked, ignored uint64, err error) {
	m, err := readProcFile(pid, "status", parseSignalState)
	return m.blocked, m.ignored, err
}

// ParseSignalState extracts the hexadecimal SigBlk and SigIgn masks from
// the contents of /proc/PID/status. Both lines are required.
func ParseSignalState(data []byte) (blocked, ignored uint64, err error) {
	m, err := parseSignalState(data)
	return m.blocked, m.ignored, err
}

func parseSignalState(data []byte) (sigMasks, error) {
	var m sigMasks
	var have [2]bool
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		key, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		var idx int
		switch string(key) {
		case "SigBlk":
			dst, idx = &m.blocked, 0
		case "SigIgn":
			dst, idx = &m.ignored, 1
		default:
			continue
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 16, 64)
		if err != nil {
			return sigMasks{}, malformed("status: %s: bad mask %q", key, val)
		}
		*dst, have[idx] = v, true
	}
	if !have[0] || !have[1] {
		return sigMasks{}, malformed("status: no SigBlk or SigIgn line")
	}
	return m, nil
}
