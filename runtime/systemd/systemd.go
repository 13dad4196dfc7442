// Package systemd runs procs inside systemd transient units over D-Bus, as
// procstar does with its systemd_properties: for each proc, a slice
// "procstar<uuid>.slice" carrying the resource settings and a scope
// "procstar<uuid>.scope" inside it holding the child, created before the
// child execs; at the end the slice is stopped, which kills whatever is
// left in the tree.
//
// It is mechanism only: it does not decide whether systemd is used, does
// not read cgroup accounting (the caller reads the directory ControlGroup
// names), and never signals processes itself; systemd does. It must not
// leave units behind on any error path, and it must not talk to any bus
// but the one Connect chose.
package systemd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/go-logr/logr"
	godbus "github.com/godbus/dbus/v5"

	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/runtime/cgroup"
	"procstar.dev/procstar/runtime/procfs"
)

// Error classes.
var (
	// ErrUnavailable: no reachable systemd manager (or no cgroup2 unified
	// hierarchy). It is of class errdefs.ErrUnavailable.
	ErrUnavailable = errdefs.Wrap(errdefs.ErrUnavailable, errors.New("systemd unavailable"))
	// ErrJobFailed: a job finished with a result other than "done".
	ErrJobFailed = errors.New("systemd job failed")
	// ErrNoControlGroup: systemd reports no control group for the unit.
	ErrNoControlGroup = errors.New("unit has no control group")
	// ErrInvalid: a spec's systemd properties or resources cannot be
	// expressed as unit properties. It is of class
	// errdefs.ErrInvalidArgument.
	ErrInvalid = errdefs.Wrap(errdefs.ErrInvalidArgument, errors.New("invalid systemd properties"))
)

const (
	managerDest  = "org.freedesktop.systemd1"
	managerPath  = godbus.ObjectPath("/org/freedesktop/systemd1")
	managerIface = "org.freedesktop.systemd1.Manager"
	// errNoSuchUnit is the D-Bus error name systemd returns for a unit
	// that is not loaded.
	errNoSuchUnit = "org.freedesktop.systemd1.NoSuchUnit"
	// probeTimeout bounds Connect when its ctx has no deadline.
	probeTimeout = 2 * time.Second
	// cleanupTimeout bounds stopping the slice after a failed Start.
	cleanupTimeout = 5 * time.Second
	// unitPrefix starts every unit name this package creates.
	unitPrefix = "procstar"
)

// Options configure Connect.
type Options struct {
	Logger logr.Logger
	// Address, when set, is the D-Bus address to dial instead of the
	// system/user bus (tests, and the fake).
	Address string
	// User forces the user manager (bus) even as root.
	User bool
	// CgroupMount is where the cgroup2 unified hierarchy is mounted (e.g.
	// /sys/fs/cgroup). Connect returns ErrUnavailable when it is empty:
	// procstar uses systemd only on a cgroup2 system.
	CgroupMount string
}

// Manager is a connection to a systemd manager. Its methods are safe for
// concurrent use.
//
// Known limits: when ctx ends while a job is in flight, go-systemd keeps
// its listener for that job until JobRemoved arrives (a few bytes per
// abandoned job). Connect's AddMatch on the signal connection (made inside
// go-systemd) is not bounded by ctx, but it runs only after the same bus
// has answered the Version probe. The user manager is reached through the
// session bus, as procstar does; units are then under the user's
// user@UID.service, which needs cgroup delegation for memory limits.
type Manager struct {
	log     logr.Logger
	conn    *sddbus.Conn
	bus     string
	version string
	// cgroupMount is Options.CgroupMount.
	cgroupMount string
	// self is this process, as the Description of its slices names it;
	// zero if its start time could not be read.
	self  owner
	calls atomic.Uint64 // D-Bus method calls made to the manager
}

// owner is the process that made a slice: its pid and start time in clock
// ticks after boot, which together survive pid reuse. StopLeftovers reads
// it back from the slice's Description, so that agents sharing a manager
// leave each other's slices alone. The pid is in the owner's pid
// namespace: an agent in another one is not recognised, and its empty
// slices are swept as an earlier agent's.
type owner struct {
	pid   int
	start uint64
}

const ownerFormat = "procstar agent pid %d start %d"

