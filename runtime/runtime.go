package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	goruntime "runtime"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/runtime/cgroup"
	"procstar.dev/procstar/runtime/procfs"
	"procstar.dev/procstar/runtime/systemd"
)

// MaxFd is the largest child fd number a spec may name.
const MaxFd = v1.MaxFd

// DefaultDrainTimeout bounds how long captures are drained after the child
// has been reaped.
const DefaultDrainTimeout = 5 * time.Second

// Options configure a Runtime.
type Options struct {
	// Logger receives the runtime's logs; the zero value discards them.
	Logger logr.Logger
	// RestrictExe, when not "", is the only exe a child may exec (string
	// equality with the exe after any PATH search).
	RestrictExe string
	// TempDir is where tempfile captures live; "" means os.TempDir().
	TempDir string
	// DrainTimeout bounds the drain of captures after exit (default 5s).
	DrainTimeout time.Duration
	// Environ is the agent environment children inherit from; nil means
	// os.Environ() at New.
	Environ []string
	// ForceTrampoline sends every spawn through the trampoline (tests).
	ForceTrampoline bool

	// Cgroups, when set, gives each proc its own child cgroup of this
	// root: limits, whole-tree kill and accounting.
	Cgroups *cgroup.Root
	// Systemd, when set, runs each proc in its own transient slice and
	// scope of this manager instead. It takes precedence over Cgroups.
	Systemd *systemd.Manager
	// BestEffortLimits runs a proc whose limits cannot be enforced, with
	// its ResourceStatus saying so, instead of refusing it. Limits that
	// come only from procstar's systemdProperties are always best effort,
	// as procstar ignores them without systemd.
	BestEffortLimits bool
	// NoResourcesReason says why neither Cgroups nor Systemd is set; it is
	// part of the error for limits that cannot be enforced.
	NoResourcesReason string
}

// watchKind says what an epoll registration stands for.
type watchKind uint8

const (
	watchPidfd watchKind = iota + 1
	watchErrPipe
)

// watch is one fd registered in the epoll set.
type watch struct {
	kind watchKind
	fd   int
	proc *Proc
}

// Runtime spawns procs and reaps them. It is safe for concurrent use.
//
// One goroutine (the reaper loop) watches an epoll set of every live
// pidfd, the error pipes of trampoline spawns and an eventfd that stops
// it; it waits for that set through the Go netpoller. Nothing
// blocks in that loop: captures are drained by a short-lived goroutine per
// exited proc that has captures. A running proc costs its pidfd and a
// small struct, no goroutine.
//
// Children are reaped only by this loop, by pid, after their pidfd became
// readable; a child that exits before its pidfd is in the set is still
// reported (epoll checks readiness when an fd is added).
type Runtime struct {
	opts   Options
	log    logr.Logger
	epfd   int
	epFile *os.File        // owns epfd; registered with the Go netpoller
	epConn syscall.RawConn // epFile's, for waiting on the epoll set
	stopfd int             // eventfd; a write stops the loop
	loopWG sync.WaitGroup
	// drainWG counts drain goroutines; Close waits for them.
	drainWG sync.WaitGroup

	// environ is the agent environment ("NAME=value"), from Options.
	// Read-only after New.
	environ []string
	// startupFds are the fds >= 3 the agent inherited from its parent and
	// still had open at New (see inheritedFds). They are what
	// closeOtherFds=false inherits and what an unlisted dup or inherit
	// source may name. Read-only after New.
	startupFds map[int]bool
	// defaultEnv is the child environment of a spec with the default env
	// (inherit all, no vars), computed once at New. Read-only.
	defaultEnv []string
	// trampoline is true when the agent's signal state is not clean
	// (something blocked or ignored), so every spawn needs the trampoline.
	trampoline bool

	// traceHold says whether a child can be held at exec with ptrace
	// (see holdByTrace); probed once, on first need.
	traceHoldOnce sync.Once
	traceHoldOK   bool

	// cgroupMount is the cgroup2 mount point ("" if unknown), to name
	// cgroups relative to it. Read-only after New.
	cgroupMount string
	// bgCtx ends at Close; it bounds the goroutines that remove cgroups
	// once their leftovers exit, which bgWG counts.
	bgCtx    context.Context
	bgCancel context.CancelFunc
	bgWG     sync.WaitGroup

	// mu guards watches, nextToken, cgroupSeq and closed. It is held only
	// for map updates and EpollCtl calls, never across anything that can
	// block.
	mu        sync.Mutex
	watches   map[uint64]*watch
	nextToken uint64
	cgroupSeq uint64
	closed    bool
}

