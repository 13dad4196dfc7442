package v1

import (
	"maps"
	"slices"
)

// Hand-written deep copies. TestDeepCopyCoversEveryField fills every field
// by reflection and fails if a new field is not copied deeply.

// clonePtr returns a copy of *p in new memory, or nil. T must hold no
// pointers, slices or maps.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// DeepCopyInto copies m into out.
func (m *ObjectMeta) DeepCopyInto(out *ObjectMeta) {
	*out = *m
	out.CreationTimestamp = clonePtr(m.CreationTimestamp)
	out.DeletionTimestamp = clonePtr(m.DeletionTimestamp)
	out.Labels = maps.Clone(m.Labels)
	out.Annotations = maps.Clone(m.Annotations)
}

// DeepCopy returns a deep copy of m.
func (m *ObjectMeta) DeepCopy() *ObjectMeta {
	if m == nil {
		return nil
	}
	out := new(ObjectMeta)
	m.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies p into out.
func (p *Proc) DeepCopyInto(out *Proc) {
	*out = *p
	p.Metadata.DeepCopyInto(&out.Metadata)
	p.Spec.DeepCopyInto(&out.Spec)
	p.Status.DeepCopyInto(&out.Status)
}

// DeepCopy returns a deep copy of p.
func (p *Proc) DeepCopy() *Proc {
	if p == nil {
		return nil
	}
	out := new(Proc)
	p.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies l into out.
func (l *ProcList) DeepCopyInto(out *ProcList) {
	*out = *l
	if l.Items != nil {
		out.Items = make([]Proc, len(l.Items))
		for i := range l.Items {
			l.Items[i].DeepCopyInto(&out.Items[i])
		}
	}
}

// DeepCopy returns a deep copy of l.
func (l *ProcList) DeepCopy() *ProcList {
	if l == nil {
		return nil
	}
	out := new(ProcList)
	l.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies s into out.
func (s *ProcSpec) DeepCopyInto(out *ProcSpec) {
	*out = *s
	out.Argv = slices.Clone(s.Argv)
	out.Umask = clonePtr(s.Umask)
	out.PdeathSignal = clonePtr(s.PdeathSignal)
	s.Env.DeepCopyInto(&out.Env)
	if s.Fds != nil {
		out.Fds = make([]FdSpec, len(s.Fds))
		for i := range s.Fds {
			s.Fds[i].DeepCopyInto(&out.Fds[i])
		}
	}
	out.CloseOtherFds = clonePtr(s.CloseOtherFds)
	out.SystemdProperties = s.SystemdProperties.DeepCopy()
	out.Resources = s.Resources.DeepCopy()
	out.KillTree = clonePtr(s.KillTree)
	out.Timeout = s.Timeout.DeepCopy()
	out.Placement = s.Placement.DeepCopy()
}

// DeepCopy returns a deep copy of s.
func (s *ProcSpec) DeepCopy() *ProcSpec {
	if s == nil {
		return nil
	}
	out := new(ProcSpec)
	s.DeepCopyInto(out)
	return out
}

// DeepCopyInto copies e into out.
func (e *EnvSpec) DeepCopyInto(out *EnvSpec) {
	*out = *e
	out.Inherit = e.Inherit.DeepCopy()
	if e.Vars != nil {
		out.Vars = make(map[string]*string, len(e.Vars))
		for k, v := range e.Vars {
			out.Vars[k] = clonePtr(v)
		}
	}
}

// DeepCopy returns a deep copy of e.
func (e *EnvInherit) DeepCopy() *EnvInherit {
	if e == nil {
		return nil
	}
	return &EnvInherit{All: e.All, Names: slices.Clone(e.Names)}
}

// DeepCopyInto copies f into out.
func (f *FdSpec) DeepCopyInto(out *FdSpec) {
	*out = *f
	out.Inherit = clonePtr(f.Inherit)
	out.Close = clonePtr(f.Close)
	out.Null = clonePtr(f.Null)
	if f.File != nil {
		fl := *f.File
		fl.Mode = clonePtr(f.File.Mode)
		out.File = &fl
	}
	out.Dup = clonePtr(f.Dup)
	if f.Capture != nil {
		c := *f.Capture
		c.Attached = clonePtr(f.Capture.Attached)
		c.Limit = clonePtr(f.Capture.Limit)
		out.Capture = &c
	}
	out.PipeWrite = clonePtr(f.PipeWrite)
	out.PipeRead = clonePtr(f.PipeRead)
}

// DeepCopy returns a deep copy of f.
func (f *FdSpec) DeepCopy() *FdSpec {
	if f == nil {
		return nil
	}
	out := new(FdSpec)
	f.DeepCopyInto(out)
	return out
}

// DeepCopy returns a deep copy of p.
func (p *SystemdProperties) DeepCopy() *SystemdProperties {
	if p == nil {
		return nil
	}
	return &SystemdProperties{
		Scope: SystemdScope{
			OOMPolicy:                  clonePtr(p.Scope.OOMPolicy),
			RuntimeMaxUSec:             clonePtr(p.Scope.RuntimeMaxUSec),
			RuntimeRandomizedExtraUSec: clonePtr(p.Scope.RuntimeRandomizedExtraUSec),
		},
		Slice: SystemdSlice{
			MemoryAccounting: clonePtr(p.Slice.MemoryAccounting),
			MemoryMin:        clonePtr(p.Slice.MemoryMin),
			MemoryLow:        clonePtr(p.Slice.MemoryLow),
			MemoryHigh:       clonePtr(p.Slice.MemoryHigh),
			MemoryMax:        clonePtr(p.Slice.MemoryMax),
			MemorySwapMax:    clonePtr(p.Slice.MemorySwapMax),
			TasksAccounting:  clonePtr(p.Slice.TasksAccounting),
			TasksMax:         clonePtr(p.Slice.TasksMax),
		},
	}
}

// DeepCopy returns a deep copy of r.
func (r *Resources) DeepCopy() *Resources {
	if r == nil {
		return nil
	}
	return &Resources{
		MemoryMax:     clonePtr(r.MemoryMax),
		MemoryHigh:    clonePtr(r.MemoryHigh),
		MemorySwapMax: clonePtr(r.MemorySwapMax),
		TasksMax:      clonePtr(r.TasksMax),
		CPUMax:        clonePtr(r.CPUMax),
		CPUWeight:     clonePtr(r.CPUWeight),
	}
}

// DeepCopy returns a deep copy of t.
func (t *Timeout) DeepCopy() *Timeout {
	if t == nil {
		return nil
	}
	out := *t
	out.GracePeriodSeconds = clonePtr(t.GracePeriodSeconds)
	return &out
}

// DeepCopy returns a deep copy of p.
func (p *Placement) DeepCopy() *Placement {
	if p == nil {
		return nil
	}
	out := *p
	out.Selector = maps.Clone(p.Selector)
	return &out
}

// DeepCopyInto copies s into out.
func (s *ProcStatus) DeepCopyInto(out *ProcStatus) {
	*out = *s
	out.Conditions = slices.Clone(s.Conditions)
	out.Errors = slices.Clone(s.Errors)
	out.ExitCode = clonePtr(s.ExitCode)
	out.WaitStatus = clonePtr(s.WaitStatus)
	out.Times = s.Times.DeepCopy()
	out.Rusage = clonePtr(s.Rusage)
	out.ProcStat = s.ProcStat.DeepCopy()
	out.ProcStatm = clonePtr(s.ProcStatm)
	out.CgroupAccounting = s.CgroupAccounting.DeepCopy()
	out.Resources = clonePtr(s.Resources)
	out.PerfCounters = s.PerfCounters.DeepCopy()
	out.Fds = maps.Clone(s.Fds)
	out.Env = maps.Clone(s.Env)
	out.Agent = clonePtr(s.Agent)
}

// DeepCopy returns a deep copy of s.
func (s *ProcStatus) DeepCopy() *ProcStatus {
	if s == nil {
		return nil
	}
	out := new(ProcStatus)
	s.DeepCopyInto(out)
	return out
}

// DeepCopy returns a deep copy of t.
func (t *ProcTimes) DeepCopy() *ProcTimes {
	if t == nil {
		return nil
	}
	return &ProcTimes{Start: clonePtr(t.Start), Stop: clonePtr(t.Stop), Elapsed: t.Elapsed}
}

// DeepCopy returns a deep copy of s.
func (s *ProcStat) DeepCopy() *ProcStat {
	if s == nil {
		return nil
	}
	out := *s
	out.Tpgid = clonePtr(s.Tpgid)
	out.Signal = slices.Clone(s.Signal)
	out.Blocked = slices.Clone(s.Blocked)
	out.Sigignore = slices.Clone(s.Sigignore)
	out.Sigcatch = slices.Clone(s.Sigcatch)
	out.ExitSignal = clonePtr(s.ExitSignal)
	return &out
}

// DeepCopy returns a deep copy of c.
func (c *PerfCounters) DeepCopy() *PerfCounters {
	if c == nil {
		return nil
	}
	return &PerfCounters{
		Instructions: clonePtr(c.Instructions),
		Cycles:       clonePtr(c.Cycles),
		TaskClockNs:  clonePtr(c.TaskClockNs),
		Unsupported:  maps.Clone(c.Unsupported),
	}
}

// DeepCopy returns a deep copy of a.
func (a *CgroupAccounting) DeepCopy() *CgroupAccounting {
	if a == nil {
		return nil
	}
	out := &CgroupAccounting{
		Pids:   clonePtr(a.Pids),
		Memory: clonePtr(a.Memory),
	}
	if c := a.CPUStat; c != nil {
		cs := *c
		cs.NrPeriods = clonePtr(c.NrPeriods)
		cs.NrThrottled = clonePtr(c.NrThrottled)
		cs.ThrottledUsec = clonePtr(c.ThrottledUsec)
		cs.NrBursts = clonePtr(c.NrBursts)
		cs.BurstUsec = clonePtr(c.BurstUsec)
		out.CPUStat = &cs
	}
	return out
}