func (o owner) description() string { return fmt.Sprintf(ownerFormat, o.pid, o.start) }

// parseOwner reads a Description that description wrote; anything else
// (a unit of an older agent, or of procstar) has no owner.
func parseOwner(desc string) (owner, bool) {
	var o owner
	if _, err := fmt.Sscanf(desc, ownerFormat, &o.pid, &o.start); err != nil || o.pid <= 0 || o.description() != desc {
		return owner{}, false
	}
	return o, true
}

// alive reports whether the owner still runs.
func (o owner) alive() bool {
	start, err := procfs.StartTicks(o.pid)
	return err == nil && start == o.start
}

// busAddress picks the bus to dial and the name Bus reports.
func busAddress(opts Options) (addr, bus string, err error) {
	if opts.Address != "" {
		return opts.Address, opts.Address, nil
	}
	if os.Geteuid() == 0 && !opts.User {
		if a := os.Getenv("DBUS_SYSTEM_BUS_ADDRESS"); a != "" {
			return a, "system", nil
		}
		return "unix:path=/run/dbus/system_bus_socket", "system", nil
	}
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		return a, "user", nil
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		p := filepath.Join(d, "bus")
		if _, err := os.Stat(p); err != nil {
			return "", "", fmt.Errorf("%w: no user bus: %w", ErrUnavailable, err)
		}
		return "unix:path=" + p, "user", nil
	}
	return "", "", fmt.Errorf("%w: no user bus: DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset", ErrUnavailable)
}

// dial connects, authenticates and says Hello, bounded by ctx (the
// connection itself outlives ctx).
func dial(ctx context.Context, addr string) (*godbus.Conn, error) {
	conn, err := godbus.Dial(addr)
	if err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() {
		if err := conn.Auth(nil); err != nil {
			done <- fmt.Errorf("auth: %w", err)
			return
		}
		if err := conn.Hello(); err != nil {
			done <- fmt.Errorf("hello: %w", err)
			return
		}
		done <- nil
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		conn.Close() // unblocks Auth or Hello
		<-done
		err = ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Connect reaches the system manager when euid==0, else the user manager
// (DBUS_SESSION_BUS_ADDRESS, else XDG_RUNTIME_DIR/bus), or opts.Address.
// It probes the manager by reading its Version property and requires
// opts.CgroupMount. Every failure wraps ErrUnavailable with the reason.
// ctx bounds the probe; without a deadline, 2s does.
func Connect(ctx context.Context, opts Options) (*Manager, error) {
	if opts.CgroupMount == "" {
		return nil, fmt.Errorf("%w: no cgroup2 unified hierarchy", ErrUnavailable)
	}
	addr, bus, err := busAddress(opts)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, probeTimeout)
		defer cancel()
	}
	first, err := dial(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("%w: bus %s: %w", ErrUnavailable, bus, err)
	}
	m := &Manager{log: opts.Logger, bus: bus, cgroupMount: opts.CgroupMount}
	if start, err := procfs.StartTicks(os.Getpid()); err == nil {
		m.self = owner{pid: os.Getpid(), start: start}
	} else {
		m.log.Error(err, "cannot read this agent's start time; its slices will not name it, and another agent starting on this manager may stop them while they are empty")
	}
	var v godbus.Variant
	m.calls.Add(1)
	err = first.Object(managerDest, managerPath).CallWithContext(ctx, "org.freedesktop.DBus.Properties.Get", 0, managerIface, "Version").Store(&v)
	if err != nil {
		first.Close()
		return nil, fmt.Errorf("%w: bus %s: reading the manager's Version: %w", ErrUnavailable, bus, err)
	}
	m.version, _ = v.Value().(string)
	// go-systemd dials twice: one connection for calls (reuse the probed
	// one), one for signals.
	dials := 0
	conn, err := sddbus.NewConnection(func() (*godbus.Conn, error) {
		dials++
		if dials == 1 {
			return first, nil
		}
		return dial(ctx, addr)
	})
	if err != nil {
		first.Close()
		return nil, fmt.Errorf("%w: bus %s: %w", ErrUnavailable, bus, err)
	}
	m.conn = conn
	m.log.V(1).Info("connected to systemd", "bus", bus, "version", m.version)
	return m, nil
}

// Close closes the connection. Units stay as they are.
func (m *Manager) Close() { m.conn.Close() }

