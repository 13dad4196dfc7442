package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/runtime"
	"procstar.dev/procstar/runtime/capture"
	"procstar.dev/procstar/wire"
)

// Defaults of Options.
const (
	// DefaultHistorySize is how many events the watch history keeps.
	DefaultHistorySize = 10000
	// DefaultBackoffInitial is the first restart delay.
	DefaultBackoffInitial = 10 * time.Second
	// DefaultBackoffMax caps the restart delay.
	DefaultBackoffMax = 5 * time.Minute
	// DefaultBackoffReset is how long a run must last for the delay to
	// go back to DefaultBackoffInitial.
	DefaultBackoffReset = 10 * time.Minute
)

// Options configure a Controller.
type Options struct {
	// Runtime starts processes; required. See FromRuntime.
	Runtime Runtime
	// Clock drives timeouts, grace periods and backoff; nil is RealClock.
	Clock Clock
	// Logger receives the controller's logs; the zero value discards them.
	Logger logr.Logger
	// Registry, when not nil, gets the procstar_* metrics.
	Registry *prometheus.Registry
	// HistorySize is how many events a watch can resume across
	// (DefaultHistorySize when 0).
	HistorySize int
	// BackoffInitial, BackoffMax and BackoffReset tune restart backoff
	// (the Default* values when 0).
	BackoffInitial, BackoffMax, BackoffReset time.Duration
}

// Controller is the node's proc table and reconciler. Its methods are safe
// for concurrent use. Create, Apply and Delete record desired state and
// return; each proc's worker goroutine (started by Run) converges the
// runtime to it and publishes the status.
//
// Known limits: the table is in memory only. Get reads the runtime status
// of a proc whose process is running (or draining) afresh; List and Watch
// return the status as last published, which changes only on lifecycle
// transitions and, while the process runs, carries only its pid and start
// time (procStat, procStatm, fds, cwd and env come once it has exited, or
// from Get).
type Controller struct {
	rt             Runtime
	clock          Clock
	log            logr.Logger
	metrics        *metrics
	backoffInitial time.Duration
	backoffMax     time.Duration
	backoffReset   time.Duration
	workers        sync.WaitGroup // the worker goroutines

	// mu guards every field below and the fields of each entry marked as
	// guarded by it. Nothing that holds it blocks or calls a method of the
	// runtime that does more than return a channel.
	mu        sync.Mutex
	procs     map[string]*entry
	reserved  map[string]bool // names of Creates in progress
	rv        int64           // last resourceVersion handed out
	hist      history         // the last events, for watches
	changed   chan struct{}   // closed and replaced on every event
	accepting bool
	refusal   string          // why new procs are refused when !accepting
	runCtx    context.Context // non-nil while Run runs
	busy      int             // entries whose process is running or draining
	scans     int64           // whole-table scans, for tests
	// starts counts runtime starts in flight (Create's, and restarts),
	// begun while accepting; startsDone is signalled as each ends, with
	// its processes in the table. SetAccepting(false) waits for them.
	starts     int
	startsDone *sync.Cond
}

// entry is one proc in the table.
type entry struct {
	name string
	w    *worker       // owned by the worker goroutine (by Create before)
	wake chan struct{} // 1-buffered; a send never blocks and never drops a level

	// Guarded by Controller.mu.
	obj           *v1.Proc // last published object; never modified after
	cur           Process  // the current (or last) runtime process
	starting      bool     // the worker is starting a process
	deleting      bool
	delForce      bool
	delGrace      time.Duration
	removed       bool
	removedCh     chan struct{} // closed on removal
	busy          bool          // counted in Controller.busy
	workerRunning bool
}

