package wire

import (
	"encoding/base64"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
)

// ToV1Status converts a result read from a procstar agent (Rust or ours)
// into a v1 status. Phase is Error for state "error", Running for
// "running", and Succeeded or Failed (exit code 0 or not) for
// "terminated". Values are copied as the agent wrote them, quirks
// included: a Rust agent's off-by-one signal names and "???" stay. fds
// lengths are exact for detached and data results, and the byte length of
// the (possibly lossy) text for text results.
func (r ProcRes) ToV1Status() v1.ProcStatus {
	st := v1.ProcStatus{Pid: r.Pid}
	if len(r.Errors) > 0 {
		st.Errors = append([]string(nil), r.Errors...)
	}
	switch r.State {
	case StateError:
		st.Phase = v1.PhaseError
	case StateRunning:
		st.Phase = v1.PhaseRunning
	case StateTerminated:
		st.Phase = v1.PhaseFailed
		if r.Status != nil && r.Status.ExitCode != nil && *r.Status.ExitCode == 0 {
			st.Phase = v1.PhaseSucceeded
		}
	default:
		st.Phase = v1.PhaseUnknown
	}
	start := r.Times.Start.UTC()
	st.Times = &v1.ProcTimes{Start: &start, Elapsed: float64(r.Times.Elapsed)}
	if r.Times.Stop != nil {
		stop := r.Times.Stop.UTC()
		st.Times.Stop = &stop
	}
	if s := r.Status; s != nil {
		ws := s.Status
		st.WaitStatus = &ws
		if s.ExitCode != nil {
			v := *s.ExitCode
			st.ExitCode = &v
		}
		switch {
		case s.Signal != nil:
			st.Signal = *s.Signal
		case s.Signum != nil:
			st.Signal = signals.Name(*s.Signum)
		}
		st.CoreDump = s.CoreDump
	}
	if u := r.Rusage; u != nil {
		st.Rusage = &v1.Rusage{Utime: float64(u.Utime), Stime: float64(u.Stime), Maxrss: u.Maxrss, Minflt: u.Minflt,
			Majflt: u.Majflt, Nswap: u.Nswap, Inblock: u.Inblock, Oublock: u.Oublock, Nvcsw: u.Nvcsw, Nivcsw: u.Nivcsw}
	}
	if p := r.ProcStat; p != nil {
		st.ProcStat = p.toV1()
	}
	if m := r.ProcStatm; m != nil {
		st.ProcStatm = &v1.ProcStatm{Size: m.Size, Resident: m.Resident, Shared: m.Shared, Text: m.Text, Data: m.Data}
	}
	if c := r.CgroupAccounting; c != nil {
		s := c.CPUStat
		st.CgroupAccounting = &v1.CgroupAccounting{CPUStat: &v1.CgroupCPUStat{UsageUsec: s.UsageUsec, UserUsec: s.UserUsec,
			SystemUsec: s.SystemUsec, NrPeriods: copyU64(s.NrPeriods), NrThrottled: copyU64(s.NrThrottled),
			ThrottledUsec: copyU64(s.ThrottledUsec), NrBursts: copyU64(s.NrBursts), BurstUsec: copyU64(s.BurstUsec)}}
		if p := c.Pids; p != nil {
			st.CgroupAccounting.Pids = &v1.CgroupPids{Current: p.Current, Peak: p.Peak}
		}
		if m := c.Memory; m != nil {
			st.CgroupAccounting.Memory = &v1.CgroupMemory{Current: m.Current, Peak: m.Peak, SwapCurrent: m.SwapCurrent, SwapPeak: m.SwapPeak}
		}
	}
	for name, f := range r.Fds {
		if f == nil || f.Type == FdResError || f.Type == FdResFile {
			continue
		}
		fs := v1.FdStatus{Encoding: v1.Encoding(f.Encoding)}
		switch f.Type {
		case FdResDetached:
			fs.Length = f.Length
		case FdResData:
			fs.Length = int64(base64.StdEncoding.DecodedLen(len(f.Data)))
			if b, err := base64.StdEncoding.DecodeString(f.Data); err == nil {
				fs.Length = int64(len(b))
			}
		case FdResText:
			fs.Length = int64(len(f.Text))
			if f.Encoding == string(v1.EncodingBase2048) {
				if b, err := DecodeBase2048(f.Text); err == nil {
					fs.Length = int64(len(b))
				}
			}
		default:
			continue
		}
		if st.Fds == nil {
			st.Fds = map[string]v1.FdStatus{}
		}
		st.Fds[name] = fs
	}
	return st
}

func copyU64(p *uint64) *uint64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func (p *ProcStat) toV1() *v1.ProcStat {
	out := &v1.ProcStat{
		Pid: p.Pid, Comm: p.Comm, State: p.State, Ppid: p.Ppid, Pgrp: p.Pgrp, Session: p.Session,
		TtyNr: p.TtyNr, Flags: p.Flags, Minflt: p.Minflt, Cminflt: p.Cminflt, Majflt: p.Majflt, Cmajflt: p.Cmajflt,
		Utime: float64(p.Utime), Stime: float64(p.Stime), Cutime: float64(p.Cutime), Cstime: float64(p.Cstime),
		Priority: p.Priority, Nice: p.Nice, NumThreads: p.NumThreads, Starttime: time.Time(p.Starttime).UTC(),
		Vsize: p.Vsize, Rss: p.Rss, Rsslim: p.Rsslim,
		Signal: nonNil(p.Signal), Blocked: nonNil(p.Blocked), Sigignore: nonNil(p.Sigignore), Sigcatch: nonNil(p.Sigcatch),
		Wchan: p.Wchan, Processor: p.Processor, RtPriority: p.RtPriority, Policy: p.Policy,
		DelayacctBlkioTicks: float64(p.DelayacctBlkioTicks), GuestTime: float64(p.GuestTime),
		CguestTime: float64(p.CguestTime), ExitCode: p.ExitCode,
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
