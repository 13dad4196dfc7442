package controller

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"syscall"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
	"procstar.dev/procstar/runtime"
)

// state is where a proc is in its lifecycle, as its worker sees it.
//
//	                 start ok                 exited             done, no restart
//	+--> Pending -------------> Running ---------------> Exited ------------------> Terminated
//	|       |                     |                       ^   |                        |
//	|       | start failed        | timeout, or deleted:  |   | done, the restart      | deleted
//	|       | (Terminated if the  | stop signal to group  |   | policy says restart    v
//	|       | policy does not     v                       |   v                     Removed
//	|       | restart)         Stopping ------exited------+  BackingOff -----------> Terminated
//	|       |                 (SIGKILL to the group when      |  ^       not accepting
//	|       |                  the grace period ends)         |  |
//	|       +-------------------------------------------------|--+
//	+--------------------------- backoff over ----------------+
//
// Create starts the first run itself, so a new proc begins in Running;
// Pending is the start of a restart. Once the controller stops accepting
// (shutdown), nothing restarts: Pending, BackingOff and Exited go to
// Terminated, with the last run's ending. Pending, BackingOff and
// Terminated move to Removed as soon as the proc is deleted. Delete
// removes a proc whose process has exited from the table at once (the
// worker then waits for the drain before releasing the captures); a
// running one is stopped first and removed by its worker once it has
// exited and drained.
//
// Phases: Pending and BackingOff are Pending; Running, Stopping and Exited
// are Running; Terminated is Succeeded, Failed or Error by how the last run
// ended.
type state int

const (
	statePending    state = iota // no process; start one
	stateRunning                 // the process runs; a timeout may be due
	stateStopping                // stop signal sent; SIGKILL due at killAt
	stateExited                  // reaped; captures draining
	stateBackingOff              // ended; restart due at restartAt
	stateTerminated              // ended for good; stays until deleted
	stateRemoved                 // deleted; the worker exits
)

var stateNames = [...]string{"Pending", "Running", "Stopping", "Exited", "BackingOff", "Terminated", "Removed"}

func (s state) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// ConditionOutputDrained is a condition type set False, with reason
// DrainTimedOut, when a capture was still held open by another process
// after the proc exited and reading stopped after a bounded wait.
const ConditionOutputDrained = "OutputDrained"

// inputs are the levels a transition looks at: desired state from the
// table and observed state of the process, read afresh each time.
type inputs struct {
	now       time.Time
	deleting  bool
	force     bool
	grace     time.Duration
	removed   bool
	accepting bool
	exited    bool // the current process has been reaped
	done      bool // ... and its captures drained
}

// ending is how a run ended.
type ending struct {
	phase   v1.ProcPhase
	reason  string
	message string
}

// worker converges one proc. Every field is owned by the worker goroutine
// (by Create before that goroutine starts).
type worker struct {
	c          *Controller
	e          *entry
	spec       *v1.ProcSpec
	generation int64

	state        state
	proc         Process
	startedAt    time.Time   // clock time the current run started
	timeout      *v1.Timeout // the run's timeout; nil: none
	timeoutAt    time.Time   // zero: no timeout
	killAt       time.Time
	killSent     bool
	stopReason   string // ReasonTimedOut or ReasonKilled while stopping
	restartAt    time.Time
	backoff      time.Duration
	restartCount int32
	conds        []v1.Condition
	end          ending
	startErr     error
	final        *v1.ProcStatus // the runtime's final status of the run, once done
	// runs counts begin and finishRun calls, so that a settle that comes
	// back to the state it started from (a restart whose run ended at
	// once) still publishes.
	runs int64
}

func newWorker(c *Controller, e *entry, spec *v1.ProcSpec, generation int64) *worker {
	return &worker{c: c, e: e, spec: spec, generation: generation, state: statePending}
}