// New returns a Controller. It starts no goroutine; call Run.
func New(opts Options) (*Controller, error) {
	if opts.Runtime == nil {
		return nil, errors.New("controller: Options.Runtime is required")
	}
	m, err := newMetrics(opts.Registry)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	c := &Controller{
		rt:             opts.Runtime,
		clock:          opts.Clock,
		log:            opts.Logger,
		metrics:        m,
		backoffInitial: orDefault(opts.BackoffInitial, DefaultBackoffInitial),
		backoffMax:     orDefault(opts.BackoffMax, DefaultBackoffMax),
		backoffReset:   orDefault(opts.BackoffReset, DefaultBackoffReset),
		procs:          map[string]*entry{},
		reserved:       map[string]bool{},
		changed:        make(chan struct{}),
		accepting:      true,
	}
	c.startsDone = sync.NewCond(&c.mu)
	if c.clock == nil {
		c.clock = RealClock{}
	}
	size := opts.HistorySize
	if size <= 0 {
		size = DefaultHistorySize
	}
	c.hist = newHistory(size)
	return c, nil
}

func orDefault(v, def time.Duration) time.Duration {
	if v <= 0 {
		return def
	}
	return v
}

// Run runs the workers of every proc, present and future, until ctx ends,
// then waits for them to return. Running processes are left alone.
func (c *Controller) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.runCtx != nil {
		c.mu.Unlock()
		return errors.New("controller: Run called twice")
	}
	c.runCtx = ctx
	for _, e := range c.procs {
		c.startWorkerLocked(e)
	}
	c.mu.Unlock()
	c.log.V(1).Info("controller running")
	<-ctx.Done()
	c.mu.Lock()
	c.runCtx = nil
	c.mu.Unlock()
	c.workers.Wait()
	return nil
}

func (c *Controller) startWorkerLocked(e *entry) {
	if c.runCtx == nil || e.workerRunning || e.removed {
		return
	}
	e.workerRunning = true
	c.workers.Add(1)
	go e.w.run(c.runCtx)
}

// SetAccepting says whether new procs may be created. When ok is false,
// Create (and Apply of a new proc) fail with ErrUnavailable
// "agent shutting down: REASON", and procs due to restart are not: those
// backing off end at once. It returns once the starts already under way
// have their processes in the table, so that a SignalAll after it reaches
// every process there will be.
func (c *Controller) SetAccepting(ok bool, reason string) {
	c.mu.Lock()
	c.accepting = ok
	c.refusal = reason
	for !ok && c.starts > 0 {
		c.startsDone.Wait()
	}
	entries := make([]*entry, 0, len(c.procs))
	if !ok {
		for _, e := range c.procs {
			entries = append(entries, e)
		}
	}
	c.mu.Unlock()
	for _, e := range entries {
		wakeUp(e)
	}
}

// endStartLocked ends a start begun while accepting (see starts).
func (c *Controller) endStartLocked() {
	c.starts--
	c.startsDone.Broadcast()
}

// notFound is the error for an unknown name.
func notFound(name string) error {
	return errdefs.New(errdefs.ErrNotFound, "proc not found: "+name)
}

