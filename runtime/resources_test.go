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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/rawspawn"
	"procstar.dev/procstar/runtime/cgroup"
	"procstar.dev/procstar/runtime/systemd"
	"procstar.dev/procstar/runtime/systemd/fakesystemd"
)

// testCgroupDir makes a fresh directory under the cgroup2 mount, removed
// at cleanup, or skips the test saying why there is none.
func testCgroupDir(t testing.TB) (mount, dir string) {
	t.Helper()
	mount, err := cgroup.Mount()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	dir = filepath.Join(mount, fmt.Sprintf("procstar-rttest-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cgroup2 at %s is not writable: %v", mount, err)
	}
	t.Cleanup(func() {
		// Children first; everything in them is dead by now.
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.IsDir() {
				_ = os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("test cgroup left behind: %v", err)
		}
	})
	return mount, dir
}

func cgroupRT(t testing.TB, opts Options) (*Runtime, *cgroup.Root) {
	t.Helper()
	_, dir := testCgroupDir(t)
	root, err := cgroup.OpenRoot(dir, cgroup.RootOptions{})
	if err != nil {
		t.Fatalf("OpenRoot: %v", err)
	}
	t.Cleanup(func() { _ = root.Close() })
	opts.Cgroups = root
	return newRT(t, opts), root
}

// childDirs lists the cgroups under dir.
func childDirs(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// pidsOf parses the pids a script printed, one per line.
func pidsOf(t testing.TB, out string) []int {
	t.Helper()
	var pids []int
	for _, f := range strings.Fields(out) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("output %q: %v", out, err)
		}
		pids = append(pids, n)
	}
	if len(pids) == 0 {
		t.Fatalf("no pids in %q", out)
	}
	return pids
}

// waitGone waits until none of pids is alive.
func waitGone(t testing.TB, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("pid %d is still alive", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func TestCgroupTreeKilledAtExit(t *testing.T) {
	rt, root := cgroupRT(t, Options{})
	// A double-forked sleep outlives its parent, which exits at once.
	p, st := run(t, rt, shSpec(`(sleep 100 & echo $!) ; (setsid sleep 100 & echo $!); exit 3`))
	if exitCode(st) != 3 {
		t.Fatalf("status %+v", st)
	}
	waitGone(t, pidsOf(t, output(t, p, 1)))
	rs := st.Resources
	if rs == nil || rs.Backend != BackendCgroup || !rs.Enforced || rs.TreeKill != "cgroup" || !strings.HasPrefix(rs.Cgroup, "/") {
		t.Fatalf("resources %+v", rs)
	}
	if !strings.HasPrefix(filepath.Base(rs.Cgroup), "proc-p-") {
		t.Fatalf("cgroup %q", rs.Cgroup)
	}
	a := st.CgroupAccounting
	if a == nil || a.CPUStat == nil {
		t.Fatalf("accounting %+v", a)
	}
	// The cgroup goes right after Done; Release waits for that.
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if d := childDirs(t, root.Dir()); len(d) != 0 {
		t.Fatalf("cgroups left behind: %v", d)
	}
}

func TestCgroupCPUAccounting(t *testing.T) {
	rt, _ := cgroupRT(t, Options{})
	// The work happens in a grandchild: the cgroup counts it.
	_, st := run(t, rt, shSpec(`sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'`))
	a := st.CgroupAccounting
	if a == nil || a.CPUStat == nil || a.CPUStat.UsageUsec < 10000 || a.CPUStat.UserUsec == 0 {
		t.Fatalf("accounting %+v", a)
	}
}

func TestCgroupStopReachesSetsidChildren(t *testing.T) {
	rt, root := cgroupRT(t, Options{})
	spec := shSpec(`setsid sleep 100 & echo $!; setsid sleep 100 & echo $!; wait`)
	ps, err := rt.Start(context.Background(), []Request{{ID: "tree", Spec: spec}})
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	t.Cleanup(func() { p.Release() })
	var out string
	for deadline := time.Now().Add(5 * time.Second); len(strings.Fields(out)) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q", out)
		}
		b, _ := p.Output(1)
		out = string(b)
	}
	pids := pidsOf(t, out)
	if err := p.SignalGroup(int(syscall.SIGTERM)); err != nil {
		t.Fatal(err)
	}
	waitDone(t, p, 10*time.Second)
	waitGone(t, pids)
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if d := childDirs(t, root.Dir()); len(d) != 0 {
		t.Fatalf("cgroups left behind: %v", d)
	}
}

