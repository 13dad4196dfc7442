package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"procstar.dev/procstar/runtime"
	"procstar.dev/procstar/runtime/cgroup"
	"procstar.dev/procstar/runtime/perf"
	"procstar.dev/procstar/runtime/systemd"
	"procstar.dev/procstar/wire"
)

// Resource backend choices of ResourceConfig.Backend.
const (
	BackendAuto    = "auto"
	BackendSystemd = runtime.BackendSystemd
	BackendCgroup  = runtime.BackendCgroup
	BackendNone    = runtime.BackendNone
)

// ResourceConfig says how the agent controls its procs' resources.
type ResourceConfig struct {
	// Backend is auto (the default: systemd if a manager is reachable,
	// else a delegated cgroup v2 subtree, else none), systemd, cgroup or
	// none. A backend named explicitly that cannot be used is an error at
	// start-up.
	Backend string
	// CgroupRoot is the cgroup v2 directory procs' cgroups are made in.
	// "" means the agent's own cgroup when it is delegated to it.
	CgroupRoot string
	// BestEffort runs procs whose limits cannot be enforced, saying so in
	// their status, instead of refusing them.
	BestEffort bool
	// SystemdAddress is the D-Bus address of the systemd manager; "" means
	// the system bus as root, else the user bus.
	SystemdAddress string
}

// resourceSetup is what start-up chose.
type resourceSetup struct {
	opts  runtime.Options // only the resource fields are set
	info  wire.AgentResources
	close func()
}

// setupResources picks and opens the resource backend.
func setupResources(ctx context.Context, cfg ResourceConfig, log logr.Logger) (*resourceSetup, error) {
	s := &resourceSetup{close: func() {}}
	s.opts.BestEffortLimits = cfg.BestEffort
	s.info = wire.AgentResources{Backend: BackendNone, Controllers: []string{}, BestEffort: cfg.BestEffort}
	if ok, why := perf.Available(); ok {
		s.info.PerfCounters = "available"
	} else {
		s.info.PerfCounters = why
	}
	backend := cfg.Backend
	if backend == "" {
		backend = BackendAuto
	}
	if backend == BackendAuto && cfg.CgroupRoot != "" {
		// An explicit root asks for the cgroup backend: auto would pick
		// systemd first and ignore it.
		backend = BackendCgroup
	}
	var reasons []string
	switch backend {
	case BackendAuto, BackendSystemd:
		mount, _ := cgroup.Mount() // "" makes Connect say there is no cgroup2
		m, err := systemd.Connect(ctx, systemd.Options{Logger: log, Address: cfg.SystemdAddress, CgroupMount: mount})
		if err == nil {
			if stopped, left, err := m.StopLeftovers(ctx); err != nil {
				log.Error(err, "cannot look for slices a previous agent left")
			} else if len(stopped)+len(left) > 0 {
				log.Info("slices a previous agent left", "stopped", stopped, "stillRunning", left)
			}
			s.opts.Systemd = m
			s.close = m.Close
			s.info.Backend = BackendSystemd
			s.info.Detail = "systemd " + m.Version() + " on the " + m.Bus() + " bus"
			log.V(LevelInfo).Info("resource control through systemd", "bus", m.Bus(), "version", m.Version())
			return s, nil
		}
		if backend == BackendSystemd {
			return nil, fmt.Errorf("--resource-backend=systemd: %w", err)
		}
		reasons = append(reasons, "systemd: "+err.Error())
		fallthrough
	case BackendCgroup:
		root, err := openCgroupRoot(cfg.CgroupRoot, log)
		if err == nil {
			s.opts.Cgroups = root
			s.close = func() {
				if err := root.Close(); err != nil {
					log.Error(err, "closing the cgroup root")
				}
			}
			s.info.Backend = BackendCgroup
			s.info.Detail = root.Dir()
			s.info.Controllers = append(s.info.Controllers, root.Controllers()...)
			log.V(LevelInfo).Info("resource control through cgroup v2", "root", root.Dir(), "controllers", root.Controllers())
			return s, nil
		}
		if backend == BackendCgroup || cfg.CgroupRoot != "" {
			return nil, fmt.Errorf("cgroup backend: %w", err)
		}
		reasons = append(reasons, "cgroup v2: "+err.Error())
	case BackendNone:
		reasons = append(reasons, "--resource-backend=none")
	default:
		return nil, fmt.Errorf("--resource-backend must be auto, systemd, cgroup or none, not %q", backend)
	}
	s.info.Detail = strings.Join(reasons, "; ")
	s.opts.NoResourcesReason = s.info.Detail
	log.Info("no resource control: limits cannot be enforced and stop reaches only process groups", "reason", s.info.Detail)
	return s, nil
}

