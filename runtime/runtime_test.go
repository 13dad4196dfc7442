package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/runtime/trampoline"
	"procstar.dev/procstar/wire"
)

func TestExitCodes(t *testing.T) {
	modes(t, func(t *testing.T, rt *Runtime) {
		for _, code := range []int{0, 1, 255} {
			t.Run(strconv.Itoa(code), func(t *testing.T) {
				p, st := run(t, rt, shSpec("echo out; echo err >&2; exit "+strconv.Itoa(code)))
				if got := exitCode(st); got != code {
					t.Fatalf("exit code %d, want %d (status %+v)", got, code, st)
				}
				if len(st.Errors) != 0 || st.Signal != "" || st.WaitStatus == nil || *st.WaitStatus != code<<8 {
					t.Fatalf("status %+v", st)
				}
				if o, e := output(t, p, 1), output(t, p, 2); o != "out\n" || e != "err\n" {
					t.Fatalf("stdout %q stderr %q", o, e)
				}
				if st.Times == nil || st.Times.Start == nil || st.Times.Stop == nil || st.Times.Elapsed <= 0 {
					t.Fatalf("times %+v", st.Times)
				}
				if st.Times.Start.Location() != time.UTC || st.Times.Stop.Before(*st.Times.Start) {
					t.Fatalf("times %v %v", st.Times.Start, st.Times.Stop)
				}
				if st.Rusage == nil || st.ProcStat == nil || st.ProcStat.Pid != p.Pid() || st.ProcStatm != nil {
					t.Fatalf("rusage %v stat %v statm %v", st.Rusage, st.ProcStat, st.ProcStatm)
				}
				if st.Fds["stdout"].Length != 4 || st.Fds["stderr"].Length != 4 {
					t.Fatalf("fds %+v", st.Fds)
				}
			})
		}
	})
}

func TestSignaled(t *testing.T) {
	modes(t, func(t *testing.T, rt *Runtime) {
		for _, tc := range []struct {
			sig  int
			name string
		}{{15, "SIGTERM"}, {9, "SIGKILL"}, {35, "SIGRTMIN+1"}} {
			t.Run(tc.name, func(t *testing.T) {
				ps, err := rt.Start(context.Background(), []Request{{ID: "s", Spec: &v1.ProcSpec{Argv: []string{"/bin/sleep", "100"}}}})
				if err != nil {
					t.Fatal(err)
				}
				p := ps[0]
				// A trampoline child must have exec'd before the signal,
				// or the trampoline's own runtime may see it.
				waitExec(t, p, "sleep")
				st := p.Status()
				if st.ProcStat == nil || st.ProcStatm == nil || st.Times.Stop != nil {
					t.Fatalf("running status %+v", st)
				}
				// Signal 0 only checks the process is there.
				if err := p.Signal(0); err != nil {
					t.Fatalf("signal 0: %v", err)
				}
				if err := p.Signal(tc.sig); err != nil {
					t.Fatal(err)
				}
				waitDone(t, p, 10*time.Second)
				st = p.Status()
				if st.Signal != tc.name || st.ExitCode != nil || st.CoreDump {
					t.Fatalf("status %+v", st)
				}
				if err := p.Signal(tc.sig); !errors.Is(err, ErrNotRunning) {
					t.Fatalf("signal after reap: %v", err)
				}
				if err := p.SignalGroup(tc.sig); !errors.Is(err, ErrNotRunning) {
					t.Fatalf("signal group after reap: %v", err)
				}
				if err := p.Signal(0); !errors.Is(err, ErrNotRunning) {
					t.Fatalf("signal 0 after reap: %v", err)
				}
				for _, bad := range []int{-1, 65} {
					if err := p.Signal(bad); !errors.Is(err, ErrBadSignal) {
						t.Fatalf("signal %d: %v", bad, err)
					}
				}
			})
		}
	})
}

