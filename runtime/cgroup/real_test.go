package cgroup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestRealOpenRoot(t *testing.T) {
	dir := realTestDir(t)
	r, err := OpenRoot(dir, RootOptions{})
	if err != nil {
		t.Fatalf("OpenRoot: %v", err)
	}
	if r.Dir() != dir {
		t.Errorf("Dir %q, want %q", r.Dir(), dir)
	}
	want := strings.Fields(readString(t, filepath.Join(dir, "cgroup.subtree_control")))
	if !sameSet(r.Controllers(), want) {
		t.Errorf("Controllers %v, subtree_control says %v", r.Controllers(), want)
	}
	avail := strings.Fields(readString(t, filepath.Join(dir, "cgroup.controllers")))
	for _, c := range managedControllers {
		if slices.Contains(avail, c) && !slices.Contains(r.Controllers(), c) {
			t.Errorf("controller %s available but not enabled: %v", c, r.Controllers())
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("OpenRoot left %s behind", e.Name())
		}
	}
}

func TestRealOpenRootRejects(t *testing.T) {
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "cgroup.controllers"), []byte("cpu\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenRoot(tmp, RootOptions{}); !errors.Is(err, ErrNotCgroup2) {
		t.Errorf("OpenRoot(tmpdir) = %v, want ErrNotCgroup2", err)
	}
	if _, err := OpenRoot(filepath.Join(tmp, "missing"), RootOptions{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenRoot(missing) = %v, want ErrNotExist", err)
	}
	// Read-only: a cgroup2 directory we cannot mkdir in. As root we can
	// only get that with a read-only bind, which needs a mount namespace,
	// so check the error class through a non-directory instead.
	mnt, err := Mount()
	if err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	if _, err := OpenRoot(filepath.Join(mnt, "cgroup.procs"), RootOptions{}); err == nil {
		t.Errorf("OpenRoot(cgroup.procs file) succeeded")
	}
}

// TestRealKillTree starts trees that escape their parent (double fork,
// setsid) inside a group and checks that Kill ends every process.
func TestRealKillTree(t *testing.T) {
	r := openRealRoot(t)
	for i, tc := range []struct {
		name   string
		script string
		// exits says the sh itself exits before the kill.
		exits bool
		// n is how many processes the tree has once started.
		n int
	}{
		{"doubleFork", "(sleep 100 &); (sleep 100 &); exit 0", true, 2},
		{"setsid", "setsid sleep 100 & setsid sh -c 'sleep 100 & wait' & wait", false, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := r.Create("kill-"+strconv.Itoa(i), Limits{})
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			defer g.Remove()
			cmd := startIn(t, g, tc.script)
			if tc.exits {
				if err := cmd.Wait(); err != nil {
					t.Fatalf("sh: %v", err)
				}
			}
			pids := waitPids(t, g, "tree to start", func(p []int) bool { return len(p) == tc.n })
			if !tc.exits && !slices.Contains(pids, cmd.Process.Pid) {
				t.Errorf("cgroup.procs %v lacks sh pid %d", pids, cmd.Process.Pid)
			}
			if pop, err := g.Populated(); err != nil || !pop {
				t.Errorf("Populated = %v, %v; want true", pop, err)
			}
			if err := g.Kill(); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if !tc.exits {
				err := cmd.Wait()
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
					t.Errorf("sh ended with %v, want SIGKILL", err)
				}
			}
			for _, pid := range pids {
				waitGone(t, pid)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := g.WaitEmpty(ctx); err != nil {
				t.Fatalf("WaitEmpty: %v", err)
			}
			if err := g.Remove(); err != nil {
				t.Fatalf("Remove: %v", err)
			}
			if _, err := os.Stat(g.Path()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("group dir still there: %v", err)
			}
			if g.FD() != -1 {
				t.Errorf("FD after Remove = %d", g.FD())
			}
			if err := g.Remove(); err != nil {
				t.Errorf("second Remove: %v", err)
			}
			if err := g.Kill(); err != nil {
				t.Errorf("Kill after Remove: %v", err)
			}
		})
	}
}

