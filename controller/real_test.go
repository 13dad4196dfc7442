package controller

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/runtime"
)

// newReal returns a running controller on a real runtime. clock may be nil.
func newReal(t testing.TB, clock Clock) (*Controller, context.Context) {
	t.Helper()
	return newRealWith(t, clock, runtime.Options{TempDir: t.TempDir()})
}

// newRealWith is newReal on a runtime with opts.
func newRealWith(t testing.TB, clock Clock, opts runtime.Options) (*Controller, context.Context) {
	t.Helper()
	rt, err := runtime.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	c, err := New(Options{Runtime: FromRuntime(rt), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return c, ctx
}

func shProc(name, script string) v1.Proc {
	return newProc(name, "/bin/sh", "-c", script)
}

func TestRealEndings(t *testing.T) {
	c, ctx := newReal(t, nil)
	tests := []struct {
		proc   v1.Proc
		phase  v1.ProcPhase
		reason string
		signal string
	}{
		{shProc("ok", "exit 0"), v1.PhaseSucceeded, v1.ReasonExited, ""},
		{shProc("fail", "exit 1"), v1.PhaseFailed, v1.ReasonExited, ""},
		{shProc("sig", "kill -KILL $$"), v1.PhaseFailed, v1.ReasonSignaled, "SIGKILL"},
		{newProc("noexe", "/nonexistent/prog"), v1.PhaseError, v1.ReasonExecFailed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.proc.Metadata.Name, func(t *testing.T) {
			if _, err := c.Create(ctx, []v1.Proc{tt.proc}); err != nil {
				t.Fatal(err)
			}
			p := waitFor(t, c, tt.proc.Metadata.Name, "terminal", terminal)
			if p.Status.Phase != tt.phase || cond(&p, v1.ConditionTerminated).Reason != tt.reason || p.Status.Signal != tt.signal {
				t.Errorf("status = %s %s signal %q, want %s %s %q (%+v)", p.Status.Phase, cond(&p, v1.ConditionTerminated).Reason, p.Status.Signal, tt.phase, tt.reason, tt.signal, p.Status)
			}
			if tt.phase != v1.PhaseError && (p.Status.Pid == 0 || p.Status.Times == nil || p.Status.Rusage == nil) {
				t.Errorf("runtime status missing: %+v", p.Status)
			}
			if tt.phase == v1.PhaseError && !strings.HasPrefix(p.Status.Errors[0], "execve failed: /nonexistent/prog") {
				t.Errorf("errors = %q", p.Status.Errors)
			}
		})
	}
}

func TestRealOutput(t *testing.T) {
	c, ctx := newReal(t, nil)
	p := shProc("echo", "printf 'hello\\nworld\\n'")
	p.Spec.Fds = []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{Encoding: v1.EncodingUTF8}}}
	if _, err := c.Create(ctx, []v1.Proc{p}); err != nil {
		t.Fatal(err)
	}
	got := waitFor(t, c, "echo", "Succeeded", phaseIs(v1.PhaseSucceeded))
	if got.Status.Fds["stdout"].Length != 12 {
		t.Errorf("fds = %+v", got.Status.Fds)
	}
	info, err := c.OutputInfo(ctx, "echo", 1)
	if err != nil || info != (v1.OutputInfo{Length: 12, Encoding: v1.EncodingUTF8, Complete: true}) {
		t.Errorf("OutputInfo = %+v, %v", info, err)
	}
	start := int64(6)
	b, err := c.ReadOutput(ctx, "echo", 1, start, nil)
	if err != nil || string(b) != "world\n" {
		t.Errorf("ReadOutput = %q, %v", b, err)
	}
	if _, err := c.ReadOutput(ctx, "echo", 2, 0, nil); !errors.Is(err, errdefs.ErrInvalidArgument) || err.Error() != "no fd: 2" {
		t.Errorf("ReadOutput fd 2: %v", err)
	}
	res, err := c.Result(ctx, "echo")
	if err != nil || res.State != "terminated" || res.Fds["stdout"] == nil {
		t.Fatalf("Result = %+v, %v", res, err)
	}
	all, _ := c.Results(ctx)
	if len(all) != 1 {
		t.Errorf("Results = %v", all)
	}
}

// waitOutput waits until the proc's stdout holds want.
func waitOutput(t testing.TB, c *Controller, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := c.ReadOutput(context.Background(), name, 1, 0, nil)
		if err == nil && string(b) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("output of %s = %q, %v; want %q", name, b, err, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRealTimeout(t *testing.T) {
	tests := []struct {
		name   string
		script string
		signal string
	}{
		{"term", "echo ready; exec sleep 100", "SIGTERM"},
		{"kill", "trap '' TERM; echo ready; while :; do sleep 0.05; done", "SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			c, ctx := newReal(t, clock)
			grace := 5.0
			p := shProc("p", tt.script)
			p.Spec.Fds = []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{Mode: v1.CaptureMemory}}}
			p.Spec.Timeout = &v1.Timeout{Seconds: 60, GracePeriodSeconds: &grace}
			if _, err := c.Create(ctx, []v1.Proc{p}); err != nil {
				t.Fatal(err)
			}
			waitOutput(t, c, "p", "ready\n")
			clock.Advance(60 * time.Second)
			if tt.signal == "SIGKILL" {
				// The shell ignores SIGTERM: it is still running until the
				// grace period ends.
				time.Sleep(50 * time.Millisecond)
				if got, _ := c.Get(ctx, "p"); got.Status.Phase != v1.PhaseRunning {
					t.Fatalf("phase before the grace period ended: %s", got.Status.Phase)
				}
				clock.Advance(5 * time.Second)
			}
			got := waitFor(t, c, "p", "terminal", terminal)
			if got.Status.Phase != v1.PhaseFailed || cond(&got, v1.ConditionTerminated).Reason != v1.ReasonTimedOut || got.Status.Signal != tt.signal {
				t.Errorf("status = %s %+v signal %s", got.Status.Phase, got.Status.Conditions, got.Status.Signal)
			}
		})
	}
}

