package controller

import (
	"context"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
	"procstar.dev/procstar/runtime"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu     sync.Mutex // guards now and timers
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c     *fakeClock
	at    time.Time
	ch    chan time.Time
	fired bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newTimerLocked(c.now.Add(d))
}

func (c *fakeClock) NewTimerAt(at time.Time) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.newTimerLocked(at)
}

func (c *fakeClock) newTimerLocked(at time.Time) Timer {
	t := &fakeTimer{c: c, at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.fired = true
		t.ch <- c.now
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.fired
	t.fired = true
	return was
}

// Advance moves the clock by d and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.fired:
		case !t.at.After(c.now):
			t.fired = true
			t.ch <- c.now
		default:
			keep = append(keep, t)
		}
	}
	c.timers = keep
}

// fakeRuntime is a Runtime of fake processes whose end tests trigger.
type fakeRuntime struct {
	mu      sync.Mutex // guards every field
	nextPid int
	procs   map[string][]*fakeProc
	// errors, by proc ID, that a started proc reports (exec failures).
	startErrors map[string][]string
	// dieOn: signals that end a fake process, by proc ID ("" for all).
	dieOn  map[string][]int
	starts int
	fail   error // returned by Start when set
	// gate, when set, holds every Start until it is closed.
	gate chan struct{}
	// panics makes Start panic.
	panics bool
	// forkTime is how long each fork of a batch takes, as the fake
	// reports it in Started: the k-th proc is started k+1 forkTimes
	// after Start was called.
	forkTime time.Duration
}

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{nextPid: 1000, procs: map[string][]*fakeProc{}, startErrors: map[string][]string{}, dieOn: map[string][]int{}}
}

func (r *fakeRuntime) Start(ctx context.Context, reqs []runtime.Request) ([]Process, error) {
	r.mu.Lock()
	gate := r.gate
	r.mu.Unlock()
	if gate != nil {
		<-gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.panics {
		panic("fake runtime: Start")
	}
	if r.fail != nil {
		return nil, r.fail
	}
	out := make([]Process, len(reqs))
	called := time.Now()
	for i, q := range reqs {
		r.starts++
		p := &fakeProc{id: q.ID, spec: q.Spec, exited: make(chan struct{}), done: make(chan struct{}),
			started: called.Add(time.Duration(i+1) * r.forkTime)}
		p.dieOn = append(append([]int(nil), r.dieOn[""]...), r.dieOn[q.ID]...)
		if errs := r.startErrors[q.ID]; len(errs) > 0 {
			p.status.Errors = errs
			close(p.exited)
			close(p.done)
		} else {
			r.nextPid++
			p.pid = r.nextPid
			p.status.Pid = p.pid
		}
		r.procs[q.ID] = append(r.procs[q.ID], p)
		out[i] = p
	}
	return out, nil
}

// last returns the latest fake process of id.
func (r *fakeRuntime) last(t testing.TB, id string) *fakeProc {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := r.procs[id]
	if len(ps) == 0 {
		t.Fatalf("no fake process %s", id)
	}
	return ps[len(ps)-1]
}

func (r *fakeRuntime) count(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.procs[id])
}

// fakeProc is one fake process.
type fakeProc struct {
	id      string
	spec    *v1.ProcSpec
	pid     int
	started time.Time
	exited  chan struct{}
	done    chan struct{}
	dieOn   []int

	mu       sync.Mutex // guards the fields below
	status   v1.ProcStatus
	signals  []string // "group:SIGTERM" or "SIGTERM"
	released bool
	reaped   bool // set by reap: signals fail before Exited closes
	holds    int  // Hold calls not undone
	output   []byte
}

func (p *fakeProc) ID() string                       { return p.id }
func (p *fakeProc) Spec() *v1.ProcSpec               { return p.spec }
func (p *fakeProc) Pid() int                         { return p.pid }
func (p *fakeProc) Started() time.Time               { return p.started }
func (p *fakeProc) Resources() *v1.ResourceStatus    { return nil }
func (p *fakeProc) OutputFile(int) (*os.File, error) { return nil, runtime.ErrNotFile }
func (p *fakeProc) Exited() <-chan struct{} {
	return p.exited
}
func (p *fakeProc) Done() <-chan struct{} { return p.done }

func (p *fakeProc) Status() v1.ProcStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.status
	st.Errors = append([]string(nil), st.Errors...)
	return st
}

func (p *fakeProc) signal(sig int, group bool) error {
	p.mu.Lock()
	reaped := p.reaped
	p.mu.Unlock()
	if reaped || isClosed(p.exited) {
		return runtime.ErrNotRunning
	}
	name := signals.Name(sig)
	p.mu.Lock()
	if group {
		p.signals = append(p.signals, "group:"+name)
	} else {
		p.signals = append(p.signals, name)
	}
	p.mu.Unlock()
	for _, s := range p.dieOn {
		if s == sig {
			p.kill(sig)
			p.finish()
		}
	}
	return nil
}

func (p *fakeProc) Signal(sig int) error      { return p.signal(sig, false) }
func (p *fakeProc) SignalGroup(sig int) error { return p.signal(sig, true) }

func (p *fakeProc) Output(fd int) ([]byte, error) { return p.ReadOutput(fd, 0, nil) }

