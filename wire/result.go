package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
)

// Proc states in results.
const (
	StateError      = "error"
	StateRunning    = "running"
	StateTerminated = "terminated"
)

// ProcRes is procstar's result for one proc. Fields are serialized in
// exactly procstar's order; nullable fields are written as null, never
// omitted. errors is always an array and fds always an object. Encode
// with Marshal for serde_json's exact bytes.
type ProcRes struct {
	State            string            `json:"state" msgpack:"state"`
	Errors           []string          `json:"errors" msgpack:"errors"`
	Pid              int               `json:"pid" msgpack:"pid"`
	ProcStat         *ProcStat         `json:"proc_stat" msgpack:"proc_stat"`
	ProcStatm        *ProcStatm        `json:"proc_statm" msgpack:"proc_statm"`
	CgroupAccounting *CgroupAccounting `json:"cgroup_accounting" msgpack:"cgroup_accounting"`
	Times            Times             `json:"times" msgpack:"times"`
	Status           *Status           `json:"status" msgpack:"status"`
	Rusage           *Rusage           `json:"rusage" msgpack:"rusage"`
	// Fds has one entry per fd listed in the spec, keyed by canonical
	// name; nil for every variant but capture.
	Fds map[string]*FdRes `json:"fds" msgpack:"fds"`
}

// MarshalJSON writes the result, with a nil Errors as [] and a nil Fds as
// {}.
func (r ProcRes) MarshalJSON() ([]byte, error) {
	type plain ProcRes
	if r.Errors == nil {
		r.Errors = []string{}
	}
	if r.Fds == nil {
		r.Fds = map[string]*FdRes{}
	}
	return Marshal(plain(r))
}

// DecodeProcRes decodes a result as procstar (Rust or Go) writes it,
// including procstar 0.7.5's quirky values (integer cguest_time, "???"
// signal names). Unknown fields are ignored, since peers add some (the
// Python server adds "procstar").
func DecodeProcRes(data []byte) (ProcRes, error) {
	var r ProcRes
	if err := json.Unmarshal(data, &r); err != nil {
		return ProcRes{}, fmt.Errorf("decode procstar result: %w", err)
	}
	return r, nil
}

// Times are a proc's wall-clock times and its monotonic elapsed seconds.
type Times struct {
	Start Time `json:"start" msgpack:"start"`
	// Now is when the result was made.
	Now Time `json:"now" msgpack:"now"`
	// Stop is nil while running.
	Stop    *Time `json:"stop" msgpack:"stop"`
	Elapsed Float `json:"elapsed" msgpack:"elapsed"`
}

// Status is the wait status of a reaped proc.
type Status struct {
	// Status is the raw wait(2) status.
	Status   int     `json:"status" msgpack:"status"`
	ExitCode *int    `json:"exit_code" msgpack:"exit_code"`
	Signum   *int    `json:"signum" msgpack:"signum"`
	Signal   *string `json:"signal" msgpack:"signal"`
	CoreDump bool    `json:"core_dump" msgpack:"core_dump"`
}

// Rusage is wait4's resource usage: times in seconds, maxrss in bytes.
type Rusage struct {
	Utime   Float `json:"utime" msgpack:"utime"`
	Stime   Float `json:"stime" msgpack:"stime"`
	Maxrss  int64 `json:"maxrss" msgpack:"maxrss"`
	Minflt  int64 `json:"minflt" msgpack:"minflt"`
	Majflt  int64 `json:"majflt" msgpack:"majflt"`
	Nswap   int64 `json:"nswap" msgpack:"nswap"`
	Inblock int64 `json:"inblock" msgpack:"inblock"`
	Oublock int64 `json:"oublock" msgpack:"oublock"`
	Nvcsw   int64 `json:"nvcsw" msgpack:"nvcsw"`
	Nivcsw  int64 `json:"nivcsw" msgpack:"nivcsw"`
}

