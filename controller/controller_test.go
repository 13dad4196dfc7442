package controller

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/runtime"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func cond(p *v1.Proc, typ string) *v1.Condition { return v1.FindCondition(p.Status.Conditions, typ) }

func TestLifecycleEndings(t *testing.T) {
	tests := []struct {
		name       string
		startErrs  []string
		end        func(p *fakeProc)
		phase      v1.ProcPhase
		reason     string
		message    string
		startedSts v1.ConditionStatus
	}{
		{name: "exit0", end: func(p *fakeProc) { p.end(0) }, phase: v1.PhaseSucceeded, reason: v1.ReasonExited, message: "exit code 0", startedSts: v1.ConditionTrue},
		{name: "exit1", end: func(p *fakeProc) { p.end(1) }, phase: v1.PhaseFailed, reason: v1.ReasonExited, message: "exit code 1", startedSts: v1.ConditionTrue},
		{name: "signal", end: func(p *fakeProc) { p.kill(9); p.finish() }, phase: v1.PhaseFailed, reason: v1.ReasonSignaled, message: "killed by SIGKILL", startedSts: v1.ConditionTrue},
		{name: "execfail", startErrs: []string{"execve failed: /nope: No such file or directory (os error 2)"}, phase: v1.PhaseError, reason: v1.ReasonExecFailed, message: "execve failed: /nope: No such file or directory (os error 2)", startedSts: v1.ConditionFalse},
		{name: "restricted", startErrs: []string{"restricted executable: /bin/true"}, phase: v1.PhaseError, reason: v1.ReasonRestricted, startedSts: v1.ConditionFalse},
		{name: "setup", startErrs: []string{"failed to set up fd 1: Permission denied (os error 13)"}, phase: v1.PhaseError, reason: v1.ReasonSetupFailed, startedSts: v1.ConditionFalse},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if tt.startErrs != nil {
				h.rt.startErrors["p"] = tt.startErrs
			}
			created := h.create(newProc("p"))[0]
			if created.Metadata.UID == "" || created.Metadata.Generation != 1 || created.Metadata.CreationTimestamp == nil || created.Metadata.ResourceVersion == "" {
				t.Errorf("metadata not filled in: %+v", created.Metadata)
			}
			if created.Spec.RestartPolicy != v1.RestartNever {
				t.Errorf("spec not defaulted: restartPolicy %q", created.Spec.RestartPolicy)
			}
			if tt.end != nil {
				if created.Status.Phase != v1.PhaseRunning || !v1.IsConditionTrue(created.Status.Conditions, v1.ConditionStarted) {
					t.Errorf("created status = %+v, want Running and Started", created.Status)
				}
				tt.end(h.rt.last(t, "p"))
			}
			p := waitFor(t, h.c, "p", "terminal", terminal)
			if p.Status.Phase != tt.phase {
				t.Errorf("phase = %s, want %s", p.Status.Phase, tt.phase)
			}
			term := cond(&p, v1.ConditionTerminated)
			if term == nil || term.Status != v1.ConditionTrue || term.Reason != tt.reason {
				t.Fatalf("Terminated = %+v, want True %s", term, tt.reason)
			}
			if tt.message != "" && term.Message != tt.message {
				t.Errorf("Terminated message = %q, want %q", term.Message, tt.message)
			}
			if st := cond(&p, v1.ConditionStarted); st == nil || st.Status != tt.startedSts {
				t.Errorf("Started = %+v, want %s", st, tt.startedSts)
			}
			if p.Status.ObservedGeneration != 1 {
				t.Errorf("observedGeneration = %d", p.Status.ObservedGeneration)
			}
			rv1, _ := strconv.Atoi(created.Metadata.ResourceVersion)
			rv2, _ := strconv.Atoi(p.Metadata.ResourceVersion)
			if tt.end != nil && rv2 <= rv1 {
				t.Errorf("resourceVersion did not move: %d then %d", rv1, rv2)
			}
		})
	}
}

func TestDrainWaitsForDone(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("p"))
	fp := h.rt.last(t, "p")
	fp.exit(0)
	// Reaped but not drained: still Running, busy.
	p := waitFor(t, h.c, "p", "exited", func(p *v1.Proc) bool { return p != nil && p.Status.ExitCode != nil })
	if p.Status.Phase != v1.PhaseRunning {
		t.Errorf("phase before drain = %s, want Running", p.Status.Phase)
	}
	fp.finish()
	waitFor(t, h.c, "p", "Succeeded", phaseIs(v1.PhaseSucceeded))
	if err := h.c.WaitAllExited(h.ctx); err != nil {
		t.Fatal(err)
	}
}

func timeoutProc(name string, seconds, grace float64) v1.Proc {
	p := newProc(name, "/bin/sleep", "100")
	p.Spec.Timeout = &v1.Timeout{Seconds: seconds, GracePeriodSeconds: &grace}
	return p
}