// begin records that proc has just been started at now.
func (w *worker) begin(p Process, now time.Time) {
	w.runs++
	w.proc = p
	w.state = stateRunning
	w.startedAt = now
	w.timeoutAt = time.Time{}
	w.timeout = runTimeout(w.spec, p.Resources())
	if t := w.timeout; t != nil {
		w.timeoutAt = now.Add(t.Duration())
	}
	w.killAt, w.killSent, w.stopReason = time.Time{}, false, ""
	w.end = ending{}
	w.startErr = nil
	w.final = nil
	if pid := p.Pid(); pid > 0 {
		w.setCondition(v1.ConditionStarted, v1.ConditionTrue, v1.ReasonExec, fmt.Sprintf("pid %d", pid), now)
		if rs := p.Resources(); rs != nil {
			status, reason, msg := resourcesCondition(rs)
			w.setCondition(v1.ConditionResourcesEnforced, status, reason, msg, now)
		}
	}
	if v1.FindCondition(w.conds, v1.ConditionTerminated) != nil {
		w.setCondition(v1.ConditionTerminated, v1.ConditionFalse, v1.ReasonExec, fmt.Sprintf("restarted (restart %d)", w.restartCount), now)
	}
	v1.RemoveCondition(&w.conds, ConditionOutputDrained)
}

func (w *worker) setCondition(typ string, status v1.ConditionStatus, reason, msg string, now time.Time) {
	v1.SetCondition(&w.conds, v1.Condition{Type: typ, Status: status, Reason: reason, Message: msg, ObservedGeneration: w.generation}, now)
}

// busy reports whether the state counts for WaitAllExited.
func (w *worker) busy() bool {
	return w.state == stateRunning || w.state == stateStopping || w.state == stateExited
}

func (w *worker) phase() v1.ProcPhase {
	switch w.state {
	case stateRunning, stateStopping, stateExited:
		return v1.PhaseRunning
	case stateTerminated, stateRemoved:
		return w.end.phase
	}
	return v1.PhasePending
}

// status builds the published status from the runtime's and the worker's.
// For a process still running it takes only the pid and start time (the
// runtime's Status reads /proc then, which Get does instead); once the
// process has been reaped it takes the runtime's whole status, which no
// longer reads /proc.
func (w *worker) status() v1.ProcStatus {
	var st v1.ProcStatus
	switch {
	case w.proc == nil:
	case w.final != nil:
		st = *w.final
		st.Errors = append([]string(nil), st.Errors...)
	case isClosed(w.proc.Exited()):
		st = w.proc.Status()
	default:
		start := w.startedAt.UTC()
		st.Pid = w.proc.Pid()
		st.Times = &v1.ProcTimes{Start: &start}
	}
	if w.startErr != nil {
		st.Errors = append(st.Errors, w.startErr.Error())
	}
	st.Phase = w.phase()
	st.Conditions = append([]v1.Condition(nil), w.conds...)
	st.ObservedGeneration = w.generation
	st.RestartCount = w.restartCount
	return st
}

// observe reads the inputs.
func (w *worker) observe() inputs {
	c, e := w.c, w.e
	c.mu.Lock()
	in := inputs{deleting: e.deleting, force: e.delForce, grace: e.delGrace, removed: e.removed, accepting: c.accepting}
	c.mu.Unlock()
	in.now = c.clock.Now()
	if w.proc != nil {
		in.exited = isClosed(w.proc.Exited())
		in.done = in.exited && isClosed(w.proc.Done())
	}
	return in
}

