package cgroup

import (
	"fmt"
	"slices"
	"strconv"
)

// Controller names this package enables and writes limits for.
const (
	ControllerCPU    = "cpu"
	ControllerMemory = "memory"
	ControllerPids   = "pids"
)

// managedControllers are the controllers OpenRoot tries to enable, sorted.
var managedControllers = []string{ControllerCPU, ControllerMemory, ControllerPids}

// defaultCPUPeriodUsec is the kernel's default cpu.max period.
const defaultCPUPeriodUsec = 100000

// CPUMax is cpu.max, "QUOTA PERIOD": the group may use QuotaUsec of CPU time
// in each PeriodUsec. A QuotaUsec <= 0 means no quota ("max"); a
// PeriodUsec of 0 means the kernel default, 100000.
type CPUMax struct{ QuotaUsec, PeriodUsec int64 }

// Limits are the values written into a new group. A nil field is not
// written (the kernel default applies: no limit). For the byte and count
// limits a negative value is written as "max".
type Limits struct {
	// MemoryMax is memory.max in bytes.
	MemoryMax *int64
	// MemoryHigh is memory.high in bytes.
	MemoryHigh *int64
	// MemorySwapMax is memory.swap.max in bytes.
	MemorySwapMax *int64
	// MemoryMin and MemoryLow are memory.min and memory.low in bytes:
	// memory protected from reclaim, hard and best effort.
	MemoryMin, MemoryLow *int64
	// OOMGroup is memory.oom.group: when the OOM killer picks a process
	// of the group, it kills the whole group.
	OOMGroup *bool
	// PidsMax is pids.max.
	PidsMax *int64
	// CPUMax is cpu.max.
	CPUMax *CPUMax
	// CPUWeight is cpu.weight, 1..10000.
	CPUWeight *int64
}

// IsZero reports whether no limit is set.
func (l Limits) IsZero() bool {
	return l.MemoryMax == nil && l.MemoryHigh == nil && l.MemorySwapMax == nil &&
		l.MemoryMin == nil && l.MemoryLow == nil && l.OOMGroup == nil && l.PidsMax == nil && l.CPUMax == nil && l.CPUWeight == nil
}

// Controllers returns the sorted, unique controllers the set limits need.
func (l Limits) Controllers() []string {
	var cs []string
	for _, w := range l.writes() {
		cs = append(cs, w.controller)
	}
	slices.Sort(cs)
	return slices.Compact(cs)
}

// limitWrite is one limit as a write of a control file.
type limitWrite struct {
	// name is the Limits field, for messages.
	name       string
	controller string
	file       string
	value      string
}

// writes returns the control-file writes of the set limits, in a fixed
// order (swap before memory.max, high after max).
func (l Limits) writes() []limitWrite {
	var ws []limitWrite
	add := func(name, controller, file string, v *int64) {
		if v != nil {
			ws = append(ws, limitWrite{name, controller, file, maxOrInt(*v)})
		}
	}
	add("MemorySwapMax", ControllerMemory, "memory.swap.max", l.MemorySwapMax)
	add("MemoryMax", ControllerMemory, "memory.max", l.MemoryMax)
	add("MemoryHigh", ControllerMemory, "memory.high", l.MemoryHigh)
	add("MemoryMin", ControllerMemory, "memory.min", l.MemoryMin)
	add("MemoryLow", ControllerMemory, "memory.low", l.MemoryLow)
	if l.OOMGroup != nil {
		v := "0"
		if *l.OOMGroup {
			v = "1"
		}
		ws = append(ws, limitWrite{"OOMGroup", ControllerMemory, "memory.oom.group", v})
	}
	add("PidsMax", ControllerPids, "pids.max", l.PidsMax)
	if l.CPUMax != nil {
		quota := "max"
		if l.CPUMax.QuotaUsec > 0 {
			quota = strconv.FormatInt(l.CPUMax.QuotaUsec, 10)
		}
		period := l.CPUMax.PeriodUsec
		if period == 0 {
			period = defaultCPUPeriodUsec
		}
		ws = append(ws, limitWrite{"CPUMax", ControllerCPU, "cpu.max", quota + " " + strconv.FormatInt(period, 10)})
	}
	if l.CPUWeight != nil {
		ws = append(ws, limitWrite{"CPUWeight", ControllerCPU, "cpu.weight", strconv.FormatInt(*l.CPUWeight, 10)})
	}
	return ws
}

// validate checks the ranges the kernel would reject, so the error says
// which limit is wrong.
func (l Limits) validate() error {
	if l.CPUWeight != nil && (*l.CPUWeight < 1 || *l.CPUWeight > 10000) {
		return fmt.Errorf("CPUWeight %d not in 1..10000: %w", *l.CPUWeight, ErrInvalidLimit)
	}
	if m := l.CPUMax; m != nil {
		// The kernel accepts periods of 1ms..1s and quotas of at least 1ms.
		if m.PeriodUsec != 0 && (m.PeriodUsec < 1000 || m.PeriodUsec > 1000000) {
			return fmt.Errorf("CPUMax period %dus not in 1000..1000000: %w", m.PeriodUsec, ErrInvalidLimit)
		}
		if m.QuotaUsec > 0 && m.QuotaUsec < 1000 {
			return fmt.Errorf("CPUMax quota %dus below 1000: %w", m.QuotaUsec, ErrInvalidLimit)
		}
	}
	return nil
}

func maxOrInt(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}