// Create starts a batch of procs, all or nothing: pipes may join procs of
// the batch. It returns the created objects, in the order given; like
// Watch's events, they share data with the table and must not be modified.
func (c *Controller) Create(ctx context.Context, procs []v1.Proc) ([]v1.Proc, error) {
	if len(procs) == 0 {
		return []v1.Proc{}, nil
	}
	specs := make([]v1.Proc, len(procs))
	for i := range procs {
		procs[i].DeepCopyInto(&specs[i])
		specs[i].SetDefaults()
	}
	if err := v1.ValidateProcs(specs); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err)
	}
	reqs := make([]runtime.Request, len(specs))
	for i := range specs {
		reqs[i] = runtime.Request{ID: specs[i].Metadata.Name, Spec: &specs[i].Spec}
	}
	if err := runtime.CheckBatch(reqs); err != nil {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, err)
	}

	c.mu.Lock()
	if !c.accepting {
		reason := c.refusal
		c.mu.Unlock()
		return nil, errdefs.New(errdefs.ErrUnavailable, "agent shutting down: "+reason)
	}
	for _, r := range reqs {
		if c.procs[r.ID] != nil || c.reserved[r.ID] {
			c.mu.Unlock()
			return nil, errdefs.New(errdefs.ErrAlreadyExists, "duplicate proc id: "+r.ID)
		}
	}
	for _, r := range reqs {
		c.reserved[r.ID] = true
	}
	c.starts++
	c.mu.Unlock()
	// unreserve ends the start; called under mu, at once, on every way
	// out (the deferred call covers a panic, which a REST handler
	// recovers: a start left counted would hold SetAccepting for ever).
	reserved := true
	unreserve := func() {
		if !reserved {
			return
		}
		reserved = false
		for _, r := range reqs {
			delete(c.reserved, r.ID)
		}
		c.endStartLocked()
	}
	defer func() {
		if reserved {
			c.mu.Lock()
			unreserve()
			c.mu.Unlock()
		}
	}()

	requested := time.Now()
	started, err := c.rt.Start(ctx, reqs)
	if err == nil && len(started) != len(reqs) {
		err = fmt.Errorf("runtime started %d procs for %d requests", len(started), len(reqs))
	}
	if err != nil {
		c.mu.Lock()
		unreserve()
		c.mu.Unlock()
		return nil, classifyStartError(err)
	}
	now := c.clock.Now()

	entries := make([]*entry, len(reqs))
	objs := make([]*v1.Proc, len(reqs))
	for i, p := range started {
		e := &entry{name: reqs[i].ID, wake: make(chan struct{}, 1), removedCh: make(chan struct{})}
		e.w = newWorker(c, e, reqs[i].Spec, 1)
		if p.Pid() > 0 {
			c.metrics.started(p.Started().Sub(requested))
		}
		e.w.begin(p, now)
		e.w.settle(ctx)
		ts := now.UTC()
		objs[i] = &v1.Proc{
			TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProc},
			Metadata: v1.ObjectMeta{
				Name:              reqs[i].ID,
				Namespace:         specs[i].Metadata.Namespace,
				UID:               newUID(),
				Generation:        1,
				CreationTimestamp: &ts,
				// specs is this call's own copy: its maps can be shared.
				Labels:      specs[i].Metadata.Labels,
				Annotations: specs[i].Metadata.Annotations,
			},
			Spec:   *reqs[i].Spec,
			Status: e.w.status(),
		}
		e.cur = p
		entries[i] = e
	}

	out := make([]v1.Proc, len(objs))
	c.mu.Lock()
	unreserve()
	for i, e := range entries {
		c.procs[e.name] = e
		c.publishLocked(e, v1.Added, objs[i])
		c.setBusyLocked(e, e.w.busy())
		c.startWorkerLocked(e)
	}
	c.mu.Unlock()
	for i, o := range objs {
		out[i] = *o
		c.log.V(1).Info("proc created", "proc", o.Metadata.Name, "pid", o.Status.Pid)
	}
	return out, nil
}

// classifyStartError gives a runtime Start error its class.
func classifyStartError(err error) error {
	switch {
	case errors.Is(err, runtime.ErrInvalidSpec):
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err)
	case errors.Is(err, runtime.ErrClosed):
		return errdefs.Wrap(errdefs.ErrUnavailable, err)
	case errors.Is(err, runtime.ErrResourcesUnavailable):
		// Like gRPC's FailedPrecondition over HTTP: 400, with the reason.
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err)
	}
	return err
}

// newUID returns a random RFC 4122 version 4 UUID.
func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:36], b[10:16])
	return string(s[:])
}

