package wire

import (
	"math"
	"slices"
	"strings"
	"time"
)

// This file is a fast path of EncodeMessage for ProcResult, the message
// the agent sends most: the same bytes the reflective encoder writes,
// without reflection, appended straight to a byte slice by the mp*
// functions, which write each value in the format msgpack.Encoder picks
// for it. TestEncodeProcResultFastPath compares the two paths (a field
// added to a result type and not here changes a map length, which it
// catches) and TestMpMatchesEncoder the formats. The one error is an
// unknown fd result type, left to the reflective path.

// encodeProcResult writes m as EncodeMessage's reflective path would.
func encodeProcResult(b []byte, m *ProcResult) ([]byte, error) {
	b = mpMapLen(b, 3)
	b = mpStr(b, "type")
	b = mpStr(b, m.MessageType())
	b = mpStr(b, "proc_id")
	b = mpStr(b, m.ProcID)
	b = mpStr(b, "res")
	return encodeProcRes(b, &m.Res)
}

func encodeProcRes(b []byte, r *ProcRes) ([]byte, error) {
	b = mpMapLen(b, 10)
	b = mpStr(b, "state")
	b = mpStr(b, r.State)
	b = mpStr(b, "errors")
	b = encodeStrings(b, r.Errors)
	b = mpStr(b, "pid")
	b = mpInt(b, int64(r.Pid))
	b = mpStr(b, "proc_stat")
	if r.ProcStat == nil {
		b = mpNil(b)
	} else {
		b = encodeProcStat(b, r.ProcStat)
	}
	b = mpStr(b, "proc_statm")
	if m := r.ProcStatm; m == nil {
		b = mpNil(b)
	} else {
		b = mpMapLen(b, 5)
		b = uintKV(b, "size", m.Size)
		b = uintKV(b, "resident", m.Resident)
		b = uintKV(b, "shared", m.Shared)
		b = uintKV(b, "text", m.Text)
		b = uintKV(b, "data", m.Data)
	}
	b = mpStr(b, "cgroup_accounting")
	if c := r.CgroupAccounting; c == nil {
		b = mpNil(b)
	} else {
		b = encodeCgroup(b, c)
	}
	b = mpStr(b, "times")
	b = mpMapLen(b, 4)
	b = mpStr(b, "start")
	b = mpTime(b, r.Times.Start)
	b = mpStr(b, "now")
	b = mpTime(b, r.Times.Now)
	b = mpStr(b, "stop")
	if r.Times.Stop == nil {
		b = mpNil(b)
	} else {
		b = mpTime(b, *r.Times.Stop)
	}
	b = floatKV(b, "elapsed", r.Times.Elapsed)
	b = mpStr(b, "status")
	if s := r.Status; s == nil {
		b = mpNil(b)
	} else {
		b = mpMapLen(b, 5)
		b = intKV(b, "status", int64(s.Status))
		b = mpStr(b, "exit_code")
		b = encodeOptInt(b, s.ExitCode)
		b = mpStr(b, "signum")
		b = encodeOptInt(b, s.Signum)
		b = mpStr(b, "signal")
		b = encodeOptString(b, s.Signal)
		b = mpStr(b, "core_dump")
		b = mpBool(b, s.CoreDump)
	}
	b = mpStr(b, "rusage")
	if u := r.Rusage; u == nil {
		b = mpNil(b)
	} else {
		b = mpMapLen(b, 10)
		b = floatKV(b, "utime", u.Utime)
		b = floatKV(b, "stime", u.Stime)
		b = intKV(b, "maxrss", u.Maxrss)
		b = intKV(b, "minflt", u.Minflt)
		b = intKV(b, "majflt", u.Majflt)
		b = intKV(b, "nswap", u.Nswap)
		b = intKV(b, "inblock", u.Inblock)
		b = intKV(b, "oublock", u.Oublock)
		b = intKV(b, "nvcsw", u.Nvcsw)
		b = intKV(b, "nivcsw", u.Nivcsw)
	}
	b = mpStr(b, "fds")
	return encodeFdResMap(b, r.Fds)
}

