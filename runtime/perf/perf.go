// Package perf opens and reads Linux perf counters (instructions, cycles and
// task-clock) for a proc and every process it starts, using inherited
// perf_event_open(2) counters.
//
// It is for the runtime: open the counters on a child that is held before
// exec, release the child, and read the counters once the child has been
// reaped. A counter the kernel or CPU does not allow is never an error: it is
// left out and named, with a reason, in PerfCounters.Unsupported.
//
// This package must not start, wait for or signal processes and must not
// log. Its only state beyond the fds of each Counters is a cached reading of
// perf_event_paranoid and of its own effective capabilities, refreshed
// whenever the kernel refuses a counter.
package perf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
)

// ErrBadPid is returned by Open for a pid that is not positive or names no
// process.
var ErrBadPid = errors.New("bad pid")

// Counter names, as used in PerfCounters.Unsupported. They match the JSON
// names of the PerfCounters fields.
const (
	NameInstructions = "instructions"
	NameCycles       = "cycles"
	NameTaskClock    = "taskClockNs"
)

// Paths read to decide whether kernel-mode counting is allowed.
const (
	paranoidPath = "/proc/sys/kernel/perf_event_paranoid"
	statusPath   = "/proc/self/status"
)

// Capability bits (linux/capability.h).
const (
	capSysAdmin = 21
	capPerfmon  = 38
)

// counterDef is one counter this package opens.
type counterDef struct {
	name   string
	typ    uint32
	config uint64
}

// defs are the counters, in the order of Counters.fds.
var defs = [...]counterDef{
	{NameInstructions, unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_INSTRUCTIONS},
	{NameCycles, unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_CPU_CYCLES},
	{NameTaskClock, unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_TASK_CLOCK},
}

const nCounters = len(defs)

// readSize is the size of one read with read_format
// TOTAL_TIME_ENABLED|TOTAL_TIME_RUNNING: value, enabled, running.
const readSize = 24

// Counters are the perf counters of one proc. They are safe for concurrent
// use. Known limits: inherited counts cover processes started after Open,
// live or exited (the kernel folds an exiting child's counts into its
// parent's counter), but not processes that left the tree by other means
// (e.g. ptrace-attached or started by a daemon on the proc's behalf); counts
// include the held child's short time before exec; without CAP_PERFMON or
// CAP_SYS_ADMIN and with perf_event_paranoid >= 2 they are user-space only.
type Counters struct {
	// mu guards fds, reasons, closed and final.
	mu sync.Mutex
	// fds are the open counter fds, -1 for a counter that failed to open or
	// after Close.
	fds [nCounters]int
	// reasons say why each counter with fd -1 failed to open.
	reasons [nCounters]string
	closed  bool
	// final is the reading taken by Close, returned by Read afterwards.
	final *v1.PerfCounters
}

// policy is what the environment allows, decided once per Open.
type policy struct {
	paranoid   int  // perf_event_paranoid, or 2 when unreadable
	paranoidOK bool // paranoid was read
	privileged bool // CAP_PERFMON or CAP_SYS_ADMIN is effective
	userOnly   bool // exclude kernel and hypervisor
}

// policyCache holds the last policy read, so Open does not read two /proc
// files per proc.
var policyCache atomic.Pointer[policy]

// cachedPolicy returns the cached policy, reading it the first time.
func cachedPolicy() policy {
	if p := policyCache.Load(); p != nil {
		return *p
	}
	return refreshPolicy()
}

// refreshPolicy reads the policy again and caches it.
func refreshPolicy() policy {
	p := currentPolicy()
	policyCache.Store(&p)
	return p
}

// currentPolicy reads perf_event_paranoid and the effective capabilities.
func currentPolicy() policy {
	var p policy
	p.paranoid = 2
	if b, err := os.ReadFile(paranoidPath); err == nil {
		if v, err := ParseParanoid(b); err == nil {
			p.paranoid, p.paranoidOK = v, true
		}
	}
	if b, err := os.ReadFile(statusPath); err == nil {
		if c, err := ParseCapEff(b); err == nil {
			p.privileged = HasPerfCaps(c)
		}
	}
	p.userOnly = NeedUserOnly(p.paranoid, p.privileged)
	return p
}

// ParseParanoid parses the contents of /proc/sys/kernel/perf_event_paranoid.
func ParseParanoid(b []byte) (int, error) {
	s := strings.TrimSpace(string(b))
	v, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("perf_event_paranoid %q: %w", s, errMalformed)
	}
	return v, nil
}

// errMalformed classifies unparsable /proc input.
var errMalformed = errors.New("malformed")