// Apply creates proc, or compares it with the existing proc of the same
// name. The spec is immutable: an identical spec (after defaults) is
// ApplyUnchanged, or ApplyConfigured when only labels or annotations
// changed (they are updated, with a MODIFIED event). A changed spec is
// ErrConflict unless force, which deletes the old proc gracefully (as
// Delete with default options), waits for it to go and creates the new
// one: ApplyConfigured. Applying to a proc being deleted is ErrConflict
// unless force.
func (c *Controller) Apply(ctx context.Context, proc v1.Proc, force bool) (v1.Proc, v1.ApplyResult, error) {
	p := proc.DeepCopy()
	p.SetDefaults()
	if err := p.Validate(); err != nil {
		return v1.Proc{}, "", errdefs.Wrap(errdefs.ErrInvalidArgument, err)
	}
	name := p.Metadata.Name
	c.mu.Lock()
	e := c.procs[name]
	if e == nil {
		c.mu.Unlock()
		created, err := c.Create(ctx, []v1.Proc{*p})
		if err != nil {
			return v1.Proc{}, "", err
		}
		return created[0], v1.ApplyCreated, nil
	}
	if !e.deleting && v1.SameSpec(&e.obj.Spec, &p.Spec) {
		obj := e.obj
		result := v1.ApplyUnchanged
		if !equalMap(obj.Metadata.Labels, p.Metadata.Labels) || !equalMap(obj.Metadata.Annotations, p.Metadata.Annotations) {
			n := *obj
			n.Metadata.Labels = maps.Clone(p.Metadata.Labels)
			n.Metadata.Annotations = maps.Clone(p.Metadata.Annotations)
			c.publishLocked(e, v1.Modified, &n)
			obj = &n
			result = v1.ApplyConfigured
		}
		c.mu.Unlock()
		return *obj.DeepCopy(), result, nil
	}
	deleting := e.deleting
	removed := e.removedCh
	accepting, refusal := c.accepting, c.refusal
	c.mu.Unlock()
	if force && !accepting {
		// The replacement could not be created: keep the old proc.
		return v1.Proc{}, "", errdefs.New(errdefs.ErrUnavailable, "agent shutting down: "+refusal)
	}
	if !force {
		if deleting {
			return v1.Proc{}, "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("proc %s is being deleted; wait for it to go, or apply with --force", name))
		}
		return v1.Proc{}, "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("spec of proc %s is immutable; delete it or apply with --force", name))
	}
	if _, err := c.Delete(ctx, name, v1.DeleteOptions{}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		return v1.Proc{}, "", err
	}
	select {
	case <-removed:
	case <-ctx.Done():
		return v1.Proc{}, "", ctx.Err()
	}
	created, err := c.Create(ctx, []v1.Proc{*p})
	if err != nil {
		return v1.Proc{}, "", err
	}
	return created[0], v1.ApplyConfigured, nil
}

