package runtime

import (
	"context"
	"errors"
	"fmt"
	"golang.org/x/sys/unix"
	"io/fs"
	"os"
	"path/filepath"
	"procstar.dev/procstar/runtime/trampoline"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/runtime/cgroup"
	"procstar.dev/procstar/runtime/perf"
	"procstar.dev/procstar/runtime/systemd"
)

// Resource backends, as GET /agent and ResourceStatus.Backend name them.
const (
	BackendSystemd = "systemd"
	BackendCgroup  = "cgroup"
	BackendNone    = "none"
)

// Tree-kill modes of ResourceStatus.TreeKill.
const (
	treeKillCgroup       = "cgroup"
	treeKillSystemd      = "systemd"
	treeKillProcessGroup = "processGroup"
	treeKillOff          = "off"
)

// ErrResourcesUnavailable means a spec asks for limits that this agent
// cannot enforce, and best effort was not allowed.
var ErrResourcesUnavailable = errors.New("resource limits unavailable")

// finalizeTimeout bounds the work after a proc's exit: killing what is
// left of its tree, waiting for the cgroup to empty and the systemd calls.
const finalizeTimeout = 10 * time.Second

// sweepCgroups removes the empty proc cgroups an earlier agent left in
// the root (it was killed before it could, or its procs' leftovers have
// exited since). rmdir refuses a cgroup that still has processes, so
// those stay.
func (r *Runtime) sweepCgroups() {
	dir := r.opts.Cgroups.Dir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		r.log.Error(err, "listing the cgroup root")
		return
	}
	removed := 0
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), cgroupPrefix) && os.Remove(filepath.Join(dir, e.Name())) == nil {
			removed++
		}
	}
	if removed > 0 {
		r.log.V(1).Info("removed empty proc cgroups an earlier agent left", "root", dir, "count", removed)
	}
}

// maxNameTries bounds the search for a free cgroup name.
const maxNameTries = 100

// systemdStartTimeout bounds the creation of a proc's slice and scope.
const systemdStartTimeout = 30 * time.Second

// ResourceBackend returns the backend that controls procs' resources.
func (r *Runtime) ResourceBackend() string {
	switch {
	case r.opts.Systemd != nil:
		return BackendSystemd
	case r.opts.Cgroups != nil:
		return BackendCgroup
	}
	return BackendNone
}

// specLimits merges a spec's resources and procstar's systemd slice
// properties into cgroup limits; resources win where both are set.
func specLimits(spec *v1.ProcSpec) cgroup.Limits {
	var l cgroup.Limits
	u2i := func(u *uint64) *int64 {
		if u == nil {
			return nil
		}
		v := int64(min(*u, 1<<63-1))
		return &v
	}
	if sp := spec.SystemdProperties; sp != nil {
		l.MemoryMax = u2i(sp.Slice.MemoryMax)
		l.MemoryHigh = u2i(sp.Slice.MemoryHigh)
		l.MemorySwapMax = u2i(sp.Slice.MemorySwapMax)
		l.MemoryMin = u2i(sp.Slice.MemoryMin)
		l.MemoryLow = u2i(sp.Slice.MemoryLow)
		// systemd's OOMPolicy=kill is the kernel's memory.oom.group. stop
		// ends the whole unit after an OOM kill too, which oom.group does
		// at once (see oomStopNote); continue needs nothing.
		if pol := oomPolicy(spec); pol == "kill" || pol == "stop" {
			oomGroup := true
			l.OOMGroup = &oomGroup
		}
		l.PidsMax = u2i(sp.Slice.TasksMax)
	}
	rs := spec.Resources
	if rs == nil {
		return l
	}
	bytes := func(q *v1.Quantity, into **int64) {
		if q == nil {
			return
		}
		if n, err := q.Bytes(); err == nil { // Validate has checked it
			*into = &n
		}
	}
	bytes(rs.MemoryMax, &l.MemoryMax)
	bytes(rs.MemoryHigh, &l.MemoryHigh)
	bytes(rs.MemorySwapMax, &l.MemorySwapMax)
	if rs.TasksMax != nil {
		l.PidsMax = rs.TasksMax
	}
	if rs.CPUMax != nil {
		if m, err := rs.CPUMax.Millicores(); err == nil {
			// 1000 millicores is one whole period of CPU time.
			const period = 100000
			l.CPUMax = &cgroup.CPUMax{QuotaUsec: max(m*period/1000, 1000), PeriodUsec: period}
		}
	}
	l.CPUWeight = rs.CPUWeight
	return l
}