// transition is the one transition function of the state machine drawn
// above: from the current state and the inputs it moves to the next state,
// doing what the move needs (signals, a start). It reports whether
// anything changed; the caller observes again and repeats until nothing
// does.
func (w *worker) transition(ctx context.Context, in inputs) bool {
	gone := in.deleting || in.removed
	switch w.state {
	case statePending:
		if gone {
			w.state = stateRemoved
			return true
		}
		w.start(ctx, in.now)
		return true

	case stateRunning:
		switch {
		case in.exited:
			w.state = stateExited
		case in.deleting:
			w.stop(in.now, v1.ReasonKilled, w.stopSignal(), in.grace, in.force)
		case !w.timeoutAt.IsZero() && !in.now.Before(w.timeoutAt):
			t := w.timeout
			sig, err := t.Signal.Number()
			if err != nil {
				sig = int(syscall.SIGTERM)
			}
			w.stop(in.now, v1.ReasonTimedOut, sig, t.GracePeriod(), false)
		default:
			return false
		}
		return true

	case stateStopping:
		switch {
		case in.exited:
			w.state = stateExited
			return true
		case in.deleting && w.stopReason != v1.ReasonKilled:
			// Deleted while a timeout stops it: the deletion's grace can
			// only shorten the wait.
			w.stopReason = v1.ReasonKilled
			if in.force {
				w.kill()
			} else if k := in.now.Add(in.grace); k.Before(w.killAt) {
				w.killAt = k
			}
			return true
		case in.deleting && in.force && !w.killSent:
			w.kill()
			return true
		case in.deleting && !w.killSent && in.now.Add(in.grace).Before(w.killAt):
			w.killAt = in.now.Add(in.grace)
			return true
		case !w.killSent && !in.now.Before(w.killAt):
			w.kill()
			return true
		}
		return false

	case stateExited:
		if !in.done {
			return false
		}
		w.finishRun(in.now)
		switch {
		case gone || !w.wantsRestart() || !in.accepting:
			w.state = stateTerminated
		default:
			w.scheduleRestart(in.now)
		}
		return true

	case stateBackingOff:
		switch {
		case gone:
			w.state = stateRemoved
		case !in.accepting:
			w.state = stateTerminated
		case !in.now.Before(w.restartAt):
			w.state = statePending
		default:
			return false
		}
		return true

	case stateTerminated:
		if gone {
			w.state = stateRemoved
			return true
		}
		return false
	}
	return false
}

// stopSignal is the signal a deletion stops the proc with.
func (w *worker) stopSignal() int {
	if t := w.spec.Timeout; t != nil && t.Signal != "" {
		if n, err := t.Signal.Number(); err == nil {
			return n
		}
	}
	return int(syscall.SIGTERM)
}

// stop sends sig to the process group and arms SIGKILL after grace (or
// sends it at once when force or grace is 0).
func (w *worker) stop(now time.Time, reason string, sig int, grace time.Duration, force bool) {
	w.state = stateStopping
	w.stopReason = reason
	w.killAt = now.Add(grace)
	if force || grace <= 0 {
		sig = int(syscall.SIGKILL)
		w.killSent = true
	}
	if !w.signalGroup(sig) {
		// Reaped already, its end not yet seen: the process ended on
		// its own, and its exit says how.
		w.stopReason = ""
	}
}

func (w *worker) kill() {
	w.killSent = true
	w.signalGroup(int(syscall.SIGKILL))
}

// signalGroup sends sig to the process group. It reports false when the
// process had already been reaped.
func (w *worker) signalGroup(sig int) bool {
	err := w.proc.SignalGroup(sig)
	if errors.Is(err, runtime.ErrNotRunning) {
		return false
	}
	if err != nil {
		w.c.log.Error(err, "signalling process group", "proc", w.e.name, "signal", signals.Name(sig))
		return true
	}
	w.c.log.V(1).Info("signalled process group", "proc", w.e.name, "pid", w.proc.Pid(), "signal", signals.Name(sig))
	return true
}