func TestTimeout(t *testing.T) {
	tests := []struct {
		name    string
		dieOn   []int
		signals []string
	}{
		{name: "term", dieOn: []int{sigterm}, signals: []string{"group:SIGTERM"}},
		{name: "kill", dieOn: []int{sigkill}, signals: []string{"group:SIGTERM", "group:SIGKILL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.rt.dieOn["p"] = tt.dieOn
			h.create(timeoutProc("p", 5, 3))
			fp := h.rt.last(t, "p")
			h.clock.Advance(4 * time.Second)
			h.c.Get(h.ctx, "p") // give the worker a chance; nothing is due
			if got := fp.sent(); len(got) != 0 {
				t.Fatalf("signalled before the timeout: %v", got)
			}
			h.clock.Advance(time.Second)
			waitSignals(t, fp, "group:SIGTERM")
			h.clock.Advance(3 * time.Second)
			waitSignals(t, fp, tt.signals...)
			p := waitFor(t, h.c, "p", "terminal", terminal)
			if p.Status.Phase != v1.PhaseFailed || cond(&p, v1.ConditionTerminated).Reason != v1.ReasonTimedOut {
				t.Errorf("status = %s %+v, want Failed TimedOut", p.Status.Phase, p.Status.Conditions)
			}
		})
	}
}

func TestDelete(t *testing.T) {
	grace := func(s float64) *float64 { return &s }
	tests := []struct {
		name    string
		spec    func(p *v1.Proc)
		opts    v1.DeleteOptions
		advance time.Duration
		signals []string
	}{
		{name: "graceful", opts: v1.DeleteOptions{}, advance: 30 * time.Second, signals: []string{"group:SIGTERM", "group:SIGKILL"}},
		{name: "graceOption", opts: v1.DeleteOptions{GracePeriodSeconds: grace(2)}, advance: 2 * time.Second, signals: []string{"group:SIGTERM", "group:SIGKILL"}},
		{name: "specGrace", spec: func(p *v1.Proc) {
			p.Spec.Timeout = &v1.Timeout{Seconds: 1000, Signal: "SIGINT", GracePeriodSeconds: grace(7)}
		}, advance: 7 * time.Second, signals: []string{"group:SIGINT", "group:SIGKILL"}},
		{name: "force", opts: v1.DeleteOptions{Force: true}, signals: []string{"group:SIGKILL"}},
		{name: "zeroGrace", opts: v1.DeleteOptions{GracePeriodSeconds: grace(0)}, signals: []string{"group:SIGKILL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.rt.dieOn["p"] = []int{sigkill}
			p := newProc("p", "/bin/sleep", "100")
			if tt.spec != nil {
				tt.spec(&p)
			}
			h.create(p)
			fp := h.rt.last(t, "p")
			w, err := h.c.Watch(h.ctx, nil, v1.FieldSelector{}, h.c.currentRV())
			if err != nil {
				t.Fatal(err)
			}
			got, err := h.c.Delete(h.ctx, "p", tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if got.Metadata.DeletionTimestamp == nil {
				t.Error("Delete returned no deletionTimestamp")
			}
			waitSignals(t, fp, tt.signals[:1]...)
			if tt.advance > 0 {
				h.clock.Advance(tt.advance - time.Millisecond)
				if _, err := h.c.Get(h.ctx, "p"); err != nil {
					t.Fatalf("removed before the grace period: %v", err)
				}
				h.clock.Advance(time.Millisecond)
			}
			waitSignals(t, fp, tt.signals...)
			waitFor(t, h.c, "p", "deleted", isGone)
			var types []v1.WatchEventType
			for ev := range w {
				types = append(types, ev.Type)
				if ev.Type == v1.Deleted {
					if ev.Object.Status.Phase != v1.PhaseFailed || cond(&ev.Object, v1.ConditionTerminated).Reason != v1.ReasonKilled {
						t.Errorf("DELETED object status %s %+v, want Failed Killed", ev.Object.Status.Phase, ev.Object.Status.Conditions)
					}
					break
				}
			}
			if types[0] != v1.Modified || types[len(types)-1] != v1.Deleted {
				t.Errorf("events = %v", types)
			}
			// The worker releases the proc after it has published DELETED.
			waitReleased(t, fp)
		})
	}
}

func (c *Controller) currentRV() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return formatRV(c.rv)
}

func TestDeleteRefuseRunning(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("p"))
	_, err := h.c.Delete(h.ctx, "p", v1.DeleteOptions{RefuseRunning: true})
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || err.Error() != "process running: p" {
		t.Fatalf("Delete of a running proc: %v", err)
	}
	fp := h.rt.last(t, "p")
	fp.end(0)
	waitFor(t, h.c, "p", "Succeeded", phaseIs(v1.PhaseSucceeded))
	res, err := h.c.Result(h.ctx, "p")
	if err != nil || res.State != "terminated" {
		t.Fatalf("Result = %+v, %v", res, err)
	}
	got, err := h.c.Delete(h.ctx, "p", v1.DeleteOptions{RefuseRunning: true})
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata.DeletionTimestamp == nil || got.Status.Phase != v1.PhaseSucceeded {
		t.Errorf("deleted object = %+v", got)
	}
	// Removed at once: no wait.
	if _, err := h.c.Get(h.ctx, "p"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get after delete: %v", err)
	}
	if !fp.isReleased() {
		t.Error("not released")
	}
	if _, err := h.c.Delete(h.ctx, "p", v1.DeleteOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
	if _, err := h.c.Result(h.ctx, "p"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Result after delete: %v", err)
	}
}