// ParseCapEff returns the CapEff mask from the contents of /proc/PID/status.
func ParseCapEff(status []byte) (uint64, error) {
	for _, line := range strings.Split(string(status), "\n") {
		rest, ok := strings.CutPrefix(line, "CapEff:")
		if !ok {
			continue
		}
		h := strings.TrimSpace(rest)
		v, err := strconv.ParseUint(h, 16, 64)
		if err != nil {
			return 0, fmt.Errorf("CapEff %q: %w", h, errMalformed)
		}
		return v, nil
	}
	return 0, fmt.Errorf("no CapEff line: %w", errMalformed)
}

// HasPerfCaps reports whether a CapEff mask holds CAP_PERFMON or
// CAP_SYS_ADMIN, either of which lifts the perf_event_paranoid limits.
func HasPerfCaps(capEff uint64) bool {
	return capEff&(1<<capPerfmon|1<<capSysAdmin) != 0
}

// NeedUserOnly reports whether counters must exclude kernel and hypervisor
// time: perf_event_paranoid >= 2 forbids kernel profiling to callers without
// CAP_PERFMON or CAP_SYS_ADMIN.
func NeedUserOnly(paranoid int, privileged bool) bool {
	return paranoid >= 2 && !privileged
}

// Scale estimates a counter's full count from its raw value when the kernel
// multiplexed it, running only part of the time it was enabled:
// value * enabled / running, without overflow. ok is false when the counter
// was enabled but never ran, so no estimate is possible. A counter that was
// never enabled (running == enabled == 0) is 0, ok.
func Scale(value, enabled, running uint64) (scaled uint64, ok bool) {
	switch {
	case running == 0 && enabled == 0:
		return value, true
	case running == 0:
		return 0, false
	case running >= enabled:
		return value, true
	}
	hi, lo := bits.Mul64(value, enabled)
	if hi >= running {
		// Quotient overflows 64 bits; saturate.
		return ^uint64(0), true
	}
	q, _ := bits.Div64(hi, lo, running)
	return q, true
}

// attrFor builds the perf_event_attr of one counter.
func attrFor(d counterDef, userOnly bool) *unix.PerfEventAttr {
	a := &unix.PerfEventAttr{
		Type:        d.typ,
		Config:      d.config,
		Read_format: unix.PERF_FORMAT_TOTAL_TIME_ENABLED | unix.PERF_FORMAT_TOTAL_TIME_RUNNING,
		Bits:        unix.PerfBitInherit,
	}
	a.Size = uint32(unsafe.Sizeof(*a))
	if userOnly {
		a.Bits |= unix.PerfBitExcludeKernel | unix.PerfBitExcludeHv
	}
	return a
}

// openOne opens one counter on pid. On EACCES/EPERM it reads the policy
// again (perf_event_paranoid may have changed) and, if kernel counting was
// attempted, retries user-only, in case the policy guess was wrong (e.g. a
// seccomp or LSM rule). *refreshed records that the policy was read again,
// so one Open reads it at most once more. A returned error either wraps
// ErrBadPid or carries a reason for Unsupported.
func openOne(d counterDef, pid int, p *policy, refreshed *bool) (int, error) {
	fd, err := unix.PerfEventOpen(attrFor(d, p.userOnly), pid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
	if err == nil {
		return fd, nil
	}
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		tried := p.userOnly
		if !*refreshed {
			*p, *refreshed = refreshPolicy(), true
		}
		if !tried {
			if fd, err2 := unix.PerfEventOpen(attrFor(d, true), pid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC); err2 == nil {
				return fd, nil
			}
		}
	}
	if errors.Is(err, unix.ESRCH) {
		return -1, fmt.Errorf("pid %d: %w", pid, ErrBadPid)
	}
	return -1, errors.New(reason(err, *p))
}

// reason explains a perf_event_open failure for Unsupported.
func reason(err error, p policy) string {
	var errno unix.Errno
	if !errors.As(err, &errno) {
		return "cannot open: " + err.Error()
	}
	name := unix.ErrnoName(errno)
	if errno == unix.EOPNOTSUPP {
		name = "EOPNOTSUPP" // ErrnoName says ENOTSUP, its alias on Linux
	}
	switch errno {
	case unix.ENOENT, unix.EOPNOTSUPP, unix.ENODEV:
		return fmt.Sprintf("not supported by this CPU or VM (%s)", name)
	case unix.EACCES, unix.EPERM:
		if p.paranoidOK {
			return fmt.Sprintf("not permitted: perf_event_paranoid=%d (%s)", p.paranoid, name)
		}
		return fmt.Sprintf("not permitted (%s)", name)
	case unix.ENOSYS:
		return "perf_event_open is not available in this kernel (ENOSYS)"
	case unix.EMFILE, unix.ENFILE:
		return fmt.Sprintf("out of file descriptors (%s)", name)
	case unix.EBUSY:
		return "counter hardware is in exclusive use (EBUSY)"
	case unix.EINVAL:
		return "rejected by the kernel (EINVAL)"
	}
	if name == "" {
		name = strconv.Itoa(int(errno))
	}
	return fmt.Sprintf("cannot open: %v (%s)", errno, name)
}