// waitExec waits until the proc's comm is comm (it has exec'd).
func waitExec(t testing.TB, p *Proc, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st := p.Status(); st.ProcStat != nil && st.ProcStat.Comm == comm {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("proc %s never exec'd %s", p.ID(), comm)
}

func TestSignalGroup(t *testing.T) {
	rt := newRT(t, Options{})
	// The shell and its background sleep share the proc's process group.
	ps, err := rt.Start(context.Background(), []Request{{ID: "g", Spec: shSpec("sleep 100 & echo $!; wait")}})
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	deadline := time.Now().Add(5 * time.Second)
	for n, _ := p.OutputLen(1); n == 0 && time.Now().Before(deadline); n, _ = p.OutputLen(1) {
		time.Sleep(time.Millisecond)
	}
	if err := p.SignalGroup(int(syscall.SIGTERM)); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p, 10*time.Second)
	if st := p.Status(); st.Signal != "SIGTERM" {
		t.Fatalf("status %+v", st)
	}
	grand, _ := strconv.Atoi(strings.TrimSpace(output(t, p, 1)))
	if grand <= 0 {
		t.Fatalf("no grandchild pid: %q", output(t, p, 1))
	}
	// The grandchild got SIGTERM too; it is re-parented, so poll its
	// existence (it may linger as a zombie of init briefly).
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(grand) + "/stat"); err != nil || strings.Contains(string(b), ") Z") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	syscall.Kill(grand, syscall.SIGKILL)
	t.Fatal("grandchild survived SignalGroup")
}

func TestExecFailures(t *testing.T) {
	dir := t.TempDir()
	noexec := filepath.Join(dir, "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	garbage := filepath.Join(dir, "garbage")
	os.WriteFile(garbage, []byte{0x7f, 1, 2, 3, 0xff, 0xfe, 0, 9, 9, 9}, 0o755)
	cases := []struct {
		name, exe, want string
	}{
		{"ENOENT", "/nonexistent/x", "execve failed: /nonexistent/x: No such file or directory (os error 2)"},
		{"EACCES", noexec, "execve failed: " + noexec + ": Permission denied (os error 13)"},
		{"ENOEXEC", garbage, "execve failed: " + garbage + ": Exec format error (os error 8)"},
		{"bare name without pathSearch", "true", "execve failed: true: No such file or directory (os error 2)"},
	}
	modes(t, func(t *testing.T, rt *Runtime) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, st := run(t, rt, &v1.ProcSpec{Argv: []string{tc.exe, "arg"}})
				if !slices.Equal(st.Errors, []string{tc.want}) {
					t.Fatalf("errors %q, want %q", st.Errors, tc.want)
				}
				// Either way the proc reads as procstar's child that did
				// not exec: exit code 63, zero usage, start and stop times.
				if exitCode(st) != trampoline.ExitCode || st.Rusage == nil || st.Times == nil || st.Times.Start == nil || st.Times.Stop == nil {
					t.Fatalf("failure status %+v", st)
				}
				// Only the trampoline's child is known by its pid: ForkExec
				// reaps a child that failed to exec itself.
				if rt.opts.ForceTrampoline != (st.Pid != 0) {
					t.Fatalf("pid %d (trampoline %t)", st.Pid, rt.opts.ForceTrampoline)
				}
			})
		}
	})
}

func TestRestrictedExe(t *testing.T) {
	rt := newRT(t, Options{RestrictExe: "/bin/true"})
	_, st := run(t, rt, &v1.ProcSpec{Argv: []string{"/bin/false"}})
	if !slices.Equal(st.Errors, []string{"restricted executable: /bin/true"}) || st.Pid != 0 || exitCode(st) != trampoline.ExitCode {
		t.Fatalf("status %+v", st)
	}
	_, st = run(t, rt, &v1.ProcSpec{Exe: "/bin/true", Argv: []string{"anything"}})
	if len(st.Errors) != 0 || exitCode(st) != 0 {
		t.Fatalf("allowed exe: status %+v", st)
	}
	// PATH search resolves before the check.
	_, st = run(t, rt, &v1.ProcSpec{Argv: []string{"true"}, PathSearch: true,
		Env: v1.EnvSpec{Vars: map[string]*string{"PATH": ptr("/bin")}}})
	if len(st.Errors) != 0 || exitCode(st) != 0 {
		t.Fatalf("path-searched exe: status %+v", st)
	}
}