func TestApply(t *testing.T) {
	h := newHarness(t, nil)
	h.rt.dieOn["p"] = []int{sigterm}
	p := newProc("p", "/bin/sleep", "100")
	got, res, err := h.c.Apply(h.ctx, p, false)
	if err != nil || res != v1.ApplyCreated {
		t.Fatalf("first apply: %v %v", res, err)
	}
	uid := got.Metadata.UID

	got, res, err = h.c.Apply(h.ctx, p, false)
	if err != nil || res != v1.ApplyUnchanged || got.Metadata.UID != uid {
		t.Fatalf("same apply: %v %v", res, err)
	}
	// Explicit defaults are the same spec.
	withDefaults := *p.DeepCopy()
	withDefaults.Spec.RestartPolicy = v1.RestartNever
	if _, res, err = h.c.Apply(h.ctx, withDefaults, false); err != nil || res != v1.ApplyUnchanged {
		t.Fatalf("apply with defaults spelled out: %v %v", res, err)
	}

	labelled := *p.DeepCopy()
	labelled.Metadata.Labels = map[string]string{"team": "data"}
	got, res, err = h.c.Apply(h.ctx, labelled, false)
	if err != nil || res != v1.ApplyConfigured || got.Metadata.Labels["team"] != "data" || got.Metadata.UID != uid {
		t.Fatalf("label apply: %v %v %+v", res, err, got.Metadata)
	}
	if h.rt.count("p") != 1 {
		t.Fatal("label change restarted the proc")
	}

	changed := newProc("p", "/bin/sleep", "200")
	_, _, err = h.c.Apply(h.ctx, changed, false)
	if !errors.Is(err, errdefs.ErrConflict) || err.Error() != "spec of proc p is immutable; delete it or apply with --force" {
		t.Fatalf("changed apply: %v", err)
	}

	got, res, err = h.c.Apply(h.ctx, changed, true)
	if err != nil || res != v1.ApplyConfigured {
		t.Fatalf("forced apply: %v %v", res, err)
	}
	if got.Metadata.UID == uid || got.Spec.Argv[1] != "200" || h.rt.count("p") != 2 {
		t.Errorf("forced apply did not replace: %+v", got)
	}
	old := h.rt.procs["p"][0]
	if s := old.sent(); len(s) == 0 || s[0] != "group:SIGTERM" {
		t.Errorf("old proc got %v, want a graceful stop", s)
	}

	bad := newProc("")
	if _, _, err := h.c.Apply(h.ctx, bad, false); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("invalid apply: %v", err)
	}
}

func TestRestartBackoff(t *testing.T) {
	h := newHarness(t, nil)
	p := newProc("p")
	p.Spec.RestartPolicy = v1.RestartOnFailure
	h.create(p)

	backingOff := func(count int32) func(p *v1.Proc) bool {
		return func(p *v1.Proc) bool {
			return p != nil && p.Status.Phase == v1.PhasePending && p.Status.RestartCount == count
		}
	}
	runningRun := func(count int32) func(p *v1.Proc) bool {
		return func(p *v1.Proc) bool {
			return p != nil && p.Status.Phase == v1.PhaseRunning && p.Status.RestartCount == count
		}
	}
	delays := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second}
	for i, d := range delays {
		h.rt.last(t, "p").end(1)
		waitFor(t, h.c, "p", "backing off", backingOff(int32(i)))
		h.clock.Advance(d - time.Second)
		if n := h.rt.count("p"); n != i+1 {
			t.Fatalf("restarted before the backoff of %s: %d starts", d, n)
		}
		h.clock.Advance(time.Second)
		got := waitFor(t, h.c, "p", "restarted", runningRun(int32(i+1)))
		if c := cond(&got, v1.ConditionTerminated); c == nil || c.Status != v1.ConditionFalse {
			t.Errorf("Terminated after restart = %+v", c)
		}
		if !h.rt.procs["p"][i].isReleased() {
			t.Errorf("run %d not released after restart", i)
		}
	}
	// A long run resets the backoff.
	h.clock.Advance(DefaultBackoffReset)
	h.rt.last(t, "p").end(2)
	waitFor(t, h.c, "p", "backing off", backingOff(3))
	h.clock.Advance(10 * time.Second)
	waitFor(t, h.c, "p", "restarted", runningRun(4))
	// Success ends it under OnFailure.
	h.rt.last(t, "p").end(0)
	got := waitFor(t, h.c, "p", "Succeeded", phaseIs(v1.PhaseSucceeded))
	if got.Status.RestartCount != 4 {
		t.Errorf("restartCount = %d", got.Status.RestartCount)
	}
}

