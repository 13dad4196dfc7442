package agent

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"procstar.dev/procstar/runtime"
)

// Table errors, checked with errors.Is.
var (
	// ErrNotFound means no proc has the given ID.
	ErrNotFound = errors.New("proc not found")
	// ErrRunning means the proc has not finished, so it cannot be deleted.
	ErrRunning = errors.New("process running")
	// ErrDuplicate means a proc with the same ID is already in the table.
	ErrDuplicate = errors.New("duplicate proc id")
)

// Table is the agent's process table: every proc started and not yet
// deleted, by proc ID. It is safe for concurrent use.
type Table struct {
	mu sync.Mutex // guards procs and changed
	// procs by ID.
	procs map[string]*runtime.Proc
	// changed is closed and replaced whenever procs changes.
	changed chan struct{}
}

// NewTable returns an empty table.
func NewTable() *Table {
	return &Table{procs: map[string]*runtime.Proc{}, changed: make(chan struct{})}
}

// CheckNew returns an ErrDuplicate error for the first of ids already in
// the table, worded as procstar words it: "duplicate proc id: ID".
func (t *Table) CheckNew(ids []string) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, id := range ids {
		if _, ok := t.procs[id]; ok {
			return fmt.Errorf("%w: %s", ErrDuplicate, id)
		}
	}
	return nil
}

// Add inserts procs. An ID already present is an error, and then nothing
// is inserted.
func (t *Table) Add(procs []*runtime.Proc) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range procs {
		if _, ok := t.procs[p.ID()]; ok {
			return fmt.Errorf("%w: %s", ErrDuplicate, p.ID())
		}
	}
	for _, p := range procs {
		t.procs[p.ID()] = p
	}
	t.notifyLocked()
	return nil
}

// Get returns the proc with the given ID.
func (t *Table) Get(id string) (*runtime.Proc, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.procs[id]
	return p, ok
}

// List returns every proc, sorted by ID.
func (t *Table) List() []*runtime.Proc {
	t.mu.Lock()
	procs := make([]*runtime.Proc, 0, len(t.procs))
	for _, p := range t.procs {
		procs = append(procs, p)
	}
	t.mu.Unlock()
	slices.SortFunc(procs, func(a, b *runtime.Proc) int {
		switch {
		case a.ID() < b.ID():
			return -1
		case a.ID() > b.ID():
			return 1
		}
		return 0
	})
	return procs
}

// Len returns the number of procs and a channel closed at the next change.
func (t *Table) Len() (int, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.procs), t.changed
}

// Delete removes a finished proc and releases its resources. A proc whose
// final status is not in yet gives ErrRunning, an unknown ID ErrNotFound.
func (t *Table) Delete(id string) error {
	t.mu.Lock()
	p, ok := t.procs[id]
	if !ok {
		t.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	select {
	case <-p.Done():
	default:
		t.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrRunning, id)
	}
	delete(t.procs, id)
	t.notifyLocked()
	t.mu.Unlock()
	return p.Release()
}

func (t *Table) notifyLocked() {
	close(t.changed)
	t.changed = make(chan struct{})
}
