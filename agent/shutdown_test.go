package agent

import "testing"

func TestShutdownMovesForwardOnly(t *testing.T) {
	s := NewShutdown()
	st, changed := s.State()
	if st != Active {
		t.Fatalf("initial state %v", st)
	}
	if s.Set(Active) {
		t.Error("Set(Active) on active reported a change")
	}
	if !s.Set(Idling) {
		t.Error("Set(Idling) reported no change")
	}
	select {
	case <-changed:
	default:
		t.Error("change channel not closed on Active -> Idling")
	}
	_, changed = s.State()
	if s.Set(Active) {
		t.Error("moved backwards to active")
	}
	select {
	case <-changed:
		t.Error("change channel closed without a change")
	default:
	}
	if !s.Set(Done) {
		t.Error("Set(Done) reported no change")
	}
	if st, _ := s.State(); st != Done || st.String() != "done" {
		t.Errorf("state %v", st)
	}
}

func TestShutdownStateNames(t *testing.T) {
	for st, want := range map[ShutdownState]string{Active: "active", Idling: "idling", Done: "done", 7: "unknown"} {
		if got := st.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(st), got, want)
		}
	}
}
