package link

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/wire"
)

// pusher turns changes of the proc table and of the shutdown state into
// pushes on one connection. It follows the backend's Watch from the
// resourceVersion Register's proc_ids were listed at, so nothing between
// the two is missed; the table is never held up, because a watcher that
// falls behind gets an ERROR event and the pusher resyncs from a fresh
// List. It is the only source of pushes, which is what makes a started
// proc's first message a ProcResult.
type pusher struct {
	s     *session
	known map[string]*tracked
	// rv is the last resourceVersion applied; older events are skipped.
	rv uint64
	// state is the shutdown state last told to the server.
	state string
}

// tracked is what the pusher has told the server about one proc.
type tracked struct {
	// uid is the proc's metadata.uid: a proc deleted and created again
	// under the same name is another proc.
	uid string
	// announced: the first ProcResult has been pushed (or the server
	// learnt of the proc from Register.proc_ids).
	announced bool
	// final: the final ProcResult of the current run has been pushed.
	final bool
	// restarts is the restartCount final refers to.
	restarts int32
	phase    v1.ProcPhase
	// lastResult is when a ProcResult was last pushed.
	lastResult time.Time
	// fds are the captured fds, for push-output.
	fds []*trackedFd
}

// trackedFd is one captured fd and how much of it has been pushed.
type trackedFd struct {
	fd       int
	name     string
	encoding *string
	offset   int64
	complete bool
}

func newPusher(s *session) *pusher {
	return &pusher{s: s, known: map[string]*tracked{}, state: s.state}
}

// terminal reports whether obj's current run has ended and its output
// drained: the phase only leaves Running once both happened.
func terminal(obj *v1.Proc) bool {
	switch obj.Status.Phase {
	case v1.PhaseSucceeded, v1.PhaseFailed, v1.PhaseError:
		return true
	}
	return false
}

func (p *pusher) newTracked(obj *v1.Proc) *tracked {
	t := &tracked{uid: obj.Metadata.UID, phase: obj.Status.Phase, restarts: obj.Status.RestartCount}
	for _, f := range obj.Spec.Fds {
		n, err := f.Fd.Number()
		if err != nil || f.Capture == nil {
			continue
		}
		t.fds = append(t.fds, &trackedFd{fd: n, name: string(v1.FdNameOf(n)), encoding: encodingOf(f.Capture)})
	}
	return t
}

func parseRV(s string) uint64 {
	n, _ := strconv.ParseUint(s, 10, 64)
	return n
}

func (p *pusher) ext(e wire.Extension) bool { return p.s.ext[e] }