// errNotDelegated means the agent's own cgroup is managed by systemd but
// not delegated to the agent.
var errNotDelegated = errors.New("not delegated to the agent (run it in a unit with Delegate=yes, or pass --cgroup-root)")

// openCgroupRoot opens dir, or by default the agent's own cgroup if it may
// manage it: one systemd delegated (its delegate xattr), or one outside
// systemd's tree. An agent in the hierarchy's root (no init system, or a
// container's own namespace) uses a child procstar-PID, removed at close.
func openCgroupRoot(dir string, log logr.Logger) (*cgroup.Root, error) {
	opts := cgroup.RootOptions{Logger: log}
	if dir != "" {
		return cgroup.OpenRoot(dir, opts)
	}
	mount, err := cgroup.Mount()
	if err != nil {
		return nil, err
	}
	self, err := cgroup.Self()
	if err != nil {
		return nil, err
	}
	if self == "/" {
		removeStaleRoots(mount, log)
		own := filepath.Join(mount, ownRootPrefix+strconv.Itoa(os.Getpid()))
		if err := os.Mkdir(own, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("creating %s: %w", own, err)
		}
		opts.RemoveOnClose = true
		root, err := cgroup.OpenRoot(own, opts)
		if err != nil {
			_ = os.Remove(own)
			return nil, err
		}
		return root, nil
	}
	dir = filepath.Join(mount, self)
	if systemdManaged(self) && !delegated(dir) {
		return nil, fmt.Errorf("%s: %w", dir, errNotDelegated)
	}
	return cgroup.OpenRoot(dir, opts)
}

// ownRootPrefix names the cgroup root an agent in the hierarchy's root
// makes for itself, followed by its pid.
const ownRootPrefix = "procstar-"

// removeStaleRoots removes the cgroup roots of agents that are gone (killed
// before they could remove their own), with their empty proc cgroups. A
// cgroup that still has processes is left, with its root: rmdir refuses
// it.
func removeStaleRoots(mount string, log logr.Logger) {
	entries, err := os.ReadDir(mount)
	if err != nil {
		return
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(strings.TrimPrefix(e.Name(), ownRootPrefix))
		if !e.IsDir() || !strings.HasPrefix(e.Name(), ownRootPrefix) || err != nil || pid <= 0 {
			continue
		}
		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			continue // that agent still runs (or its pid was reused)
		}
		dir := filepath.Join(mount, e.Name())
		children, _ := os.ReadDir(dir)
		for _, c := range children {
			if c.IsDir() {
				_ = unix.Rmdir(filepath.Join(dir, c.Name()))
			}
		}
		if err := unix.Rmdir(dir); err != nil {
			log.Info("a gone agent's cgroup root is still in use; leaving it", "cgroup", dir, "error", err.Error())
			continue
		}
		log.V(LevelInfo).Info("removed a gone agent's cgroup root", "cgroup", dir)
	}
}

// systemdManaged reports whether a cgroup path is a systemd unit's.
func systemdManaged(path string) bool {
	for _, s := range []string{".service", ".scope", ".slice"} {
		if strings.Contains(path, s) {
			return true
		}
	}
	return false
}

// delegated reports whether systemd marked dir delegated (Delegate=yes
// sets the trusted.delegate, or for user managers user.delegate, xattr).
func delegated(dir string) bool {
	var b [8]byte
	for _, name := range []string{"trusted.delegate", "user.delegate"} {
		if n, err := unix.Getxattr(dir, name, b[:]); err == nil && n > 0 && b[0] == '1' {
			return true
		}
	}
	return false
}