func TestRestartPolicies(t *testing.T) {
	tests := []struct {
		policy  v1.RestartPolicy
		code    int
		restart bool
	}{
		{v1.RestartNever, 1, false},
		{v1.RestartOnFailure, 0, false},
		{v1.RestartOnFailure, 1, true},
		{v1.RestartAlways, 0, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s-%d", tt.policy, tt.code), func(t *testing.T) {
			h := newHarness(t, func(o *Options) { o.BackoffInitial = time.Second })
			p := newProc("p")
			p.Spec.RestartPolicy = tt.policy
			h.create(p)
			h.rt.last(t, "p").end(tt.code)
			got := waitFor(t, h.c, "p", "ended", func(p *v1.Proc) bool { return p != nil && p.Status.Phase != v1.PhaseRunning })
			if restarting := got.Status.Phase == v1.PhasePending; restarting != tt.restart {
				t.Fatalf("phase = %s; restart wanted: %v", got.Status.Phase, tt.restart)
			}
			if tt.restart {
				h.clock.Advance(time.Second)
				waitFor(t, h.c, "p", "restarted", func(p *v1.Proc) bool { return p != nil && p.Status.RestartCount == 1 })
				// Deleting while backing off removes at once.
				h.rt.last(t, "p").end(tt.code)
				waitFor(t, h.c, "p", "backing off", phaseIs(v1.PhasePending))
				if _, err := h.c.Delete(h.ctx, "p", v1.DeleteOptions{RefuseRunning: true}); err != nil {
					t.Fatal(err)
				}
				h.clock.Advance(time.Hour)
				if _, err := h.c.Get(h.ctx, "p"); !errors.Is(err, errdefs.ErrNotFound) {
					t.Fatalf("Get: %v", err)
				}
			}
		})
	}
}

func TestRestartPolicyWithPipesRejected(t *testing.T) {
	h := newHarness(t, nil)
	w := newProc("w")
	w.Spec.Fds = []v1.FdSpec{{Fd: "stdout", PipeWrite: &v1.PipeWriteFd{}}}
	w.Spec.RestartPolicy = v1.RestartAlways
	r := newProc("r")
	r.Spec.Fds = []v1.FdSpec{{Fd: "stdin", PipeRead: &v1.PipeReadFd{ProcID: "w", Fd: "stdout"}}}
	_, err := h.c.Create(h.ctx, []v1.Proc{w, r})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "restartPolicy") {
		t.Fatalf("Create: %v", err)
	}
	w.Spec.RestartPolicy = ""
	if _, err := h.c.Create(h.ctx, []v1.Proc{w, r}); err != nil {
		t.Fatalf("Create of a pipe batch: %v", err)
	}
}

func TestCreateErrors(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("a"))
	unmatched := newProc("r")
	unmatched.Spec.Fds = []v1.FdSpec{{Fd: "stdin", PipeRead: &v1.PipeReadFd{ProcID: "x", Fd: "stdout"}}}
	tests := []struct {
		name  string
		procs []v1.Proc
		class error
		msg   string
	}{
		{"duplicate", []v1.Proc{newProc("b"), newProc("a")}, errdefs.ErrAlreadyExists, "duplicate proc id: a"},
		{"unmatchedPipe", []v1.Proc{unmatched}, errdefs.ErrInvalidArgument, "unmatched read pipe: x stdout"},
		{"invalid", []v1.Proc{{Metadata: v1.ObjectMeta{Name: "c"}}}, errdefs.ErrInvalidArgument, ""},
		{"noName", []v1.Proc{newProc("")}, errdefs.ErrInvalidArgument, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := h.c.Create(h.ctx, tt.procs)
			if !errors.Is(err, tt.class) {
				t.Fatalf("err = %v, want class %v", err, tt.class)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("message = %q, want %q", err.Error(), tt.msg)
			}
		})
	}
	if _, err := h.c.Get(h.ctx, "b"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("a failed batch left b behind: %v", err)
	}
	h.rt.fail = fmt.Errorf("%w: x", runtime.ErrClosed)
	if _, err := h.c.Create(h.ctx, []v1.Proc{newProc("d")}); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("closed runtime: %v", err)
	}
	h.rt.fail = nil
	if _, err := h.c.Create(h.ctx, []v1.Proc{newProc("d")}); err != nil {
		t.Errorf("name still reserved after a failed start: %v", err)
	}

	h.c.SetAccepting(false, "idling")
	_, err := h.c.Create(h.ctx, []v1.Proc{newProc("e")})
	if !errors.Is(err, errdefs.ErrUnavailable) || err.Error() != "agent shutting down: idling" {
		t.Errorf("idling: %v", err)
	}
	if _, _, err := h.c.Apply(h.ctx, newProc("e"), false); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("apply while idling: %v", err)
	}
}