func TestCgroupKillTreeOff(t *testing.T) {
	rt, root := cgroupRT(t, Options{})
	spec := shSpec(`setsid sleep 100 & echo $!`)
	spec.KillTree = ptr(false)
	p, st := run(t, rt, spec)
	pids := pidsOf(t, output(t, p, 1))
	if !alive(pids[0]) {
		t.Fatal("leftover killed despite killTree: false")
	}
	if st.Resources == nil || st.Resources.TreeKill != "off" {
		t.Fatalf("resources %+v", st.Resources)
	}
	if d := childDirs(t, root.Dir()); len(d) != 1 {
		t.Fatalf("cgroups %v, want the leftover's", d)
	}
	// Once the leftover is gone, its cgroup is removed.
	if err := unix.Kill(pids[0], unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); len(childDirs(t, root.Dir())) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("cgroup not removed: %v", childDirs(t, root.Dir()))
		}
	}
}

// TestCloseLeavesPopulatedCgroup: a killTree: false leftover's cgroup
// stays at Close, and the runtime keeps no fd of it open.
func TestCloseLeavesPopulatedCgroup(t *testing.T) {
	rt, root := cgroupRT(t, Options{})
	spec := shSpec(`setsid sleep 100 >/dev/null 2>&1 & echo $!`)
	spec.KillTree = ptr(false)
	p, _ := run(t, rt, spec)
	pids := pidsOf(t, output(t, p, 1))
	t.Cleanup(func() { unix.Kill(pids[0], unix.SIGKILL); waitGone(t, pids) })
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if d := childDirs(t, root.Dir()); len(d) != 1 {
		t.Fatalf("cgroups %v, want the leftover's", d)
	}
	fds, _ := os.ReadDir("/proc/self/fd")
	for _, fd := range fds {
		if target, err := os.Readlink("/proc/self/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, root.Dir()+"/") {
			t.Errorf("fd %s still open on %s", fd.Name(), target)
		}
	}
}

