package controller

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/runtime"
	"procstar.dev/procstar/runtime/cgroup"
)

func TestClassifyOOM(t *testing.T) {
	code := func(n int) *int { return &n }
	oom := func(n uint64) *v1.CgroupAccounting {
		return &v1.CgroupAccounting{CPUStat: &v1.CgroupCPUStat{}, Memory: &v1.CgroupMemory{OOMKills: n}}
	}
	tests := []struct {
		name   string
		st     v1.ProcStatus
		stop   string
		phase  v1.ProcPhase
		reason string
	}{
		{"killed by the OOM killer", v1.ProcStatus{Signal: "SIGKILL", CgroupAccounting: oom(1)}, "", v1.PhaseFailed, v1.ReasonOOMKilled},
		{"a child OOM-killed, then exit 1", v1.ProcStatus{ExitCode: code(1), CgroupAccounting: oom(2)}, "", v1.PhaseFailed, v1.ReasonOOMKilled},
		{"a child OOM-killed, but exit 0", v1.ProcStatus{ExitCode: code(0), CgroupAccounting: oom(1)}, "", v1.PhaseSucceeded, v1.ReasonExited},
		{"OOM wins over a stop", v1.ProcStatus{Signal: "SIGKILL", CgroupAccounting: oom(1)}, v1.ReasonTimedOut, v1.PhaseFailed, v1.ReasonOOMKilled},
		{"no OOM", v1.ProcStatus{Signal: "SIGKILL", CgroupAccounting: oom(0)}, "", v1.PhaseFailed, v1.ReasonSignaled},
		{"no memory controller", v1.ProcStatus{Signal: "SIGKILL", CgroupAccounting: &v1.CgroupAccounting{}}, "", v1.PhaseFailed, v1.ReasonSignaled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := classify(tt.st, tt.stop)
			if e.phase != tt.phase || e.reason != tt.reason {
				t.Fatalf("classify = %+v, want %s %s", e, tt.phase, tt.reason)
			}
			if tt.reason == v1.ReasonOOMKilled && !strings.Contains(e.message, "OOM") {
				t.Fatalf("message %q", e.message)
			}
		})
	}
}

func TestResourcesCondition(t *testing.T) {
	tests := []struct {
		rs     v1.ResourceStatus
		status v1.ConditionStatus
		reason string
		msg    string
	}{
		{v1.ResourceStatus{Backend: runtime.BackendCgroup, Enforced: true, Cgroup: "/a/proc-x-1"}, v1.ConditionTrue, v1.ReasonCgroup, "in /a/proc-x-1"},
		{v1.ResourceStatus{Backend: runtime.BackendSystemd, Enforced: true, Unit: "procstar1.slice"}, v1.ConditionTrue, v1.ReasonSystemd, "in procstar1.slice"},
		{v1.ResourceStatus{Backend: runtime.BackendCgroup, Message: "memory: not enabled"}, v1.ConditionFalse, v1.ReasonControllerUnavailable, "memory: not enabled"},
		{v1.ResourceStatus{Backend: runtime.BackendNone, Enforced: true, Message: "process group only"}, v1.ConditionFalse, v1.ReasonNoResourceControl, "process group only"},
	}
	for _, tt := range tests {
		s, r, m := resourcesCondition(&tt.rs)
		if s != tt.status || r != tt.reason || m != tt.msg {
			t.Errorf("resourcesCondition(%+v) = %s %s %q, want %s %s %q", tt.rs, s, r, m, tt.status, tt.reason, tt.msg)
		}
	}
}