func TestRealDelete(t *testing.T) {
	clock := newFakeClock()
	c, ctx := newReal(t, clock)
	procs := []v1.Proc{shProc("graceful", "exec sleep 100"), shProc("stubborn", "trap '' TERM; echo ready; while :; do sleep 0.05; done"), shProc("forced", "trap '' TERM; while :; do sleep 0.05; done")}
	procs[1].Spec.Fds = []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{Mode: v1.CaptureMemory}}}
	if _, err := c.Create(ctx, procs); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "graceful", v1.DeleteOptions{RefuseRunning: true}); !errors.Is(err, errdefs.ErrFailedPrecondition) || err.Error() != "process running: graceful" {
		t.Fatalf("refused delete: %v", err)
	}
	watch, err := c.Watch(ctx, nil, v1.FieldSelector{}, "")
	if err != nil {
		t.Fatal(err)
	}
	deleted := map[string]v1.Proc{}
	collect := func(n int) {
		for len(deleted) < n {
			ev := next(t, watch)
			if ev.Type == v1.Deleted {
				deleted[ev.Object.Metadata.Name] = ev.Object
			}
		}
	}
	if _, err := c.Delete(ctx, "graceful", v1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Delete(ctx, "forced", v1.DeleteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	collect(2)
	if s := deleted["graceful"].Status.Signal; s != "SIGTERM" {
		t.Errorf("graceful died of %q", s)
	}
	if s := deleted["forced"].Status.Signal; s != "SIGKILL" {
		t.Errorf("forced died of %q", s)
	}
	waitOutput(t, c, "stubborn", "ready\n")
	if _, err := c.Delete(ctx, "stubborn", v1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if _, err := c.Get(ctx, "stubborn"); err != nil {
		t.Fatalf("stubborn removed before its grace period: %v", err)
	}
	clock.Advance(30 * time.Second)
	collect(3)
	if s := deleted["stubborn"].Status.Signal; s != "SIGKILL" || cond(ptr(deleted["stubborn"]), v1.ConditionTerminated).Reason != v1.ReasonKilled {
		t.Errorf("stubborn: %+v", deleted["stubborn"].Status)
	}
	if c.Len() != 0 {
		t.Errorf("Len = %d", c.Len())
	}
}

func ptr[T any](v T) *T { return &v }

func TestRealApply(t *testing.T) {
	c, ctx := newReal(t, nil)
	p := shProc("p", "exec sleep 100")
	if _, res, err := c.Apply(ctx, p, false); err != nil || res != v1.ApplyCreated {
		t.Fatal(res, err)
	}
	if _, res, err := c.Apply(ctx, p, false); err != nil || res != v1.ApplyUnchanged {
		t.Fatal(res, err)
	}
	q := shProc("p", "exit 0")
	if _, _, err := c.Apply(ctx, q, false); !errors.Is(err, errdefs.ErrConflict) {
		t.Fatal(err)
	}
	if _, res, err := c.Apply(ctx, q, true); err != nil || res != v1.ApplyConfigured {
		t.Fatal(res, err)
	}
	got := waitFor(t, c, "p", "Succeeded", phaseIs(v1.PhaseSucceeded))
	if got.Spec.Argv[2] != "exit 0" {
		t.Errorf("spec = %v", got.Spec.Argv)
	}
}

func TestRealRestart(t *testing.T) {
	clock := newFakeClock()
	c, ctx := newReal(t, clock)
	p := shProc("p", "exit 1")
	p.Spec.RestartPolicy = v1.RestartOnFailure
	if _, err := c.Create(ctx, []v1.Proc{p}); err != nil {
		t.Fatal(err)
	}
	var pids []int
	for i, d := range []time.Duration{10 * time.Second, 20 * time.Second} {
		got := waitFor(t, c, "p", "backing off", func(p *v1.Proc) bool {
			return p != nil && p.Status.Phase == v1.PhasePending && p.Status.RestartCount == int32(i)
		})
		pids = append(pids, got.Status.Pid)
		clock.Advance(d)
		waitFor(t, c, "p", "restarted", func(p *v1.Proc) bool { return p != nil && p.Status.RestartCount == int32(i+1) })
	}
	got := waitFor(t, c, "p", "backing off", phaseIs(v1.PhasePending))
	if got.Status.Pid == pids[0] || got.Status.Pid == pids[1] || got.Status.ExitCode == nil || *got.Status.ExitCode != 1 {
		t.Errorf("third run: %+v (earlier pids %v)", got.Status, pids)
	}
}

// TestRunStopLeavesProcesses checks that ending Run stops the workers but
// not the processes.
func TestRunStopLeavesProcesses(t *testing.T) {
	rt, err := runtime.New(runtime.Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	c, err := New(Options{Runtime: FromRuntime(rt)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	created, err := c.Create(ctx, []v1.Proc{newProc("sleeper", "/bin/sleep", "100")})
	if err != nil {
		t.Fatal(err)
	}
	pid := created[0].Status.Pid
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("process %d gone after Run ended: %v", pid, err)
	}
	// Our own process, by pid: the runtime still reaps it.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p, err := c.current("sleeper")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(10 * time.Second):
		t.Fatal("not reaped")
	}
}