func TestLimitsWithoutControllers(t *testing.T) {
	limited := func() *v1.ProcSpec {
		s := shSpec("exit 0")
		s.Resources = &v1.Resources{MemoryMax: ptr(v1.Quantity("64Mi")), TasksMax: ptr(int64(16))}
		return s
	}
	t.Run("none", func(t *testing.T) {
		rt := newRT(t, Options{NoResourcesReason: "no cgroup v2 here"})
		_, err := rt.Start(context.Background(), []Request{{ID: "l", Spec: limited()}})
		if !errors.Is(err, ErrResourcesUnavailable) || !strings.Contains(err.Error(), "no cgroup v2 here") || !strings.Contains(err.Error(), "best-effort") {
			t.Fatalf("err %v", err)
		}
		// Without limits, the proc runs and its status says what is missing.
		_, st := run(t, rt, shSpec("exit 0"))
		if rs := st.Resources; rs == nil || rs.Backend != BackendNone || !rs.Enforced || rs.TreeKill != "processGroup" || !strings.Contains(rs.Message, "process group") {
			t.Fatalf("resources %+v", rs)
		}
	})
	t.Run("none best effort", func(t *testing.T) {
		rt := newRT(t, Options{BestEffortLimits: true, NoResourcesReason: "no cgroup v2 here"})
		_, st := run(t, rt, limited())
		if rs := st.Resources; rs == nil || rs.Enforced || !strings.Contains(rs.Message, "not enforced") {
			t.Fatalf("resources %+v", rs)
		}
	})
	t.Run("cgroup", func(t *testing.T) {
		rt, root := cgroupRT(t, Options{})
		if len(missing([]string{"memory", "pids"}, root.Controllers())) == 0 {
			t.Skip("memory and pids controllers are enabled here: limits are enforceable")
		}
		_, err := rt.Start(context.Background(), []Request{{ID: "l", Spec: limited()}})
		if !errors.Is(err, ErrResourcesUnavailable) || !strings.Contains(err.Error(), root.Dir()) {
			t.Fatalf("err %v", err)
		}
		if d := childDirs(t, root.Dir()); len(d) != 0 {
			t.Fatalf("cgroups left behind: %v", d)
		}
	})
	t.Run("cgroup oom stop", func(t *testing.T) {
		// OOMPolicy=stop is memory.oom.group=1: it needs memory, like kill.
		rt, root := cgroupRT(t, Options{})
		spec := shSpec(`cat "` + rt.cgroupMount + `$(sed -n 's/^0:://p' /proc/self/cgroup)/memory.oom.group"`)
		spec.SystemdProperties = &v1.SystemdProperties{Scope: v1.SystemdScope{OOMPolicy: ptr("stop")}}
		if !slices.Contains(root.Controllers(), "memory") {
			// Procstar's properties alone are best effort: it runs.
			_, st := run(t, rt, spec)
			if rs := st.Resources; rs == nil || rs.Enforced || !strings.Contains(rs.Message, "memory") || exitCode(st) != 1 {
				t.Fatalf("status %+v, resources %+v", st, rs)
			}
			return
		}
		p, st := run(t, rt, spec)
		if rs := st.Resources; rs == nil || !rs.Enforced || rs.Message != oomStopNote {
			t.Fatalf("resources %+v", rs)
		}
		if out := output(t, p, 1); out != "1\n" {
			t.Fatalf("memory.oom.group %q, want 1", out)
		}
	})
	// What Apsis sends for every job: procstar ignores these without
	// systemd, so they never refuse a proc; mixed with spec.resources,
	// the strict policy of spec.resources holds.
	apsis := func() *v1.ProcSpec {
		s := shSpec("exit 0")
		s.SystemdProperties = &v1.SystemdProperties{Slice: v1.SystemdSlice{
			MemoryMax: ptr(uint64(1 << 30)), MemorySwapMax: ptr(uint64(0)), TasksMax: ptr(uint64(512)),
			MemoryAccounting: ptr(true), TasksAccounting: ptr(true)}}
		return s
	}
	t.Run("procstar properties", func(t *testing.T) {
		cg, root := cgroupRT(t, Options{})
		if len(missing([]string{"memory", "pids"}, root.Controllers())) == 0 {
			t.Skip("memory and pids controllers are enabled here: limits are enforceable")
		}
		for name, rt := range map[string]*Runtime{"none": newRT(t, Options{NoResourcesReason: "no cgroup v2 here"}), "cgroup": cg} {
			_, st := run(t, rt, apsis())
			if rs := st.Resources; rs == nil || rs.Enforced || rs.Message == "" || exitCode(st) != 0 {
				t.Fatalf("%s: status %+v, resources %+v", name, st, rs)
			}
			mixed := apsis()
			mixed.Resources = &v1.Resources{CPUWeight: ptr(int64(50))}
			if _, err := rt.Start(context.Background(), []Request{{ID: "m", Spec: mixed}}); !errors.Is(err, ErrResourcesUnavailable) {
				t.Fatalf("%s: mixed spec: err %v", name, err)
			}
		}
	})
	t.Run("cgroup best effort", func(t *testing.T) {
		rt, root := cgroupRT(t, Options{BestEffortLimits: true})
		if len(missing([]string{"memory", "pids"}, root.Controllers())) == 0 {
			t.Skip("memory and pids controllers are enabled here: limits are enforceable")
		}
		_, st := run(t, rt, limited())
		if rs := st.Resources; rs == nil || rs.Backend != BackendCgroup || rs.Enforced || rs.Message == "" {
			t.Fatalf("resources %+v", rs)
		}
		if exitCode(st) != 0 {
			t.Fatalf("status %+v", st)
		}
	})
}