func TestCwdAndUmask(t *testing.T) {
	dir := t.TempDir()
	modes(t, func(t *testing.T, rt *Runtime) {
		p, st := run(t, rt, func() *v1.ProcSpec {
			s := shSpec("pwd; umask")
			s.Cwd = dir
			s.Umask = ptr("0027")
			return s
		}())
		if got := output(t, p, 1); got != dir+"\n0027\n" || st.Cwd != dir {
			t.Fatalf("output %q cwd %q", got, st.Cwd)
		}
		// Relative paths of a file fd and a file capture are in the cwd,
		// and the umask applies to the file fd, which the agent opens.
		sub := t.TempDir()
		spec := shSpec("echo out; echo err >&2")
		spec.Cwd = sub
		spec.Umask = ptr("077")
		spec.Fds = []v1.FdSpec{
			{Fd: "stdout", File: &v1.FileFd{Path: "fd.txt", Flags: v1.OpenWrite}},
			{Fd: "stderr", Capture: &v1.CaptureFd{Mode: v1.CaptureFile, Path: "capture.txt", Encoding: v1.EncodingUTF8}},
		}
		if _, st := run(t, rt, spec); exitCode(st) != 0 {
			t.Fatalf("status %+v", st)
		}
		for name, want := range map[string]string{"fd.txt": "out\n", "capture.txt": "err\n"} {
			if b, err := os.ReadFile(filepath.Join(sub, name)); err != nil || string(b) != want {
				t.Errorf("%s in the cwd: %q, %v", name, b, err)
			}
		}
		if fi, err := os.Stat(filepath.Join(sub, "fd.txt")); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("file fd under umask 077: %v, %v", fi.Mode(), err)
		}
		agentCwd, _ := os.Getwd()
		p, st = run(t, rt, shSpec("pwd"))
		if got := output(t, p, 1); got != agentCwd+"\n" || st.Cwd != agentCwd {
			t.Fatalf("default cwd: output %q cwd %q", got, st.Cwd)
		}
		for _, tc := range []struct{ cwd, want string }{
			{"/nonexistent", "chdir failed: /nonexistent: No such file or directory (os error 2)"},
			{"/etc/passwd", "chdir failed: /etc/passwd: Not a directory (os error 20)"},
		} {
			s := shSpec("true")
			s.Cwd = tc.cwd
			_, st := run(t, rt, s)
			if !slices.Equal(st.Errors, []string{tc.want}) || st.Pid != 0 {
				t.Fatalf("status %+v", st)
			}
		}
	})
}

func TestPathSearch(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "bin"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", "hello"), []byte("#!/bin/sh\necho hello from $0\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "bin", "notexec"), []byte("#!/bin/sh\n"), 0o644)
	rt := newRT(t, Options{})
	spec := func(exe, path string) *v1.ProcSpec {
		s := shSpec("")
		s.Argv = []string{exe}
		s.PathSearch = true
		s.Cwd = dir
		s.Env = v1.EnvSpec{Inherit: &v1.EnvInherit{All: false}, Vars: map[string]*string{"PATH": ptr(path)}}
		return s
	}
	p, st := run(t, rt, spec("hello", "/nonexistent:bin"))
	if got := output(t, p, 1); got != "hello from "+filepath.Join(dir, "bin", "hello")+"\n" || len(st.Errors) != 0 {
		t.Fatalf("output %q status %+v", got, st)
	}
	for _, exe := range []string{"notexec", "missing"} {
		_, st = run(t, rt, spec(exe, "bin"))
		want := "execve failed: " + exe + ": No such file or directory (os error 2)"
		if !slices.Equal(st.Errors, []string{want}) {
			t.Fatalf("errors %q want %q", st.Errors, want)
		}
	}
}