func equalMap(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

// Get returns the proc named name. The runtime status of a proc whose
// process is running or draining is read fresh.
func (c *Controller) Get(ctx context.Context, name string) (v1.Proc, error) {
	c.mu.Lock()
	e := c.procs[name]
	if e == nil {
		c.mu.Unlock()
		return v1.Proc{}, notFound(name)
	}
	obj, cur := e.obj, e.cur
	c.mu.Unlock()
	out := *obj.DeepCopy()
	if cur != nil && out.Status.Pid == cur.Pid() && !isClosed(cur.Done()) {
		st := cur.Status()
		st.Phase = out.Status.Phase
		st.Conditions = out.Status.Conditions
		st.ObservedGeneration = out.Status.ObservedGeneration
		st.RestartCount = out.Status.RestartCount
		st.Agent = out.Status.Agent
		out.Status = st
	}
	return out, nil
}

// List returns the procs whose labels selector matches (nil matches
// every proc), sorted by name, with the resourceVersion they were read at.
func (c *Controller) List(ctx context.Context, selector v1.Selector) (v1.ProcList, error) {
	if selector == nil {
		selector = v1.Everything()
	}
	c.mu.Lock()
	c.scans++
	objs := make([]*v1.Proc, 0, len(c.procs))
	for _, e := range c.procs {
		if selector.Matches(e.obj.Metadata.Labels) {
			objs = append(objs, e.obj)
		}
	}
	rv := c.rv
	c.mu.Unlock()
	slices.SortFunc(objs, func(a, b *v1.Proc) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	list := v1.ProcList{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProcList},
		Metadata: v1.ListMeta{ResourceVersion: formatRV(rv)},
		Items:    make([]v1.Proc, len(objs)),
	}
	for i, o := range objs {
		o.DeepCopyInto(&list.Items[i])
	}
	return list, nil
}

// Delete deletes the proc named name and returns it with its
// deletionTimestamp set. A proc whose process is not running is removed at
// once (DELETED event, captures released). A running one is refused with
// ErrFailedPrecondition "process running: NAME" when opts.RefuseRunning
// (procstar's semantics); otherwise it is stopped: its stop signal
// (spec.timeout.signal, else SIGTERM) goes to its process group, then
// SIGKILL after the grace period (opts.GracePeriodSeconds, else
// spec.timeout.gracePeriodSeconds, else 30 s; at once with opts.Force or a
// grace of 0), and it is removed once it has exited and its output
// drained. Delete does not wait for that. Deleting a proc already being
// deleted can only shorten the grace period or force it.
func (c *Controller) Delete(ctx context.Context, name string, opts v1.DeleteOptions) (v1.Proc, error) {
	if g := opts.GracePeriodSeconds; g != nil && !(*g >= 0) {
		return v1.Proc{}, errdefs.New(errdefs.ErrInvalidArgument, "gracePeriodSeconds must be 0 or more")
	}
	// A process that has exited but whose output still drains is removed
	// at once too (its name is free again, as procstar's is), but its
	// worker has not published how it ended yet: the DELETED object says
	// so from the runtime's status, read here, outside the lock.
	var ended *v1.ProcStatus
	c.mu.Lock()
	if e := c.procs[name]; e != nil && e.cur != nil && isClosed(e.cur.Exited()) && !isClosed(e.cur.Done()) {
		cur := e.cur
		c.mu.Unlock()
		st := cur.Status() // reaped: no /proc reads
		ended = &st
		c.mu.Lock()
		if e := c.procs[name]; e == nil || e.cur != cur {
			ended = nil
		}
	}
	e := c.procs[name]
	if e == nil {
		c.mu.Unlock()
		return v1.Proc{}, notFound(name)
	}
	live := e.starting || (e.cur != nil && !isClosed(e.cur.Exited()))
	if live && opts.RefuseRunning {
		c.mu.Unlock()
		return v1.Proc{}, errdefs.New(errdefs.ErrFailedPrecondition, "process running: "+name)
	}
	now := c.clock.Now().UTC()
	if !live {
		obj := *e.obj
		if obj.Metadata.DeletionTimestamp == nil {
			obj.Metadata.DeletionTimestamp = &now
		}
		if ended != nil && obj.Status.Phase == v1.PhaseRunning {
			end := classify(*ended, "")
			obj.Status.Phase = end.phase
			obj.Status.Conditions = append([]v1.Condition(nil), obj.Status.Conditions...)
			v1.SetCondition(&obj.Status.Conditions, v1.Condition{Type: v1.ConditionTerminated, Status: v1.ConditionTrue,
				Reason: end.reason, Message: end.message, ObservedGeneration: obj.Metadata.Generation}, now)
			obj.Status.ExitCode, obj.Status.Signal, obj.Status.WaitStatus = ended.ExitCode, ended.Signal, ended.WaitStatus
		}
		cur := e.cur
		c.removeLocked(e, &obj)
		c.mu.Unlock()
		wakeUp(e)
		if cur != nil && isClosed(cur.Done()) {
			if err := cur.Release(); err != nil {
				c.log.Error(err, "releasing captures", "proc", name)
			}
		}
		c.log.V(1).Info("proc deleted", "proc", name)
		return *obj.DeepCopy(), nil
	}
	grace := time.Duration(0)
	force := opts.Force
	if !force {
		switch {
		case opts.GracePeriodSeconds != nil:
			grace = (&v1.Timeout{GracePeriodSeconds: opts.GracePeriodSeconds}).GracePeriod()
		case e.obj.Spec.Timeout != nil:
			grace = e.obj.Spec.Timeout.GracePeriod()
		default:
			grace = (&v1.Timeout{}).GracePeriod()
		}
		force = grace <= 0
	}
	if !e.deleting {
		e.deleting, e.delForce, e.delGrace = true, force, grace
		obj := *e.obj
		obj.Metadata.DeletionTimestamp = &now
		c.publishLocked(e, v1.Modified, &obj)
	} else {
		e.delForce = e.delForce || force
		e.delGrace = min(e.delGrace, grace)
	}
	obj := e.obj
	c.mu.Unlock()
	wakeUp(e)
	c.log.V(1).Info("proc stopping for deletion", "proc", name, "force", force, "grace", grace.String())
	return *obj.DeepCopy(), nil
}

// wakeUp makes e's worker look at its inputs again.
func wakeUp(e *entry) {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// removeLocked takes e out of the table and publishes its DELETED event
// with obj.
func (c *Controller) removeLocked(e *entry, obj *v1.Proc) {
	delete(c.procs, e.name)
	e.removed = true
	close(e.removedCh)
	c.setBusyLocked(e, false)
	c.publishLocked(e, v1.Deleted, obj)
}

// setBusyLocked keeps Controller.busy counting busy entries.
func (c *Controller) setBusyLocked(e *entry, busy bool) {
	if e.busy == busy {
		return
	}
	e.busy = busy
	if busy {
		c.busy++
	} else {
		c.busy--
	}
}

// current returns the current process of name.
func (c *Controller) current(name string) (Process, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.procs[name]
	if e == nil {
		return nil, notFound(name)
	}
	if e.cur == nil {
		return nil, errdefs.Wrap(errdefs.ErrFailedPrecondition, runtime.ErrNotRunning)
	}
	return e.cur, nil
}

// Signal sends sig to the proc's process, or to its process group when
// group. A proc whose process has been reaped gives ErrFailedPrecondition
// with procstar's message "no process"; a bad signal number is
// ErrInvalidArgument.
func (c *Controller) Signal(ctx context.Context, name string, sig int, group bool) error {
	p, err := c.current(name)
	if err != nil {
		return err
	}
	if group {
		err = p.SignalGroup(sig)
	} else {
		err = p.Signal(sig)
	}
	switch {
	case err == nil:
		c.log.V(1).Info("signal sent", "proc", name, "signal", sig, "group", group)
		return nil
	case errors.Is(err, runtime.ErrNotRunning):
		return errdefs.Wrap(errdefs.ErrFailedPrecondition, err)
	case errors.Is(err, runtime.ErrBadSignal):
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err)
	}
	return err
}

// Result returns procstar's result of the proc's current (or last)
// process, read fresh.
func (c *Controller) Result(ctx context.Context, name string) (wire.ProcRes, error) {
	p, err := c.current(name)
	if err != nil {
		return wire.ProcRes{}, err
	}
	return result(p), nil
}

func result(p Process) wire.ProcRes {
	st := p.Status()
	return wire.NewProcRes(p.Spec(), &st, time.Now(), p)
}

// Results returns the result of every proc, by name.
func (c *Controller) Results(ctx context.Context) (map[string]wire.ProcRes, error) {
	procs := c.snapshotProcs(nil)
	out := make(map[string]wire.ProcRes, len(procs))
	for name, p := range procs {
		out[name] = result(p)
	}
	return out, nil
}

// snapshotProcs returns the current process of every proc keep accepts
// (nil keeps all).
func (c *Controller) snapshotProcs(keep func(e *entry) bool) map[string]Process {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scans++
	out := make(map[string]Process, len(c.procs))
	for name, e := range c.procs {
		if e.cur != nil && (keep == nil || keep(e)) {
			out[name] = e.cur
		}
	}
	return out
}

// outputError gives an output read error its class, keeping the runtime's
// sentinel and procstar's wording ("no fd: N", "no fd data"): an unlisted
// or non-capture fd or a bad range is ErrInvalidArgument; bytes a capture
// limit dropped, or a released capture, are ErrGone.
func outputError(err error) error {
	switch {
	case errors.Is(err, runtime.ErrNoFd), errors.Is(err, runtime.ErrNotCapture), errors.Is(err, runtime.ErrBadRange):
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err)
	case errors.Is(err, runtime.ErrReleased), errors.Is(err, capture.ErrDropped):
		return errdefs.Wrap(errdefs.ErrGone, err)
	}
	return err
}

