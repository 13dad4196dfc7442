package v1

import (
	"math"
	"reflect"
	"testing"
	"time"
)

func TestTimeoutDurations(t *testing.T) {
	for _, tt := range []struct {
		s    float64
		want time.Duration
	}{
		{1.5, 1500 * time.Millisecond},
		{0, 0},
		{-1, 0},
		{math.NaN(), 0},
		{math.Inf(1), math.MaxInt64},
		{1e300, math.MaxInt64},
		{9.3e9, math.MaxInt64},
		{1e-9, time.Nanosecond},
	} {
		to := Timeout{Seconds: tt.s, GracePeriodSeconds: &tt.s}
		if got := to.Duration(); got != tt.want {
			t.Errorf("Duration(%v) = %v, want %v", tt.s, got, tt.want)
		}
		if got := to.GracePeriod(); got != tt.want {
			t.Errorf("GracePeriod(%v) = %v, want %v", tt.s, got, tt.want)
		}
	}
	if got := (&Timeout{Seconds: 1}).GracePeriod(); got != 30*time.Second {
		t.Errorf("default GracePeriod = %v", got)
	}
}

func TestFdVariant(t *testing.T) {
	for _, tt := range []struct {
		f    FdSpec
		want string
	}{
		{FdSpec{Null: &NullFd{}}, "null"},
		{FdSpec{PipeRead: &PipeReadFd{}}, "pipeRead"},
		{FdSpec{}, ""},
		{FdSpec{Close: &CloseFd{}, Inherit: &InheritFd{}}, ""},
	} {
		if got := tt.f.Variant(); got != tt.want {
			t.Errorf("Variant() = %q, want %q", got, tt.want)
		}
	}
}

func TestProcListValidate(t *testing.T) {
	l := ProcList{TypeMeta: TypeMeta{Kind: "Proc"}, Items: []Proc{*validProc(), *validProc()}}
	want := `kind: must be "ProcList"; items[1].metadata.name: duplicate name "p" (also items[0])`
	if err := l.Validate(); err == nil || err.Error() != want {
		t.Fatalf("Validate() = %v, want %s", err, want)
	}
	l.Kind = ""
	l.Items[1].Metadata.Name = "q"
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSetDefaults(t *testing.T) {
	p := Proc{Spec: ProcSpec{
		Fds: []FdSpec{
			{Fd: "0", Null: &NullFd{}},
			{Fd: "1", Capture: &CaptureFd{}},
			{Fd: "2", File: &FileFd{Path: "/x"}},
			{Fd: "3", Capture: &CaptureFd{Mode: CaptureMemory, Encoding: EncodingUTF8, Attached: ptrTo(false)}},
			{Fd: "4", File: &FileFd{Path: "/y", Flags: OpenAppend, Mode: ptrTo(uint32(0o600))}},
		},
		Timeout:   &Timeout{Seconds: 1},
		Placement: &Placement{},
		Env:       EnvSpec{Inherit: &EnvInherit{Names: []string{}}},
	}}
	p.SetDefaults()
	s := p.Spec
	switch {
	case p.APIVersion != APIVersion || p.Kind != KindProc:
		t.Errorf("TypeMeta = %+v", p.TypeMeta)
	case s.Fds[0].Null.Flags != OpenDefault:
		t.Errorf("null flags = %q", s.Fds[0].Null.Flags)
	case *s.Fds[1].Capture != CaptureFd{Mode: CaptureTempfile, Encoding: EncodingBase64, Attached: s.Fds[1].Capture.Attached} || !*s.Fds[1].Capture.Attached:
		t.Errorf("capture = %+v", s.Fds[1].Capture)
	case s.Fds[2].File.Flags != OpenDefault || *s.Fds[2].File.Mode != 0o666:
		t.Errorf("file = %+v", s.Fds[2].File)
	case s.Fds[3].Capture.Mode != CaptureMemory || s.Fds[3].Capture.Encoding != EncodingUTF8 || *s.Fds[3].Capture.Attached:
		t.Errorf("set capture fields changed: %+v", s.Fds[3].Capture)
	case s.Fds[4].File.Flags != OpenAppend || *s.Fds[4].File.Mode != 0o600:
		t.Errorf("set file fields changed: %+v", s.Fds[4].File)
	case s.CloseOtherFds == nil || !*s.CloseOtherFds:
		t.Errorf("closeOtherFds = %v", s.CloseOtherFds)
	case s.Timeout.Signal != "SIGTERM" || *s.Timeout.GracePeriodSeconds != 30:
		t.Errorf("timeout = %+v", s.Timeout)
	case s.Placement.Group != "default":
		t.Errorf("placement = %+v", s.Placement)
	case s.Env.Inherit.Names == nil || len(s.Env.Inherit.Names) != 0:
		t.Errorf("explicit empty inherit list changed: %+v", s.Env.Inherit)
	}
	var q ProcSpec
	q.SetDefaults()
	if q.Env.Inherit == nil || !q.Env.Inherit.All || q.Env.Inherit.Names != nil {
		t.Errorf("env.inherit default = %+v", q.Env.Inherit)
	}
	before := p.DeepCopy()
	p.SetDefaults()
	if !reflect.DeepEqual(before, &p) {
		t.Error("SetDefaults is not idempotent")
	}
	var l ProcList
	l.Items = []Proc{{}}
	l.SetDefaults()
	if l.Kind != KindProcList || l.Items[0].Kind != KindProc {
		t.Errorf("ProcList.SetDefaults: %+v", l)
	}
}

func TestSameSpec(t *testing.T) {
	a := ProcSpec{Argv: []string{"/bin/true"}}
	b := ProcSpec{Argv: []string{"/bin/true"}, Fds: []FdSpec{}, Env: EnvSpec{Vars: map[string]*string{}}}
	if !SameSpec(&a, &b) {
		t.Error("empty and nil lists differ")
	}
	// Defaults are filled in on copies: an explicit default is the same.
	b.RestartPolicy = RestartNever
	if !SameSpec(&a, &b) || b.Env.Inherit != nil {
		t.Error("an explicit default differs, or b was changed")
	}
	b.Argv = append(b.Argv, "x")
	if SameSpec(&a, &b) {
		t.Error("different argv compare equal")
	}
}
