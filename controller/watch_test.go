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
	all, err := h.c.Watch(ctx, nil, v1.FieldSelector{}, "")
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := v1.ParseSelector("w=yes")
	some, err := h.c.Watch(ctx, sel, v1.FieldSelector{}, "0")
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
	resumed, err := h.c.Watch(ctx, nil, v1.FieldSelector{}, rv)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MODIFIED b Succeeded", "MODIFIED a Failed", "DELETED a Failed"} {
		if got := evString(next(t, resumed)); got != want {
			t.Errorf("resumed: %s, want %s", got, want)
		}
	}
	from, err := h.c.Watch(ctx, nil, v1.FieldSelector{}, bRV)
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
		if _, err := h.c.Watch(h.ctx, nil, v1.FieldSelector{}, tt.rv); !errors.Is(err, tt.class) {
			t.Errorf("Watch from %q: %v, want %v", tt.rv, err, tt.class)
		}
	}
	// The oldest resumable rv: history holds 3..6, so from 2 works.
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	ch, err := h.c.Watch(ctx, nil, v1.FieldSelector{}, "2")
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
	ch, err := h.c.Watch(ctx, nil, v1.FieldSelector{}, "0")
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
// no whole-table scan, two selector evaluations per watcher, and one event.
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
	ch, err := h.c.Watch(ctx, sel, v1.FieldSelector{}, h.c.currentRV())
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
	// Two per event: the proc before the change and after it.
	if got := sel.n.Load(); got != 2*events {
		t.Errorf("%d events cost %d selector evaluations, want %d", events, got, 2*events)
	}
}

// TestWatchSelectionTransitions: a selecting watcher sees a proc that comes
// into its selection as ADDED, and one that leaves it as DELETED carrying
// the state the watcher last saw under the new resourceVersion, as a
// Kubernetes watch does. It holds for a watch resumed from a
// resourceVersion (as procctl get -w watches after its list), which has
// seen nothing of the procs yet, and for labels as for fields.
func TestWatchSelectionTransitions(t *testing.T) {
	h := newHarness(t, nil)
	a := newProc("a")
	a.Metadata.Labels = map[string]string{"team": "web"}
	h.create(a, newProc("b"))
	ctx, cancel := context.WithCancel(h.ctx)
	defer cancel()
	running, _ := v1.ParseFieldSelector("status.phase=Running")
	succeeded, _ := v1.ParseFieldSelector("status.phase=Succeeded")
	web, _ := v1.ParseSelector("team=web")
	rv := h.c.currentRV()
	watch := func(sel v1.Selector, fields v1.FieldSelector) <-chan v1.WatchEvent {
		ch, err := h.c.Watch(ctx, sel, fields, rv)
		if err != nil {
			t.Fatal(err)
		}
		return ch
	}
	runW, doneW, webW := watch(nil, running), watch(nil, succeeded), watch(web, v1.FieldSelector{})

	h.rt.last(t, "b").end(0)
	// b's exit may first show as Running with an exit code, still in the
	// Running selection; its Succeeded leaves it.
	ev := next(t, runW)
	for ev.Type == v1.Modified {
		if got := evString(ev); got != "MODIFIED b Running" {
			t.Fatalf("running: %s", got)
		}
		ev = next(t, runW)
	}
	if got := evString(ev); got != "DELETED b Running" {
		t.Errorf("running: %s, want b DELETED as it was last seen", got)
	}
	added := next(t, doneW)
	if got := evString(added); got != "ADDED b Succeeded" {
		t.Errorf("succeeded: %s", got)
	}
	if ev.Object.Metadata.ResourceVersion != added.Object.Metadata.ResourceVersion {
		t.Errorf("b left Running at rv %s but came to Succeeded at rv %s", ev.Object.Metadata.ResourceVersion, added.Object.Metadata.ResourceVersion)
	}

	// Labels: a leaves team=web and comes back; b never shows.
	relabel := func(team string) {
		p := newProc("a")
		p.Metadata.Labels = map[string]string{"team": team}
		if _, res, err := h.c.Apply(h.ctx, p, false); err != nil || res != v1.ApplyConfigured {
			t.Fatalf("relabel to %s: %v %v", team, res, err)
		}
	}
	relabel("data")
	if ev := next(t, webW); ev.Type != v1.Deleted || ev.Object.Metadata.Name != "a" || ev.Object.Metadata.Labels["team"] != "web" {
		t.Errorf("web: %s labels %v, want a DELETED with team=web", evString(ev), ev.Object.Metadata.Labels)
	}
	relabel("web")
	if got := evString(next(t, webW)); got != "ADDED a Running" {
		t.Errorf("web: %s", got)
	}
	h.rt.last(t, "a").end(0)
	for ev := next(t, webW); ev.Object.Status.Phase != v1.PhaseSucceeded; ev = next(t, webW) {
		if got := evString(ev); got != "MODIFIED a Running" {
			t.Fatalf("web: %s", got)
		}
	}
	if _, err := h.c.Delete(h.ctx, "a", v1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := evString(next(t, webW)); got != "DELETED a Succeeded" {
		t.Errorf("web: %s", got)
	}
}