// ReadOutput returns bytes [start, stop) of the captured fd of the proc's
// current process (nil stop: to the current end).
func (c *Controller) ReadOutput(ctx context.Context, name string, fd int, start int64, stop *int64) ([]byte, error) {
	p, err := c.current(name)
	if err != nil {
		return nil, err
	}
	b, err := p.ReadOutput(fd, start, stop)
	if err != nil {
		return nil, outputError(err)
	}
	return b, nil
}

// ReadOutputAt reads the proc's captured fd at off into p, like
// io.ReaderAt, so the HTTP layer can stream a log through one buffer
// (restapi.OutputReaderAt).
func (c *Controller) ReadOutputAt(ctx context.Context, name string, fd int, p []byte, off int64) (int, error) {
	proc, err := c.current(name)
	if err != nil {
		return 0, err
	}
	n, err := proc.ReadOutputAt(fd, p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, outputError(err)
	}
	return n, err
}

// OutputFile opens the file that holds fd's output of the proc's current
// process, with an offset of its own, for sendfile; the caller closes it.
// A memory capture is runtime.ErrNotFile.
func (c *Controller) OutputFile(ctx context.Context, name string, fd int) (*os.File, error) {
	proc, err := c.current(name)
	if err != nil {
		return nil, err
	}
	f, err := proc.OutputFile(fd)
	if err != nil {
		return nil, outputError(err)
	}
	return f, nil
}

