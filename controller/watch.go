package controller

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
)

// event is one change of the table: the object after it (before it, for
// DELETED), and prev, the object the event before it published (nil for
// ADDED), which tells a selecting watcher whether the proc was in its view.
// Both are shared and never modified.
type event struct {
	rv   int64
	typ  v1.WatchEventType
	obj  *v1.Proc
	prev *v1.Proc
}

// history is a ring of the last events. resourceVersions are consecutive
// (every change is an event), so the event of rv r sits at r mod len.
type history struct {
	buf []event
}

func newHistory(size int) history { return history{buf: make([]event, size)} }

func (h *history) add(ev event) { h.buf[ev.rv%int64(len(h.buf))] = ev }

func (h *history) at(rv int64) event { return h.buf[rv%int64(len(h.buf))] }

// oldestLocked is the oldest resourceVersion still in the history (1 when
// nothing has been overwritten yet).
func (c *Controller) oldestLocked() int64 {
	return max(1, c.rv-int64(len(c.hist.buf))+1)
}

func formatRV(rv int64) string { return strconv.FormatInt(rv, 10) }

// publishLocked makes obj the current object of e under a new
// resourceVersion, records the event and wakes the watchers. It is O(1):
// it never looks at other procs or at the watchers.
func (c *Controller) publishLocked(e *entry, typ v1.WatchEventType, obj *v1.Proc) {
	c.rv++
	obj.Metadata.ResourceVersion = formatRV(c.rv)
	var from, to v1.ProcPhase
	if typ != v1.Added && e.obj != nil {
		from = e.obj.Status.Phase
	}
	if typ != v1.Deleted {
		to = obj.Status.Phase
	}
	c.metrics.phaseChange(from, to)
	var prev *v1.Proc
	if typ != v1.Added {
		prev = e.obj
	}
	e.obj = obj
	c.hist.add(event{rv: c.rv, typ: typ, obj: obj, prev: prev})
	close(c.changed)
	c.changed = make(chan struct{})
}

// watchBatch bounds how many events a watcher copies per lock.
const watchBatch = 256

// Watch streams the changes of the procs that selector (on labels; nil:
// all) and fields (the zero FieldSelector: all) select.
//
// With resourceVersion "" or "0" it first sends a synthetic ADDED event for
// every matching proc, sorted by name, then every change after that. With
// a resourceVersion N it replays the changes after N from the history
// (Options.HistorySize events); an N older than the history is ErrGone, a
// malformed or future one ErrInvalidArgument.
//
// Each watcher reads the shared history by cursor in its own goroutine, so
// a slow watcher never holds up the controller. One that falls so far
// behind that the history has overwritten its cursor gets a final event of
// type ERROR, whose object carries only the resourceVersion it stopped at
// (the HTTP layer turns it into a 410 Expired Status), and its channel is
// closed. A watcher sees a proc's changes as Kubernetes shows them to a
// selecting watch (see selectEvent): one that comes into the selection is
// ADDED, and one that leaves it is DELETED. The channel is closed when ctx
// ends.
//
// An event's object shares its maps, slices and pointed-to values with the
// table, which never modifies a published object: the receiver may keep it
// but must not modify it (DeepCopy it first), as with a Kubernetes
// informer's cache.
func (c *Controller) Watch(ctx context.Context, selector v1.Selector, fields v1.FieldSelector, resourceVersion string) (<-chan v1.WatchEvent, error) {
	if selector == nil {
		selector = v1.Everything()
	}
	selects := func(p *v1.Proc) bool { return selector.Matches(p.Metadata.Labels) && fields.Matches(p) }
	var initial []*v1.Proc
	c.mu.Lock()
	from := c.rv
	switch resourceVersion {
	case "", "0":
		c.scans++
		for _, e := range c.procs {
			if selects(e.obj) {
				initial = append(initial, e.obj)
			}
		}
	default:
		n, err := strconv.ParseInt(resourceVersion, 10, 64)
		switch {
		case err != nil || n < 0:
			c.mu.Unlock()
			return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("bad resourceVersion %q: must be a number", resourceVersion))
		case n > c.rv:
			cur := c.rv
			c.mu.Unlock()
			return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("resourceVersion %d is newer than the current %d", n, cur))
		case n+1 < c.oldestLocked():
			oldest := c.oldestLocked()
			c.mu.Unlock()
			return nil, errdefs.New(errdefs.ErrGone, fmt.Sprintf("resourceVersion %d is too old: the oldest that can be resumed from is %d; list again", n, oldest-1))
		}
		from = n
	}
	c.mu.Unlock()
	slices.SortFunc(initial, func(a, b *v1.Proc) int { return strings.Compare(a.Metadata.Name, b.Metadata.Name) })
	out := make(chan v1.WatchEvent, 16)
	go c.serveWatch(ctx, selects, from, initial, out)
	return out, nil
}

// serveWatch feeds one watcher: initial ADDED events, then the history
// from cursor on.
func (c *Controller) serveWatch(ctx context.Context, selects func(*v1.Proc) bool, cursor int64, initial []*v1.Proc, out chan<- v1.WatchEvent) {
	defer close(out)
	send := func(ev v1.WatchEvent) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, o := range initial {
		if !send(v1.WatchEvent{Type: v1.Added, Object: *o}) {
			return
		}
	}
	buf := make([]event, 0, watchBatch)
	for {
		c.mu.Lock()
		gone := false
		if cursor < c.rv {
			if cursor+1 < c.oldestLocked() {
				gone = true
			} else {
				for r := cursor + 1; r <= c.rv && len(buf) < watchBatch; r++ {
					buf = append(buf, c.hist.at(r))
				}
			}
		}
		changed := c.changed
		c.mu.Unlock()
		if gone {
			c.log.V(1).Info("watcher fell behind the history", "resourceVersion", cursor)
			send(v1.WatchEvent{Type: v1.WatchError, Object: v1.Proc{Metadata: v1.ObjectMeta{ResourceVersion: formatRV(cursor)}}})
			return
		}
		if len(buf) == 0 {
			select {
			case <-changed:
				continue
			case <-ctx.Done():
				return
			}
		}
		for _, ev := range buf {
			cursor = ev.rv
			if wev, ok := selectEvent(ev, selects); ok && !send(wev) {
				return
			}
		}
		clear(buf)
		buf = buf[:0]
	}
}

// selectEvent is what a watcher that selects procs with selects sees of
// ev, as a Kubernetes watch cache shows it: whether the proc was in the
// watcher's view is decided on ev.prev, the object the watcher was last
// shown or not shown. A proc that comes into the selection is ADDED; one
// still in it is MODIFIED; one that leaves it is DELETED, carrying the
// state the watcher last had under this event's resourceVersion; a
// deletion is DELETED if the proc was in view. Anything else is not sent.
func selectEvent(ev event, selects func(*v1.Proc) bool) (v1.WatchEvent, bool) {
	was := ev.prev != nil && selects(ev.prev)
	if ev.typ == v1.Deleted {
		return v1.WatchEvent{Type: v1.Deleted, Object: *ev.obj}, was
	}
	now := selects(ev.obj)
	switch {
	case now && !was:
		return v1.WatchEvent{Type: v1.Added, Object: *ev.obj}, true
	case now:
		return v1.WatchEvent{Type: ev.typ, Object: *ev.obj}, true
	case was:
		gone := *ev.prev
		gone.Metadata.ResourceVersion = ev.obj.Metadata.ResourceVersion
		return v1.WatchEvent{Type: v1.Deleted, Object: gone}, true
	}
	return v1.WatchEvent{}, false
}