func TestSpecLimits(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	spec := &v1.ProcSpec{
		SystemdProperties: &v1.SystemdProperties{
			Slice: v1.SystemdSlice{MemoryMax: u(1 << 20), MemoryHigh: u(1 << 19), TasksMax: u(7), MemoryMin: u(1 << 18), MemoryLow: u(1 << 17)},
			Scope: v1.SystemdScope{OOMPolicy: ptr("kill")},
		},
		Resources: &v1.Resources{MemoryMax: ptr(v1.Quantity("2Gi")), CPUMax: ptr(v1.Quantity("500m")), CPUWeight: ptr(int64(50))},
	}
	l := specLimits(spec)
	switch {
	case l.MemoryMax == nil || *l.MemoryMax != 2<<30:
		t.Fatalf("memoryMax %v: resources must win", l.MemoryMax)
	case l.MemoryHigh == nil || *l.MemoryHigh != 1<<19:
		t.Fatalf("memoryHigh %v", l.MemoryHigh)
	case l.PidsMax == nil || *l.PidsMax != 7:
		t.Fatalf("pidsMax %v", l.PidsMax)
	case l.CPUMax == nil || *l.CPUMax != (cgroup.CPUMax{QuotaUsec: 50000, PeriodUsec: 100000}):
		t.Fatalf("cpuMax %v", l.CPUMax)
	case l.MemoryMin == nil || *l.MemoryMin != 1<<18 || l.MemoryLow == nil || *l.MemoryLow != 1<<17:
		t.Fatalf("memoryMin %v memoryLow %v", l.MemoryMin, l.MemoryLow)
	case l.OOMGroup == nil || !*l.OOMGroup:
		t.Fatalf("oomGroup %v: OOMPolicy=kill is memory.oom.group", l.OOMGroup)
	case l.CPUWeight == nil || *l.CPUWeight != 50 || l.MemorySwapMax != nil:
		t.Fatalf("limits %+v", l)
	}
	if !specLimits(&v1.ProcSpec{}).IsZero() {
		t.Fatal("empty spec has limits")
	}
	policy := func(p string) *v1.ProcSpec {
		return &v1.ProcSpec{SystemdProperties: &v1.SystemdProperties{Scope: v1.SystemdScope{OOMPolicy: ptr(p)}}}
	}
	if !specLimits(policy("continue")).IsZero() {
		t.Fatal("OOMPolicy=continue asks nothing of the cgroup")
	}
	if l := specLimits(policy("stop")); l.OOMGroup == nil || !*l.OOMGroup || len(l.Controllers()) != 1 {
		t.Fatalf("OOMPolicy=stop: %+v, want memory.oom.group alone", l)
	}
}

func TestCgroupName(t *testing.T) {
	for id, want := range map[string]string{
		"job-1":       "proc-job-1-7",
		"a/b c.d":     "proc-a_b_c_d-7",
		"cgroup.kill": "proc-cgroup_kill-7",
		"":            "proc--7",
	} {
		if got := cgroupName(id, 7); got != want {
			t.Errorf("cgroupName(%q) = %q, want %q", id, got, want)
		}
	}
	if n := cgroupName(strings.Repeat("x", 500), 1); len(n) > 80 {
		t.Errorf("name of %d bytes", len(n))
	}
}

func TestPerfCounters(t *testing.T) { holds(t, testPerfCounters) }

func testPerfCounters(t *testing.T, tramp bool) {
	rt := newRT(t, Options{ForceTrampoline: tramp})
	rt.trampoline = false // as in modes
	spec := shSpec(`sh -c 'i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done'`)
	spec.PerfCounters = true
	_, st := run(t, rt, spec)
	pc := st.PerfCounters
	if pc == nil {
		t.Fatalf("no perf counters in %+v", st)
	}
	for name, v := range map[string]*uint64{"instructions": pc.Instructions, "cycles": pc.Cycles, "taskClockNs": pc.TaskClockNs} {
		if (v == nil) == (pc.Unsupported[name] == "") {
			t.Errorf("%s: value %v, unsupported %q: want exactly one", name, v, pc.Unsupported[name])
		}
	}
	// task-clock works wherever perf_event_open does; the grandchild's
	// loop takes tens of milliseconds.
	if pc.TaskClockNs != nil && *pc.TaskClockNs < 5e6 {
		t.Errorf("task clock %d ns for a busy grandchild", *pc.TaskClockNs)
	}
	if exitCode(st) != 0 || len(st.Errors) != 0 {
		t.Fatalf("status %+v", st)
	}
}

// fakeSystemdRT runs a Runtime with a systemd backend against a fake
// manager on a private bus, which makes real cgroups under a test dir.
func fakeSystemdRT(t *testing.T, fo fakesystemd.Options, tramp bool) (*Runtime, *fakesystemd.Fake, string) {
	t.Helper()
	mount, dir := testCgroupDir(t)
	fo.CgroupRoot, fo.CgroupMount = dir, mount
	f := fakesystemd.Start(t, fo)
	m, err := systemd.Connect(context.Background(), systemd.Options{Address: f.Address(), CgroupMount: mount})
	if err != nil {
		t.Fatalf("connecting to the fake manager: %v", err)
	}
	t.Cleanup(m.Close)
	rt := newRT(t, Options{Systemd: m, ForceTrampoline: tramp})
	rt.trampoline = false // as in modes: the ptrace hold even where signals were dirty
	if !tramp && !rt.canHoldByTrace() {
		t.Skip("ptrace cannot hold children here; the trampoline hold is tested")
	}
	return rt, f, dir
}