// ProcStat is /proc/PID/stat in procstar's shape. Unlike procstar 0.7.5 we
// decode signal bitmaps with the right bits and name every signal, compute
// the tty minor as the kernel does, and give cguest_time in seconds.
type ProcStat struct {
	Pid     int    `json:"pid" msgpack:"pid"`
	Comm    string `json:"comm" msgpack:"comm"`
	State   string `json:"state" msgpack:"state"`
	Ppid    int    `json:"ppid" msgpack:"ppid"`
	Pgrp    int    `json:"pgrp" msgpack:"pgrp"`
	Session int    `json:"session" msgpack:"session"`
	// TtyNr is [major, minor].
	TtyNr               [2]uint32 `json:"tty_nr" msgpack:"tty_nr"`
	Tpgid               *int      `json:"tpgid" msgpack:"tpgid"`
	Flags               uint32    `json:"flags" msgpack:"flags"`
	Minflt              uint64    `json:"minflt" msgpack:"minflt"`
	Cminflt             uint64    `json:"cminflt" msgpack:"cminflt"`
	Majflt              uint64    `json:"majflt" msgpack:"majflt"`
	Cmajflt             uint64    `json:"cmajflt" msgpack:"cmajflt"`
	Utime               Float     `json:"utime" msgpack:"utime"`
	Stime               Float     `json:"stime" msgpack:"stime"`
	Cutime              Float     `json:"cutime" msgpack:"cutime"`
	Cstime              Float     `json:"cstime" msgpack:"cstime"`
	Priority            int64     `json:"priority" msgpack:"priority"`
	Nice                int64     `json:"nice" msgpack:"nice"`
	NumThreads          int64     `json:"num_threads" msgpack:"num_threads"`
	Starttime           Time      `json:"starttime" msgpack:"starttime"`
	Vsize               uint64    `json:"vsize" msgpack:"vsize"`
	Rss                 int64     `json:"rss" msgpack:"rss"`
	Rsslim              uint64    `json:"rsslim" msgpack:"rsslim"`
	Signal              []string  `json:"signal" msgpack:"signal"`
	Blocked             []string  `json:"blocked" msgpack:"blocked"`
	Sigignore           []string  `json:"sigignore" msgpack:"sigignore"`
	Sigcatch            []string  `json:"sigcatch" msgpack:"sigcatch"`
	Wchan               uint64    `json:"wchan" msgpack:"wchan"`
	ExitSignal          *string   `json:"exit_signal" msgpack:"exit_signal"`
	Processor           int32     `json:"processor" msgpack:"processor"`
	RtPriority          uint32    `json:"rt_priority" msgpack:"rt_priority"`
	Policy              uint32    `json:"policy" msgpack:"policy"`
	DelayacctBlkioTicks Float     `json:"delayacct_blkio_ticks" msgpack:"delayacct_blkio_ticks"`
	GuestTime           Float     `json:"guest_time" msgpack:"guest_time"`
	// CguestTime is seconds here; procstar 0.7.5 writes raw ticks (an
	// integer), which decodes too.
	CguestTime Float `json:"cguest_time" msgpack:"cguest_time"`
	ExitCode   int32 `json:"exit_code" msgpack:"exit_code"`
}

// ProcStatm is /proc/PID/statm in bytes.
type ProcStatm struct {
	Size     uint64 `json:"size" msgpack:"size"`
	Resident uint64 `json:"resident" msgpack:"resident"`
	Shared   uint64 `json:"shared" msgpack:"shared"`
	Text     uint64 `json:"text" msgpack:"text"`
	Data     uint64 `json:"data" msgpack:"data"`
}

// CgroupAccounting is what the proc's cgroup counted. Pids and Memory are
// null when their controller is not enabled.
type CgroupAccounting struct {
	Pids    *CgroupPids   `json:"pids" msgpack:"pids"`
	CPUStat CgroupCPUStat `json:"cpu_stat" msgpack:"cpu_stat"`
	Memory  *CgroupMemory `json:"memory" msgpack:"memory"`
}

// CgroupPids is pids.current and pids.peak.
type CgroupPids struct {
	Current uint64 `json:"current" msgpack:"current"`
	Peak    uint64 `json:"peak" msgpack:"peak"`
}

// CgroupCPUStat is cpu.stat; the throttling fields are null when absent.
type CgroupCPUStat struct {
	UsageUsec     uint64  `json:"usage_usec" msgpack:"usage_usec"`
	UserUsec      uint64  `json:"user_usec" msgpack:"user_usec"`
	SystemUsec    uint64  `json:"system_usec" msgpack:"system_usec"`
	NrPeriods     *uint64 `json:"nr_periods" msgpack:"nr_periods"`
	NrThrottled   *uint64 `json:"nr_throttled" msgpack:"nr_throttled"`
	ThrottledUsec *uint64 `json:"throttled_usec" msgpack:"throttled_usec"`
	NrBursts      *uint64 `json:"nr_bursts" msgpack:"nr_bursts"`
	BurstUsec     *uint64 `json:"burst_usec" msgpack:"burst_usec"`
}