// stopToken is the epoll token of the stop eventfd.
const stopToken = 0

// New starts a Runtime and its reaper loop. It marks every fd >= 3 the
// agent has open close-on-exec, so none leaks into a child.
func New(opts Options) (*Runtime, error) {
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.Environ == nil {
		opts.Environ = os.Environ()
	}
	r := &Runtime{
		opts:       opts,
		log:        opts.Logger,
		environ:    append([]string(nil), opts.Environ...),
		startupFds: map[int]bool{},
		watches:    map[uint64]*watch{},
		nextToken:  stopToken + 1,
	}
	fds, err := listOpenFds()
	if err != nil {
		return nil, fmt.Errorf("listing agent fds: %w", err)
	}
	for _, fd := range fds {
		if fd < 3 {
			continue
		}
		if inheritedFds[fd] {
			r.startupFds[fd] = true
		}
		// Best effort: an fd that raced closed is simply gone.
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	}
	// Dispositions are process-wide, so SigIgn of /proc/self/status is
	// exact. The blocked mask is per thread and the main thread's changes
	// while the Go runtime works, so use the one sampled at start-up.
	catchIgnoredSignals()
	_, ignored, err := procfs.SignalState(os.Getpid())
	ignored &^= libcSignals
	switch {
	case err != nil:
		r.log.Info("cannot read agent signal state; using the trampoline", "error", err.Error())
		r.trampoline = true
	case ignored != 0 || startupSigmask != 0:
		log := r.log.V(1)
		kv := []any{"blocked", strconv.FormatUint(startupSigmask, 16), "ignored", strconv.FormatUint(ignored, 16)}
		if reexecErr != nil {
			// The program asked to be rid of its blocked signals and
			// could not be: every spawn pays for it.
			log = r.log
			kv = append(kv, "reexec", reexecErr.Error())
		}
		log.Info("agent signal state not clean; using the trampoline", kv...)
		r.trampoline = true
	}

	r.defaultEnv = r.buildEnv(&v1.ProcSpec{})
	if opts.Cgroups != nil || opts.Systemd != nil {
		if m, err := cgroup.Mount(); err == nil {
			r.cgroupMount = m
		}
	}
	if opts.Cgroups != nil {
		r.sweepCgroups()
	}
	r.bgCtx, r.bgCancel = context.WithCancel(context.Background())

	r.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	r.stopfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(r.epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	setToken(&ev, stopToken)
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, r.stopfd, &ev); err != nil {
		unix.Close(r.stopfd)
		unix.Close(r.epfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	// The epoll fd goes into the Go netpoller; the loop waits there.
	if err := unix.SetNonblock(r.epfd, true); err != nil {
		unix.Close(r.stopfd)
		unix.Close(r.epfd)
		return nil, fmt.Errorf("epoll fd non-blocking: %w", err)
	}
	r.epFile = os.NewFile(uintptr(r.epfd), "runtime-epoll")
	if r.epConn, err = r.epFile.SyscallConn(); err != nil {
		r.epFile.Close()
		unix.Close(r.stopfd)
		return nil, fmt.Errorf("epoll fd: %w", err)
	}
	r.loopWG.Add(1)
	go r.loop()
	return r, nil
}

// inheritedFds are the fds >= 3 this process inherited from its parent,
// recorded at package initialisation. An fd without FD_CLOEXEC at that
// point came across exec from the parent: everything Go opens itself (the
// netpoller, the cgroup CPU-limit files the Go runtime keeps open) is
// O_CLOEXEC. They are marked close-on-exec at once. New keeps those still
// open as the start-up fds that closeOtherFds=false passes on, as procstar
// does.
var inheritedFds = scanInheritedFds()

func scanInheritedFds() map[int]bool {
	out := map[int]bool{}
	fds, err := listOpenFds()
	if err != nil {
		return out
	}
	for _, fd := range fds {
		if fd < 3 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil || flags&unix.FD_CLOEXEC != 0 {
			continue
		}
		out[fd] = true
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, flags|unix.FD_CLOEXEC)
	}
	return out
}

// ignoredSink is the channel catchIgnoredSignals catches into. No one
// reads it; a full channel drops a signal, as SIG_IGN did.
var ignoredSink = make(chan os.Signal, 1)

// catchIgnoredSignals stops the agent ignoring SIGHUP and SIGINT, the only
// signals the Go runtime leaves at a SIG_IGN the process started with
// (under nohup, or as a background job of a shell without job control); it
// installs its own handler for every other one, and a forked child resets
// every handled signal to the default. Caught into ignoredSink, they are
// dropped as the ignore dropped them, and the agent's children start with
// the default disposition without the trampoline. It checks again at each
// New: a signal.Stop of the last other channel for one of them restores
// the ignore.
func catchIgnoredSignals() {
	_, ignored, err := procfs.SignalState(os.Getpid())
	if err != nil {
		return
	}
	var sigs []os.Signal
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGINT} {
		if ignored&(1<<(sig-1)) != 0 {
			sigs = append(sigs, sig)
		}
	}
	if len(sigs) > 0 {
		signal.Notify(ignoredSink, sigs...)
	}
}