func (p *fakeProc) ReadOutput(fd int, start int64, stop *int64) ([]byte, error) {
	if fd != 1 {
		return nil, fmt.Errorf("%w: %d", runtime.ErrNoFd, fd)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	end := int64(len(p.output))
	if stop != nil {
		end = min(end, *stop)
	}
	if start >= end {
		return []byte{}, nil
	}
	return append([]byte(nil), p.output[start:end]...), nil
}

func (p *fakeProc) ReadOutputAt(fd int, buf []byte, off int64) (int, error) {
	if fd != 1 {
		return 0, fmt.Errorf("%w: %d", runtime.ErrNoFd, fd)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if off >= int64(len(p.output)) {
		return 0, io.EOF
	}
	n := copy(buf, p.output[off:])
	if n < len(buf) {
		return n, io.EOF
	}
	return n, nil
}

func (p *fakeProc) OutputLen(fd int) (int64, error) {
	if fd != 1 {
		return 0, fmt.Errorf("%w: %d", runtime.ErrNoFd, fd)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return int64(len(p.output)), nil
}

func (p *fakeProc) Release() error {
	p.mu.Lock()
	p.released = true
	p.mu.Unlock()
	return nil
}

// Hold counts holds; the fake's reads ignore Release, so it only records.
func (p *fakeProc) Hold() (func(), bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		return nil, false
	}
	p.holds++
	return sync.OnceFunc(func() {
		p.mu.Lock()
		p.holds--
		p.mu.Unlock()
	}), true
}

func (p *fakeProc) isReleased() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.released
}

func (p *fakeProc) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.signals...)
}

// reap makes the process exit with code, but Exited not close yet, as
// the runtime does while a trampoline's error pipe is still open.
func (p *fakeProc) reap(code int) {
	p.setExit(code)
	p.mu.Lock()
	p.reaped = true
	p.mu.Unlock()
}

// exit makes the process exit with code (reaped, not yet drained).
func (p *fakeProc) exit(code int) {
	if p.setExit(code) {
		close(p.exited)
	}
}

func (p *fakeProc) setExit(code int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if isClosed(p.exited) {
		return false
	}
	ws := code << 8
	p.status.ExitCode = &code
	p.status.WaitStatus = &ws
	p.status.Rusage = &v1.Rusage{}
	return true
}

// kill makes the process die of sig.
func (p *fakeProc) kill(sig int) {
	p.mu.Lock()
	if isClosed(p.exited) {
		p.mu.Unlock()
		return
	}
	ws := sig
	p.status.Signal = signals.Name(sig)
	p.status.WaitStatus = &ws
	p.status.Rusage = &v1.Rusage{}
	p.mu.Unlock()
	close(p.exited)
}

// finish marks the captures drained.
func (p *fakeProc) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !isClosed(p.done) {
		close(p.done)
	}
}

// end exits with code and drains at once: Done closes first, so whoever
// sees Exited closed sees Done closed too.
func (p *fakeProc) end(code int) {
	if p.setExit(code) {
		p.finish()
		close(p.exited)
	}
}

// harness is a controller on a fake runtime and clock, running.
type harness struct {
	t     *testing.T
	c     *Controller
	rt    *fakeRuntime
	clock *fakeClock
	ctx   context.Context
}

func newHarness(t *testing.T, mod func(*Options)) *harness {
	t.Helper()
	h := &harness{t: t, rt: newFakeRuntime(), clock: newFakeClock()}
	opts := Options{Runtime: h.rt, Clock: h.clock}
	if mod != nil {
		mod(&opts)
	}
	c, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	h.c = c
	ctx, cancel := context.WithCancel(context.Background())
	h.ctx = ctx
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return h
}

func newProc(name string, argv ...string) v1.Proc {
	if len(argv) == 0 {
		argv = []string{"/bin/true"}
	}
	return v1.Proc{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ProcSpec{Argv: argv}}
}

func (h *harness) create(procs ...v1.Proc) []v1.Proc {
	h.t.Helper()
	out, err := h.c.Create(h.ctx, procs)
	if err != nil {
		h.t.Fatalf("Create: %v", err)
	}
	return out
}

// waitFor waits until the proc named name satisfies cond (or, with
// gone, until it has been deleted), and returns it.
func waitFor(t testing.TB, c *Controller, name string, what string, cond func(p *v1.Proc) bool) v1.Proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		ch := c.Changed()
		p, err := c.Get(ctx, name)
		switch {
		case err == nil && cond(&p):
			return p
		case err != nil && cond(nil):
			return v1.Proc{}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			// Show where every goroutine is: a hang is easier to read.
			buf := make([]byte, 1<<20)
			n := goruntime.Stack(buf, true)
			t.Logf("%s", buf[:n])
			t.Fatalf("timed out waiting for %s to be %s; last: %+v, err %v", name, what, p.Status, err)
		}
	}
}

func phaseIs(ph v1.ProcPhase) func(p *v1.Proc) bool {
	return func(p *v1.Proc) bool { return p != nil && p.Status.Phase == ph }
}

func isGone(p *v1.Proc) bool { return p == nil }

// terminal reports whether p has a final phase.
func terminal(p *v1.Proc) bool {
	if p == nil {
		return false
	}
	switch p.Status.Phase {
	case v1.PhaseSucceeded, v1.PhaseFailed, v1.PhaseError, v1.PhaseUnknown:
		return true
	}
	return false
}

// waitSignals waits until p has been sent want.
func waitSignals(t testing.TB, p *fakeProc, want ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := p.sent()
		if fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("signals sent: %v, want %v", got, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitReleased waits until p has been released.
func waitReleased(t testing.TB, p *fakeProc) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !p.isReleased(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("runtime proc not released")
		}
	}
}

const sigterm, sigkill = int(syscall.SIGTERM), int(syscall.SIGKILL)