func encodeProcStat(b []byte, s *ProcStat) []byte {
	b = mpMapLen(b, 37)
	b = intKV(b, "pid", int64(s.Pid))
	b = strKV(b, "comm", s.Comm)
	b = strKV(b, "state", s.State)
	b = intKV(b, "ppid", int64(s.Ppid))
	b = intKV(b, "pgrp", int64(s.Pgrp))
	b = intKV(b, "session", int64(s.Session))
	b = mpStr(b, "tty_nr")
	b = mpArrayLen(b, 2)
	b = mpUint(b, uint64(s.TtyNr[0]))
	b = mpUint(b, uint64(s.TtyNr[1]))
	b = mpStr(b, "tpgid")
	b = encodeOptInt(b, s.Tpgid)
	b = uintKV(b, "flags", uint64(s.Flags))
	b = uintKV(b, "minflt", s.Minflt)
	b = uintKV(b, "cminflt", s.Cminflt)
	b = uintKV(b, "majflt", s.Majflt)
	b = uintKV(b, "cmajflt", s.Cmajflt)
	b = floatKV(b, "utime", s.Utime)
	b = floatKV(b, "stime", s.Stime)
	b = floatKV(b, "cutime", s.Cutime)
	b = floatKV(b, "cstime", s.Cstime)
	b = intKV(b, "priority", s.Priority)
	b = intKV(b, "nice", s.Nice)
	b = intKV(b, "num_threads", s.NumThreads)
	b = mpStr(b, "starttime")
	b = mpTime(b, s.Starttime)
	b = uintKV(b, "vsize", s.Vsize)
	b = intKV(b, "rss", s.Rss)
	b = uintKV(b, "rsslim", s.Rsslim)
	b = mpStr(b, "signal")
	b = encodeStrings(b, s.Signal)
	b = mpStr(b, "blocked")
	b = encodeStrings(b, s.Blocked)
	b = mpStr(b, "sigignore")
	b = encodeStrings(b, s.Sigignore)
	b = mpStr(b, "sigcatch")
	b = encodeStrings(b, s.Sigcatch)
	b = uintKV(b, "wchan", s.Wchan)
	b = mpStr(b, "exit_signal")
	b = encodeOptString(b, s.ExitSignal)
	b = intKV(b, "processor", int64(s.Processor))
	b = uintKV(b, "rt_priority", uint64(s.RtPriority))
	b = uintKV(b, "policy", uint64(s.Policy))
	b = floatKV(b, "delayacct_blkio_ticks", s.DelayacctBlkioTicks)
	b = floatKV(b, "guest_time", s.GuestTime)
	b = floatKV(b, "cguest_time", s.CguestTime)
	b = intKV(b, "exit_code", int64(s.ExitCode))
	return b
}

func encodeCgroup(b []byte, c *CgroupAccounting) []byte {
	b = mpMapLen(b, 3)
	b = mpStr(b, "pids")
	if p := c.Pids; p == nil {
		b = mpNil(b)
	} else {
		b = mpMapLen(b, 2)
		b = uintKV(b, "current", p.Current)
		b = uintKV(b, "peak", p.Peak)
	}
	b = mpStr(b, "cpu_stat")
	s := &c.CPUStat
	b = mpMapLen(b, 8)
	b = uintKV(b, "usage_usec", s.UsageUsec)
	b = uintKV(b, "user_usec", s.UserUsec)
	b = uintKV(b, "system_usec", s.SystemUsec)
	b = optUintKV(b, "nr_periods", s.NrPeriods)
	b = optUintKV(b, "nr_throttled", s.NrThrottled)
	b = optUintKV(b, "throttled_usec", s.ThrottledUsec)
	b = optUintKV(b, "nr_bursts", s.NrBursts)
	b = optUintKV(b, "burst_usec", s.BurstUsec)
	b = mpStr(b, "memory")
	if m := c.Memory; m == nil {
		b = mpNil(b)
	} else {
		b = mpMapLen(b, 4)
		b = uintKV(b, "current", m.Current)
		b = uintKV(b, "peak", m.Peak)
		b = uintKV(b, "swap_current", m.SwapCurrent)
		b = uintKV(b, "swap_peak", m.SwapPeak)
	}
	return b
}