// libcSignals are signals 32 and 33 (bits 31 and 32), which glibc keeps
// for itself (thread cancellation and set*id broadcasts) and installs its
// own handlers for whenever it needs them, whatever it inherited. GNU make
// starts its children with both ignored; that alone does not make the
// agent's signal state unclean, or every spawn under `make run` would pay
// for the trampoline.
const libcSignals = 1<<(32-1) | 1<<(33-1)

// startupSigmask is the signal mask of the main thread while packages
// initialise, as a bitmap with bit n-1 for signal n. Children started
// through Go's fork inherit the mask the process was exec'd with; this is
// that mask, except for the few signals the Go runtime unblocks on its own
// threads at once (SIGSEGV, SIGINT, SIGTERM and the like), which a blocked
// start-up mask rarely holds. Ignored dispositions are checked separately.
var startupSigmask = readStartupSigmask()

func readStartupSigmask() uint64 {
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	var old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, nil, &old); err != nil {
		return 0
	}
	return old.Val[0]
}

// listOpenFds lists the fds open in this process, from /proc/self/fd.
func listOpenFds() ([]int, error) {
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	self := int(d.Fd())
	var fds []int
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd == self {
			continue
		}
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	return fds, nil
}

// Close stops the reaper loop and waits for running capture drains and
// cgroup finalizations. It does not kill children; procs still running are
// never reaped by this Runtime, and their cgroups stay.
func (r *Runtime) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	var one [8]byte
	one[0] = 1
	if _, err := unix.Write(r.stopfd, one[:]); err != nil {
		return fmt.Errorf("stopping reaper: %w", err)
	}
	r.loopWG.Wait()
	r.drainWG.Wait()
	r.bgCancel()
	r.bgWG.Wait()
	r.mu.Lock()
	watches := r.watches
	r.watches = map[uint64]*watch{}
	r.mu.Unlock()
	for _, w := range watches {
		if w.kind == watchPidfd {
			w.proc.detach() // closes the pidfd under the proc's lock
		} else {
			unix.Close(w.fd)
		}
	}
	unix.Close(r.stopfd)
	return r.epFile.Close()
}

func setToken(ev *unix.EpollEvent, tok uint64) {
	ev.Fd = int32(uint32(tok))
	ev.Pad = int32(uint32(tok >> 32))
}

func token(ev *unix.EpollEvent) uint64 {
	return uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
}

// register adds fd to the epoll set for proc. The watch is in the map before
// EpollCtl, so an event that fires at once (a child that already exited)
// finds it. A pidfd is registered one-shot: it is reported once, when the
// child has exited, and then stays disarmed, so the reap needs no
// EPOLL_CTL_DEL; closing the pidfd takes it out of the set.
func (r *Runtime) register(kind watchKind, fd int, p *Proc) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return ErrClosed
	}
	tok := r.nextToken
	r.nextToken++
	r.watches[tok] = &watch{kind: kind, fd: fd, proc: p}
	if kind == watchPidfd {
		p.rt, p.tok = r, tok
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN}
	if kind == watchPidfd {
		ev.Events |= unix.EPOLLONESHOT
	}
	setToken(&ev, tok)
	if err := unix.EpollCtl(r.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		delete(r.watches, tok)
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// rearm re-enables the one-shot watch tok of pidfd fd.
func (r *Runtime) rearm(tok uint64, fd int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLONESHOT}
	setToken(&ev, tok)
	return unix.EpollCtl(r.epfd, unix.EPOLL_CTL_MOD, fd, &ev)
}

