package systemd

import (
	"fmt"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	godbus "github.com/godbus/dbus/v5"

	v1 "procstar.dev/procstar/api/v1"
)

// sliceOrder is the order slice properties are sent in.
var sliceOrder = []string{
	"MemoryAccounting", "MemoryMin", "MemoryLow", "MemoryHigh", "MemoryMax", "MemorySwapMax",
	"TasksAccounting", "TasksMax",
	"CPUAccounting", "CPUQuotaPerSecUSec", "CPUWeight",
}

// Properties converts spec.systemdProperties and spec.resources into unit
// properties, typed as systemd wants them: booleans 'b', sizes, counts and
// durations 't', OOMPolicy 's'.
//
// Slice: MemoryAccounting, MemoryMin/Low/High/Max/SwapMax, TasksAccounting
// and TasksMax from systemdProperties.slice; MemoryMax, MemoryHigh,
// MemorySwapMax (bytes), TasksMax, CPUQuotaPerSecUSec (millicores × 1000)
// and CPUWeight from resources, which win over systemdProperties. A
// resources limit also turns on the matching accounting (MemoryAccounting,
// TasksAccounting, CPUAccounting). Scope: OOMPolicy, RuntimeMaxUSec,
// RuntimeRandomizedExtraUSec. A nil spec gives no properties. Errors wrap
// ErrInvalid.
func Properties(spec *v1.ProcSpec) (slice, scope []sddbus.Property, err error) {
	if spec == nil {
		return nil, nil, nil
	}
	set := map[string]any{}
	if sp := spec.SystemdProperties; sp != nil {
		s := sp.Slice
		for _, b := range []struct {
			name string
			v    *bool
		}{{"MemoryAccounting", s.MemoryAccounting}, {"TasksAccounting", s.TasksAccounting}} {
			if b.v != nil {
				set[b.name] = *b.v
			}
		}
		for _, t := range []struct {
			name string
			v    *uint64
		}{
			{"MemoryMin", s.MemoryMin}, {"MemoryLow", s.MemoryLow}, {"MemoryHigh", s.MemoryHigh},
			{"MemoryMax", s.MemoryMax}, {"MemorySwapMax", s.MemorySwapMax}, {"TasksMax", s.TasksMax},
		} {
			if t.v != nil {
				set[t.name] = *t.v
			}
		}
	}
	if r := spec.Resources; r != nil {
		for _, q := range []struct {
			name, field string
			v           *v1.Quantity
		}{
			{"MemoryMax", "memoryMax", r.MemoryMax},
			{"MemoryHigh", "memoryHigh", r.MemoryHigh},
			{"MemorySwapMax", "memorySwapMax", r.MemorySwapMax},
		} {
			if q.v == nil {
				continue
			}
			n, err := q.v.Bytes()
			if err != nil {
				return nil, nil, fmt.Errorf("%w: resources.%s: %w", ErrInvalid, q.field, err)
			}
			set[q.name] = uint64(n)
			set["MemoryAccounting"] = true
		}
		if r.TasksMax != nil {
			if *r.TasksMax < 1 {
				return nil, nil, fmt.Errorf("%w: resources.tasksMax: must be 1 or more, not %d", ErrInvalid, *r.TasksMax)
			}
			set["TasksMax"] = uint64(*r.TasksMax)
			set["TasksAccounting"] = true
		}
		if r.CPUMax != nil {
			mc, err := r.CPUMax.Millicores()
			if err != nil {
				return nil, nil, fmt.Errorf("%w: resources.cpuMax: %w", ErrInvalid, err)
			}
			if mc > int64(^uint64(0)/1000>>1) {
				return nil, nil, fmt.Errorf("%w: resources.cpuMax: %d millicores is too large", ErrInvalid, mc)
			}
			set["CPUQuotaPerSecUSec"] = uint64(mc) * 1000
			set["CPUAccounting"] = true
		}
		if w := r.CPUWeight; w != nil {
			if *w < 1 || *w > 10000 {
				return nil, nil, fmt.Errorf("%w: resources.cpuWeight: must be between 1 and 10000, not %d", ErrInvalid, *w)
			}
			set["CPUWeight"] = uint64(*w)
			set["CPUAccounting"] = true
		}
	}
	for _, name := range sliceOrder {
		if v, ok := set[name]; ok {
			slice = append(slice, sddbus.Property{Name: name, Value: godbus.MakeVariant(v)})
		}
	}
	if sp := spec.SystemdProperties; sp != nil {
		s := sp.Scope
		if s.OOMPolicy != nil {
			switch *s.OOMPolicy {
			case "continue", "stop", "kill":
			default:
				return nil, nil, fmt.Errorf("%w: systemdProperties.scope.oomPolicy must be continue, stop or kill, not %q", ErrInvalid, *s.OOMPolicy)
			}
			scope = append(scope, sddbus.Property{Name: "OOMPolicy", Value: godbus.MakeVariant(*s.OOMPolicy)})
		}
		if s.RuntimeMaxUSec != nil {
			scope = append(scope, sddbus.Property{Name: "RuntimeMaxUSec", Value: godbus.MakeVariant(*s.RuntimeMaxUSec)})
		}
		if s.RuntimeRandomizedExtraUSec != nil {
			scope = append(scope, sddbus.Property{Name: "RuntimeRandomizedExtraUSec", Value: godbus.MakeVariant(*s.RuntimeRandomizedExtraUSec)})
		}
	}
	return slice, scope, nil
}