// TestRealCgroupResources runs procs in per-proc cgroups through the
// controller: the condition names the cgroup, and limits the subtree
// cannot enforce are refused as invalid, with the reason.
func TestRealCgroupResources(t *testing.T) {
	mount, err := cgroup.Mount()
	if err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	dir := filepath.Join(mount, fmt.Sprintf("procstar-ctltest-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cgroup2 not writable: %v", err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			t.Errorf("cgroups left: %v", err)
		}
	})
	root, err := cgroup.OpenRoot(dir, cgroup.RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, ctx := newRealWith(t, nil, runtime.Options{Cgroups: root})

	if _, err := c.Create(ctx, []v1.Proc{shProc("cg", "(sleep 300 &); exit 0")}); err != nil {
		t.Fatal(err)
	}
	p := waitFor(t, c, "cg", "terminal", terminal)
	rc := cond(&p, v1.ConditionResourcesEnforced)
	if rc == nil || rc.Status != v1.ConditionTrue || rc.Reason != v1.ReasonCgroup || !strings.Contains(rc.Message, "/proc-cg-") {
		t.Fatalf("condition %+v", rc)
	}
	if p.Status.Resources == nil || p.Status.CgroupAccounting == nil {
		t.Fatalf("status %+v", p.Status)
	}
	if _, err := c.Delete(ctx, "cg", v1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	if len(root.Controllers()) == 0 {
		limited := shProc("limited", "exit 0")
		limited.Spec.Resources = &v1.Resources{TasksMax: ptr(int64(8))}
		_, err := c.Create(ctx, []v1.Proc{limited})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !errors.Is(err, runtime.ErrResourcesUnavailable) || !strings.Contains(err.Error(), "pids") {
			t.Fatalf("create with limits: %v", err)
		}
	}
}

// TestRuntimeMaxWithoutSystemd: procstar's scope.runtimeMaxUSec is a
// limit too; with no systemd scope to enforce it, the controller ends the
// run the way systemd would.
func TestRuntimeMaxWithoutSystemd(t *testing.T) {
	h := newHarness(t, nil)
	h.rt.dieOn["p"] = []int{sigkill}
	p := newProc("p", "/bin/sleep", "100")
	p.Spec.SystemdProperties = &v1.SystemdProperties{Scope: v1.SystemdScope{RuntimeMaxUSec: ptr(uint64(5_000_000))}}
	h.create(p)
	fp := h.rt.last(t, "p")
	h.clock.Advance(4 * time.Second)
	h.c.Get(h.ctx, "p")
	if got := fp.sent(); len(got) != 0 {
		t.Fatalf("signalled before runtimeMaxUSec: %v", got)
	}
	h.clock.Advance(time.Second)
	waitSignals(t, fp, "group:SIGTERM")
	h.clock.Advance(89 * time.Second)
	h.c.Get(h.ctx, "p")
	if got := fp.sent(); len(got) != 1 {
		t.Fatalf("SIGKILL before systemd's 90 s: %v", got)
	}
	h.clock.Advance(time.Second)
	waitSignals(t, fp, "group:SIGTERM", "group:SIGKILL")
	got := waitFor(t, h.c, "p", "terminal", terminal)
	if cond(&got, v1.ConditionTerminated).Reason != v1.ReasonTimedOut {
		t.Errorf("conditions %+v", got.Status.Conditions)
	}
}

func TestRunTimeout(t *testing.T) {
	spec := &v1.ProcSpec{SystemdProperties: &v1.SystemdProperties{Scope: v1.SystemdScope{
		RuntimeMaxUSec: ptr(uint64(2_000_000)), RuntimeRandomizedExtraUSec: ptr(uint64(1_000_000))}}}
	if to := runTimeout(spec, &v1.ResourceStatus{Backend: runtime.BackendSystemd}); to != nil {
		t.Fatalf("systemd enforces it itself, got %+v", to)
	}
	for range 20 {
		to := runTimeout(spec, &v1.ResourceStatus{Backend: runtime.BackendCgroup})
		if to == nil || to.Seconds < 2 || to.Seconds >= 3 || to.GracePeriod() != 90*time.Second {
			t.Fatalf("timeout %+v", to)
		}
	}
	// systemd's infinity, extra or not, is no limit (the sum saturates).
	spec.SystemdProperties.Scope.RuntimeMaxUSec = ptr(uint64(math.MaxUint64))
	if to := runTimeout(spec, &v1.ResourceStatus{Backend: runtime.BackendCgroup}); to != nil {
		t.Fatalf("infinity: timeout %+v", to)
	}
	spec.SystemdProperties.Scope.RuntimeMaxUSec = ptr(uint64(math.MaxUint64 - 10))
	for range 20 {
		if to := runTimeout(spec, &v1.ResourceStatus{Backend: runtime.BackendCgroup}); to != nil && to.Seconds < 1e12 {
			t.Fatalf("near infinity: timeout %+v", to)
		}
	}
	own := &v1.Timeout{Seconds: 7}
	spec.Timeout = own
	if runTimeout(spec, nil) != own {
		t.Fatal("spec.timeout must win")
	}
}