// start starts a new run (a restart: the first run is started by Create).
func (w *worker) start(ctx context.Context, now time.Time) {
	c, e := w.c, w.e
	c.mu.Lock()
	if e.removed || e.deleting {
		c.mu.Unlock()
		w.state = stateRemoved
		return
	}
	if !c.accepting {
		// Shutting down since the restart was due: the last run's end
		// is the proc's.
		c.mu.Unlock()
		w.state = stateTerminated
		return
	}
	e.starting = true
	c.starts++
	c.mu.Unlock()
	ended := false
	defer func() { // a panic in Start must not leave the start counted
		if !ended {
			c.mu.Lock()
			e.starting = false
			c.endStartLocked()
			c.mu.Unlock()
		}
	}()

	w.restartCount++
	requested := time.Now()
	procs, err := c.rt.Start(ctx, []runtime.Request{{ID: e.name, Spec: w.spec}})
	if err == nil && len(procs) != 1 {
		err = fmt.Errorf("runtime started %d procs for 1 request", len(procs))
	}
	old := w.proc
	c.mu.Lock()
	e.starting = false
	if err == nil {
		e.cur = procs[0]
	}
	c.endStartLocked()
	ended = true
	c.mu.Unlock()
	if err != nil {
		// A run that never began: nothing of the last run's status
		// (pid, exit) is this one's. The restart policy still holds: a
		// transient failure (fds, memory, a cgroup) is retried after a
		// backoff that grows as after a run that ended at once.
		c.log.Error(err, "restarting proc", "proc", e.name)
		w.runs++
		w.startErr = err
		w.final = &v1.ProcStatus{}
		w.startedAt = now
		w.end = ending{phase: v1.PhaseError, reason: v1.ReasonSetupFailed, message: err.Error()}
		w.setCondition(v1.ConditionStarted, v1.ConditionFalse, w.end.reason, w.end.message, now)
		w.setCondition(v1.ConditionTerminated, v1.ConditionTrue, w.end.reason, w.end.message, now)
		if w.wantsRestart() {
			w.scheduleRestart(now)
		} else {
			w.state = stateTerminated
		}
		return
	}
	if old != nil {
		if err := old.Release(); err != nil {
			c.log.Error(err, "releasing captures", "proc", e.name)
		}
	}
	if procs[0].Pid() > 0 {
		c.metrics.started(procs[0].Started().Sub(requested))
	}
	w.begin(procs[0], c.clock.Now())
	c.log.V(1).Info("proc restarted", "proc", e.name, "pid", procs[0].Pid(), "restartCount", w.restartCount)
}

// finishRun records how the run that has just ended went.
func (w *worker) finishRun(now time.Time) {
	w.runs++
	st := w.proc.Status()
	w.final = &st
	w.end = classify(st, w.stopReason)
	if len(st.Errors) > 0 {
		w.setCondition(v1.ConditionStarted, v1.ConditionFalse, w.end.reason, w.end.message, now)
	}
	w.setCondition(v1.ConditionTerminated, v1.ConditionTrue, w.end.reason, w.end.message, now)
	var captured int64
	drainTimedOut := false
	for _, f := range st.Fds {
		captured += f.Length
		drainTimedOut = drainTimedOut || f.DrainTimedOut
	}
	if drainTimedOut {
		w.setCondition(ConditionOutputDrained, v1.ConditionFalse, v1.ReasonDrainTimedOut, "a capture was still held open after the process exited; later output is lost", now)
	}
	w.c.metrics.exited(w.end.reason, captured)
	w.c.log.V(1).Info("proc ended", "proc", w.e.name, "pid", st.Pid, "phase", string(w.end.phase), "reason", w.end.reason)
}

