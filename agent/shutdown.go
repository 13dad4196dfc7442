package agent

import "sync"

// ShutdownState is the agent's shutdown state, as procstar names it on the
// wire: active, then idling, then done. States only move forward.
type ShutdownState int

// Shutdown states.
const (
	// Active accepts new procs.
	Active ShutdownState = iota
	// Idling accepts no new procs and becomes Done once the table is empty.
	Idling
	// Done ends the agent.
	Done
)

// String returns the wire name: "active", "idling" or "done".
func (s ShutdownState) String() string {
	switch s {
	case Active:
		return "active"
	case Idling:
		return "idling"
	case Done:
		return "done"
	}
	return "unknown"
}

// Shutdown holds the shutdown state and lets goroutines wait for changes.
type Shutdown struct {
	mu sync.Mutex // guards state and changed
	// state is the current state.
	state ShutdownState
	// changed is closed and replaced on every change.
	changed chan struct{}
}

// NewShutdown returns a Shutdown in state Active.
func NewShutdown() *Shutdown {
	return &Shutdown{changed: make(chan struct{})}
}

// State returns the current state and a channel closed at the next change.
func (s *Shutdown) State() (ShutdownState, <-chan struct{}) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.changed
}

// Set moves to state st. It reports whether the state changed: a move
// backwards, or to the current state, is ignored.
func (s *Shutdown) Set(st ShutdownState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st <= s.state {
		return false
	}
	s.state = st
	close(s.changed)
	s.changed = make(chan struct{})
	return true
}