// holds runs f with each way of holding a child before it runs its
// program: ptrace (stopped at exec) and the trampoline (blocked before
// exec).
func holds(t *testing.T, f func(t *testing.T, tramp bool)) {
	for _, tramp := range []bool{false, true} {
		name := "ptrace"
		if tramp {
			name = "trampoline"
		}
		t.Run(name, func(t *testing.T) { f(t, tramp) })
	}
}

// neverRan reports whether st is the end of a held child killed before
// it ran its program: exit 63 from the trampoline, SIGKILL under ptrace.
func neverRan(st v1.ProcStatus, tramp bool) bool {
	if tramp {
		return exitCode(st) == 63
	}
	return st.Signal == "SIGKILL"
}

func TestSystemdBackend(t *testing.T) { holds(t, testSystemdBackend) }

func testSystemdBackend(t *testing.T, tramp bool) {
	rt, f, dir := fakeSystemdRT(t, fakesystemd.Options{}, tramp)
	spec := shSpec(`cat /proc/self/cgroup; grep TracerPid /proc/self/status; (setsid sleep 100 & echo $! >&2); exit 4`)
	spec.SystemdProperties = &v1.SystemdProperties{Scope: v1.SystemdScope{OOMPolicy: ptr("continue")}, Slice: v1.SystemdSlice{MemoryAccounting: ptr(true)}}
	p, st := run(t, rt, spec)
	if exitCode(st) != 4 || len(st.Errors) != 0 {
		t.Fatalf("status %+v", st)
	}
	rs := st.Resources
	if rs == nil || rs.Backend != BackendSystemd || !strings.HasSuffix(rs.Unit, ".slice") || !strings.HasPrefix(rs.Unit, "procstar") || rs.TreeKill != "systemd" {
		t.Fatalf("resources %+v", rs)
	}
	// Let go, not traced any more.
	if out := output(t, p, 1); !strings.Contains(out, "TracerPid:\t0\n") {
		t.Fatalf("child's status %q", out)
	}
	// The child ran inside its scope, under its slice.
	if out := output(t, p, 1); !strings.Contains(out, rs.Cgroup+"/") || !strings.Contains(out, ".scope") {
		t.Fatalf("child's cgroup %q, slice's %q", out, rs.Cgroup)
	}
	waitGone(t, pidsOf(t, output(t, p, 2)))
	if st.CgroupAccounting == nil || st.CgroupAccounting.CPUStat == nil {
		t.Fatalf("accounting %+v", st.CgroupAccounting)
	}
	// The units are stopped right after Done; Release waits for that.
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if u := f.Units(); len(u) != 0 {
		t.Fatalf("units left: %v", u)
	}
	if d := childDirs(t, dir); len(d) != 0 {
		t.Fatalf("cgroups left: %v", d)
	}
}

func TestSystemdFailureNeverRuns(t *testing.T) { holds(t, testSystemdFailureNeverRuns) }

func testSystemdFailureNeverRuns(t *testing.T, tramp bool) {
	rt, f, _ := fakeSystemdRT(t, fakesystemd.Options{FailUnit: ".scope"}, tramp)
	marker := filepath.Join(t.TempDir(), "ran")
	_, st := run(t, rt, shSpec("touch "+marker))
	if len(st.Errors) != 1 || !strings.HasPrefix(st.Errors[0], "error with systemd: ") {
		t.Fatalf("errors %q, status %+v", st.Errors, st)
	}
	if !neverRan(st, tramp) {
		t.Fatalf("status %+v", st)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the child ran although its scope failed")
	}
	if u := f.Units(); len(u) != 0 {
		t.Fatalf("units left: %v", u)
	}
}

