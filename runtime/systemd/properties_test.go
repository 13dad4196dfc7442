package systemd_test

import (
	"errors"
	"reflect"
	"testing"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/runtime/systemd"
)

// prop is a property as name, D-Bus signature and value.
type prop struct {
	Name string
	Sig  string
	V    any
}

func flatten(ps []sddbus.Property) []prop {
	var out []prop
	for _, p := range ps {
		out = append(out, prop{p.Name, p.Value.Signature().String(), p.Value.Value()})
	}
	return out
}

func TestProperties(t *testing.T) {
	q := func(s string) *v1.Quantity { return ptr(v1.Quantity(s)) }
	for _, tc := range []struct {
		name       string
		spec       *v1.ProcSpec
		slice      []prop
		scope      []prop
		wantErr    error
		wantErrToo error
	}{
		{name: "nil spec"},
		{name: "empty spec", spec: &v1.ProcSpec{}},
		{
			name: "systemd properties, procstar's example",
			spec: &v1.ProcSpec{SystemdProperties: &v1.SystemdProperties{
				Scope: v1.SystemdScope{OOMPolicy: ptr("kill"), RuntimeMaxUSec: ptr(uint64(60000000))},
				Slice: v1.SystemdSlice{
					MemoryAccounting: ptr(true), MemoryMax: ptr(uint64(268435456)), MemorySwapMax: ptr(uint64(0)),
					TasksAccounting: ptr(true), TasksMax: ptr(uint64(512)),
				},
			}},
			slice: []prop{
				{"MemoryAccounting", "b", true},
				{"MemoryMax", "t", uint64(268435456)},
				{"MemorySwapMax", "t", uint64(0)},
				{"TasksAccounting", "b", true},
				{"TasksMax", "t", uint64(512)},
			},
			scope: []prop{
				{"OOMPolicy", "s", "kill"},
				{"RuntimeMaxUSec", "t", uint64(60000000)},
			},
		},
		{
			name: "every systemd property",
			spec: &v1.ProcSpec{SystemdProperties: &v1.SystemdProperties{
				Scope: v1.SystemdScope{OOMPolicy: ptr("continue"), RuntimeMaxUSec: ptr(uint64(1)), RuntimeRandomizedExtraUSec: ptr(uint64(2))},
				Slice: v1.SystemdSlice{
					MemoryAccounting: ptr(false), MemoryMin: ptr(uint64(1)), MemoryLow: ptr(uint64(2)),
					MemoryHigh: ptr(uint64(3)), MemoryMax: ptr(uint64(4)), MemorySwapMax: ptr(uint64(5)),
					TasksAccounting: ptr(false), TasksMax: ptr(uint64(6)),
				},
			}},
			slice: []prop{
				{"MemoryAccounting", "b", false},
				{"MemoryMin", "t", uint64(1)},
				{"MemoryLow", "t", uint64(2)},
				{"MemoryHigh", "t", uint64(3)},
				{"MemoryMax", "t", uint64(4)},
				{"MemorySwapMax", "t", uint64(5)},
				{"TasksAccounting", "b", false},
				{"TasksMax", "t", uint64(6)},
			},
			scope: []prop{
				{"OOMPolicy", "s", "continue"},
				{"RuntimeMaxUSec", "t", uint64(1)},
				{"RuntimeRandomizedExtraUSec", "t", uint64(2)},
			},
		},
		{
			name: "resources only",
			spec: &v1.ProcSpec{Resources: &v1.Resources{
				MemoryMax: q("2Gi"), MemoryHigh: q("1G"), MemorySwapMax: q("0"),
				TasksMax: ptr(int64(512)), CPUMax: q("500m"), CPUWeight: ptr(int64(200)),
			}},
			slice: []prop{
				{"MemoryAccounting", "b", true},
				{"MemoryHigh", "t", uint64(1000000000)},
				{"MemoryMax", "t", uint64(2 << 30)},
				{"MemorySwapMax", "t", uint64(0)},
				{"TasksAccounting", "b", true},
				{"TasksMax", "t", uint64(512)},
				{"CPUAccounting", "b", true},
				{"CPUQuotaPerSecUSec", "t", uint64(500000)},
				{"CPUWeight", "t", uint64(200)},
			},
		},
		{
			name: "cpu in cores",
			spec: &v1.ProcSpec{Resources: &v1.Resources{CPUMax: q("2")}},
			slice: []prop{
				{"CPUAccounting", "b", true},
				{"CPUQuotaPerSecUSec", "t", uint64(2000000)},
			},
		},
		{
			name: "resources win, and turn accounting on",
			spec: &v1.ProcSpec{
				SystemdProperties: &v1.SystemdProperties{Slice: v1.SystemdSlice{
					MemoryAccounting: ptr(false), MemoryMax: ptr(uint64(1)), MemoryLow: ptr(uint64(7)),
					TasksAccounting: ptr(false), TasksMax: ptr(uint64(2)),
				}},
				Resources: &v1.Resources{MemoryMax: q("1Mi"), TasksMax: ptr(int64(3))},
			},
			slice: []prop{
				{"MemoryAccounting", "b", true},
				{"MemoryLow", "t", uint64(7)},
				{"MemoryMax", "t", uint64(1 << 20)},
				{"TasksAccounting", "b", true},
				{"TasksMax", "t", uint64(3)},
			},
		},
		{
			name:    "bad oomPolicy",
			spec:    &v1.ProcSpec{SystemdProperties: &v1.SystemdProperties{Scope: v1.SystemdScope{OOMPolicy: ptr("explode")}}},
			wantErr: systemd.ErrInvalid, wantErrToo: errdefs.ErrInvalidArgument,
		},
		{
			name:    "bad memory quantity",
			spec:    &v1.ProcSpec{Resources: &v1.Resources{MemoryMax: q("100m")}},
			wantErr: systemd.ErrInvalid, wantErrToo: v1.ErrBadQuantity,
		},
		{
			name:    "negative memory",
			spec:    &v1.ProcSpec{Resources: &v1.Resources{MemorySwapMax: q("-1")}},
			wantErr: systemd.ErrInvalid, wantErrToo: v1.ErrBadQuantity,
		},
		{
			name:    "zero cpu",
			spec:    &v1.ProcSpec{Resources: &v1.Resources{CPUMax: q("0")}},
			wantErr: systemd.ErrInvalid, wantErrToo: v1.ErrBadQuantity,
		},
		{
			name:    "huge cpu",
			spec:    &v1.ProcSpec{Resources: &v1.Resources{CPUMax: q("9E")}},
			wantErr: systemd.ErrInvalid,
		},
		{
			name:    "tasksMax 0",
			spec:    &v1.ProcSpec{Resources: &v1.Resources{TasksMax: ptr(int64(0))}},
			wantErr: systemd.ErrInvalid,
		},
		{
			name:    "cpuWeight out of range",
			spec:    &v1.ProcSpec{Resources: &v1.Resources{CPUWeight: ptr(int64(10001))}},
			wantErr: systemd.ErrInvalid,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			slice, scope, err := systemd.Properties(tc.spec)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || (tc.wantErrToo != nil && !errors.Is(err, tc.wantErrToo)) {
					t.Fatalf("err = %v, want %v and %v", err, tc.wantErr, tc.wantErrToo)
				}
				if slice != nil || scope != nil {
					t.Errorf("properties with an error: %v %v", slice, scope)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := flatten(slice); !reflect.DeepEqual(got, tc.slice) {
				t.Errorf("slice:\n got %v\nwant %v", got, tc.slice)
			}
			if got := flatten(scope); !reflect.DeepEqual(got, tc.scope) {
				t.Errorf("scope:\n got %v\nwant %v", got, tc.scope)
			}
		})
	}
}

func FuzzProperties(f *testing.F) {
	f.Add("2Gi", "500m", int64(10), int64(100), "kill")
	f.Add("-1", "0", int64(0), int64(0), "")
	f.Add("1e40", "9E", int64(-1), int64(10001), "stop")
	f.Fuzz(func(t *testing.T, mem, cpu string, tasks, weight int64, oom string) {
		spec := &v1.ProcSpec{
			SystemdProperties: &v1.SystemdProperties{Scope: v1.SystemdScope{OOMPolicy: &oom}},
			Resources: &v1.Resources{
				MemoryMax: ptr(v1.Quantity(mem)), CPUMax: ptr(v1.Quantity(cpu)),
				TasksMax: &tasks, CPUWeight: &weight,
			},
		}
		slice, scope, err := systemd.Properties(spec)
		if err != nil {
			if !errors.Is(err, systemd.ErrInvalid) {
				t.Fatalf("error of the wrong class: %v", err)
			}
			return
		}
		for _, p := range append(slice, scope...) {
			switch sig := p.Value.Signature().String(); sig {
			case "b", "t", "s":
			default:
				t.Errorf("%s has type %s", p.Name, sig)
			}
		}
	})
}
