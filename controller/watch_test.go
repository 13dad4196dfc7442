package controller

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
)

// next receives one event or fails.
func next(t testing.TB, ch <-chan v1.WatchEvent) v1.WatchEvent {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatal("watch channel closed")
		}
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no watch event")
	}
	return v1.WatchEvent{}
}

func evString(ev v1.WatchEvent) string {
	return fmt.Sprintf("%s %s %s", ev.Type, ev.Object.Metadata.Name, ev.Object.Status.Phase)
}

func TestWatch(t *testing.T) {
	h := newHarness(t, nil)
	a := newProc("a")
	a.Metadata.Labels = map[string]string{"w": "yes"}
	h.create(newProc("b"), a)

	ctx, cancel := context.WithCancel(h.ctx)
	all, err := h.c.Watch(ctx, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := v1.ParseSelector("w=yes")
	some, err := h.c.Watch(ctx, sel, "0")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ADDED a Running", "ADDED b Running"} {
		if got := evString(next(t, all)); got != want {
			t.Errorf("all: %s, want %s", got, want)
		}
	}
	if got := evString(next(t, some)); got != "ADDED a Running" {
		t.Errorf("selected: %s", got)
	}
	rv := h.c.currentRV()
	h.rt.last(t, "b").end(0)
	waitFor(t, h.c, "b", "Succeeded", phaseIs(v1.PhaseSucceeded))
	h.rt.last(t, "a").end(1)
	ev := next(t, all)
	if got := evString(ev); got != "MODIFIED b Succeeded" {
		t.Errorf("all: %s", got)
	}
	bRV := ev.Object.Metadata.ResourceVersion
	if got := evString(next(t, all)); got != "MODIFIED a Failed" {
		t.Errorf("all: %s", got)
	}
	if got := evString(next(t, some)); got != "MODIFIED a Failed" {
		t.Errorf("selected: %s (b must be filtered out)", got)
	}
	h.c.Delete(h.ctx, "a", v1.DeleteOptions{})
	if ev := next(t, all); ev.Type != v1.Deleted || ev.Object.Metadata.DeletionTimestamp == nil {
		t.Errorf("all: %s", evString(ev))
	}

	// Resume from a resourceVersion replays what followed it.
	resumed, err := h.c.Watch(ctx, nil, rv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MODIFIED b Succeeded", "MODIFIED a Failed", "DELETED a Failed"} {
		if got := evString(next(t, resumed)); got != want {
			t.Errorf("resumed: %s, want %s", got, want)
		}
	}
	from, err := h.c.Watch(ctx, nil, bRV)
	if err != nil {
		t.Fatal(err)
	}
	if got := evString(next(t, from)); got != "MODIFIED a Failed" {
		t.Errorf("resumed from b's rv: %s", got)
	}

	cancel()
	for _, ch := range []<-chan v1.WatchEvent{all, some, resumed, from} {
		for range ch {
		}
	}
}

func TestWatchErrors(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.HistorySize = 4 })
	for i := range 6 {
		h.create(newProc("p" + strconv.Itoa(i)))
	}
	tests := []struct {
		rv    string
		class error
	}{
		{"x", errdefs.ErrInvalidArgument},
		{"-1", errdefs.ErrInvalidArgument},
		{"99", errdefs.ErrInvalidArgument},
		{"1", errdefs.ErrGone},
	}
	for _, tt := range tests {
		if _, err := h.c.Watch(h.ctx, nil, tt.rv); !errors.Is(err, tt.class) {
			t.Errorf("Watch from %q: %v, want %v", tt.rv, err, tt.class)
		}
	}
	// The oldest resumable rv: history holds 3..6, so from 2 works.
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	ch, err := h.c.Watch(ctx, nil, "2")
	if err != nil {
		t.Fatal(err)
	}
	if ev := next(t, ch); ev.Object.Metadata.ResourceVersion != "3" {
		t.Errorf("first replayed rv = %s", ev.Object.Metadata.ResourceVersion)
	}
}

func TestWatchFallsBehind(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.HistorySize = 8 })
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	ch, err := h.c.Watch(ctx, nil, "0")
	if err != nil {
		t.Fatal(err)
	}
	// Nobody reads ch while far more events than the history holds (and
	// than the channel buffers) happen; Create must not block.
	for i := range 100 {
		h.create(newProc("p" + strconv.Itoa(i)))
	}
	var last v1.WatchEvent
	n := 0
	for ev := range ch {
		last = ev
		n++
	}
	if last.Type != v1.WatchError || n >= 100 {
		t.Errorf("after %d events the last was %s, want ERROR", n, last.Type)
	}
}

// countingSelector counts Matches calls.
type countingSelector struct {
	v1.Selector
	n atomic.Int64
}

func (s *countingSelector) Matches(l map[string]string) bool {
	s.n.Add(1)
	return s.Selector.Matches(l)
}

// TestNoPerChangeScan checks with 10,000 procs that a change costs O(1):
// no whole-table scan, one selector evaluation per watcher, and one event.
func TestNoPerChangeScan(t *testing.T) {
	const n = 10000
	h := newHarness(t, nil)
	procs := make([]v1.Proc, n)
	for i := range procs {
		procs[i] = newProc(fmt.Sprintf("p%05d", i))
	}
	h.create(procs...)

	sel := &countingSelector{Selector: v1.Everything()}
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	ch, err := h.c.Watch(ctx, sel, h.c.currentRV())
	if err != nil {
		t.Fatal(err)
	}
	h.c.mu.Lock()
	scans0, rv0 := h.c.scans, h.c.rv
	h.c.mu.Unlock()

	const changes = 50
	for i := range changes {
		name := fmt.Sprintf("p%05d", i*7)
		h.rt.last(t, name).end(0)
		// A change is one event, or two when the exit is seen before the
		// drain (MODIFIED Running with an exit code, then Succeeded).
		for {
			ev := next(t, ch)
			if ev.Object.Metadata.Name != name {
				t.Fatalf("event %s", evString(ev))
			}
			if ev.Object.Status.Phase == v1.PhaseSucceeded {
				break
			}
		}
	}
	h.c.mu.Lock()
	scans1, rv1 := h.c.scans, h.c.rv
	h.c.mu.Unlock()
	if scans1 != scans0 {
		t.Errorf("%d changes caused %d whole-table scans", changes, scans1-scans0)
	}
	events := rv1 - rv0
	if events < changes || events > 2*changes {
		t.Errorf("%d changes made %d events", changes, events)
	}
	if got := sel.n.Load(); got != events {
		t.Errorf("%d events cost %d selector evaluations, want %d", events, got, events)
	}
}