// Bus is "system", "user" or the address dialled.
func (m *Manager) Bus() string { return m.bus }

// Version is the manager's Version property.
func (m *Manager) Version() string { return m.version }

// Calls is the number of D-Bus method calls made to the manager so far,
// including Connect's probe. Start makes 2, ControlGroup 1, Kill 1 and
// Stop 1.
func (m *Manager) Calls() uint64 { return m.calls.Load() }

// StopLeftovers stops the procstar slices that an agent which is gone
// left behind (it crashed, or was killed, before it could stop them) and
// that no process uses any more. A slice whose cgroup still has processes
// (a proc that outlived its agent) is left running, and named in left.
// The slices of an agent that still runs, which each slice's Description
// names, are not touched: several agents can share a manager.
func (m *Manager) StopLeftovers(ctx context.Context) (stopped, left []string, err error) {
	m.calls.Add(1)
	units, err := m.conn.ListUnitsByPatternsContext(ctx, nil, []string{unitPrefix + "*.slice"})
	if err != nil {
		return nil, nil, fmt.Errorf("listing procstar slices: %w", err)
	}
	for _, us := range units {
		name, ok := strings.CutSuffix(us.Name, ".slice")
		if !ok {
			continue
		}
		if o, ok := parseOwner(us.Description); ok && o.alive() {
			m.log.V(1).Info("leaving a slice of a running agent", "unit", us.Name, "agentPid", o.pid)
			continue
		}
		u := &Unit{m: m, name: name, slice: us.Name, scope: name + ".scope"}
		// Stopping a slice kills what is in it: stop it only when it has
		// no cgroup, or one known to be empty. One whose cgroup cannot
		// be read is left, as if it had processes.
		cg, err := u.ControlGroup(ctx)
		if err == nil && cg != "" {
			var populated bool
			populated, err = cgroup.Populated(filepath.Join(m.cgroupMount, filepath.Clean("/"+cg)))
			if err == nil && populated {
				left = append(left, us.Name)
				continue
			}
		}
		if err != nil {
			m.log.Info("leaving a slice whose cgroup cannot be read", "unit", us.Name, "error", err.Error())
			left = append(left, us.Name)
			continue
		}
		if err := u.Stop(ctx); err != nil {
			m.log.Error(err, "stopping a leftover slice", "unit", us.Name)
			continue
		}
		stopped = append(stopped, us.Name)
	}
	return stopped, left, nil
}

// newName returns "procstar" followed by a random version-4 UUID in 32 hex
// digits.
func newName() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return unitPrefix + hex.EncodeToString(b[:]), nil
}

// Unit is a proc's slice and scope.
type Unit struct {
	m     *Manager
	name  string
	slice string
	scope string
}

// Name is the units' base name, "procstar" and 32 hex digits.
func (u *Unit) Name() string { return u.name }

// Slice is the slice unit's name.
func (u *Unit) Slice() string { return u.slice }

// Scope is the scope unit's name.
func (u *Unit) Scope() string { return u.scope }