func TestNotFound(t *testing.T) {
	h := newHarness(t, nil)
	ctx := h.ctx
	calls := map[string]func() error{
		"Get":    func() error { _, err := h.c.Get(ctx, "x"); return err },
		"Delete": func() error { _, err := h.c.Delete(ctx, "x", v1.DeleteOptions{}); return err },
		"Signal": func() error { return h.c.Signal(ctx, "x", 15, false) },
		"Result": func() error { _, err := h.c.Result(ctx, "x"); return err },
		"Read":   func() error { _, err := h.c.ReadOutput(ctx, "x", 1, 0, nil); return err },
		"Info":   func() error { _, err := h.c.OutputInfo(ctx, "x", 1); return err },
	}
	for name, f := range calls {
		if err := f(); !errors.Is(err, errdefs.ErrNotFound) || err.Error() != "proc not found: x" {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSignal(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("p"))
	fp := h.rt.last(t, "p")
	if err := h.c.Signal(h.ctx, "p", 10, false); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Signal(h.ctx, "p", 12, true); err != nil {
		t.Fatal(err)
	}
	waitSignals(t, fp, "SIGUSR1", "group:SIGUSR2")
	fp.end(0)
	waitFor(t, h.c, "p", "Succeeded", phaseIs(v1.PhaseSucceeded))
	err := h.c.Signal(h.ctx, "p", 15, false)
	if !errors.Is(err, errdefs.ErrFailedPrecondition) || !errors.Is(err, runtime.ErrNotRunning) || err.Error() != "no process" {
		t.Errorf("signal after exit: %v", err)
	}
}

func TestOutput(t *testing.T) {
	h := newHarness(t, nil)
	p := newProc("p")
	p.Spec.Fds = []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{Encoding: v1.EncodingUTF8}}}
	h.create(p)
	fp := h.rt.last(t, "p")
	fp.mu.Lock()
	fp.output = []byte("hello world")
	fp.mu.Unlock()
	info, err := h.c.OutputInfo(h.ctx, "p", 1)
	if err != nil || info != (v1.OutputInfo{Length: 11, Encoding: v1.EncodingUTF8}) {
		t.Fatalf("OutputInfo = %+v, %v", info, err)
	}
	stop := int64(5)
	b, err := h.c.ReadOutput(h.ctx, "p", 1, 0, &stop)
	if err != nil || string(b) != "hello" {
		t.Fatalf("ReadOutput = %q, %v", b, err)
	}
	if _, err := h.c.ReadOutput(h.ctx, "p", 2, 0, nil); !errors.Is(err, errdefs.ErrInvalidArgument) || !errors.Is(err, runtime.ErrNoFd) {
		t.Errorf("read of an unlisted fd: %v", err)
	}
	fp.end(0)
	waitFor(t, h.c, "p", "Succeeded", phaseIs(v1.PhaseSucceeded))
	info, _ = h.c.OutputInfo(h.ctx, "p", 1)
	if !info.Complete {
		t.Errorf("OutputInfo after done = %+v", info)
	}
}

func TestShutdownHelpers(t *testing.T) {
	h := newHarness(t, nil)
	h.rt.dieOn[""] = []int{sigterm}
	h.create(newProc("a", "/bin/sleep", "1"), newProc("b", "/bin/sleep", "1"))
	h.rt.last(t, "b").end(3)
	waitFor(t, h.c, "b", "Failed", phaseIs(v1.PhaseFailed))
	if h.c.Len() != 2 {
		t.Fatalf("Len = %d", h.c.Len())
	}
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Millisecond)
	if err := h.c.WaitAllExited(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitAllExited with a live proc: %v", err)
	}
	cancel()
	// Only the finished proc is collected while a is running.
	res := h.c.CollectAndDelete()
	if len(res) != 1 || res["b"].State != "terminated" || res["b"].Status == nil || res["b"].Status.ExitCode == nil || *res["b"].Status.ExitCode != 3 {
		t.Errorf("CollectAndDelete = %+v", res)
	}
	if n := h.c.SignalAll(sigterm); n != 1 {
		t.Errorf("SignalAll reached %d", n)
	}
	if err := h.c.WaitAllExited(h.ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, h.c, "a", "Failed", phaseIs(v1.PhaseFailed))
	res = h.c.CollectAndDelete()
	if _, ok := res["a"]; !ok || h.c.Len() != 0 {
		t.Errorf("CollectAndDelete = %+v, Len %d", res, h.c.Len())
	}
	results, _ := h.c.Results(h.ctx)
	if len(results) != 0 {
		t.Errorf("Results after collection = %v", results)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, func(o *Options) { o.Registry = reg })
	// One batch of two, whose forks the fake says took an hour each:
	// each proc's spawn latency is its own, 1 h and 2 h.
	h.rt.mu.Lock()
	h.rt.forkTime = time.Hour
	h.rt.mu.Unlock()
	h.create(newProc("a"), newProc("b"))
	h.rt.last(t, "a").end(0)
	h.rt.last(t, "b").end(1)
	waitFor(t, h.c, "a", "Succeeded", phaseIs(v1.PhaseSucceeded))
	waitFor(t, h.c, "b", "Failed", phaseIs(v1.PhaseFailed))
	h.c.Delete(h.ctx, "b", v1.DeleteOptions{})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetValue() + "}"
			}
			switch {
			case m.Gauge != nil:
				got[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				got[key] = m.GetCounter().GetValue()
			case m.Histogram != nil:
				got[key] = float64(m.GetHistogram().GetSampleCount())
				got[key+"_sum"] = m.GetHistogram().GetSampleSum()
			}
		}
	}
	want := map[string]float64{
		"procstar_procs{Succeeded}":      1,
		"procstar_procs{Failed}":         0,
		"procstar_procs{Running}":        0,
		"procstar_starts_total":          2,
		"procstar_exits_total{Exited}":   2,
		"procstar_exits_total{TimedOut}": 0,
		"procstar_spawn_latency_seconds": 2,
		"procstar_capture_bytes_total":   0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if sum := got["procstar_spawn_latency_seconds_sum"]; math.Abs(sum-3*3600) > 60 {
		t.Errorf("spawn latencies add up to %v s, want 3 h", sum)
	}
}