// OutputInfo describes the captured fd of the proc's current process.
// Complete is read before Length, so a Complete Length is final.
func (c *Controller) OutputInfo(ctx context.Context, name string, fd int) (v1.OutputInfo, error) {
	p, err := c.current(name)
	if err != nil {
		return v1.OutputInfo{}, err
	}
	complete := isClosed(p.Done())
	n, err := p.OutputLen(fd)
	if err != nil {
		return v1.OutputInfo{}, outputError(err)
	}
	info := v1.OutputInfo{Length: n, Complete: complete}
	for _, f := range p.Spec().Fds {
		if num, err := f.Fd.Number(); err == nil && num == fd && f.Capture != nil {
			info.Encoding = f.Capture.Encoding
		}
	}
	if info.Encoding == "" {
		info.Encoding = v1.EncodingBase64
	}
	return info, nil
}

// Len returns how many procs the table holds.
func (c *Controller) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.procs)
}

// Changed returns a channel that is closed at the next change of the table
// (any event). Call it again after it fires.
func (c *Controller) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// SignalAll sends sig to the process group of every proc whose process is
// running and returns how many it reached.
func (c *Controller) SignalAll(sig int) int {
	procs := c.snapshotProcs(func(e *entry) bool { return !isClosed(e.cur.Exited()) })
	n := 0
	for name, p := range procs {
		if err := p.SignalGroup(sig); err == nil {
			n++
		} else if !errors.Is(err, runtime.ErrNotRunning) {
			c.log.Error(err, "signalling proc", "proc", name, "signal", sig)
		}
	}
	return n
}

// WaitAllExited waits until no proc has a process that is running,
// starting, or exited with its output still draining. Procs waiting to
// restart do not count (after SetAccepting(false, ...) they never restart).
func (c *Controller) WaitAllExited(ctx context.Context) error {
	for {
		c.mu.Lock()
		n, ch := c.busy, c.changed
		c.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// CollectAndDelete removes every proc whose process is not running and
// returns their results, by name (procstar's --exit collection).
func (c *Controller) CollectAndDelete() map[string]wire.ProcRes {
	procs := c.snapshotProcs(func(e *entry) bool { return !e.starting && isClosed(e.cur.Exited()) })
	out := make(map[string]wire.ProcRes, len(procs))
	for name, p := range procs {
		out[name] = result(p)
	}
	c.mu.Lock()
	var gone []*entry
	for name, p := range procs {
		e := c.procs[name]
		if e == nil || e.cur != p || e.starting {
			delete(out, name)
			continue
		}
		obj := *e.obj
		if obj.Metadata.DeletionTimestamp == nil {
			now := c.clock.Now().UTC()
			obj.Metadata.DeletionTimestamp = &now
		}
		c.removeLocked(e, &obj)
		gone = append(gone, e)
	}
	c.mu.Unlock()
	for _, e := range gone {
		wakeUp(e)
	}
	return out
}