// run pushes until ctx ends, or until it has pushed ShutDown{done}.
func (p *pusher) run(ctx context.Context) {
	// What Register told the server: these procs are known, and those
	// already ended have had their final result as far as we are
	// concerned (the server asks with ProcResultRequest).
	for i := range p.s.snapshot.Items {
		obj := &p.s.snapshot.Items[i]
		t := p.newTracked(obj)
		t.announced = true
		t.final = terminal(obj)
		p.known[obj.Metadata.Name] = t
	}
	p.rv = parseRV(p.s.snapshot.Metadata.ResourceVersion)
	p.s.snapshot = v1.ProcList{}

	var tick <-chan time.Time
	if p.ext(wire.ExtPushStatus) || p.ext(wire.ExtPushOutput) {
		ticker := time.NewTicker(p.s.l.cfg.StatusInterval)
		defer ticker.Stop()
		tick = ticker.C
		p.pushOutputs(ctx, false)
	}
	watch := p.watch(ctx)
	changed := p.s.changed
	for {
		if p.state != StateDone {
			st, ch := p.s.l.cfg.Shutdown.ShutdownState()
			changed = ch
			if st != p.state {
				if st == StateDone {
					p.finish(ctx)
					return
				}
				p.state = st
				if !p.s.push(wire.ShutDown{ShutdownState: st}) {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick:
			p.periodic(ctx)
		case ev, ok := <-watch:
			if !ok || ev.Type == v1.WatchError {
				if ctx.Err() != nil {
					return
				}
				p.s.log.V(1).Info("proc watch ended; resyncing")
				p.resync(ctx)
				watch = p.watch(ctx)
				continue
			}
			p.event(ctx, ev)
		}
	}
}

// watch watches from p.rv, resyncing when that is too old.
func (p *pusher) watch(ctx context.Context) <-chan v1.WatchEvent {
	for ctx.Err() == nil {
		ch, err := p.s.l.b.Watch(ctx, nil, v1.FieldSelector{}, strconv.FormatUint(p.rv, 10))
		if err == nil {
			return ch
		}
		if !errors.Is(err, errdefs.ErrGone) {
			p.s.log.Error(err, "cannot watch procs")
			p.s.cancel(err)
			return nil
		}
		p.resync(ctx)
	}
	return nil
}

// finish tells the server the agent is done: after bringing it up to date
// with the table, it pushes ShutDown{done} and has the writer close.
func (p *pusher) finish(ctx context.Context) {
	p.resync(ctx)
	p.pushOutputs(ctx, true)
	p.state = StateDone
	p.s.push(wire.ShutDown{ShutdownState: StateDone})
	p.s.q.finish()
}

// event applies one watch event.
func (p *pusher) event(ctx context.Context, ev v1.WatchEvent) {
	obj := &ev.Object
	if rv := parseRV(obj.Metadata.ResourceVersion); rv != 0 {
		if rv <= p.rv {
			return
		}
		p.rv = rv
	}
	name := obj.Metadata.Name
	switch ev.Type {
	case v1.Added, v1.Modified:
		p.observe(ctx, obj, true)
	case v1.Deleted:
		// Only the proc told about: a stale deletion of an earlier proc
		// of the same name (possible after a resync) is not this one's.
		if t, ok := p.known[name]; ok && t.uid == obj.Metadata.UID {
			p.forget(name)
		}
	}
}

// forget pushes ProcDelete for a proc told about and stops tracking it.
func (p *pusher) forget(name string) {
	delete(p.known, name)
	p.s.resultMu.Lock()
	defer p.s.resultMu.Unlock()
	p.s.push(wire.ProcDelete{ProcID: name})
}

// observe brings the server up to date with one proc as the table has it.
// Under push-status an event of a running proc (fromEvent) pushes its
// result too.
func (p *pusher) observe(ctx context.Context, obj *v1.Proc, fromEvent bool) {
	name := obj.Metadata.Name
	t := p.known[name]
	if t != nil && t.uid != obj.Metadata.UID {
		// The proc told about was deleted and another created under its
		// name, both unseen (across a watch gap): the server learns of
		// the deletion, then of the new proc.
		p.forget(name)
		t = nil
	}
	if t == nil {
		t = p.newTracked(obj)
		p.known[name] = t
	}
	if !t.announced {
		// The first message about a proc is its current result.
		t.announced = true
		p.pushResult(ctx, name, t)
		if terminal(obj) {
			p.pushFinal(ctx, name, t, obj)
		}
		return
	}
	changed := obj.Status.Phase != t.phase
	t.phase = obj.Status.Phase
	if obj.Status.RestartCount != t.restarts && !terminal(obj) {
		// A new run: it will have a final result of its own.
		t.final = false
		t.restarts = obj.Status.RestartCount
		for _, f := range t.fds {
			f.offset, f.complete = 0, false
		}
	}
	switch {
	case terminal(obj) && !t.final:
		p.pushFinal(ctx, name, t, obj)
	case p.ext(wire.ExtPushStatus) && (changed || (fromEvent && !terminal(obj))):
		p.pushResult(ctx, name, t)
	}
}

// pushFinal pushes the rest of the output (push-output), then the final
// result.
func (p *pusher) pushFinal(ctx context.Context, name string, t *tracked, obj *v1.Proc) {
	t.final = true
	t.restarts = obj.Status.RestartCount
	t.phase = obj.Status.Phase
	if p.ext(wire.ExtPushOutput) {
		p.pushOutput(ctx, name, t, true)
	}
	p.pushResult(ctx, name, t)
}

// pushResult pushes the proc's current result; nothing if it has gone.
// It reads and pushes under resultMu (see session).
func (p *pusher) pushResult(ctx context.Context, name string, t *tracked) {
	p.s.resultMu.Lock()
	defer p.s.resultMu.Unlock()
	res, err := p.s.l.b.Result(ctx, name)
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrFailedPrecondition) {
			p.s.log.Error(err, "cannot read result", "proc", name)
		}
		return
	}
	t.lastResult = time.Now()
	p.s.push(wire.ProcResult{ProcID: name, Res: res})
}