func TestListAndGet(t *testing.T) {
	h := newHarness(t, nil)
	a := newProc("a")
	a.Metadata.Labels = map[string]string{"team": "x"}
	h.create(newProc("c"), a, newProc("b"))
	sel, err := v1.ParseSelector("team=x")
	if err != nil {
		t.Fatal(err)
	}
	all, _ := h.c.List(h.ctx, nil)
	var names []string
	for _, p := range all.Items {
		names = append(names, p.Metadata.Name)
	}
	if !slices.Equal(names, []string{"a", "b", "c"}) || all.Metadata.ResourceVersion != "3" || all.Kind != v1.KindProcList {
		t.Errorf("List = %v rv %s", names, all.Metadata.ResourceVersion)
	}
	some, _ := h.c.List(h.ctx, sel)
	if len(some.Items) != 1 || some.Items[0].Metadata.Name != "a" {
		t.Errorf("List team=x = %+v", some.Items)
	}
	// Returned objects are copies.
	some.Items[0].Metadata.Labels["team"] = "y"
	again, _ := h.c.Get(h.ctx, "a")
	if again.Metadata.Labels["team"] != "x" {
		t.Error("List returned shared labels")
	}
}

func TestDrainTimedOutCondition(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("p"))
	fp := h.rt.last(t, "p")
	fp.mu.Lock()
	fp.status.Fds = map[string]v1.FdStatus{"stdout": {Length: 5, DrainTimedOut: true}}
	fp.mu.Unlock()
	fp.end(0)
	p := waitFor(t, h.c, "p", "Succeeded", phaseIs(v1.PhaseSucceeded))
	c := cond(&p, ConditionOutputDrained)
	if c == nil || c.Status != v1.ConditionFalse || c.Reason != v1.ReasonDrainTimedOut {
		t.Errorf("OutputDrained = %+v", c)
	}
}

func TestGetReadsLiveStatus(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("p"))
	fp := h.rt.last(t, "p")
	fp.mu.Lock()
	fp.status.Cwd = "/somewhere"
	fp.mu.Unlock()
	got, err := h.c.Get(h.ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Cwd != "/somewhere" || got.Status.Phase != v1.PhaseRunning || !v1.IsConditionTrue(got.Status.Conditions, v1.ConditionStarted) {
		t.Errorf("Get status = %+v", got.Status)
	}
	list, _ := h.c.List(h.ctx, nil)
	if list.Items[0].Status.Cwd != "" || list.Items[0].Status.Pid != fp.pid {
		t.Errorf("List status of a running proc = %+v, want the published pid only", list.Items[0].Status)
	}
}

func TestNewRequiresRuntime(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("New without a runtime succeeded")
	}
	reg := prometheus.NewRegistry()
	if _, err := New(Options{Runtime: newFakeRuntime(), Registry: reg}); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{Runtime: newFakeRuntime(), Registry: reg}); err == nil {
		t.Error("registering the metrics twice succeeded")
	}
}

// TestRestartOfInstantFailure restarts a proc whose every run fails at
// once: each restart comes back to BackingOff within one settle, and must
// still be published.
func TestRestartOfInstantFailure(t *testing.T) {
	h := newHarness(t, nil)
	h.rt.startErrors["p"] = []string{"execve failed: /nope: No such file or directory (os error 2)"}
	p := newProc("p")
	p.Spec.RestartPolicy = v1.RestartAlways
	created := h.create(p)[0]
	if created.Status.Phase != v1.PhasePending || created.Status.RestartCount != 0 {
		t.Fatalf("created status = %+v", created.Status)
	}
	backoff := DefaultBackoffInitial
	for i := int32(1); i <= 4; i++ {
		h.clock.Advance(backoff)
		got := waitFor(t, h.c, "p", "restarted", func(p *v1.Proc) bool { return p != nil && p.Status.RestartCount == i })
		if got.Status.Phase != v1.PhasePending || cond(&got, v1.ConditionTerminated).Reason != v1.ReasonExecFailed {
			t.Errorf("restart %d: %s %+v", i, got.Status.Phase, got.Status.Conditions)
		}
		backoff *= 2
	}
	if n := h.rt.count("p"); n != 5 {
		t.Errorf("%d starts, want 5", n)
	}
}

