package v1

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// validProc returns a proc that passes validation; tests break one thing.
func validProc() *Proc {
	return &Proc{
		Metadata: ObjectMeta{Name: "p"},
		Spec:     ProcSpec{Argv: []string{"/bin/true"}},
	}
}

func TestValidateEveryProblem(t *testing.T) {
	s := func(v string) *string { return &v }
	u32 := func(v uint32) *uint32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	f64 := func(v float64) *float64 { return &v }
	q := func(v string) *Quantity { x := Quantity(v); return &x }
	sig := func(v string) *Signal { x := Signal(v); return &x }
	fds := func(f ...FdSpec) func(p *Proc) { return func(p *Proc) { p.Spec.Fds = f } }

	tests := []struct {
		name   string
		mutate func(p *Proc)
		want   []string // exact "field: detail" messages, in order
	}{
		{"valid", func(p *Proc) {}, nil},
		{"wrong apiVersion", func(p *Proc) { p.APIVersion = "v1" }, []string{`apiVersion: must be "procstar.dev/v1"`}},
		{"wrong kind", func(p *Proc) { p.Kind = "Pod" }, []string{`kind: must be "Proc"`}},
		{"empty name", func(p *Proc) { p.Metadata.Name = "" }, []string{"metadata.name: required"}},
		{"long name", func(p *Proc) { p.Metadata.Name = strings.Repeat("x", 254) }, []string{"metadata.name: must be at most 253 bytes"}},
		{"max name", func(p *Proc) { p.Metadata.Name = strings.Repeat("x", 253) }, nil},
		{"NUL name", func(p *Proc) { p.Metadata.Name = "a\x00b" }, []string{"metadata.name: must not contain NUL"}},
		{"slash name", func(p *Proc) { p.Metadata.Name = "a/b" }, []string{`metadata.name: must not contain "/"`}},
		{"dot name", func(p *Proc) { p.Metadata.Name = "." }, []string{`metadata.name: must not be "."`}},
		{"dotdot name", func(p *Proc) { p.Metadata.Name = ".." }, []string{`metadata.name: must not be ".."`}},
		{"empty label key", func(p *Proc) { p.Metadata.Labels = map[string]string{"": "x"} }, []string{"metadata.labels: keys must not be empty"}},
		{"no argv no exe", func(p *Proc) { p.Spec.Argv = nil }, []string{"spec.argv: must not be empty when exe is not set"}},
		{"exe only", func(p *Proc) { p.Spec.Argv = nil; p.Spec.Exe = "/bin/true" }, nil},
		{"NUL everywhere", func(p *Proc) {
			p.Spec.Exe = "/bin/\x00"
			p.Spec.Argv = []string{"a", "b\x00"}
			p.Spec.Cwd = "\x00"
			p.Spec.Env.Vars = map[string]*string{"A\x00": s("v"), "B": s("x\x00y")}
		}, []string{
			"spec.exe: must not contain NUL",
			"spec.argv[1]: must not contain NUL",
			"spec.cwd: must not contain NUL",
			"spec.env.vars[A\x00]: variable name must not contain NUL",
			"spec.env.vars[B]: must not contain NUL",
		}},
		{"env names", func(p *Proc) {
			p.Spec.Env.Inherit = &EnvInherit{Names: []string{"HOME", "", "A=B"}}
			p.Spec.Env.Vars = map[string]*string{"": s("x"), "X=Y": nil, "OK": nil}
		}, []string{
			"spec.env.inherit[1]: variable name must not be empty",
			`spec.env.inherit[2]: variable name must not contain "="`,
			"spec.env.vars[]: variable name must not be empty",
			`spec.env.vars[X=Y]: variable name must not contain "="`,
		}},
		{"bad fd name", fds(FdSpec{Fd: "stdpout", Null: &NullFd{}}), []string{"spec.fds[0].fd: bad fd: stdpout"}},
		{"negative fd", fds(FdSpec{Fd: "-1", Close: &CloseFd{}}), []string{"spec.fds[0].fd: must be 0 or more"}},
		{"huge fd", fds(FdSpec{Fd: "65536", Close: &CloseFd{}}), []string{"spec.fds[0].fd: must be at most 65535"}},
		{"overflowing fd", fds(FdSpec{Fd: "99999999999999999999", Close: &CloseFd{}}), []string{"spec.fds[0].fd: bad fd: 99999999999999999999"}},
		{"max fd", fds(FdSpec{Fd: "65535", Close: &CloseFd{}}), nil},
		{"duplicate fd", fds(
			FdSpec{Fd: "stdout", Null: &NullFd{}},
			FdSpec{Fd: "2", Null: &NullFd{}},
			FdSpec{Fd: "1", Close: &CloseFd{}},
		), []string{"spec.fds[2].fd: duplicate fd: 1"}},
		{"no variant", fds(FdSpec{Fd: "stdin"}), []string{"spec.fds[0]: must set one of inherit, close, null, file, dup, capture, pipeWrite or pipeRead"}},
		{"two variants", fds(FdSpec{Fd: "stdin", Null: &NullFd{}, Dup: &DupFd{Fd: 1}}), []string{"spec.fds[0]: must set only one of inherit, close, null, file, dup, capture, pipeWrite or pipeRead; got null, dup"}},
		{"dup fd", fds(FdSpec{Fd: "0", Null: &NullFd{}}, FdSpec{Fd: "1", Null: &NullFd{}}, FdSpec{Fd: "2", Dup: &DupFd{Fd: -1}}), []string{"spec.fds[2].dup.fd: must be 0 or more"}},
		{"dup fd big", fds(FdSpec{Fd: "2", Dup: &DupFd{Fd: math.MaxInt}}), []string{"spec.fds[0].dup.fd: must be at most 65535"}},
		{"null flags", fds(FdSpec{Fd: "0", Null: &NullFd{Flags: "read"}}), []string{`spec.fds[0].null.flags: must be one of Default, Read, Write, Create, Replace, Append, CreateAppend, ReadWrite, not "read"`}},
		{"file", fds(FdSpec{Fd: "0", File: &FileFd{Flags: "Bogus", Mode: u32(0o10000)}}), []string{
			"spec.fds[0].file.path: required",
			`spec.fds[0].file.flags: must be one of Default, Read, Write, Create, Replace, Append, CreateAppend, ReadWrite, not "Bogus"`,
			"spec.fds[0].file.mode: must be at most 07777 (4095)",
		}},
		{"file NUL path", fds(FdSpec{Fd: "0", File: &FileFd{Path: "/tmp/\x00"}}), []string{"spec.fds[0].file.path: must not contain NUL"}},
		{"file ok", fds(FdSpec{Fd: "0", File: &FileFd{Path: "/tmp/x", Flags: OpenCreateAppend, Mode: u32(0o7777)}}), nil},
		{"capture mode encoding", fds(FdSpec{Fd: "1", Capture: &CaptureFd{Mode: "pipe", Encoding: "latin1"}}), []string{
			`spec.fds[0].capture.mode: must be tempfile, memory or file, not "pipe"`,
			`spec.fds[0].capture.encoding: must be utf-8, base64 or base2048, not "latin1"`,
		}},
		{"capture limit without memory", fds(FdSpec{Fd: "1", Capture: &CaptureFd{Limit: &CaptureLimit{Head: -1, Tail: -2}}}), []string{
			"spec.fds[0].capture.limit: allowed only with mode memory",
			"spec.fds[0].capture.limit.head: must be 0 or more",
			"spec.fds[0].capture.limit.tail: must be 0 or more",
		}},
		{"capture limit memory", fds(FdSpec{Fd: "1", Capture: &CaptureFd{Mode: CaptureMemory, Limit: &CaptureLimit{Head: 10}}}), nil},
		{"capture file no path", fds(FdSpec{Fd: "1", Capture: &CaptureFd{Mode: CaptureFile}}), []string{"spec.fds[0].capture.path: required for mode file"}},
		{"capture path without file", fds(FdSpec{Fd: "1", Capture: &CaptureFd{Mode: CaptureMemory, Path: "/x"}}), []string{"spec.fds[0].capture.path: allowed only with mode file"}},
		{"pipeRead empty", fds(FdSpec{Fd: "0", PipeRead: &PipeReadFd{}}), []string{
			"spec.fds[0].pipeRead.procId: required",
			"spec.fds[0].pipeRead.fd: required",
		}},
		{"pipeRead bad fd", fds(FdSpec{Fd: "0", PipeRead: &PipeReadFd{ProcID: "w", Fd: "out"}}), []string{"spec.fds[0].pipeRead.fd: bad fd: out"}},
		{"pipeRead neg fd", fds(FdSpec{Fd: "0", PipeRead: &PipeReadFd{ProcID: "w", Fd: "-3"}}), []string{"spec.fds[0].pipeRead.fd: must be 0 or more"}},
		{"umask bad", func(p *Proc) { p.Spec.Umask = s("0800") }, []string{`spec.umask: must be an octal string from 0 to 0777, not "0800"`}},
		{"umask big", func(p *Proc) { p.Spec.Umask = s("1000") }, []string{`spec.umask: must be an octal string from 0 to 0777, not "1000"`}},
		{"umask empty", func(p *Proc) { p.Spec.Umask = s("") }, []string{`spec.umask: must be an octal string from 0 to 0777, not ""`}},
		{"umask ok", func(p *Proc) { p.Spec.Umask = s("0o777") }, nil},
		{"pdeathSignal", func(p *Proc) { p.Spec.PdeathSignal = sig("SIGNOPE") }, []string{`spec.pdeathSignal: unknown signal: "SIGNOPE"`}},
		{"pdeathSignal number", func(p *Proc) { p.Spec.PdeathSignal = sig("65") }, []string{"spec.pdeathSignal: signal number out of range 1..64: 65"}},
		{"timeout", func(p *Proc) { p.Spec.Timeout = &Timeout{Seconds: 0, Signal: "BOGUS", GracePeriodSeconds: f64(-1)} }, []string{
			"spec.timeout.seconds: must be a finite number greater than 0",
			`spec.timeout.signal: unknown signal: "BOGUS"`,
			"spec.timeout.gracePeriodSeconds: must be a finite number, 0 or more",
		}},
		{"timeout inf nan", func(p *Proc) { p.Spec.Timeout = &Timeout{Seconds: math.Inf(1), GracePeriodSeconds: f64(math.NaN())} }, []string{
			"spec.timeout.seconds: must be a finite number greater than 0",
			"spec.timeout.gracePeriodSeconds: must be a finite number, 0 or more",
		}},
		{"resources", func(p *Proc) {
			p.Spec.Resources = &Resources{
				MemoryMax: q("2Gx"), MemoryHigh: q("-1"), MemorySwapMax: q("100m"),
				CPUMax: q("0"), CPUWeight: i64(10001), TasksMax: i64(0),
			}
		}, []string{
			`spec.resources.memoryMax: bad quantity "2Gx": unknown suffix "Gx"`,
			`spec.resources.memoryHigh: bad quantity "-1": must be 0 or more`,
			`spec.resources.memorySwapMax: bad quantity "100m": must be a whole number of bytes`,
			`spec.resources.cpuMax: bad quantity "0": must be greater than 0`,
			"spec.resources.cpuWeight: must be between 1 and 10000",
			"spec.resources.tasksMax: must be 1 or more",
		}},
		{"resources overflow", func(p *Proc) { p.Spec.Resources = &Resources{MemoryMax: q("9Ei"), CPUMax: q("9E"), CPUWeight: i64(0)} }, []string{
			`spec.resources.memoryMax: bad quantity "9Ei": out of range`,
			`spec.resources.cpuMax: bad quantity "9E": out of range`,
			"spec.resources.cpuWeight: must be between 1 and 10000",
		}},
		{"resources ok", func(p *Proc) {
			p.Spec.Resources = &Resources{MemoryMax: q("7Ei"), MemoryHigh: q("1.5Gi"), MemorySwapMax: q("0"), CPUMax: q("1m"), CPUWeight: i64(1), TasksMax: i64(1)}
		}, nil},
		{"oomPolicy", func(p *Proc) {
			p.Spec.SystemdProperties = &SystemdProperties{Scope: SystemdScope{OOMPolicy: s("panic")}}
		}, []string{
			`spec.systemdProperties.scope.oomPolicy: must be continue, stop or kill, not "panic"`,
		}},
		{"labels", func(p *Proc) {
			p.Metadata.Labels = map[string]string{"my key": "x", "team": "data eng", "ok": strings.Repeat("v", 64), "a": "x,y", "ex.com/n": "fine"}
		}, []string{
			`metadata.labels[a]: value must consist of letters, digits, '-', '_' or '.', not ","`,
			"metadata.labels[my key]: key must consist of letters, digits, '-', '_' or '.', not \" \"",
			"metadata.labels[ok]: value must be at most 63 characters",
			`metadata.labels[team]: value must consist of letters, digits, '-', '_' or '.', not " "`,
		}},
		{"huge cpuMax", func(p *Proc) { p.Spec.Resources = &Resources{CPUMax: q("1e11")} }, []string{
			"spec.resources.cpuMax: must be at most 1000000 CPUs",
		}},
		{"systemd tasksMax 0", func(p *Proc) {
			zero := uint64(0)
			p.Spec.SystemdProperties = &SystemdProperties{Slice: SystemdSlice{TasksMax: &zero}}
		}, []string{
			"spec.systemdProperties.slice.tasksMax: must be 1 or more",
		}},
		{"oomPolicy ok", func(p *Proc) {
			p.Spec.SystemdProperties = &SystemdProperties{Scope: SystemdScope{OOMPolicy: s("continue")}}
		}, nil},
		{"placement", func(p *Proc) { p.Spec.Placement = &Placement{Selector: map[string]string{"": "x", "k": "\x00"}} }, []string{
			"spec.placement.selector: keys must not be empty",
			"spec.placement.selector[k]: must not contain NUL",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := validProc()
			tt.mutate(p)
			err := p.Validate()
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want %q", tt.want)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("errors.Is(err, ErrInvalid) = false")
			}
			var list ErrorList
			if !errors.As(err, &list) {
				t.Fatalf("error %T is not an ErrorList", err)
			}
			var got []string
			for _, fe := range list {
				got = append(got, fe.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("problems:\n got  %q\n want %q", got, tt.want)
			}
			if err.Error() != strings.Join(tt.want, "; ") {
				t.Errorf("Error() = %q", err.Error())
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field == "" && fe.Detail == "" {
				t.Errorf("errors.As(*FieldError) failed")
			}
		})
	}
}

func TestValidateProcs(t *testing.T) {
	a, b, c := validProc(), validProc(), validProc()
	b.Metadata.Name = "q"
	c.Spec.Argv = nil
	err := ValidateProcs([]Proc{*a, *b, *a, *c})
	want := `items[2].metadata.name: duplicate name "p" (also items[0]); items[3].spec.argv: must not be empty when exe is not set; items[3].metadata.name: duplicate name "p" (also items[0])`
	if err == nil || err.Error() != want {
		t.Fatalf("ValidateProcs = %v\nwant %s", err, want)
	}
	if err := ValidateProcs([]Proc{*a, *b}); err != nil {
		t.Fatalf("ValidateProcs(distinct) = %v", err)
	}
}

func TestUmaskValue(t *testing.T) {
	for _, tt := range []struct {
		in      *string
		mask    uint32
		set, ok bool
	}{
		{nil, 0, false, true},
		{ptrTo("0027"), 0o27, true, true},
		{ptrTo("027"), 0o27, true, true},
		{ptrTo("0"), 0, true, true},
		{ptrTo("777"), 0o777, true, true},
		{ptrTo("0o22"), 0o22, true, true},
		{ptrTo("0777"), 0o777, true, true},
		{ptrTo("00000777"), 0o777, true, true},
		{ptrTo("1777"), 0, true, false},
		{ptrTo("8"), 0, true, false},
		{ptrTo("-1"), 0, true, false},
		{ptrTo("+7"), 0, true, false},
		{ptrTo("0x1f"), 0, true, false},
		{ptrTo("0_7"), 0, true, false},
		{ptrTo("77777777777777777777777"), 0, true, false},
	} {
		s := ProcSpec{Umask: tt.in}
		mask, set, err := s.UmaskValue()
		if mask != tt.mask || set != tt.set || (err == nil) != tt.ok {
			name := "<nil>"
			if tt.in != nil {
				name = *tt.in
			}
			t.Errorf("UmaskValue(%q) = %o, %v, %v; want %o, %v, ok=%v", name, mask, set, err, tt.mask, tt.set, tt.ok)
		}
	}
}

func TestSignalNumber(t *testing.T) {
	for in, want := range map[Signal]int{"SIGTERM": 15, "term": 15, "9": 9, "SIGRTMIN+1": 35, "64": 64} {
		if got, err := in.Number(); err != nil || got != want {
			t.Errorf("%q.Number() = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []Signal{"", "0", "65", "-1", "SIGFOO", "99999999999999999999999"} {
		if _, err := in.Number(); err == nil {
			t.Errorf("%q.Number() succeeded", in)
		}
	}
}

func TestValidateLabel(t *testing.T) {
	for _, c := range []struct{ k, v, want string }{
		{"zone", "a", ""},
		{"zone", "", ""},
		{"example.com/disk", "ssd", ""},
		{"", "a", "key must not be empty"},
		{"-zone", "a", "key must begin and end"},
		{"bad_prefix!/zone", "a", "key has a bad prefix"},
		{"zone", "a b", "value must consist of"},
		{"zone", strings.Repeat("a", 64), "value must be at most 63"},
	} {
		err := ValidateLabel(c.k, c.v)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q=%q: %v", c.k, c.v, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%q=%q: error %v, want %q", c.k, c.v, err, c.want)
		}
	}
}