// BenchmarkSpawnCgroup measures spawn+reap of /bin/true with a cgroup per
// proc (created, cloned into, killed, read and removed) against the same
// runtime without cgroups, interleaved in one run. extra-µs/proc is the
// per-proc cost of the cgroup backend (target ≤ 150 µs): at conc=1 it is
// the added latency of one spawn after another, at conc=2 the added wall
// time per proc when two callers keep both cores busy (throughput). The
// systemd
// sub-benchmark runs against the fake manager on a private bus: its
// extra-µs/proc is an estimate, dbus-calls/proc the round trips a real
// systemd would serve (each costing more there than in the fake).
func BenchmarkSpawnCgroup(b *testing.B) {
	spec := &v1.ProcSpec{Argv: []string{"/bin/true"}}
	plain := newRT(b, Options{})
	plain.trampoline = false
	for _, conc := range []int{1, 2} {
		b.Run("cgroup/conc="+strconv.Itoa(conc), func(b *testing.B) {
			rt, root := cgroupRT(b, Options{})
			rt.trampoline = false
			base := func() error { return runtimeSpawnTrue(plain, spec) }
			withCG := func() error { return runtimeSpawnTrue(rt, spec) }
			// The raw pair: a bare ForkExec, and one into a fresh cgroup
			// made and removed around it, as a minimal hand-written agent
			// would.
			env := os.Environ()
			var seq atomic.Int64
			rawPlain := func() error { return rawspawn.Run("/bin/true", env) }
			rawCG := func() error {
				dir := filepath.Join(root.Dir(), "raw-"+strconv.FormatInt(seq.Add(1), 10))
				if err := unix.Mkdir(dir, 0o755); err != nil {
					return err
				}
				fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				err = rawspawn.RunInCgroup("/bin/true", env, fd)
				unix.Close(fd)
				if rerr := unix.Rmdir(dir); err == nil {
					err = rerr
				}
				return err
			}
			interleave(b, 20, conc, base, withCG) // warm up
			b.ResetTimer()
			d0, d1 := interleave(b, b.N, conc, base, withCG)
			r0, r1 := interleave(b, b.N, conc, rawPlain, rawCG)
			perProc := func(d time.Duration) float64 { return float64(d) / float64(b.N) / 1e3 }
			b.ReportMetric(float64(b.N)/d0.Seconds(), "plain-spawns/s")
			b.ReportMetric(float64(b.N)/d1.Seconds(), "cgroup-spawns/s")
			b.ReportMetric(d0.Seconds()/d1.Seconds(), "ratio")
			b.ReportMetric(perProc(d1-d0), "extra-µs/proc")
			b.ReportMetric(perProc(r1-r0), "raw-extra-µs/proc")
			b.ReportMetric(perProc(d1-d0)-perProc(r1-r0), "over-raw-µs/proc")
		})
	}
	b.Run("systemd-fake", func(b *testing.B) {
		mount, dir := testCgroupDir(b)
		f := fakesystemd.Start(b, fakesystemd.Options{CgroupRoot: dir, CgroupMount: mount})
		m, err := systemd.Connect(context.Background(), systemd.Options{Address: f.Address(), CgroupMount: mount})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(m.Close)
		rt := newRT(b, Options{Systemd: m})
		base := func() error { return runtimeSpawnTrue(plain, spec) }
		withSD := func() error { return runtimeSpawnTrue(rt, spec) }
		interleave(b, 10, 1, base, withSD)
		calls0 := m.Calls()
		b.ResetTimer()
		d0, d1 := interleave(b, b.N, 1, base, withSD)
		b.ReportMetric(float64(d1-d0)/float64(b.N)/1e3, "extra-µs/proc")
		b.ReportMetric(float64(m.Calls()-calls0)/float64(b.N), "dbus-calls/proc")
	})
}

// TestCgroupLimitsEnforced checks limits the kernel enforces, where the
// subtree has the controllers (not on a host whose cgroup2 has only
// hugetlb: there the limit files are covered by runtime/cgroup's fake).
func TestCgroupLimitsEnforced(t *testing.T) {
	t.Run("pids", func(t *testing.T) {
		rt, root := cgroupRT(t, Options{})
		if !slices.Contains(root.Controllers(), "pids") {
			t.Skipf("the pids controller is not enabled in %s (enabled: %v)", root.Dir(), root.Controllers())
		}
		spec := shSpec(`n=0; for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & n=$((n+1)); done; echo $n`)
		spec.Resources = &v1.Resources{TasksMax: ptr(int64(4))}
		_, st := run(t, rt, spec)
		a := st.CgroupAccounting
		if a == nil || a.Pids == nil || a.Pids.Peak > 4 {
			t.Fatalf("accounting %+v", a)
		}
	})
	t.Run("memory", func(t *testing.T) {
		rt, root := cgroupRT(t, Options{})
		if !slices.Contains(root.Controllers(), "memory") {
			t.Skipf("the memory controller is not enabled in %s (enabled: %v)", root.Dir(), root.Controllers())
		}
		spec := shSpec(`x=$(head -c 200000000 /dev/zero | tr '\0' a); echo ${#x}`)
		spec.Resources = &v1.Resources{MemoryMax: ptr(v1.Quantity("32Mi"))}
		_, st := run(t, rt, spec)
		a := st.CgroupAccounting
		if a == nil || a.Memory == nil {
			t.Fatalf("accounting %+v", a)
		}
		// The shell asks for 200 MB: it is OOM-killed, or swaps; either
		// way its memory stays at the limit.
		if m := a.Memory; m.Peak > 33<<20 || m.Peak < 16<<20 {
			t.Fatalf("memory %+v, status %+v: the limit did not hold", m, st)
		}
	})
}