func TestReadOutputAt(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("p"))
	fp := h.rt.last(t, "p")
	fp.mu.Lock()
	fp.output = []byte("0123456789")
	fp.mu.Unlock()
	buf := make([]byte, 4)
	n, err := h.c.ReadOutputAt(h.ctx, "p", 1, buf, 3)
	if n != 4 || err != nil || string(buf) != "3456" {
		t.Fatalf("ReadOutputAt = %d, %v, %q", n, err, buf)
	}
	n, err = h.c.ReadOutputAt(h.ctx, "p", 1, buf, 8)
	if n != 2 || !errors.Is(err, io.EOF) || string(buf[:n]) != "89" {
		t.Fatalf("ReadOutputAt at the end = %d, %v", n, err)
	}
	if _, err := h.c.ReadOutputAt(h.ctx, "nope", 1, buf, 0); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("unknown proc: %v", err)
	}
	if _, err := h.c.ReadOutputAt(h.ctx, "p", 2, buf, 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("uncaptured fd: %v", err)
	}
}

// TestShutdownDuringRestart: SetAccepting(false) waits for a restart
// already under way, so that a SignalAll after it reaches the new
// process, and a restart due after it does not happen.
func TestShutdownDuringRestart(t *testing.T) {
	h := newHarness(t, nil)
	p := newProc("r")
	p.Spec.RestartPolicy = v1.RestartAlways
	h.create(p)
	gate := make(chan struct{})
	h.rt.mu.Lock()
	h.rt.gate = gate
	h.rt.mu.Unlock()
	h.rt.last(t, "r").end(1)
	// The backoff (10 s by default) runs out; the restart waits at the gate.
	waitFor(t, h.c, "r", "backing off", phaseIs(v1.PhasePending))
	h.clock.Advance(time.Minute)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		h.c.mu.Lock()
		n := h.c.starts
		h.c.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the restart never began")
		}
	}
	stopped := make(chan struct{})
	go func() { h.c.SetAccepting(false, "idling"); close(stopped) }()
	select {
	case <-stopped:
		t.Fatal("SetAccepting returned while a restart was under way")
	case <-time.After(50 * time.Millisecond):
	}
	close(gate)
	<-stopped
	if n := h.c.SignalAll(int(syscall.SIGTERM)); n != 1 {
		t.Fatalf("SignalAll reached %d processes, want the restarted one", n)
	}
	if sent := h.rt.last(t, "r").sent(); len(sent) != 1 || sent[0] != "group:SIGTERM" {
		t.Fatalf("signals to the new process: %v", sent)
	}
	// Its next end is final: no restart once not accepting.
	h.rt.last(t, "r").end(0)
	waitFor(t, h.c, "r", "terminal", terminal)
	h.clock.Advance(time.Hour)
	if n := h.rt.count("r"); n != 2 {
		t.Fatalf("%d runs, want 2", n)
	}
}

// TestBackoffEndsWhenShuttingDown: a proc backing off ends at once when
// the controller stops accepting, not when its backoff would have run out.
func TestBackoffEndsWhenShuttingDown(t *testing.T) {
	h := newHarness(t, nil)
	p := newProc("b")
	p.Spec.RestartPolicy = v1.RestartAlways
	h.create(p)
	h.rt.last(t, "b").end(3)
	waitFor(t, h.c, "b", "backing off", phaseIs(v1.PhasePending))
	h.c.SetAccepting(false, "idling")
	got := waitFor(t, h.c, "b", "failed", phaseIs(v1.PhaseFailed))
	if got.Status.ExitCode == nil || *got.Status.ExitCode != 3 || h.rt.count("b") != 1 {
		t.Fatalf("status %+v, runs %d", got.Status, h.rt.count("b"))
	}
}

// TestForceApplyWhileShuttingDown: a force replace that could not create
// the new proc keeps the old one.
func TestForceApplyWhileShuttingDown(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("a"))
	h.c.SetAccepting(false, "idling")
	_, _, err := h.c.Apply(h.ctx, newProc("a", "/bin/false"), true)
	if !errors.Is(err, errdefs.ErrUnavailable) || err.Error() != "agent shutting down: idling" {
		t.Fatalf("Apply: %v", err)
	}
	if _, err := h.c.Get(h.ctx, "a"); err != nil {
		t.Fatalf("the old proc is gone: %v", err)
	}
}