// CgroupMemory is memory.current, .peak, .swap.current and .swap.peak.
type CgroupMemory struct {
	Current     uint64 `json:"current" msgpack:"current"`
	Peak        uint64 `json:"peak" msgpack:"peak"`
	SwapCurrent uint64 `json:"swap_current" msgpack:"swap_current"`
	SwapPeak    uint64 `json:"swap_peak" msgpack:"swap_peak"`
}

// FdRes types.
const (
	FdResText     = "text"
	FdResData     = "data"
	FdResDetached = "detached"
	FdResError    = "error"
	FdResFile     = "file"
)

// FdRes is a captured fd's result, internally tagged by "type":
//
//	{"type":"text","text":…,"encoding":"utf-8"}   (or "base2048", ours)
//	{"type":"data","data":<base64>,"encoding":"base64"}
//	{"type":"detached","length":N,"encoding":…}
//	{"type":"error"}
//	{"type":"file","path":…}                      (never produced)
//
// MarshalJSON writes only the variant's fields. The msgpack tags have no
// omitempty (a detached length of 0 must be written); a MessagePack
// encoder that wants the exact variant shape should mirror MarshalJSON.
type FdRes struct {
	Type     string `json:"type" msgpack:"type"`
	Text     string `json:"text,omitempty" msgpack:"text"`
	Data     string `json:"data,omitempty" msgpack:"data"`
	Length   int64  `json:"length,omitempty" msgpack:"length"`
	Encoding string `json:"encoding,omitempty" msgpack:"encoding"`
	Path     string `json:"path,omitempty" msgpack:"path"`
}

// MarshalJSON writes exactly the fields of the variant, in procstar's
// order.
func (f FdRes) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	str := func(k, v string) {
		b.WriteString(`,"` + k + `":`)
		q, _ := Marshal(v)
		b.Write(q)
	}
	b.WriteString(`{"type":`)
	q, _ := Marshal(f.Type)
	b.Write(q)
	switch f.Type {
	case FdResText:
		str("text", f.Text)
		str("encoding", f.Encoding)
	case FdResData:
		str("data", f.Data)
		str("encoding", f.Encoding)
	case FdResDetached:
		b.WriteString(`,"length":` + strconv.FormatInt(f.Length, 10))
		str("encoding", f.Encoding)
	case FdResError:
	case FdResFile:
		str("path", f.Path)
	default:
		return nil, fmt.Errorf("unknown fd result type %q", f.Type)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Time is a result timestamp. It is written as RFC 3339 in UTC with a
// "+00:00" offset and 0, 3, 6 or 9 fractional digits (FormatTime), and read
// from any RFC 3339 form. It is a defined type rather than an embedding of
// time.Time so that it has no MarshalBinary: MessagePack encoders then use
// MarshalText and write a string, as procstar does.
type Time time.Time

// NewTime returns t as a Time.
func NewTime(t time.Time) Time { return Time(t.UTC()) }

// UTC returns t as a time.Time in UTC.
func (t Time) UTC() time.Time { return time.Time(t).UTC() }

// String is FormatTime.
func (t Time) String() string { return FormatTime(time.Time(t)) }

// FormatTime formats t as chrono's DateTime<Utc>::to_rfc3339 does
// (SecondsFormat::AutoSi): UTC, "+00:00", and no fraction, or 3, 6 or 9
// digits, whichever is the shortest exact one.
func FormatTime(t time.Time) string {
	return string(appendTime(make([]byte, 0, 35), t))
}

func appendTime(b []byte, t time.Time) []byte {
	t = t.UTC()
	if year, month, day := t.Date(); year >= 0 && year <= 9999 {
		// t.AppendFormat(b, "2006-01-02T15:04:05"), without parsing the
		// layout.
		hour, minute, sec := t.Clock()
		b = append(b, byte('0'+year/1000), byte('0'+year/100%10), byte('0'+year/10%10), byte('0'+year%10), '-',
			byte('0'+int(month)/10), byte('0'+int(month)%10), '-', byte('0'+day/10), byte('0'+day%10), 'T',
			byte('0'+hour/10), byte('0'+hour%10), ':', byte('0'+minute/10), byte('0'+minute%10), ':',
			byte('0'+sec/10), byte('0'+sec%10))
	} else {
		b = t.AppendFormat(b, "2006-01-02T15:04:05")
	}
	ns := t.Nanosecond()
	switch {
	case ns == 0:
	case ns%1_000_000 == 0:
		b = appendFrac(b, ns/1_000_000, 3)
	case ns%1_000 == 0:
		b = appendFrac(b, ns/1_000, 6)
	default:
		b = appendFrac(b, ns, 9)
	}
	return append(b, "+00:00"...)
}

func appendFrac(b []byte, v, digits int) []byte {
	b = append(b, '.')
	var tmp [9]byte
	for i := digits - 1; i >= 0; i-- {
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[:digits]...)
}

// ErrBadTime is wrapped by ParseTime errors.
var ErrBadTime = errors.New("bad RFC 3339 time")

// ParseTime parses an RFC 3339 time ("Z" or any offset, any fraction) and
// returns it in UTC.
func ParseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %q", ErrBadTime, s)
	}
	return t.UTC(), nil
}