// encodeFdResMap writes the fds map, keys sorted, as the reflective path
// writes a map.
func encodeFdResMap(b []byte, fds map[string]*FdRes) ([]byte, error) {
	var tmp [8]string
	keys := tmp[:0]
	for k := range fds {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, strings.Compare)
	b = mpMapLen(b, len(keys))
	for _, k := range keys {
		b = mpStr(b, k)
		var err error
		if b, err = encodeFdRes(b, fds[k]); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// encodeFdRes writes f as encoder.fdRes does: only its variant's fields.
func encodeFdRes(b []byte, f *FdRes) ([]byte, error) {
	switch {
	case f == nil:
		b = mpNil(b)
	case f.Type == FdResText:
		b = mpMapLen(b, 3)
		b = strKV(b, "type", f.Type)
		b = strKV(b, "text", f.Text)
		b = strKV(b, "encoding", f.Encoding)
	case f.Type == FdResData:
		b = mpMapLen(b, 3)
		b = strKV(b, "type", f.Type)
		b = strKV(b, "data", f.Data)
		b = strKV(b, "encoding", f.Encoding)
	case f.Type == FdResDetached:
		b = mpMapLen(b, 3)
		b = strKV(b, "type", f.Type)
		b = intKV(b, "length", f.Length)
		b = strKV(b, "encoding", f.Encoding)
	case f.Type == FdResError:
		b = mpMapLen(b, 1)
		b = strKV(b, "type", f.Type)
	case f.Type == FdResFile:
		b = mpMapLen(b, 2)
		b = strKV(b, "type", f.Type)
		b = strKV(b, "path", f.Path)
	default:
		return nil, errNoFastPath // the reflective path reports it
	}
	return b, nil
}

func encodeStrings(b []byte, ss []string) []byte {
	b = mpArrayLen(b, len(ss))
	for _, s := range ss {
		b = mpStr(b, s)
	}
	return b
}

func encodeOptInt(b []byte, p *int) []byte {
	if p == nil {
		b = mpNil(b)
	} else {
		b = mpInt(b, int64(*p))
	}
	return b
}

func encodeOptString(b []byte, p *string) []byte {
	if p == nil {
		b = mpNil(b)
	} else {
		b = mpStr(b, *p)
	}
	return b
}

func strKV(b []byte, k, v string) []byte {
	b = mpStr(b, k)
	b = mpStr(b, v)
	return b
}

func intKV(b []byte, k string, v int64) []byte {
	b = mpStr(b, k)
	b = mpInt(b, v)
	return b
}

func uintKV(b []byte, k string, v uint64) []byte {
	b = mpStr(b, k)
	b = mpUint(b, v)
	return b
}

func optUintKV(b []byte, k string, v *uint64) []byte {
	b = mpStr(b, k)
	if v == nil {
		b = mpNil(b)
	} else {
		b = mpUint(b, *v)
	}
	return b
}

func floatKV(b []byte, k string, v Float) []byte {
	b = mpStr(b, k)
	b = mpFloat(b, float64(v))
	return b
}

// The mp* functions append one msgpack value to b, each in the format
// msgpack.Encoder writes it in (ints in their smallest format, floats as
// float 64).

func mpNil(b []byte) []byte { return append(b, 0xc0) }

func mpBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func mpUint(b []byte, n uint64) []byte {
	switch {
	case n <= math.MaxInt8:
		return append(b, byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xcc, byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xcd, byte(n>>8), byte(n))
	case n <= math.MaxUint32:
		return append(b, 0xce, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0xcf, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func mpInt(b []byte, n int64) []byte {
	switch {
	case n >= 0:
		return mpUint(b, uint64(n))
	case n >= -32:
		return append(b, byte(n))
	case n >= math.MinInt8:
		return append(b, 0xd0, byte(n))
	case n >= math.MinInt16:
		return append(b, 0xd1, byte(n>>8), byte(n))
	case n >= math.MinInt32:
		return append(b, 0xd2, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0xd3, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func mpFloat(b []byte, f float64) []byte {
	n := math.Float64bits(f)
	return append(b, 0xcb, byte(n>>56), byte(n>>48), byte(n>>40), byte(n>>32), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// mpHeader appends a length header: fix (fixBase|n) below fixMax, else
// the 8-bit (where c8 is not 0), 16-bit or 32-bit form.
func mpHeader(b []byte, n int, fixBase byte, fixMax int, c8, c16, c32 byte) []byte {
	switch {
	case n < fixMax:
		return append(b, fixBase|byte(n))
	case c8 != 0 && n <= math.MaxUint8:
		return append(b, c8, byte(n))
	case n <= math.MaxUint16:
		return append(b, c16, byte(n>>8), byte(n))
	}
	return append(b, c32, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func mpStr(b []byte, s string) []byte {
	return append(mpHeader(b, len(s), 0xa0, 32, 0xd9, 0xda, 0xdb), s...)
}

func mpArrayLen(b []byte, n int) []byte { return mpHeader(b, n, 0x90, 16, 0, 0xdc, 0xdd) }

func mpMapLen(b []byte, n int) []byte { return mpHeader(b, n, 0x80, 16, 0, 0xde, 0xdf) }

// mpTime appends t as a string, as the reflective path writes it.
func mpTime(b []byte, t Time) []byte {
	var tmp [48]byte
	n := len(appendTime(tmp[:0], time.Time(t)))
	return append(mpHeader(b, n, 0xa0, 32, 0xd9, 0xda, 0xdb), tmp[:n]...)
}