// TestRealKillFallback runs the pre-5.14 path (no cgroup.kill) against a
// tree with a sub-cgroup.
func TestRealKillFallback(t *testing.T) {
	r := openRealRoot(t)
	g, err := r.Create("fallback", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	sub := filepath.Join(g.Path(), "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	// The sh moves its own background child into the sub-cgroup.
	startIn(t, g, "setsid sleep 100 & sleep 100 & echo $! > "+sub+"/cgroup.procs; wait")
	pids := waitPids(t, g, "tree to start", func(p []int) bool {
		sp, _ := readPids(filepath.Join(sub, "cgroup.procs"))
		return len(p) == 3 && len(sp) == 1
	})
	if err := g.killByPids(context.Background()); err != nil {
		t.Fatalf("killByPids: %v", err)
	}
	for _, pid := range pids {
		waitGone(t, pid)
	}
	if err := g.Remove(); err != nil {
		t.Fatalf("Remove with sub-cgroup: %v", err)
	}
	if _, err := os.Stat(g.Path()); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("group dir still there: %v", err)
	}
}

func TestRealSignalReachesSetsidGrandchild(t *testing.T) {
	r := openRealRoot(t)
	g, err := r.Create("signal", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	cmd := startIn(t, g, "setsid sleep 100 & wait")
	pids := waitPids(t, g, "tree to start", func(p []int) bool { return len(p) == 2 })
	var grandchild int
	for _, p := range pids {
		if p != cmd.Process.Pid {
			grandchild = p
		}
	}
	// Wait for setsid to exec sleep in its own session.
	deadline := time.Now().Add(5 * time.Second)
	for {
		sid, _ := unix.Getsid(grandchild)
		if sid == grandchild {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d never got its own session", grandchild)
		}
		time.Sleep(5 * time.Millisecond)
	}
	n, err := g.Signal(unix.SIGTERM)
	if err != nil || n != 2 {
		t.Fatalf("Signal = %d, %v; want 2, nil", n, err)
	}
	_ = cmd.Wait()
	waitGone(t, grandchild)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.WaitEmpty(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := g.Signal(unix.SIGTERM); err != nil || n != 0 {
		t.Errorf("Signal on empty group = %d, %v", n, err)
	}
}

func TestRealCPUAccounting(t *testing.T) {
	r := openRealRoot(t)
	g, err := r.Create("cpu", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	cmd := startIn(t, g, `i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done`)
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	a, err := g.Accounting()
	if err != nil {
		t.Fatalf("Accounting: %v", err)
	}
	if a.CPUStat == nil || a.CPUStat.UsageUsec == 0 || a.CPUStat.UsageUsec < a.CPUStat.UserUsec {
		t.Errorf("cpu stat %+v: want usage > 0 and >= user", a.CPUStat)
	}
	has := func(c string) bool { return slices.Contains(r.Controllers(), c) }
	if (a.Pids != nil) != has(ControllerPids) || (a.Memory != nil) != has(ControllerMemory) {
		t.Errorf("pids %v memory %v with controllers %v", a.Pids, a.Memory, r.Controllers())
	}
	if has(ControllerPids) && a.Pids.Peak < 1 {
		t.Errorf("pids.peak %d", a.Pids.Peak)
	}
}

func TestRealWaitEmpty(t *testing.T) {
	r := openRealRoot(t)
	g, err := r.Create("wait", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()

	// cgroup.events must be watched with epoll, not by polling.
	fd, err := unix.Open(filepath.Join(g.Path(), "cgroup.events"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := newEventWaiter(context.Background(), fd)
	if err != nil {
		t.Fatal(err)
	}
	if w.polling {
		t.Error("cgroup.events cannot be watched with epoll; WaitEmpty would poll")
	}
	w.close()
	unix.Close(fd)

	// Empty from the start.
	if err := g.WaitEmpty(context.Background()); err != nil {
		t.Fatalf("WaitEmpty on empty group: %v", err)
	}
	// ctx bounds it.
	startIn(t, g, "sleep 100")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := g.WaitEmpty(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEmpty = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("WaitEmpty took %v after a 50ms deadline", d)
	}
	if err := g.Remove(); !errors.Is(err, unix.EBUSY) {
		t.Errorf("Remove while populated = %v, want EBUSY", err)
	}
	// Woken by the change, well before the deadline.
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- g.WaitEmpty(ctx)
	}()
	time.Sleep(20 * time.Millisecond)
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitEmpty: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("WaitEmpty not woken by the group emptying")
	}
	if err := g.Remove(); err != nil {
		t.Errorf("Remove after empty: %v", err)
	}
}

func TestRealCreateUnavailableController(t *testing.T) {
	r := openRealRoot(t)
	if slices.Contains(r.Controllers(), ControllerMemory) {
		t.Skipf("memory controller is enabled here (%v); the unavailable path needs a host without it", r.Controllers())
	}
	maxMem := int64(64 << 20)
	l := Limits{MemoryMax: &maxMem}
	_, err := r.Create("mem", l)
	if !errors.Is(err, ErrControllerUnavailable) {
		t.Fatalf("Create = %v, want ErrControllerUnavailable", err)
	}
	mustContain(t, err.Error(), "MemoryMax", "memory")
	if _, err := os.Stat(filepath.Join(r.Dir(), "mem")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Create left the group: %v", err)
	}
	g, msg, err := r.CreateBestEffort("mem", l)
	if err != nil {
		t.Fatalf("CreateBestEffort: %v", err)
	}
	defer g.Remove()
	mustContain(t, msg, "MemoryMax", "memory.max", "memory controller")
	if g.FD() < 0 {
		t.Errorf("FD %d", g.FD())
	}
	g2, msg, err := r.CreateBestEffort("nolimits", Limits{})
	if err != nil || msg != "" {
		t.Fatalf("CreateBestEffort without limits = %q, %v", msg, err)
	}
	g2.Remove()
	if _, err := r.Create("mem", Limits{}); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create of existing name = %v, want ErrExist", err)
	}
}

// TestRealPidsLimit needs the pids controller: pids.max=5 must stop a
// fork of 20 sleeps.
func TestRealPidsLimit(t *testing.T) {
	r := openRealRoot(t)
	if !slices.Contains(r.Controllers(), ControllerPids) {
		t.Skipf("pids controller not enabled for children of %s (enabled: %v)", r.Dir(), r.Controllers())
	}
	five := int64(5)
	g, err := r.Create("pids", Limits{PidsMax: &five})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	if got := strings.TrimSpace(readString(t, filepath.Join(g.Path(), "pids.max"))); got != "5" {
		t.Errorf("pids.max %q", got)
	}
	cmd := startIn(t, g, `n=0; i=0; while [ $i -lt 20 ]; do sleep 100 & if [ $? -ne 0 ]; then n=$((n+1)); fi; i=$((i+1)); done; echo $n`)
	time.Sleep(200 * time.Millisecond)
	pids, _ := treePids(g.Path())
	if len(pids) > 5 {
		t.Errorf("%d processes despite pids.max=5", len(pids))
	}
	a, err := g.Accounting()
	if err != nil {
		t.Fatal(err)
	}
	if a.Pids == nil || a.Pids.Peak > 5 || a.Pids.Peak < 2 {
		t.Errorf("pids accounting %+v", a.Pids)
	}
	g.Kill()
	_ = cmd.Wait()
}

// TestRealMoveIntoAgentLeaf puts this test process into a non-root
// cgroup and checks that OpenRoot moves it into the "agent" leaf.
func TestRealMoveIntoAgentLeaf(t *testing.T) {
	dir := realTestDir(t)
	mnt, _ := Mount()
	self, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	if err := writeControl(filepath.Join(dir, "cgroup.procs"), []byte(pid), false); err != nil {
		t.Skipf("cannot move the test process into %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := writeControl(filepath.Join(mnt, self, "cgroup.procs"), []byte(pid), false); err != nil {
			t.Errorf("move back to %s: %v", self, err)
		}
	})
	r, err := OpenRoot(dir, RootOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimPrefix(filepath.Join(dir, AgentLeaf), mnt); now != want {
		t.Errorf("own cgroup %q, want %q", now, want)
	}
	if pids, _ := readPids(filepath.Join(dir, "cgroup.procs")); len(pids) != 0 {
		t.Errorf("root still has processes %v", pids)
	}
	// The root still makes groups and runs procs in them.
	g, err := r.Create("after-move", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Remove()
	if err := startIn(t, g, "exit 0").Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestRealNotWritable makes mkdir fail for real: cgroup.max.descendants=0.
func TestRealNotWritable(t *testing.T) {
	dir := realTestDir(t)
	if err := writeControl(filepath.Join(dir, "cgroup.max.descendants"), []byte("0"), false); err != nil {
		t.Skipf("cannot set cgroup.max.descendants: %v", err)
	}
	_, err := OpenRoot(dir, RootOptions{})
	if !errors.Is(err, ErrNotWritable) || !errors.Is(err, unix.EAGAIN) {
		t.Errorf("OpenRoot = %v, want ErrNotWritable wrapping EAGAIN", err)
	}
}

func BenchmarkCreateRemove(b *testing.B) {
	r := openRealRoot(b)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		g, err := r.Create("bench-"+strconv.Itoa(i), Limits{})
		if err != nil {
			b.Fatal(err)
		}
		if err := g.Remove(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMkdirRmdir is the raw baseline for BenchmarkCreateRemove.
func BenchmarkMkdirRmdir(b *testing.B) {
	dir := realTestDir(b)
	for i := 0; b.Loop(); i++ {
		p := filepath.Join(dir, "raw-"+strconv.Itoa(i))
		if err := unix.Mkdir(p, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := unix.Rmdir(p); err != nil {
			b.Fatal(err)
		}
	}
}