// classify says how a run ended from its final runtime status and the
// reason the controller stopped it ("" if it did not). Setup errors are
// classified by procstar's wording of them, the only form the runtime
// gives them in.
func classify(st v1.ProcStatus, stopReason string) ending {
	switch {
	case len(st.Errors) > 0:
		reason := v1.ReasonSetupFailed
		switch first := st.Errors[0]; {
		case strings.HasPrefix(first, "restricted executable"):
			reason = v1.ReasonRestricted
		case strings.HasPrefix(first, "execve failed"):
			reason = v1.ReasonExecFailed
		}
		return ending{v1.PhaseError, reason, strings.Join(st.Errors, "; ")}
	case oomKills(st) > 0 && (st.ExitCode == nil || *st.ExitCode != 0):
		return ending{v1.PhaseFailed, v1.ReasonOOMKilled, fmt.Sprintf("%s; the kernel's OOM killer killed %d process(es) of the proc", describeExit(st), oomKills(st))}
	case stopReason != "":
		return ending{v1.PhaseFailed, stopReason, describeExit(st)}
	case st.ExitCode != nil && *st.ExitCode == 0:
		return ending{v1.PhaseSucceeded, v1.ReasonExited, describeExit(st)}
	case st.ExitCode != nil:
		return ending{v1.PhaseFailed, v1.ReasonExited, describeExit(st)}
	case st.Signal != "":
		return ending{v1.PhaseFailed, v1.ReasonSignaled, describeExit(st)}
	}
	return ending{v1.PhaseUnknown, v1.ReasonExited, describeExit(st)}
}

// systemdStopGrace is systemd's default TimeoutStopSec: how long a unit
// stopped for RuntimeMaxSec gets between SIGTERM and SIGKILL.
const systemdStopGrace = 90.0

// runTimeout is a run's timeout: spec.timeout, or else procstar's
// systemdProperties.scope.runtimeMaxUSec (plus a random part of
// runtimeRandomizedExtraUSec) where no systemd scope enforces it, ended
// the way systemd would: SIGTERM, then SIGKILL after 90 s. So the limit
// holds on every backend.
func runTimeout(spec *v1.ProcSpec, rs *v1.ResourceStatus) *v1.Timeout {
	if spec.Timeout != nil {
		return spec.Timeout
	}
	sp := spec.SystemdProperties
	if sp == nil || sp.Scope.RuntimeMaxUSec == nil || (rs != nil && rs.Backend == runtime.BackendSystemd) {
		return nil
	}
	usec := *sp.Scope.RuntimeMaxUSec
	if extra := sp.Scope.RuntimeRandomizedExtraUSec; extra != nil && *extra > 0 {
		usec += min(rand.Uint64N(*extra), math.MaxUint64-usec) // saturating, as systemd's
	}
	if usec == math.MaxUint64 {
		return nil // systemd's infinity: no limit
	}
	grace := systemdStopGrace
	return &v1.Timeout{Seconds: float64(usec) / 1e6, Signal: "SIGTERM", GracePeriodSeconds: &grace}
}

// oomKills is the OOM kill count of the proc's cgroup.
func oomKills(st v1.ProcStatus) uint64 {
	if a := st.CgroupAccounting; a != nil && a.Memory != nil {
		return a.Memory.OOMKills
	}
	return 0
}

// resourcesCondition is the ResourcesEnforced condition of a run.
func resourcesCondition(rs *v1.ResourceStatus) (v1.ConditionStatus, string, string) {
	switch {
	case rs.Backend == runtime.BackendNone:
		return v1.ConditionFalse, v1.ReasonNoResourceControl, rs.Message
	case !rs.Enforced:
		return v1.ConditionFalse, v1.ReasonControllerUnavailable, rs.Message
	case rs.Backend == runtime.BackendSystemd:
		return v1.ConditionTrue, v1.ReasonSystemd, "in " + rs.Unit
	}
	return v1.ConditionTrue, v1.ReasonCgroup, "in " + rs.Cgroup
}

func describeExit(st v1.ProcStatus) string {
	switch {
	case st.ExitCode != nil:
		return fmt.Sprintf("exit code %d", *st.ExitCode)
	case st.Signal != "":
		return "killed by " + st.Signal
	}
	return "no wait status"
}