// TestRestartStartFailureRetries: a restart whose start fails shows no
// pid or exit of the last run, and is tried again after a backoff.
func TestRestartStartFailureRetries(t *testing.T) {
	h := newHarness(t, nil)
	p := newProc("s")
	p.Spec.RestartPolicy = v1.RestartAlways
	h.create(p)
	h.rt.mu.Lock()
	h.rt.fail = errors.New("creating pipe: too many open files")
	h.rt.mu.Unlock()
	h.rt.last(t, "s").end(0)
	waitFor(t, h.c, "s", "backing off", phaseIs(v1.PhasePending))
	h.clock.Advance(time.Minute)
	got := waitFor(t, h.c, "s", "a failed start", func(p *v1.Proc) bool {
		return p != nil && len(p.Status.Errors) > 0
	})
	st := got.Status
	if st.Phase != v1.PhasePending || st.Pid != 0 || st.ExitCode != nil || st.RestartCount != 1 ||
		!v1.IsConditionTrue(st.Conditions, v1.ConditionTerminated) || v1.IsConditionTrue(st.Conditions, v1.ConditionStarted) {
		t.Fatalf("status after a failed restart: %+v", st)
	}
	h.rt.mu.Lock()
	h.rt.fail = nil
	h.rt.mu.Unlock()
	h.clock.Advance(time.Hour)
	got = waitFor(t, h.c, "s", "running again", phaseIs(v1.PhaseRunning))
	if got.Status.RestartCount != 2 || len(got.Status.Errors) != 0 || got.Status.Pid == 0 {
		t.Fatalf("status after the retry: %+v", got.Status)
	}
}

// TestDeleteWhileDraining: a proc deleted after its process exited but
// before its output drained goes at once, as procstar's (its name is
// free again), with the status of its exit, not the Running its worker
// had published.
func TestDeleteWhileDraining(t *testing.T) {
	h := newHarness(t, nil)
	h.create(newProc("d"))
	fp := h.rt.last(t, "d")
	fp.exit(0) // reaped; the captures still drain
	w, err := h.c.Watch(h.ctx, nil, v1.FieldSelector{}, h.c.currentRV())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.c.Delete(h.ctx, "d", v1.DeleteOptions{RefuseRunning: true}); err != nil {
		t.Fatalf("Delete of an exited proc: %v", err)
	}
	if _, err := h.c.Get(h.ctx, "d"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get after Delete: %v", err)
	}
	h.create(newProc("d")) // the name is free
	fp.finish()
	for ev := range w {
		if ev.Type != v1.Deleted {
			continue
		}
		if ev.Object.Status.Phase != v1.PhaseSucceeded || !v1.IsConditionTrue(ev.Object.Status.Conditions, v1.ConditionTerminated) {
			t.Fatalf("DELETED object status %s %+v, want Succeeded and Terminated", ev.Object.Status.Phase, ev.Object.Status.Conditions)
		}
		return
	}
	t.Fatal("no DELETED event")
}

// TestTimeoutAfterReap: a timeout due just as the process ended on its
// own (reaped, its end not yet seen) does not make its exit TimedOut.
func TestTimeoutAfterReap(t *testing.T) {
	h := newHarness(t, nil)
	p := newProc("t")
	p.Spec.Timeout = &v1.Timeout{Seconds: 1}
	h.create(p)
	fp := h.rt.last(t, "t")
	fp.reap(0)
	h.clock.Advance(2 * time.Second)
	// The worker handles the timeout: it tries to stop the process and
	// arms the SIGKILL of the grace period, a new timer.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		h.clock.mu.Lock()
		armed := slices.ContainsFunc(h.clock.timers, func(t *fakeTimer) bool { return !t.fired })
		h.clock.mu.Unlock()
		if armed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the worker never handled the timeout")
		}
	}
	close(fp.exited)
	fp.finish()
	got := waitFor(t, h.c, "t", "terminal", terminal)
	if got.Status.Phase != v1.PhaseSucceeded || cond(&got, v1.ConditionTerminated).Reason != v1.ReasonExited {
		t.Fatalf("status %s %+v, want Succeeded, Exited", got.Status.Phase, got.Status.Conditions)
	}
}

// TestStartPanicDoesNotHoldShutdown: a Create whose runtime start panics
// (and whose caller recovers, as the REST handler does) leaves no start
// counted, so SetAccepting(false) does not wait for it.
func TestStartPanicDoesNotHoldShutdown(t *testing.T) {
	h := newHarness(t, nil)
	h.rt.mu.Lock()
	h.rt.panics = true
	h.rt.mu.Unlock()
	func() {
		defer func() { _ = recover() }()
		_, _ = h.c.Create(h.ctx, []v1.Proc{newProc("x")})
		t.Error("Create did not panic")
	}()
	done := make(chan struct{})
	go func() { h.c.SetAccepting(false, "idling"); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("SetAccepting waits for a start that panicked")
	}
	h.rt.mu.Lock()
	h.rt.panics = false
	h.rt.mu.Unlock()
	if _, err := h.c.Get(h.ctx, "x"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Get: %v", err)
	}
}