// oomStopNote says how the cgroup backend carries out OOMPolicy=stop.
const oomStopNote = "OOMPolicy=stop is memory.oom.group=1 here: an OOM kill ends the whole cgroup at once, where systemd would first send SIGTERM"

// oomPolicy is the spec's systemd scope OOMPolicy, or "".
func oomPolicy(spec *v1.ProcSpec) string {
	if sp := spec.SystemdProperties; sp != nil && sp.Scope.OOMPolicy != nil {
		return *sp.Scope.OOMPolicy
	}
	return ""
}

// killTree reports whether spec asks for its leftovers to be killed.
func killTree(spec *v1.ProcSpec) bool { return spec.KillTree == nil || *spec.KillTree }

// bestEffort reports whether spec's limits that cannot be enforced are
// skipped rather than refused: with Options.BestEffortLimits, and for a
// spec whose limits all come from procstar's systemdProperties, which
// procstar itself ignores where systemd is not available. Limits asked
// for in spec.resources are refused unless BestEffortLimits.
func (r *Runtime) bestEffort(spec *v1.ProcSpec) bool {
	return r.opts.BestEffortLimits || spec.Resources == nil
}

// checkResources refuses, before anything starts, a batch in which a proc
// asks for limits this runtime cannot enforce, unless best effort applies
// to it.
func (r *Runtime) checkResources(reqs []Request) error {
	for _, req := range sortedReqs(reqs) {
		l := specLimits(req.Spec)
		if l.IsZero() || r.bestEffort(req.Spec) {
			continue
		}
		switch r.ResourceBackend() {
		case BackendNone:
			return fmt.Errorf("%w: proc %s asks for %s, but %s; allow running without them with --resource-limits=best-effort",
				ErrResourcesUnavailable, req.ID, strings.Join(l.Controllers(), ", ")+" limits", r.noResourcesReason())
		case BackendCgroup:
			if miss := missing(l.Controllers(), r.opts.Cgroups.Controllers()); len(miss) > 0 {
				return fmt.Errorf("%w: proc %s needs the %s cgroup controllers, which are not enabled in %s (enabled: %s)%s; allow running without them with --resource-limits=best-effort",
					ErrResourcesUnavailable, req.ID, strings.Join(miss, ", "), r.opts.Cgroups.Dir(), orNone(r.opts.Cgroups.Controllers()), boundToV1(miss))
			}
		}
	}
	return nil
}

func (r *Runtime) noResourcesReason() string {
	if r.opts.NoResourcesReason != "" {
		return "no resource control is available: " + r.opts.NoResourcesReason
	}
	return "no resource control is available"
}

func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		found := false
		for _, h := range have {
			found = found || h == w
		}
		if !found {
			out = append(out, w)
		}
	}
	return out
}

