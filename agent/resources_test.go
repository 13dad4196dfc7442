package agent

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"procstar.dev/procstar/runtime/cgroup"
	"procstar.dev/procstar/runtime/systemd/fakesystemd"
)

func TestSetupResourcesBackends(t *testing.T) {
	ctx := context.Background()
	log := logr.Discard()

	t.Run("none", func(t *testing.T) {
		s, err := setupResources(ctx, ResourceConfig{Backend: BackendNone, BestEffort: true}, log)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		if s.info.Backend != BackendNone || !s.info.BestEffort || s.opts.Cgroups != nil || s.opts.Systemd != nil ||
			s.opts.NoResourcesReason == "" || s.info.Controllers == nil || s.info.PerfCounters == "" {
			t.Fatalf("setup %+v", s)
		}
	})
	t.Run("bad name", func(t *testing.T) {
		if _, err := setupResources(ctx, ResourceConfig{Backend: "cgroupv1"}, log); err == nil || !strings.Contains(err.Error(), "cgroupv1") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("systemd unreachable", func(t *testing.T) {
		_, err := setupResources(ctx, ResourceConfig{Backend: BackendSystemd, SystemdAddress: "unix:path=" + filepath.Join(t.TempDir(), "none")}, log)
		if err == nil || !strings.Contains(err.Error(), "systemd") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("cgroup root not cgroup2", func(t *testing.T) {
		_, err := setupResources(ctx, ResourceConfig{Backend: BackendAuto, CgroupRoot: t.TempDir(), SystemdAddress: "unix:path=/nonexistent"}, log)
		if err == nil {
			t.Fatal("a temp dir was accepted as a cgroup root")
		}
	})
	t.Run("systemd", func(t *testing.T) {
		mount, err := cgroup.Mount()
		if err != nil {
			t.Skipf("no cgroup2: %v", err)
		}
		f := fakesystemd.Start(t, fakesystemd.Options{})
		s, err := setupResources(ctx, ResourceConfig{SystemdAddress: f.Address()}, log)
		if err != nil {
			t.Fatal(err)
		}
		defer s.close()
		if s.info.Backend != BackendSystemd || s.opts.Systemd == nil || !strings.Contains(s.info.Detail, fakesystemd.Version) {
			t.Fatalf("setup %+v (mount %s)", s.info, mount)
		}
		// An explicit --cgroup-root asks for the cgroup backend, even
		// where systemd answers: here it is no cgroup2 directory.
		s2, err := setupResources(ctx, ResourceConfig{SystemdAddress: f.Address(), CgroupRoot: t.TempDir()}, log)
		if err == nil {
			s2.close()
			t.Fatalf("--cgroup-root ignored: backend %s", s2.info.Backend)
		}
		if !strings.Contains(err.Error(), "cgroup backend") {
			t.Fatalf("err %v", err)
		}
	})
}

// TestOwnCgroupRoot checks the default root of an agent in the
// hierarchy's root: its own procstar-PID, removed at close, and the roots
// of agents that died without removing theirs are cleaned up.
func TestOwnCgroupRoot(t *testing.T) {
	mount, err := cgroup.Mount()
	if err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	if self, err := cgroup.Self(); err != nil || self != "/" {
		t.Skipf("this process is in cgroup %q, not the hierarchy root", self)
	}
	// A root left by an agent that is gone: a reaped child's pid.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	stale := filepath.Join(mount, ownRootPrefix+strconv.Itoa(cmd.Process.Pid))
	if err := os.Mkdir(stale, 0o755); err != nil {
		t.Skipf("cgroup2 not writable: %v", err)
	}
	if err := os.Mkdir(filepath.Join(stale, "proc-x-1"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Remove(filepath.Join(stale, "proc-x-1"))
		_ = os.Remove(stale)
	})

	root, err := openCgroupRoot("", logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(mount, ownRootPrefix+strconv.Itoa(os.Getpid()))
	if root.Dir() != own {
		t.Fatalf("root %s, want %s", root.Dir(), own)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale root still there: %v", err)
	}
	if err := root.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(own); !os.IsNotExist(err) {
		t.Fatalf("own root left behind: %v", err)
	}
}

// TestDelegated reads systemd's delegation mark the way systemd writes
// it: the trusted.delegate xattr of the cgroup directory.
func TestDelegated(t *testing.T) {
	mount, err := cgroup.Mount()
	if err != nil {
		t.Skipf("no cgroup2: %v", err)
	}
	dir := filepath.Join(mount, "procstar-delegtest-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cgroup2 not writable: %v", err)
	}
	defer os.Remove(dir)
	if delegated(dir) {
		t.Fatal("a fresh cgroup reads as delegated")
	}
	if err := unix.Setxattr(dir, "trusted.delegate", []byte("1"), 0); err != nil {
		t.Skipf("cgroupfs here takes no trusted xattrs: %v", err)
	}
	if !delegated(dir) {
		t.Fatal("trusted.delegate=1 not seen")
	}
	for path, want := range map[string]bool{
		"/system.slice/procstar.service":           true,
		"/user.slice/user-0.slice/session-1.scope": true,
		"/jobs/batch": false,
	} {
		if systemdManaged(path) != want {
			t.Errorf("systemdManaged(%q) = %v", path, !want)
		}
	}
}