// periodic pushes, under push-status, the result of each running proc
// not pushed for a status interval, and under push-output new output.
func (p *pusher) periodic(ctx context.Context) {
	if p.ext(wire.ExtPushStatus) {
		interval := p.s.l.cfg.StatusInterval
		now := time.Now()
		for _, name := range p.names() {
			t := p.known[name]
			if t.announced && !t.final && now.Sub(t.lastResult) >= interval*9/10 {
				p.pushResult(ctx, name, t)
			}
		}
	}
	p.pushOutputs(ctx, false)
}

func (p *pusher) names() []string {
	names := make([]string, 0, len(p.known))
	for name := range p.known {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// pushOutputs pushes new output of every announced proc (push-output).
func (p *pusher) pushOutputs(ctx context.Context, all bool) {
	if !p.ext(wire.ExtPushOutput) {
		return
	}
	for _, name := range p.names() {
		if t := p.known[name]; t.announced {
			p.pushOutput(ctx, name, t, all)
		}
	}
}

// pushOutput pushes the captured bytes of name's fds past what has been
// pushed, in chunks of at most OutputChunk bytes. Unless all, it stops
// while the send queue is more than a quarter full, and carries on at the
// next tick, so output never crowds out results; with all it waits for
// room instead.
func (p *pusher) pushOutput(ctx context.Context, name string, t *tracked, all bool) {
	cfg := &p.s.l.cfg
	for _, f := range t.fds {
		if f.complete {
			continue
		}
		info, err := p.s.l.b.OutputInfo(ctx, name, f.fd)
		if err != nil {
			return // gone, released or not started: nothing to push
		}
		for f.offset < info.Length {
			if !all && p.s.q.queued() > cfg.MaxQueueBytes/4 {
				return
			}
			stop := min(info.Length, f.offset+int64(cfg.OutputChunk))
			data, err := p.s.l.b.ReadOutput(ctx, name, f.fd, f.offset, &stop)
			if err != nil || len(data) == 0 {
				break
			}
			m := wire.ProcFdData{ProcID: name, Fd: f.name, Start: f.offset, Stop: f.offset + int64(len(data)), Encoding: f.encoding, Data: data}
			f.offset += int64(len(data))
			if all {
				p.s.send(ctx, m)
			} else if !p.s.push(m) {
				return
			}
		}
		if info.Complete && f.offset >= info.Length {
			f.complete = true
		}
	}
}

// resync brings the server up to date from a fresh List: procs new to it
// are announced, ended ones get their final result, and vanished ones a
// ProcDelete.
func (p *pusher) resync(ctx context.Context) {
	list, err := p.s.l.b.List(ctx, nil)
	if err != nil {
		p.s.log.Error(err, "cannot list procs")
		return
	}
	p.rv = parseRV(list.Metadata.ResourceVersion)
	seen := make(map[string]bool, len(list.Items))
	for i := range list.Items {
		obj := &list.Items[i]
		seen[obj.Metadata.Name] = true
		p.observe(ctx, obj, false)
	}
	for _, name := range p.names() {
		if !seen[name] {
			p.forget(name)
		}
	}
}
