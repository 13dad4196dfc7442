package v1

import (
	"reflect"
	"testing"
	"time"
)

var timeType = reflect.TypeFor[time.Time]()

// fill sets every field reachable from v to a non-zero value derived from
// *n: pointers are allocated, slices and maps get two elements.
func fill(t *testing.T, v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), n)
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 1, 0, 0, *n, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				t.Fatalf("%s has unexported field %s; teach the test about it", v.Type(), v.Type().Field(i).Name)
			}
			fill(t, v.Field(i), n)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(t, v.Index(i), n)
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			k := reflect.New(v.Type().Key()).Elem()
			fill(t, k, n)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(t, e, n)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		v.SetString("s" + string(rune('a'+*n%26)) + string(rune('0'+*n/26%10)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.5)
	default:
		t.Fatalf("fill: unhandled kind %s (%s)", v.Kind(), v.Type())
	}
}

// mutate changes every leaf reachable through a pointer, slice or map of
// v in place (it never replaces a pointer, slice or map), so anything v
// shares with another value shows up there. Leaves held by value at the
// top level change too, which is harmless.
func mutate(t *testing.T, v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			mutate(t, v.Elem())
		}
	case reflect.Struct:
		if v.Type() == timeType {
			v.Set(reflect.ValueOf(v.Interface().(time.Time).Add(time.Hour)))
			return
		}
		for i := range v.NumField() {
			mutate(t, v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			mutate(t, v.Index(i))
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			mutate(t, e)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		v.SetString(v.String() + "!")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1000)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(v.Uint() + 1000)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(v.Float() + 1000)
	default:
		t.Fatalf("mutate: unhandled kind %s", v.Kind())
	}
}

func TestDeepCopyCoversEveryField(t *testing.T) {
	tests := []struct {
		name string
		new  func() any      // a pointer to a fresh zero value
		copy func(x any) any // deep copy of x (a pointer)
	}{
		{"Proc", func() any { return new(Proc) }, func(x any) any { return x.(*Proc).DeepCopy() }},
		{"ProcList", func() any { return new(ProcList) }, func(x any) any { return x.(*ProcList).DeepCopy() }},
		{"ProcSpec", func() any { return new(ProcSpec) }, func(x any) any { return x.(*ProcSpec).DeepCopy() }},
		{"ProcStatus", func() any { return new(ProcStatus) }, func(x any) any { return x.(*ProcStatus).DeepCopy() }},
		{"ObjectMeta", func() any { return new(ObjectMeta) }, func(x any) any { return x.(*ObjectMeta).DeepCopy() }},
		{"FdSpec", func() any { return new(FdSpec) }, func(x any) any { return x.(*FdSpec).DeepCopy() }},
		{"Resources", func() any { return new(Resources) }, func(x any) any { return x.(*Resources).DeepCopy() }},
		{"SystemdProperties", func() any { return new(SystemdProperties) }, func(x any) any { return x.(*SystemdProperties).DeepCopy() }},
		{"CgroupAccounting", func() any { return new(CgroupAccounting) }, func(x any) any { return x.(*CgroupAccounting).DeepCopy() }},
		{"ProcStat", func() any { return new(ProcStat) }, func(x any) any { return x.(*ProcStat).DeepCopy() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig, pristine := tt.new(), tt.new()
			n := 0
			fill(t, reflect.ValueOf(orig).Elem(), &n)
			n = 0
			fill(t, reflect.ValueOf(pristine).Elem(), &n)
			if reflect.ValueOf(orig).Elem().IsZero() {
				t.Fatal("fill left the value zero")
			}
			cp := tt.copy(orig)
			if !reflect.DeepEqual(cp, orig) {
				t.Fatalf("copy differs from original:\n%+v\n%+v", cp, orig)
			}
			mutate(t, reflect.ValueOf(cp))
			if reflect.DeepEqual(cp, orig) {
				t.Fatal("mutate changed nothing")
			}
			if !reflect.DeepEqual(orig, pristine) {
				t.Fatalf("mutating the copy changed the original: a field is shared\norig:     %+v\npristine: %+v", orig, pristine)
			}
			// A nil receiver copies to nil.
			nilPtr := reflect.Zero(reflect.TypeOf(orig)).Interface()
			if got := tt.copy(nilPtr); !reflect.ValueOf(got).IsNil() {
				t.Errorf("DeepCopy(nil) = %v", got)
			}
		})
	}
}

// TestMutateDetectsSharing checks the test's own machinery: a shallow copy
// must be caught.
func TestMutateDetectsSharing(t *testing.T) {
	var orig, pristine ProcSpec
	n := 0
	fill(t, reflect.ValueOf(&orig).Elem(), &n)
	n = 0
	fill(t, reflect.ValueOf(&pristine).Elem(), &n)
	shallow := orig
	shallow.Argv = append([]string(nil), orig.Argv...) // copy one slice, share the rest
	mutate(t, reflect.ValueOf(&shallow))
	if reflect.DeepEqual(orig, pristine) {
		t.Fatal("a shallow copy went unnoticed")
	}
}