func TestEnv(t *testing.T) {
	environ := []string{"HOME=/home/x", "USER=u", "PATH=/usr/bin:/bin",
		"PROCSTAR_AGENT_TOKEN=tok", "PROCSTAR_AGENT_KEY=k", "PROCSTAR_AGENT_CERT=c", "PROCSTAR_AGENT_HOST=h"}
	cases := []struct {
		name string
		env  v1.EnvSpec
		want []string
	}{
		{"inherit all", v1.EnvSpec{},
			[]string{"HOME=/home/x", "PATH=/usr/bin:/bin", "PROCSTAR_AGENT_HOST=h", "USER=u"}},
		{"inherit true", v1.EnvSpec{Inherit: &v1.EnvInherit{All: true}},
			[]string{"HOME=/home/x", "PATH=/usr/bin:/bin", "PROCSTAR_AGENT_HOST=h", "USER=u"}},
		{"inherit none", v1.EnvSpec{Inherit: &v1.EnvInherit{All: false}}, []string{}},
		{"inherit names", v1.EnvSpec{Inherit: &v1.EnvInherit{Names: []string{"USER", "ABSENT", "PROCSTAR_AGENT_TOKEN"}}},
			[]string{"USER=u"}},
		{"vars set and unset", v1.EnvSpec{Vars: map[string]*string{"A": ptr("1"), "HOME": nil, "USER": ptr("v")}},
			[]string{"A=1", "PATH=/usr/bin:/bin", "PROCSTAR_AGENT_HOST=h", "USER=v"}},
		{"token re-set through vars", v1.EnvSpec{Inherit: &v1.EnvInherit{All: false},
			Vars: map[string]*string{"PROCSTAR_AGENT_TOKEN": ptr("mine")}},
			[]string{"PROCSTAR_AGENT_TOKEN=mine"}},
	}
	modes(t, func(t *testing.T, _ *Runtime) {
		rt := newRT(t, Options{Environ: environ, ForceTrampoline: strings.HasSuffix(t.Name(), "trampoline")})
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				s := shSpec("")
				s.Argv = []string{"/usr/bin/env"}
				s.Env = tc.env
				s.RecordEnv = true
				p, st := run(t, rt, s)
				got := strings.Fields(output(t, p, 1))
				if got == nil {
					got = []string{}
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("env %q, want %q", got, tc.want)
				}
				if len(st.Env) != len(tc.want) {
					t.Fatalf("recorded env %v", st.Env)
				}
				if v, ok := st.Env["PROCSTAR_AGENT_TOKEN"]; ok && v != "***" {
					t.Fatalf("token not masked: %v", st.Env)
				}
			})
		}
	})
}

func TestRecordEnvMask(t *testing.T) {
	m := recordEnv([]string{"A=1", "my_token=x", "SecretThing=y", "DB_PASSWORD=z", "SSH_KEY=k", "KEYBOARD=q", "X=a=b"})
	want := map[string]string{"A": "1", "my_token": "***", "SecretThing": "***", "DB_PASSWORD": "***",
		"SSH_KEY": "***", "KEYBOARD": "***", "X": "a=b"}
	for k, v := range want {
		if m[k] != v {
			t.Fatalf("%s=%q, want %q", k, m[k], v)
		}
	}
}