// boundToV1 says which of the controllers are bound to a cgroup v1
// hierarchy, as on a hybrid host, and so can never be enabled in cgroup2.
func boundToV1(controllers []string) string {
	v1mounts := cgroup.V1Controllers()
	var parts []string
	for _, c := range controllers {
		if m, ok := v1mounts[c]; ok {
			parts = append(parts, c+" at "+m)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "; bound to cgroup v1 on this host: " + strings.Join(parts, ", ")
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

// cgroupPrefix starts every proc cgroup's name.
const cgroupPrefix = "proc-"

// cgroupName is a proc's cgroup directory name: readable, unique in the
// agent's lifetime, and never one of the names cgroupfs reserves.
func cgroupName(id string, seq uint64) string {
	var b strings.Builder
	b.WriteString(cgroupPrefix)
	for _, c := range id {
		if b.Len() >= 64 {
			break
		}
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	b.WriteByte('-')
	b.WriteString(strconv.FormatUint(seq, 10))
	return b.String()
}

// resources is what a proc's resource set-up made.
type resources struct {
	group  *cgroup.Group // cgroup backend
	status v1.ResourceStatus
	// systemd backend: properties to create the units with, and the units
	// once made.
	systemd      bool
	slice, scope []sddbus.Property
	unit         *systemd.Unit
}

// setupResources creates a proc's cgroup (cgroup backend) or its unit
// properties (systemd backend), and its ResourceStatus. An error means the
// proc must not start; its text is the proc's error.
func (r *Runtime) setupResources(id string, spec *v1.ProcSpec) (*resources, error) {
	res := &resources{status: v1.ResourceStatus{Backend: r.ResourceBackend(), Enforced: true}}
	kt := killTree(spec)
	l := specLimits(spec)
	switch res.status.Backend {
	case BackendCgroup:
		var msg string
		var err error
		// A name can be taken by the leftovers of an earlier agent's proc
		// (killTree: false): take the next number.
		for range maxNameTries {
			r.mu.Lock()
			r.cgroupSeq++
			name := cgroupName(id, r.cgroupSeq)
			r.mu.Unlock()
			if r.bestEffort(spec) {
				res.group, msg, err = r.opts.Cgroups.CreateBestEffort(name, l)
			} else {
				res.group, err = r.opts.Cgroups.Create(name, l)
			}
			if !errors.Is(err, fs.ErrExist) {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("cgroup set-up failed: %w", err)
		}
		if msg != "" {
			res.status.Enforced = false
			res.status.Message = msg + boundToV1(missing(l.Controllers(), r.opts.Cgroups.Controllers()))
		} else if oomPolicy(spec) == "stop" {
			res.status.Message = oomStopNote
		}
		res.status.Cgroup = r.cgroupRel(res.group.Path())
		res.status.TreeKill = treeKillCgroup
	case BackendSystemd:
		slice, scope, err := systemd.Properties(spec)
		if err != nil {
			return nil, fmt.Errorf("error with systemd: %w", err)
		}
		res.systemd, res.slice, res.scope = true, slice, scope
		res.status.TreeKill = treeKillSystemd
	default:
		res.status.TreeKill = treeKillProcessGroup
		msg := "no cgroup v2 subtree or systemd: stop and exit reach only the process group"
		if !l.IsZero() {
			res.status.Enforced = false
			msg = "limits are not enforced: " + r.noResourcesReason() + "; " + msg
		}
		res.status.Message = msg
	}
	if !kt {
		res.status.TreeKill = treeKillOff
	}
	return res, nil
}

// cgroupRel returns dir relative to the cgroup2 mount ("/a/b"), or dir
// itself when it is not below it.
func (r *Runtime) cgroupRel(dir string) string {
	if r.cgroupMount == "" {
		return dir
	}
	rel, err := filepath.Rel(r.cgroupMount, dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return dir
	}
	return "/" + rel
}

// noFinalize reports whether there is nothing to do after exit.
func (res *resources) noFinalize() bool {
	return res == nil || (res.group == nil && res.unit == nil)
}

// needsHold reports whether the child must be held before it runs its
// program, for set-up that needs its pid: the systemd scope, or perf
// counters. It is held stopped at its exec under ptrace where that works
// (canHoldByTrace), else blocked in the trampoline before exec.
func (res *resources) needsHold(spec *v1.ProcSpec) bool {
	return res.systemd || spec.PerfCounters
}

// afterFork runs while the child is held: it moves it into its systemd
// units and attaches perf counters. An error means the child must not be
// released.
func (r *Runtime) afterFork(ctx context.Context, p *Proc, res *resources) error {
	if res.systemd {
		ctx, cancel := context.WithTimeout(ctx, systemdStartTimeout)
		defer cancel()
		u, err := r.opts.Systemd.Start(ctx, p.pid, res.slice, res.scope)
		if err != nil {
			return fmt.Errorf("error with systemd: %w", err)
		}
		res.unit = u
		res.status.Unit = u.Slice()
		if cg, err := u.ControlGroup(ctx); err == nil {
			res.status.Cgroup = cg
		} else {
			r.log.Error(err, "reading the slice's control group", "proc", p.id, "unit", u.Slice())
		}
		if err := r.checkSliceControllers(p.spec, res); err != nil {
			return err
		}
	}
	if p.spec.PerfCounters {
		c, err := perf.Open(p.pid)
		if err != nil {
			return fmt.Errorf("perf counters: %w", err)
		}
		p.perf = c
	}
	return nil
}

// checkSliceControllers makes sure systemd can enforce the proc's limits:
// it accepts memory and tasks properties even where their controllers are
// not available (a hybrid host) and then enforces nothing. Unless best
// effort applies to the proc, a slice that lacks a needed controller is an
// error, and the held child never runs.
func (r *Runtime) checkSliceControllers(spec *v1.ProcSpec, res *resources) error {
	l := specLimits(spec)
	if l.IsZero() || res.status.Cgroup == "" || r.cgroupMount == "" {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(r.cgroupMount, filepath.Clean("/"+res.status.Cgroup), "cgroup.controllers"))
	if err != nil {
		r.log.Error(err, "reading the slice's controllers", "unit", res.status.Unit)
		return nil
	}
	miss := missing(l.Controllers(), strings.Fields(string(b)))
	if len(miss) == 0 {
		return nil
	}
	msg := fmt.Sprintf("the %s controllers are not available to %s, so systemd cannot enforce its limits%s",
		strings.Join(miss, ", "), res.status.Unit, boundToV1(miss))
	if !r.bestEffort(spec) {
		return fmt.Errorf("%w: %s; allow running without them with --resource-limits=best-effort", ErrResourcesUnavailable, msg)
	}
	res.status.Enforced = false
	res.status.Message = msg
	return nil
}

// canHoldByTrace probes, once, whether a child can be held at its exec
// with ptrace here (Yama, seccomp or a container may forbid it): it
// starts a throwaway trampoline child traced, and lets it go.
func (r *Runtime) canHoldByTrace() bool {
	r.traceHoldOnce.Do(func() {
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		// A trampoline with no error pipe exits 63 at once.
		pid, err := forkExec("/proc/self/exe", []string{trampoline.Arg0, "-", "-", "-"}, &syscall.ProcAttr{
			Sys: &syscall.SysProcAttr{Ptrace: true, Setsid: true},
		}, nil)
		if err != nil {
			r.log.V(1).Info("children cannot be held with ptrace; using the trampoline", "error", err.Error())
			return
		}
		var ws unix.WaitStatus
		_, err = wait4(pid, &ws, nil)
		if err == nil && ws.Stopped() {
			r.traceHoldOK = unix.PtraceDetach(pid) == nil
			if !r.traceHoldOK {
				_ = unix.Kill(pid, unix.SIGKILL) // our own child, still stopped
			}
			_, _ = wait4(pid, &ws, nil) // reap the probe
		}
		if !r.traceHoldOK {
			r.log.V(1).Info("children cannot be held with ptrace; using the trampoline", "waitStatus", int(ws))
		}
	})
	return r.traceHoldOK
}

// wait4 is a blocking wait4(pid, __WALL) that retries on EINTR.
func wait4(pid int, ws *unix.WaitStatus, ru *unix.Rusage) (int, error) {
	for {
		wpid, err := unix.Wait4(pid, ws, unix.WALL, ru)
		if !errors.Is(err, unix.EINTR) {
			return wpid, err
		}
	}
}

// holdByTrace finishes a child started with PTRACE_TRACEME, on the thread
// that forked it: the kernel stopped it right after its exec, before it
// ran a single instruction of the new program. There it is moved into its
// systemd units and perf counters are attached (afterFork); then it is
// let go. If set-up fails it is killed instead, so it never runs half set
// up. exited says it died before the stop and has been reaped here, with
// ws and ru.
func (r *Runtime) holdByTrace(ctx context.Context, p *Proc, res *resources, pidfd int) (ws unix.WaitStatus, ru *unix.Rusage, exited bool) {
	var rus unix.Rusage
	if _, err := wait4(p.pid, &ws, &rus); err != nil {
		p.addError("waiting for the held child: " + osError(err))
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		_ = unix.PtraceDetach(p.pid)
		return ws, nil, false
	}
	if !ws.Stopped() {
		return ws, &rus, true
	}
	if err := r.afterFork(ctx, p, res); err != nil {
		p.addError(err.Error())
		r.log.Error(err, "setting up a held child; it is killed before it runs", "proc", p.id, "pid", p.pid)
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	}
	// Detach with no signal: the exec's SIGTRAP is not delivered.
	if err := unix.PtraceDetach(p.pid); err != nil && !errors.Is(err, unix.ESRCH) {
		p.addError("releasing the held child: " + osError(err))
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	}
	return ws, nil, false
}

// treeKill reports whether the proc's tree is reached through its cgroup
// or units.
func (p *Proc) treeKill() bool {
	return !p.res.noFinalize() && killTree(p.spec)
}

// signalTree sends sig to everything in the proc's cgroup or scope.
func (p *Proc) signalTree(sig int) error {
	if g := p.res.group; g != nil {
		if sig == int(syscall.SIGKILL) {
			return g.Kill()
		}
		_, err := g.Signal(syscall.Signal(sig))
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), finalizeTimeout)
	defer cancel()
	err := p.res.unit.Kill(ctx, sig)
	if err == nil || p.rt == nil {
		return err
	}
	// systemd did not do it (the bus dropped, say): the tree is still the
	// slice's cgroup, which the kernel signals as well.
	dir := p.rt.unitDir(p.res)
	if dir == "" {
		return err
	}
	g := cgroup.At(dir)
	var ferr error
	if sig == int(syscall.SIGKILL) {
		ferr = g.Kill()
	} else {
		_, ferr = g.Signal(syscall.Signal(sig))
	}
	if ferr != nil {
		return errors.Join(err, ferr)
	}
	p.rt.log.Info("systemd did not signal the proc's unit; its cgroup was signalled instead", "proc", p.id, "error", err.Error())
	return nil
}

// unitDir is the cgroup directory of a proc's slice (systemd backend), or
// "" when it is not known.
func (r *Runtime) unitDir(res *resources) string {
	if res.status.Cgroup == "" || r.cgroupMount == "" {
		return ""
	}
	return filepath.Join(r.cgroupMount, filepath.Clean("/"+res.status.Cgroup))
}

// finalizeResources runs after the main process has been reaped, off the
// reaper loop: it kills what is left of the tree (unless the spec opts
// out) and reads the accounting and perf counts. It returns what removes
// the cgroup or stops the units, which the caller runs once the proc is
// Done, off its critical path; Release waits for it. A cgroup that still
// has processes is removed in the background once it empties.
func (r *Runtime) finalizeResources(p *Proc) (remove func()) {
	ctx, cancel := context.WithTimeout(context.Background(), finalizeTimeout)
	defer cancel()
	log := r.log.WithValues("proc", p.id, "pid", p.pid)
	kt := killTree(p.spec)
	var acct *v1.CgroupAccounting
	res := p.res
	switch {
	case res == nil:
	case res.group != nil:
		g := res.group
		// Usually the main process was alone: nothing to kill or wait for.
		populated, err := g.Populated()
		if kt && (populated || err != nil) {
			if err := g.Kill(); err != nil {
				log.Error(err, "killing the proc's cgroup")
			}
			if err := g.WaitEmpty(ctx); err != nil {
				log.Error(err, "waiting for the proc's cgroup to empty")
			} else {
				populated = false
			}
		}
		a, err := g.Accounting()
		if err != nil {
			log.Error(err, "reading cgroup accounting", "cgroup", g.Path())
		}
		acct = a
		remove = func() { r.removeGroup(g, populated) }
	case res.unit != nil:
		u := res.unit
		dir := r.unitDir(res)
		// Usually the main process was alone: no KillUnit round trip.
		if populated, err := cgroup.Populated(dir); kt && (dir == "" || err != nil || populated) {
			if err := u.Kill(ctx, int(syscall.SIGKILL)); err != nil {
				log.V(1).Info("killing the proc's scope", "unit", u.Scope(), "error", err.Error())
				if dir != "" {
					// systemd did not answer: kill the slice's cgroup.
					if err := cgroup.At(dir).Kill(); err != nil {
						log.Error(err, "killing the proc's slice cgroup", "cgroup", dir)
					}
				}
			}
			if dir != "" {
				if err := cgroup.WaitEmpty(ctx, dir); err != nil {
					log.Error(err, "waiting for the proc's slice to empty", "cgroup", dir)
				}
			}
		}
		if dir != "" {
			a, err := cgroup.ReadAccounting(dir)
			if err != nil {
				log.Error(err, "reading cgroup accounting", "cgroup", dir)
			}
			acct = a
		}
		stop := func() {
			ctx, cancel := context.WithTimeout(context.Background(), finalizeTimeout)
			defer cancel()
			if err := u.Stop(ctx); err != nil {
				log.Error(err, "stopping the proc's slice", "unit", u.Slice())
			}
		}
		if !kt {
			// Stopping the slice would kill the leftovers killTree false
			// keeps: stop it only once it is known to be empty.
			populated, err := cgroup.Populated(dir)
			switch {
			case dir == "" || err != nil:
				log.Info("leaving the proc's slice: its cgroup cannot be read and killTree is false", "unit", u.Slice())
			case populated:
				log.Info("leaving the proc's slice running until its processes are gone: killTree is false", "unit", u.Slice())
				r.whenEmpty(dir, stop, func() {})
			default:
				remove = stop
			}
			break
		}
		remove = stop
	}
	var pc *v1.PerfCounters
	if p.perf != nil {
		pc = p.perf.Read()
		_ = p.perf.Close()
	}
	p.mu.Lock()
	p.acct = acct
	p.perfRes = pc
	p.mu.Unlock()
	return remove
}

// quickFinalize finishes, on the reaper loop, a proc whose cgroup the main
// process had to itself (the common case): two small kernfs reads, then
// Done, and the rmdir off the loop. It reports false, doing nothing, when
// the slow path is needed (leftovers, systemd, a failed read).
func (r *Runtime) quickFinalize(p *Proc) bool {
	g := p.res.group
	if g == nil {
		return false
	}
	if populated, err := g.Populated(); err != nil || populated {
		return false
	}
	acct, err := g.Accounting()
	if err != nil {
		r.log.Error(err, "reading cgroup accounting", "proc", p.id, "cgroup", g.Path())
	}
	p.mu.Lock()
	p.acct = acct
	p.mu.Unlock()
	p.markDone()
	r.drainWG.Add(1)
	go func() {
		defer r.drainWG.Done()
		p.finishRemove(func() { r.removeGroup(g, false) })
	}()
	return true
}

// whenEmpty runs f in the background once the cgroup at dir has no
// processes left (a killTree: false proc's leftovers), or leave if it
// gives up first: when the Runtime closes.
func (r *Runtime) whenEmpty(dir string, f, leave func()) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.log.Info("leaving a cgroup with processes behind at close", "cgroup", dir)
		leave()
		return
	}
	r.bgWG.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.bgWG.Done()
		if err := cgroup.WaitEmpty(r.bgCtx, dir); err != nil {
			r.log.Info("leaving a cgroup with processes behind", "cgroup", dir, "error", err.Error())
			leave()
			return
		}
		f()
	}()
}

// removeGroup removes an empty cgroup now, or one with processes left (a
// killTree: false proc's leftovers) once it empties, until Close.
func (r *Runtime) removeGroup(g *cgroup.Group, populated bool) {
	remove := func() {
		if err := g.Remove(); err != nil {
			r.log.Error(err, "removing a cgroup", "cgroup", g.Path())
		}
	}
	if populated {
		r.whenEmpty(g.Path(), remove, g.Leave)
		return
	}
	remove()
}