// runJob starts a job with start and waits, bounded by ctx, for its result,
// which must be "done".
func (m *Manager) runJob(ctx context.Context, what, unit string, start func(ch chan<- string) error) error {
	// Buffered: go-systemd sends the result while holding its lock, and
	// nobody may be listening any more if ctx has ended.
	ch := make(chan string, 1)
	m.calls.Add(1)
	if err := start(ch); err != nil {
		return fmt.Errorf("%s %s: %w", what, unit, err)
	}
	select {
	case result := <-ch:
		if result != "done" {
			return fmt.Errorf("%w: %s %s: result %q", ErrJobFailed, what, unit, result)
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%s %s: waiting for the job: %w", what, unit, ctx.Err())
	}
}

// Start creates the slice "procstar<uuid>.slice" with the slice properties
// and the scope "procstar<uuid>.scope" in it with the scope properties and
// pid, waiting for each job and checking it is "done". Unless the slice
// properties have one, the slice's Description names this agent (see
// StopLeftovers). If anything after the slice fails, it stops the slice
// before returning (it never leaves units behind). ctx bounds everything.
// The caller must keep the child from exec'ing until Start returns.
func (m *Manager) Start(ctx context.Context, pid int, slice, scope []sddbus.Property) (*Unit, error) {
	if pid <= 0 || uint64(pid) > uint64(^uint32(0)) {
		return nil, fmt.Errorf("%w: pid %d out of range", ErrInvalid, pid)
	}
	name, err := newName()
	if err != nil {
		return nil, fmt.Errorf("unit name: %w", err)
	}
	u := &Unit{m: m, name: name, slice: name + ".slice", scope: name + ".scope"}
	log := m.log.WithValues("pid", pid, "unit", name)
	if m.self.pid != 0 && !slices.ContainsFunc(slice, func(p sddbus.Property) bool { return p.Name == "Description" }) {
		slice = append(slices.Clip(slice), sddbus.Property{Name: "Description", Value: godbus.MakeVariant(m.self.description())})
	}

	err = m.runJob(ctx, "start", u.slice, func(ch chan<- string) error {
		_, err := m.conn.StartTransientUnitContext(ctx, u.slice, "replace", slice, ch)
		return err
	})
	if err == nil {
		scopeProps := make([]sddbus.Property, 0, len(scope)+2)
		for _, p := range scope {
			if p.Name != "PIDs" && p.Name != "Slice" {
				scopeProps = append(scopeProps, p)
			}
		}
		scopeProps = append(scopeProps,
			sddbus.Property{Name: "PIDs", Value: godbus.MakeVariant([]uint32{uint32(pid)})},
			sddbus.Property{Name: "Slice", Value: godbus.MakeVariant(u.slice)})
		err = m.runJob(ctx, "start", u.scope, func(ch chan<- string) error {
			_, err := m.conn.StartTransientUnitContext(ctx, u.scope, "replace", scopeProps, ch)
			return err
		})
	}
	if err != nil {
		// Stop the slice whatever went wrong: a failed slice job, a
		// failed scope, or a ctx that ended with a job in flight.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
		if serr := u.Stop(cctx); serr != nil {
			log.Error(serr, "stopping slice after failed start")
			return nil, errors.Join(err, serr)
		}
		return nil, err
	}
	log.V(2).Info("started systemd units")
	return u, nil
}

// ControlGroup returns the slice's ControlGroup property, e.g.
// "/procstarXXXX.slice", relative to the cgroup2 mount.
func (u *Unit) ControlGroup(ctx context.Context) (string, error) {
	u.m.calls.Add(1)
	p, err := u.m.conn.GetUnitTypePropertyContext(ctx, u.slice, "Slice", "ControlGroup")
	if err != nil {
		return "", fmt.Errorf("ControlGroup of %s: %w", u.slice, err)
	}
	cg, ok := p.Value.Value().(string)
	if !ok {
		return "", fmt.Errorf("ControlGroup of %s: has D-Bus type %s, want s", u.slice, p.Value.Signature())
	}
	if cg == "" {
		return "", fmt.Errorf("%s: %w", u.slice, ErrNoControlGroup)
	}
	return cg, nil
}

// Kill sends sig to every process of the scope.
func (u *Unit) Kill(ctx context.Context, sig int) error {
	if sig < 1 || sig > 64 {
		return fmt.Errorf("%w: signal %d out of range", ErrInvalid, sig)
	}
	u.m.calls.Add(1)
	if err := u.m.conn.KillUnitWithTarget(ctx, u.scope, sddbus.All, int32(sig)); err != nil {
		return fmt.Errorf("kill %s: %w", u.scope, err)
	}
	return nil
}

// Stop stops the slice, which kills whatever is left in the tree, and
// waits for the job; its result must be "done". A slice that is already
// gone is not an error.
func (u *Unit) Stop(ctx context.Context) error {
	err := u.m.runJob(ctx, "stop", u.slice, func(ch chan<- string) error {
		_, err := u.m.conn.StopUnitContext(ctx, u.slice, "replace", ch)
		return err
	})
	if isNoSuchUnit(err) {
		return nil
	}
	return err
}

// isNoSuchUnit reports whether err is systemd's D-Bus error for a unit
// that is not loaded (the error's D-Bus name, not its text).
func isNoSuchUnit(err error) bool {
	var derr godbus.Error
	if errors.As(err, &derr) {
		return derr.Name == errNoSuchUnit
	}
	var pderr *godbus.Error
	return errors.As(err, &pderr) && pderr.Name == errNoSuchUnit
}