// Open opens the instructions, cycles and task-clock counters on pid, on any
// CPU, inherited by every process pid starts after Open. Counters that cannot
// be opened are named in Read's Unsupported; Open fails only for a pid that
// is not positive or names no process, with an error wrapping ErrBadPid.
// Call Close when done.
func Open(pid int) (*Counters, error) {
	if pid <= 0 {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrBadPid)
	}
	if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
		return nil, fmt.Errorf("pid %d: %w", pid, ErrBadPid)
	}
	p, refreshed := cachedPolicy(), false
	c := &Counters{}
	for i, d := range defs {
		fd, err := openOne(d, pid, &p, &refreshed)
		if errors.Is(err, ErrBadPid) {
			c.closeFds(i)
			return nil, err
		}
		c.fds[i] = fd
		if err != nil {
			c.reasons[i] = err.Error()
		}
	}
	return c, nil
}

// closeFds closes the first n fds. It is used before c is shared.
func (c *Counters) closeFds(n int) {
	for i := range n {
		if c.fds[i] >= 0 {
			_ = unix.Close(c.fds[i])
			c.fds[i] = -1
		}
	}
}

// Read returns the counts so far, scaled when the kernel multiplexed a
// counter. Counters that could not be opened or read are nil and named in
// Unsupported. After Close, Read returns the counts as of Close. Read of a
// nil *Counters is nil.
func (c *Counters) Read() *v1.PerfCounters {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return copyCounters(c.final)
	}
	return c.readLocked()
}

// readLocked reads every counter. c.mu must be held.
func (c *Counters) readLocked() *v1.PerfCounters {
	out := &v1.PerfCounters{}
	var buf [readSize]byte
	for i, d := range defs {
		var v *uint64
		why := c.reasons[i]
		if c.fds[i] >= 0 {
			v, why = readOne(c.fds[i], buf[:])
		}
		if v == nil {
			if out.Unsupported == nil {
				out.Unsupported = make(map[string]string, nCounters)
			}
			out.Unsupported[d.name] = why
			continue
		}
		switch d.name {
		case NameInstructions:
			out.Instructions = v
		case NameCycles:
			out.Cycles = v
		case NameTaskClock:
			out.TaskClockNs = v
		}
	}
	return out
}

// readOne reads and scales one counter, or says why it could not.
func readOne(fd int, buf []byte) (*uint64, string) {
	n, err := unix.Read(fd, buf)
	if err != nil {
		return nil, "cannot read: " + err.Error()
	}
	if n != readSize {
		return nil, fmt.Sprintf("cannot read: short read of %d bytes", n)
	}
	val := binary.NativeEndian.Uint64(buf[0:])
	enabled := binary.NativeEndian.Uint64(buf[8:])
	running := binary.NativeEndian.Uint64(buf[16:])
	s, ok := Scale(val, enabled, running)
	if !ok {
		return nil, "never counted: the kernel multiplexed it out for the whole run"
	}
	return &s, ""
}

// copyCounters deep-copies p so callers cannot alter the stored reading.
func copyCounters(p *v1.PerfCounters) *v1.PerfCounters {
	if p == nil {
		return nil
	}
	out := &v1.PerfCounters{}
	dup := func(v *uint64) *uint64 {
		if v == nil {
			return nil
		}
		x := *v
		return &x
	}
	out.Instructions = dup(p.Instructions)
	out.Cycles = dup(p.Cycles)
	out.TaskClockNs = dup(p.TaskClockNs)
	if p.Unsupported != nil {
		out.Unsupported = make(map[string]string, len(p.Unsupported))
		for k, v := range p.Unsupported {
			out.Unsupported[k] = v
		}
	}
	return out
}

// Close takes a final reading, which Read returns from then on, and closes
// the counters. It is idempotent and safe on a nil *Counters.
func (c *Counters) Close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.final = c.readLocked()
	c.closed = true
	var errs []error
	for i := range c.fds {
		if c.fds[i] < 0 {
			continue
		}
		if err := unix.Close(c.fds[i]); err != nil {
			errs = append(errs, fmt.Errorf("close %s counter: %w", defs[i].name, err))
		}
		c.fds[i] = -1
	}
	return errors.Join(errs...)
}

// Available reports whether any counter can be opened here, by opening each
// on the calling thread and closing it at once. reason names each counter
// that cannot be opened and why ("cycles: not supported by this CPU or VM
// (ENOENT); ..."); it is empty when all can be opened, and may be non-empty
// with ok true when only some can.
func Available() (ok bool, reason string) {
	p, refreshed := refreshPolicy(), true
	var why []string
	for _, d := range defs {
		fd, err := openOne(d, 0, &p, &refreshed)
		if err != nil {
			why = append(why, d.name+": "+err.Error())
			continue
		}
		_ = unix.Close(fd)
		ok = true
	}
	return ok, strings.Join(why, "; ")
}
