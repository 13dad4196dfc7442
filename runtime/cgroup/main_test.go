package cgroup

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	// Orphaned grandchildren of test procs are reparented to this process,
	// so tests can reap them and see ESRCH rather than a zombie kept by
	// an init that may not reap.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "PR_SET_CHILD_SUBREAPER:", err)
		os.Exit(1)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

var testDirSeq atomic.Int64

// realTestDir makes a fresh directory under the cgroup2 mount and removes
// it (killing what is left inside) at cleanup. It skips the test when no
// writable cgroup2 exists, saying why.
func realTestDir(t testing.TB) string {
	t.Helper()
	mnt, err := Mount()
	if err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	dir := filepath.Join(mnt, fmt.Sprintf("procstar-test-%d-%d", os.Getpid(), testDirSeq.Add(1)))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cgroup2 at %s not writable: %v", mnt, err)
	}
	t.Cleanup(func() {
		for range 100 {
			killTreeForCleanup(dir)
			if err := removeTree(dir); err == nil {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("cannot remove test cgroup %s", dir)
	})
	return dir
}

func killTreeForCleanup(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = writeControl(filepath.Join(p, "cgroup.kill"), []byte("1"), false)
		}
		return nil
	})
}

// openRealRoot is OpenRoot on a fresh test directory.
func openRealRoot(t testing.TB) *Root {
	t.Helper()
	r, err := OpenRoot(realTestDir(t), RootOptions{})
	if err != nil {
		t.Fatalf("OpenRoot: %v", err)
	}
	return r
}

// startIn starts sh -c script inside g; the test waits for it with cmd.Wait
// or leaves it to cleanup, which kills and reaps it.
func startIn(t *testing.T, g *Group, script string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: g.FD()}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %q: %v", script, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}

// waitPids polls the tree's pids until cond holds, for up to 5s.
func waitPids(t *testing.T, g *Group, what string, cond func([]int) bool) []int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		pids, err := treePids(g.Path())
		if err != nil {
			t.Fatalf("treePids: %v", err)
		}
		if cond(pids) {
			return pids
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; pids %v", what, pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitGone reaps pid if it is this process's child (or orphan, as
// subreaper) and waits until kill(pid, 0) says ESRCH.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err := unix.Kill(pid, 0); errors.Is(err, unix.ESRCH) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still exists", pid)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func mustContain(t *testing.T, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%q does not contain %q", s, sub)
		}
	}
}