// TestSystemdLimitsWithoutControllers: systemd takes memory and tasks
// properties even where it cannot enforce them (here: cgroup2 has no
// memory or pids controller). The agent looks at the slice's controllers
// and refuses to run the proc, or, with best effort, says so.
func TestSystemdLimitsWithoutControllers(t *testing.T) {
	holds(t, testSystemdLimitsWithoutControllers)
}

func testSystemdLimitsWithoutControllers(t *testing.T, tramp bool) {
	limited := func() *v1.ProcSpec {
		s := shSpec("exit 0")
		s.Resources = &v1.Resources{TasksMax: ptr(int64(16))}
		return s
	}
	rt, f, _ := fakeSystemdRT(t, fakesystemd.Options{}, tramp)
	mount, _ := cgroup.Mount()
	if ctl, err := os.ReadFile(filepath.Join(mount, "cgroup.subtree_control")); err == nil && strings.Contains(string(ctl), "pids") {
		t.Skip("the pids controller is available to slices here: systemd enforces tasksMax")
	}
	p, st := run(t, rt, limited())
	if len(st.Errors) != 1 || !strings.Contains(st.Errors[0], "pids") || !neverRan(st, tramp) {
		t.Fatalf("status %+v", st)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if u := f.Units(); len(u) != 0 {
		t.Fatalf("units left: %v", u)
	}

	rt.opts.BestEffortLimits = true
	_, st = run(t, rt, limited())
	if rs := st.Resources; rs == nil || rs.Enforced || !strings.Contains(rs.Message, "pids") || exitCode(st) != 0 {
		t.Fatalf("status %+v resources %+v", st, st.Resources)
	}
}

// TestCgroupNameTaken: a cgroup left by an earlier agent under the name a
// new proc would get does not stop the proc; it takes the next name.
func TestCgroupNameTaken(t *testing.T) {
	rt, root := cgroupRT(t, Options{})
	taken := filepath.Join(root.Dir(), cgroupName("p", 1))
	if err := os.Mkdir(taken, 0o755); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(taken)
	p, st := run(t, rt, shSpec("exit 0"))
	if exitCode(st) != 0 || st.Resources == nil || filepath.Base(st.Resources.Cgroup) != cgroupName("p", 2) {
		t.Fatalf("status %+v resources %+v", st, st.Resources)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
}

// TestSweepLeftCgroups: New removes the empty proc cgroups an earlier
// agent left in its root, and nothing else.
func TestSweepLeftCgroups(t *testing.T) {
	_, dir := testCgroupDir(t)
	for _, name := range []string{"proc-old-1", "proc-old-2", "other"} {
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	defer os.Remove(filepath.Join(dir, "other"))
	root, err := cgroup.OpenRoot(dir, cgroup.RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	newRT(t, Options{Cgroups: root})
	if d := childDirs(t, dir); len(d) != 1 || d[0] != "other" {
		t.Fatalf("left: %v", d)
	}
}

// TestHeldChildDies kills a held child before the agent has set it up and
// let it go, and waits until it is a zombie: the agent must notice, reap
// it, report SIGKILL and leave nothing behind (no fds, no watch).
func TestHeldChildDies(t *testing.T) { holds(t, testHeldChildDies) }

func testHeldChildDies(t *testing.T, tramp bool) {
	rt := newRT(t, Options{ForceTrampoline: tramp})
	rt.trampoline = false // as in modes
	if !tramp && !rt.canHoldByTrace() {
		t.Skip("ptrace cannot hold children here; the trampoline hold is tested")
	}
	hooked := 0
	testHookHeld = func(pid int) {
		hooked++
		if err := unix.Kill(pid, unix.SIGKILL); err != nil {
			t.Errorf("killing the held child: %v", err)
			return
		}
		// Until it is a zombie, but not reaped: that is the agent's job.
		var info unix.Siginfo
		if err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil); err != nil {
			t.Errorf("waiting for the killed child: %v", err)
		}
	}
	t.Cleanup(func() { testHookHeld = nil })
	fds := openFds(t)
	spec := shSpec(`echo ran`)
	spec.PerfCounters = true // a hold, without a resource backend
	p, st := run(t, rt, spec)
	if hooked != 1 {
		t.Fatalf("the hook ran %d times: the child was not held", hooked)
	}
	if st.Pid == 0 || st.Signal != "SIGKILL" || exitCode(st) != -1 {
		t.Fatalf("status %+v, want killed by SIGKILL", st)
	}
	if out := output(t, p, 1); out != "" {
		t.Errorf("the killed child ran its program: %q", out)
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	rt.mu.Lock()
	watches := len(rt.watches)
	rt.mu.Unlock()
	if watches != 0 {
		t.Errorf("%d watches left", watches)
	}
	if now := openFds(t); now != fds {
		t.Errorf("%d fds open before, %d after", fds, now)
	}
}

// openFds counts this process's open fds.
func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestProcessGroupKillAtExit: without a cgroup or unit, the tree is the
// child's process group, and what is left of it dies with the main
// process, unless killTree is false.
func TestProcessGroupKillAtExit(t *testing.T) {
	rt := newRT(t, Options{NoResourcesReason: "none here"})
	// The leftover holds no capture pipe, so Done does not wait for it.
	spec := shSpec(`sleep 100 >/dev/null 2>&1 & echo $!`)
	p, st := run(t, rt, spec)
	if rs := st.Resources; rs == nil || rs.TreeKill != "processGroup" {
		t.Fatalf("resources %+v", rs)
	}
	waitGone(t, pidsOf(t, output(t, p, 1)))

	spec.KillTree = ptr(false)
	p, _ = run(t, rt, spec)
	pids := pidsOf(t, output(t, p, 1))
	t.Cleanup(func() { unix.Kill(pids[0], unix.SIGKILL) })
	if !alive(pids[0]) {
		t.Fatal("leftover killed despite killTree: false")
	}
}

// TestSystemdBusLostStillKills: with the D-Bus connection gone, stopping
// a proc still kills its tree, through the slice's cgroup.
func TestSystemdBusLostStillKills(t *testing.T) {
	rt, _, _ := fakeSystemdRT(t, fakesystemd.Options{}, false)
	ps, err := rt.Start(context.Background(), []Request{{ID: "p", Spec: shSpec("sleep 30 & echo $!; wait")}})
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	t.Cleanup(func() { p.Release() })
	var out string
	for deadline := time.Now().Add(10 * time.Second); out == ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no grandchild pid")
		}
		b, _ := p.Output(1)
		out = strings.TrimSpace(string(b))
	}
	rt.opts.Systemd.Close() // as if the bus dropped
	if err := p.SignalGroup(int(syscall.SIGKILL)); err != nil {
		t.Fatalf("SignalGroup without the bus: %v", err)
	}
	waitDone(t, p, 10*time.Second)
	if st := p.Status(); st.Signal != "SIGKILL" {
		t.Fatalf("status %+v", st)
	}
	waitGone(t, pidsOf(t, out))
}

// TestSystemdKillTreeOffSliceStops: a killTree: false proc's slice stays
// while its leftovers run, and is stopped once they are gone.
func TestSystemdKillTreeOffSliceStops(t *testing.T) {
	rt, f, _ := fakeSystemdRT(t, fakesystemd.Options{}, false)
	spec := shSpec("setsid sleep 0.5 >/dev/null 2>&1 & echo $!")
	spec.KillTree = ptr(false)
	p, _ := run(t, rt, spec)
	pids := pidsOf(t, output(t, p, 1))
	if !alive(pids[0]) {
		t.Fatal("leftover killed despite killTree: false")
	}
	if err := p.Release(); err != nil {
		t.Fatal(err)
	}
	if len(f.Units()) == 0 {
		t.Fatal("units stopped while the leftover runs")
	}
	waitGone(t, pids)
	for deadline := time.Now().Add(10 * time.Second); len(f.Units()) != 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("units left after the leftover exited: %v", f.Units())
		}
	}
}