func TestBatchErrors(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "started")
	good := Request{ID: "a-good", Spec: &v1.ProcSpec{Argv: []string{"/bin/sh", "-c", "touch " + marker}}}
	fd := func(name v1.FdName, f v1.FdSpec) v1.FdSpec { f.Fd = name; return f }
	null := v1.FdSpec{Null: &v1.NullFd{}}
	spec := func(fds ...v1.FdSpec) *v1.ProcSpec {
		return &v1.ProcSpec{Argv: []string{"/bin/true"}, Fds: fds}
	}
	cases := []struct {
		name string
		reqs []Request
		want string
	}{
		{"bad fd", []Request{{ID: "b", Spec: spec(fd("stdx", null))}}, "bad fd: stdx"},
		{"duplicate fd", []Request{{ID: "b", Spec: spec(fd("stdout", null), fd("1", null))}}, "duplicate fd: 1"},
		{"duplicate proc id", []Request{{ID: "b", Spec: spec()}, {ID: "b", Spec: spec()}}, "duplicate proc id: b"},
		{"unmatched read pipe", []Request{{ID: "b", Spec: spec(fd("stdin", v1.FdSpec{PipeRead: &v1.PipeReadFd{ProcID: "w", Fd: "stdout"}}))}},
			"unmatched read pipe: w stdout"},
		{"unmatched write pipe", []Request{{ID: "b", Spec: spec(fd("stdout", v1.FdSpec{PipeWrite: &v1.PipeWriteFd{}}))}},
			"unmatched write pipe: b 1"},
		{"nil spec", []Request{{ID: "b"}}, "proc b: no spec"},
		{"empty argv", []Request{{ID: "b", Spec: &v1.ProcSpec{}}}, "proc b: empty argv and no exe"},
		{"NUL in argv", []Request{{ID: "b", Spec: &v1.ProcSpec{Argv: []string{"/bin/true", "a\x00b"}}}}, "proc b: NUL byte in argv[1]"},
		{"NUL in env", []Request{{ID: "b", Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}, Env: v1.EnvSpec{Vars: map[string]*string{"A": ptr("\x00")}}}}},
			"proc b: NUL byte in env var A"},
		{"fd too big", []Request{{ID: "b", Spec: spec(fd("65536", null))}}, "proc b: fd out of range 0..65535: 65536"},
		{"negative fd", []Request{{ID: "b", Spec: spec(fd("-1", null))}}, "proc b: fd out of range 0..65535: -1"},
		{"no variant", []Request{{ID: "b", Spec: spec(fd("1", v1.FdSpec{}))}},
			"proc b: fd 1: exactly one of inherit, close, null, file, dup, capture, pipeWrite, pipeRead must be set (0 are)"},
		{"bad flag", []Request{{ID: "b", Spec: spec(fd("1", v1.FdSpec{Null: &v1.NullFd{Flags: "read"}}))}},
			`proc b: fd 1: unknown open flag: "read"`},
		{"bad umask", []Request{{ID: "b", Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}, Umask: ptr("999")}}}, `proc b: bad umask: "999"`},
		{"bad pdeath", []Request{{ID: "b", Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}, PdeathSignal: ptr(v1.Signal("SIGNOPE"))}}},
			`proc b: pdeathSignal: unknown signal: "SIGNOPE"`},
	}
	rt := newRT(t, Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps, err := rt.Start(context.Background(), append([]Request{good}, tc.reqs...))
			if err == nil || err.Error() != tc.want || !errors.Is(err, ErrInvalidSpec) || ps != nil {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if err := CheckBatch(tc.reqs); err == nil || err.Error() != tc.want {
				t.Fatalf("CheckBatch: %v", err)
			}
		})
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a proc of a rejected batch started")
	}
}

func TestPipeBetweenProcs(t *testing.T) {
	modes(t, func(t *testing.T, rt *Runtime) {
		ps, err := rt.Start(context.Background(), []Request{
			{ID: "reader", Spec: &v1.ProcSpec{Argv: []string{"/usr/bin/wc", "-c"}, Fds: []v1.FdSpec{
				{Fd: v1.Stdin, PipeRead: &v1.PipeReadFd{ProcID: "writer", Fd: "stdout"}},
				{Fd: v1.Stdout, Capture: memCapture()},
			}}},
			{ID: "writer", Spec: &v1.ProcSpec{Argv: []string{"/bin/echo", "hello"}, Fds: []v1.FdSpec{
				{Fd: v1.Stdout, PipeWrite: &v1.PipeWriteFd{}},
			}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		if ps[0].ID() != "reader" || ps[1].ID() != "writer" {
			t.Fatalf("order %s %s", ps[0].ID(), ps[1].ID())
		}
		for _, p := range ps {
			waitDone(t, p, 10*time.Second)
			defer p.Release()
		}
		if got := strings.TrimSpace(output(t, ps[0], 1)); got != "6" {
			t.Fatalf("wc -c says %q", got)
		}
		if _, err := ps[1].Output(1); !errors.Is(err, ErrNotCapture) {
			t.Fatalf("writer output: %v", err)
		}
	})
}

func TestManyTrue(t *testing.T) {
	rt := newRT(t, Options{})
	n := 1000
	if testing.Short() {
		n = 100
	}
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{ID: "t" + strconv.Itoa(i), Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}}}
	}
	fds := openFds(t)
	ps, err := rt.Start(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		waitDone(t, p, 30*time.Second)
		st := p.Status()
		if exitCode(st) != 0 || len(st.Errors) != 0 {
			t.Fatalf("%s: %+v", p.ID(), st)
		}
		if st.ProcStat == nil || st.ProcStat.Pid != p.Pid() || st.ProcStat.State != "Z" {
			t.Fatalf("%s: zombie stat %+v", p.ID(), st.ProcStat)
		}
	}
	// No pidfd outlives the reap.
	if now := openFds(t); now != fds {
		t.Errorf("%d fds open before, %d after", fds, now)
	}
}

// TestExitBeforeRegister: children that exit before the pidfd is in the
// epoll set are still reaped (level-triggered).
func TestExitBeforeRegister(t *testing.T) {
	rt := newRT(t, Options{})
	for i := 0; i < 200; i++ {
		ps, err := rt.Start(context.Background(), []Request{{ID: "t", Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}}}})
		if err != nil {
			t.Fatal(err)
		}
		waitDone(t, ps[0], 10*time.Second)
		if st := ps[0].Status(); exitCode(st) != 0 {
			t.Fatalf("%+v", st)
		}
	}
}