// wantsRestart applies the restart policy to the run that just ended.
func (w *worker) wantsRestart() bool {
	switch w.spec.RestartPolicy {
	case v1.RestartAlways:
		return true
	case v1.RestartOnFailure:
		return w.end.phase != v1.PhaseSucceeded
	}
	return false
}

// scheduleRestart moves to BackingOff: the delay starts at
// BackoffInitial, doubles up to BackoffMax and goes back to BackoffInitial
// after a run that lasted BackoffReset.
func (w *worker) scheduleRestart(now time.Time) {
	c := w.c
	switch {
	case w.backoff == 0 || now.Sub(w.startedAt) >= c.backoffReset:
		w.backoff = c.backoffInitial
	default:
		w.backoff = min(2*w.backoff, c.backoffMax)
	}
	w.restartAt = now.Add(w.backoff)
	w.state = stateBackingOff
}

// deadline is when the worker must look again without being woken.
func (w *worker) deadline() (time.Time, bool) {
	switch w.state {
	case stateRunning:
		return w.timeoutAt, !w.timeoutAt.IsZero()
	case stateStopping:
		return w.killAt, !w.killSent
	case stateBackingOff:
		return w.restartAt, true
	}
	return time.Time{}, false
}

// settle runs transitions, observing afresh after each, until none
// applies, and reports whether the status to publish changed.
func (w *worker) settle(ctx context.Context) bool {
	from, runs := w.state, w.runs
	for i := 0; i < 100 && w.state != stateRemoved && w.transition(ctx, w.observe()); i++ {
	}
	return w.state != from || w.runs != runs
}

// run is the worker goroutine: observe, transition, publish, wait.
func (w *worker) run(ctx context.Context) {
	c, e := w.c, w.e
	defer c.workers.Done()
	defer func() {
		c.mu.Lock()
		e.workerRunning = false
		c.mu.Unlock()
	}()
	for {
		if ctx.Err() != nil {
			return
		}
		changed := w.settle(ctx)
		if w.state == stateRemoved {
			w.remove(ctx)
			return
		}
		if changed {
			w.publish()
		}
		if !w.wait(ctx) {
			return
		}
	}
}

// publish publishes the worker's status as a MODIFIED event.
func (w *worker) publish() {
	st := w.status()
	c, e := w.c, w.e
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.removed {
		return
	}
	obj := *e.obj
	obj.Status = st
	c.publishLocked(e, v1.Modified, &obj)
	c.setBusyLocked(e, w.busy())
}

// remove takes the proc out of the table if Delete has not already, then
// waits for its output to drain and releases it.
func (w *worker) remove(ctx context.Context) {
	c, e := w.c, w.e
	st := w.status()
	c.mu.Lock()
	if !e.removed {
		obj := *e.obj
		obj.Status = st
		if obj.Metadata.DeletionTimestamp == nil {
			now := c.clock.Now().UTC()
			obj.Metadata.DeletionTimestamp = &now
		}
		c.removeLocked(e, &obj)
		c.log.V(1).Info("proc deleted", "proc", e.name)
	}
	c.mu.Unlock()
	if w.proc == nil {
		return
	}
	select {
	case <-w.proc.Done():
	case <-ctx.Done():
		return
	}
	if err := w.proc.Release(); err != nil {
		c.log.Error(err, "releasing captures", "proc", e.name)
	}
}

// wait blocks until something the state depends on may have changed.
func (w *worker) wait(ctx context.Context) bool {
	var exited, done <-chan struct{}
	switch w.state {
	case stateRunning, stateStopping:
		exited = w.proc.Exited()
	case stateExited:
		done = w.proc.Done()
	}
	var fire <-chan time.Time
	if at, ok := w.deadline(); ok {
		t := w.c.clock.NewTimerAt(at)
		defer t.Stop()
		fire = t.C()
	}
	select {
	case <-ctx.Done():
		return false
	case <-w.e.wake:
	case <-exited:
	case <-done:
	case <-fire:
	}
	return true
}