// forget drops watch tok from the map; its fd is disarmed or out of the
// set already.
func (r *Runtime) forget(tok uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.watches, tok)
}

// unregister removes a watch from the set and the map. The caller closes
// the fd.
func (r *Runtime) unregister(tok uint64, fd int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	delete(r.watches, tok)
}

// loop is the single reaper goroutine. It waits for the epoll set through
// the Go netpoller (the epoll fd is itself pollable), not in a blocking
// epoll_wait: it holds no thread while idle, and the goroutines it wakes
// run on the same thread at once, which keeps spawn-to-Done latency close
// to a hand-written poll loop's. The set is level-triggered, except that
// pidfds are one-shot (see register): an error pipe not drained is
// reported again.
func (r *Runtime) loop() {
	defer r.loopWG.Done()
	events := make([]unix.EpollEvent, 128)
	stop := false
	// handle drains every ready event; it returns false when there is
	// nothing left, so the netpoller parks the goroutine until the epoll
	// fd is readable again. A batch smaller than events was everything
	// ready when it was taken, and each handler drains its fd: anything
	// that becomes ready after that makes the epoll fd readable anew, so
	// handle returns without another epoll_wait to find the set empty.
	handle := func(fd uintptr) bool {
		for !stop {
			n, err := unix.EpollWait(int(fd), events, 0)
			if err != nil {
				if errors.Is(err, unix.EINTR) {
					continue
				}
				r.log.Error(err, "epoll_wait failed; reaper stops")
				stop = true
				break
			}
			if n == 0 {
				return false
			}
			for i := 0; i < n; i++ {
				tok := token(&events[i])
				if tok == stopToken {
					stop = true
					break
				}
				r.mu.Lock()
				w := r.watches[tok]
				r.mu.Unlock()
				if w == nil {
					continue
				}
				switch w.kind {
				case watchPidfd:
					r.reap(tok, w)
				case watchErrPipe:
					r.readErrPipe(tok, w)
				}
			}
			if !stop && n < len(events) {
				return false
			}
		}
		return true
	}
	for !stop {
		if err := r.epConn.Read(handle); err != nil {
			r.log.Error(err, "waiting on the epoll set failed; reaper stops")
			return
		}
	}
}

// reap handles a readable pidfd: the child has exited and is a zombie.
// A proc that Wait has taken over is left to it.
func (r *Runtime) reap(tok uint64, w *watch) {
	p := w.proc
	if !p.reaping.CompareAndSwap(false, true) {
		return
	}
	if !r.reapZombie(p, unix.WNOHANG) {
		// Not reapable yet (cannot happen once the pidfd is readable):
		// wait for the next report.
		p.reaping.Store(false)
		if err := r.rearm(tok, w.fd); err != nil {
			r.log.Error(err, "re-arming a pidfd watch", "proc", p.id, "pid", p.pid)
		}
		return
	}
	r.forget(tok)
	if testHookReaped != nil {
		testHookReaped(p)
	}
	r.afterExit(p, false)
}

// testHookReaped, when set (tests only), runs on the reaper loop with each
// proc it has just reaped, before it closes the proc's Exited.
var testHookReaped func(p *Proc)