// MarshalText implements encoding.TextMarshaler with FormatTime.
func (t Time) MarshalText() ([]byte, error) { return appendTime(nil, time.Time(t)), nil }

// MarshalJSON writes the quoted FormatTime form.
func (t Time) MarshalJSON() ([]byte, error) {
	b := append(make([]byte, 0, 37), '"')
	b = appendTime(b, time.Time(t))
	return append(b, '"'), nil
}

// UnmarshalText implements encoding.TextUnmarshaler with ParseTime.
func (t *Time) UnmarshalText(b []byte) error {
	v, err := ParseTime(string(b))
	if err != nil {
		return err
	}
	*t = Time(v)
	return nil
}

// UnmarshalJSON reads a JSON string; null leaves t unchanged.
func (t *Time) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %s", ErrBadTime, b)
	}
	return t.UnmarshalText([]byte(s))
}

// OutputSource gives the retained captured bytes of a proc's fds.
type OutputSource interface {
	// Output returns all retained output of fd.
	Output(fd int) ([]byte, error)
}

// NewProcRes builds the procstar result of a proc from its v1 spec and
// status at time now. out supplies the output of attached captures; when
// it is nil or fails, the fd's result is {"type":"error"}.
//
// state is "error" when st.Errors is non-empty, else "running" until
// st.WaitStatus is set, then "terminated". A missing st.Times.Start is
// written as now.
func NewProcRes(spec *v1.ProcSpec, st *v1.ProcStatus, now time.Time, out OutputSource) ProcRes {
	r := ProcRes{
		State:  StateRunning,
		Errors: append([]string{}, st.Errors...),
		Pid:    st.Pid,
		Fds:    map[string]*FdRes{},
	}
	switch {
	case len(st.Errors) > 0:
		r.State = StateError
	case st.WaitStatus != nil:
		r.State = StateTerminated
	}
	r.Times = Times{Start: NewTime(now), Now: NewTime(now)}
	if t := st.Times; t != nil {
		if t.Start != nil {
			r.Times.Start = NewTime(*t.Start)
		}
		if t.Stop != nil {
			stop := NewTime(*t.Stop)
			r.Times.Stop = &stop
		}
		r.Times.Elapsed = Float(t.Elapsed)
	}
	if st.ProcStat != nil {
		r.ProcStat = procStatFromV1(st.ProcStat)
	}
	if m := st.ProcStatm; m != nil {
		r.ProcStatm = &ProcStatm{Size: m.Size, Resident: m.Resident, Shared: m.Shared, Text: m.Text, Data: m.Data}
	}
	if c := st.CgroupAccounting; c != nil {
		r.CgroupAccounting = cgroupFromV1(c)
	}
	if st.WaitStatus != nil {
		r.Status = statusFromV1(st)
	}
	if u := st.Rusage; u != nil {
		r.Rusage = &Rusage{Utime: Float(u.Utime), Stime: Float(u.Stime), Maxrss: u.Maxrss, Minflt: u.Minflt, Majflt: u.Majflt,
			Nswap: u.Nswap, Inblock: u.Inblock, Oublock: u.Oublock, Nvcsw: u.Nvcsw, Nivcsw: u.Nivcsw}
	}
	if spec != nil {
		for _, f := range spec.Fds {
			name := string(f.Fd.Canonical())
			if f.Capture == nil {
				r.Fds[name] = nil
				continue
			}
			r.Fds[name] = fdResOf(f, name, st, out)
		}
	}
	return r
}