func TestDrainTimeout(t *testing.T) {
	rt := newRT(t, Options{DrainTimeout: 300 * time.Millisecond})
	// The grandchild keeps stdout open after the shell exits (killTree
	// false, so it is not killed with the shell).
	spec := shSpec("sleep 30 2>/dev/null & echo $!; echo partial")
	spec.KillTree = ptr(false)
	ps, err := rt.Start(context.Background(), []Request{{ID: "d", Spec: spec}})
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	defer p.Release()
	<-p.Exited()
	exited := time.Now()
	waitDone(t, p, 10*time.Second)
	waited := time.Since(exited)
	lines := strings.Fields(output(t, p, 1))
	if len(lines) == 2 {
		if pid, err := strconv.Atoi(lines[0]); err == nil && pid > 0 {
			defer syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	if waited < 250*time.Millisecond || waited > 3*time.Second {
		t.Fatalf("Done %v after Exited, want about 300ms", waited)
	}
	st := p.Status()
	if !st.Fds["stdout"].DrainTimedOut || st.Fds["stderr"].DrainTimedOut {
		t.Fatalf("fds %+v", st.Fds)
	}
	if len(lines) != 2 || lines[1] != "partial" {
		t.Fatalf("output %q", lines)
	}
}

func TestBinaryOutput(t *testing.T) {
	rt := newRT(t, Options{})
	for _, mode := range []v1.CaptureMode{v1.CaptureMemory, v1.CaptureTempfile} {
		t.Run(string(mode), func(t *testing.T) {
			var format strings.Builder
			for i := 0; i < 256; i++ {
				fmt.Fprintf(&format, "\\%03o", i)
			}
			f := format.String()
			p, st := run(t, rt, &v1.ProcSpec{
				Argv: []string{"/bin/bash", "-c", "printf '" + f + f + f + f + "'"},
				Fds:  []v1.FdSpec{{Fd: v1.Stdout, Capture: &v1.CaptureFd{Mode: mode, Encoding: v1.EncodingBase64}}},
			})
			b, err := p.Output(1)
			if err != nil || exitCode(st) != 0 || len(b) != 1024 {
				t.Fatalf("len %d err %v status %+v", len(b), err, st)
			}
			for i, c := range b {
				if c != byte(i) {
					t.Fatalf("byte %d is %d", i, c)
				}
			}
		})
	}
}

func TestOutputAPI(t *testing.T) {
	rt := newRT(t, Options{})
	p, _ := run(t, rt, func() *v1.ProcSpec {
		s := shSpec("printf 0123456789")
		s.Fds = append(s.Fds, v1.FdSpec{Fd: "5", Null: &v1.NullFd{}})
		return s
	}())
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		start int64
		stop  *int64
		want  string
		err   error
	}{
		{0, nil, "0123456789", nil},
		{3, i64(5), "34", nil},
		{8, i64(100), "89", nil},
		{20, nil, "", nil},
		{5, i64(2), "", nil},
		{-1, nil, "", ErrBadRange},
		{0, i64(-4), "", ErrBadRange},
	} {
		b, err := p.ReadOutput(1, tc.start, tc.stop)
		if !errors.Is(err, tc.err) || (err == nil && string(b) != tc.want) {
			t.Fatalf("ReadOutput(%d, %v) = %q, %v; want %q, %v", tc.start, tc.stop, b, err, tc.want, tc.err)
		}
	}
	if n, err := p.OutputLen(1); n != 10 || err != nil {
		t.Fatalf("len %d %v", n, err)
	}
	if _, err := p.Output(7); !errors.Is(err, ErrNoFd) || err.Error() != "no fd: 7" {
		t.Fatalf("unlisted fd: %v", err)
	}
	if _, err := p.Output(5); !errors.Is(err, ErrNotCapture) || err.Error() != "no fd data" {
		t.Fatalf("null fd: %v", err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Output(1); !errors.Is(err, ErrReleased) {
		t.Fatalf("after release: %v", err)
	}
}

func TestCoreDump(t *testing.T) {
	pat, err := os.ReadFile("/proc/sys/kernel/core_pattern")
	if err != nil {
		t.Skipf("cannot read core_pattern: %v", err)
	}
	rt := newRT(t, Options{})
	dir := t.TempDir()
	for _, sig := range []string{"SEGV", "QUIT"} {
		s := shSpec("ulimit -c unlimited && kill -" + sig + " $$")
		s.Cwd = dir
		_, st := run(t, rt, s)
		if st.Signal != "SIG"+sig {
			t.Fatalf("status %+v", st)
		}
		if !st.CoreDump {
			if p := strings.TrimSpace(string(pat)); strings.HasPrefix(p, "|") || strings.HasPrefix(p, "/") {
				t.Skipf("core_pattern is %q: the kernel hands dumps elsewhere and may not dump here; signal %s was reported correctly", p, st.Signal)
			}
			t.Fatalf("no core dump with core_pattern %q: %+v", pat, st)
		}
	}
}

func TestClosedRuntime(t *testing.T) {
	rt, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
	rt.Close()
	if _, err := rt.Start(context.Background(), []Request{{ID: "x", Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}}}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("start after close: %v", err)
	}
}

// Proc serves wire's result builder.
var _ wire.OutputSource = (*Proc)(nil)

// TestOutputFile: a tempfile capture can be opened again for reading at
// an offset of its own; a memory capture cannot; nothing after Release.
func TestOutputFile(t *testing.T) {
	rt := newRT(t, Options{})
	spec := shSpec("printf hello; printf err >&2")
	spec.Fds[1].Capture = &v1.CaptureFd{Mode: v1.CaptureTempfile, Encoding: v1.EncodingUTF8}
	p, _ := run(t, rt, spec)
	f, err := p.OutputFile(1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(1, 0); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 10)
	n, _ := f.Read(b)
	f.Close()
	if string(b[:n]) != "ello" {
		t.Fatalf("read %q", b[:n])
	}
	// The capture's own reads are unaffected by that offset.
	if out := output(t, p, 1); out != "hello" {
		t.Fatalf("output %q", out)
	}
	if _, err := p.OutputFile(2); !errors.Is(err, ErrNotFile) {
		t.Fatalf("memory capture: %v", err)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.OutputFile(1); !errors.Is(err, ErrReleased) {
		t.Fatalf("after Release: %v", err)
	}
}

// TestHoldDelaysRelease: a Hold keeps the captures readable past Release
// until it ends; then they are freed.
func TestHoldDelaysRelease(t *testing.T) {
	rt := newRT(t, Options{})
	spec := shSpec("echo kept")
	spec.Fds = []v1.FdSpec{{Fd: "stdout", Capture: memCapture()}}
	p, _ := run(t, rt, spec)
	unhold, ok := p.Hold()
	if !ok {
		t.Fatal("Hold of a proc not released failed")
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if got := output(t, p, 1); got != "kept\n" {
		t.Fatalf("output while held: %q", got)
	}
	unhold()
	unhold() // once only
	if _, err := p.Output(1); !errors.Is(err, ErrReleased) {
		t.Fatalf("output after the hold: %v, want ErrReleased", err)
	}
	if _, ok := p.Hold(); ok {
		t.Fatal("Hold after the release succeeded")
	}
}