// reapZombie snapshots the zombie's /proc/PID/stat and reaps it with wait4
// (options: 0 or WNOHANG), recording both. It reports false if WNOHANG
// found the child still running. The caller holds p.reaping.
func (r *Runtime) reapZombie(p *Proc, options int) bool {
	// The zombie's last /proc/PID/stat: the pid cannot be reused before
	// wait4 below.
	stat, statErr := procfs.ReadStat(p.pid)
	if p.res != nil && p.res.status.TreeKill == treeKillProcessGroup && statErr == nil && stat.State == "Z" {
		// Without a cgroup or unit, the tree is the child's process
		// group (it is a session leader): kill what is left of it while
		// the zombie leader still holds the group ID.
		_ = unix.Kill(-p.pid, unix.SIGKILL)
	}
	var ws unix.WaitStatus
	var ru unix.Rusage
	var wpid int
	var err error
	for {
		wpid, err = unix.Wait4(p.pid, &ws, options|unix.WALL, &ru)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err == nil && wpid == 0 {
		return false
	}
	stop := time.Now()
	if statErr != nil {
		r.log.V(1).Info("reading zombie stat failed", "proc", p.id, "pid", p.pid, "error", statErr.Error())
	}
	p.setReaped(stop, ws, &ru, stat, err)
	if err != nil {
		r.log.Error(err, "wait4 failed", "proc", p.id, "pid", p.pid)
	} else {
		r.log.V(1).Info("reaped", "proc", p.id, "pid", p.pid, "waitStatus", int(ws))
	}
	return true
}

// Wait blocks until the proc is done and returns its final status.
//
// It is for a caller that waits on one proc at a time, as a hand-written
// parent does. Unless the reaper loop has already taken the child, Wait
// takes its pidfd out of the loop's set, sleeps in poll(2) on it in the
// calling thread and reaps the child there: the exit reaches the caller
// without the loop waking and handing it over. Like os.Process.Wait, it
// holds an OS thread while it waits; a caller with many procs in flight
// should wait on Done instead, which costs no thread. A Wait that began
// before Close still ends when the child exits; one that begins after it,
// on a proc still running, never returns, as Done never closes then.
func (p *Proc) Wait() v1.ProcStatus {
	if r := p.rt; r != nil && r.takeOver(p) {
		fds := []unix.PollFd{{Fd: int32(p.pidfd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if !errors.Is(err, unix.EINTR) {
				break
			}
		}
		r.reapZombie(p, 0)
		// A trampoline child's error pipe is still the loop's: then the
		// loop finishes the proc at the pipe's EOF.
		r.afterExit(p, true)
	}
	<-p.done
	return p.Status()
}

// takeOver claims the reap of p for Wait: it reports false if the loop has
// claimed it (or the Runtime is closed, so no one will), and otherwise
// takes the pidfd out of the epoll set. The pidfd stays open until the
// reap, which only the claimant does.
func (r *Runtime) takeOver(p *Proc) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.watches[p.tok] == nil || !p.reaping.CompareAndSwap(false, true) {
		return false
	}
	_ = unix.EpollCtl(r.epfd, unix.EPOLL_CTL_DEL, p.pidfd, nil)
	delete(r.watches, p.tok)
	return true
}

// readErrPipe collects trampoline error-pipe bytes until EOF.
func (r *Runtime) readErrPipe(tok uint64, w *watch) {
	var buf [4096]byte
	for {
		n, err := unix.Read(w.fd, buf[:])
		if n > 0 {
			w.proc.appendErrBytes(buf[:n])
			continue
		}
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		// EOF (n == 0, err == nil) or a real error: done either way.
		r.unregister(tok, w.fd)
		unix.Close(w.fd)
		if err != nil {
			w.proc.addError("error pipe: " + osError(err))
		}
		w.proc.errPipeDone()
		r.afterExit(w.proc, false)
		return
	}
}

// afterExit closes Exited once the child is reaped and its error pipe (if
// any) is at EOF, then finalizes its cgroup or units and perf counters,
// drains captures and closes Done: off the loop, or in the caller's
// goroutine with inline (for Wait, whose finish Close must not wait for).
func (r *Runtime) afterExit(p *Proc, inline bool) {
	if !p.markExited() {
		return
	}
	if len(p.captures) == 0 && p.perf == nil {
		if p.res.noFinalize() {
			p.markDone()
			return
		}
		if !inline && r.quickFinalize(p) {
			return
		}
	}
	if inline {
		r.finish(p)
		return
	}
	r.drainWG.Add(1)
	go func() {
		defer r.drainWG.Done()
		r.finish(p)
	}()
}

// finish finalizes the resources and perf counters of an exited proc,
// drains its captures and closes Done.
func (r *Runtime) finish(p *Proc) {
	// The tree goes first: a leftover holding a pipe would hold up the
	// drain.
	remove := r.finalizeResources(p)
	deadline := time.Now().Add(r.opts.DrainTimeout)
	for _, c := range p.captureList() {
		if !c.cap.Drain(deadline) {
			r.log.Info("capture drain timed out", "proc", p.id, "pid", p.pid, "fd", c.fd)
		}
	}
	p.markDone()
	p.finishRemove(remove)
}