func fdResOf(f v1.FdSpec, name string, st *v1.ProcStatus, out OutputSource) *FdRes {
	c := f.Capture
	enc := c.Encoding
	if enc == "" {
		enc = v1.EncodingBase64
	}
	if c.Attached != nil && !*c.Attached {
		return &FdRes{Type: FdResDetached, Length: st.Fds[name].Length, Encoding: string(enc)}
	}
	num, err := f.Fd.Number()
	if err != nil || out == nil {
		return &FdRes{Type: FdResError}
	}
	b, err := out.Output(num)
	if err != nil {
		return &FdRes{Type: FdResError}
	}
	switch enc {
	case v1.EncodingUTF8:
		return &FdRes{Type: FdResText, Text: LossyUTF8(b), Encoding: string(v1.EncodingUTF8)}
	case v1.EncodingBase2048:
		return &FdRes{Type: FdResText, Text: EncodeBase2048(b), Encoding: string(v1.EncodingBase2048)}
	}
	return &FdRes{Type: FdResData, Data: base64.StdEncoding.EncodeToString(b), Encoding: string(v1.EncodingBase64)}
}

// statusFromV1 builds the status object. It takes the exit code, signal
// and core dump from st where set and decodes the raw wait status
// otherwise.
func statusFromV1(st *v1.ProcStatus) *Status {
	ws := *st.WaitStatus
	s := &Status{Status: ws}
	exited := ws&0x7f == 0
	switch {
	case st.ExitCode != nil:
		v := *st.ExitCode
		s.ExitCode = &v
	case st.Signal != "":
		if n, err := signals.Parse(st.Signal); err == nil {
			s.Signum = &n
		}
		name := st.Signal
		if s.Signum != nil {
			name = signals.Name(*s.Signum)
		}
		s.Signal = &name
		s.CoreDump = st.CoreDump
	case exited:
		v := (ws >> 8) & 0xff
		s.ExitCode = &v
	default:
		n := ws & 0x7f
		name := signals.Name(n)
		s.Signum, s.Signal = &n, &name
		s.CoreDump = st.CoreDump || ws&0x80 != 0
	}
	return s
}

func procStatFromV1(p *v1.ProcStat) *ProcStat {
	out := &ProcStat{
		Pid: p.Pid, Comm: p.Comm, State: p.State, Ppid: p.Ppid, Pgrp: p.Pgrp, Session: p.Session,
		TtyNr: p.TtyNr, Flags: p.Flags,
		Minflt: p.Minflt, Cminflt: p.Cminflt, Majflt: p.Majflt, Cmajflt: p.Cmajflt,
		Utime: Float(p.Utime), Stime: Float(p.Stime), Cutime: Float(p.Cutime), Cstime: Float(p.Cstime),
		Priority: p.Priority, Nice: p.Nice, NumThreads: p.NumThreads,
		Starttime: NewTime(p.Starttime), Vsize: p.Vsize, Rss: p.Rss, Rsslim: p.Rsslim,
		Signal: nonNil(p.Signal), Blocked: nonNil(p.Blocked), Sigignore: nonNil(p.Sigignore), Sigcatch: nonNil(p.Sigcatch),
		Wchan: p.Wchan, Processor: p.Processor, RtPriority: p.RtPriority, Policy: p.Policy,
		DelayacctBlkioTicks: Float(p.DelayacctBlkioTicks), GuestTime: Float(p.GuestTime), CguestTime: Float(p.CguestTime),
		ExitCode: p.ExitCode,
	}
	if p.Tpgid != nil {
		v := *p.Tpgid
		out.Tpgid = &v
	}
	if p.ExitSignal != nil {
		v := *p.ExitSignal
		out.ExitSignal = &v
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return append([]string{}, s...)
}

func cgroupFromV1(c *v1.CgroupAccounting) *CgroupAccounting {
	out := &CgroupAccounting{}
	if c.Pids != nil {
		out.Pids = &CgroupPids{Current: c.Pids.Current, Peak: c.Pids.Peak}
	}
	if s := c.CPUStat; s != nil {
		out.CPUStat = CgroupCPUStat{UsageUsec: s.UsageUsec, UserUsec: s.UserUsec, SystemUsec: s.SystemUsec,
			NrPeriods: s.NrPeriods, NrThrottled: s.NrThrottled, ThrottledUsec: s.ThrottledUsec,
			NrBursts: s.NrBursts, BurstUsec: s.BurstUsec}
	}
	if m := c.Memory; m != nil {
		out.Memory = &CgroupMemory{Current: m.Current, Peak: m.Peak, SwapCurrent: m.SwapCurrent, SwapPeak: m.SwapPeak}
	}
	return out
}
