package v1

import (
	"testing"
	"time"
)

func TestSetCondition(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.FixedZone("X", 3600))
	t1 := t0.Add(time.Minute)
	t2 := t0.Add(2 * time.Minute)
	var conds []Condition

	if !SetCondition(&conds, Condition{Type: ConditionStarted, Status: ConditionFalse, Reason: "Pending"}, t0) {
		t.Fatal("adding reported no change")
	}
	c := FindCondition(conds, ConditionStarted)
	if c == nil || !c.LastTransitionTime.Equal(t0) || c.LastTransitionTime.Location() != time.UTC {
		t.Fatalf("added condition = %+v", c)
	}

	// Same status, new reason: time kept, reason updated.
	if !SetCondition(&conds, Condition{Type: ConditionStarted, Status: ConditionFalse, Reason: "Waiting", ObservedGeneration: 2}, t1) {
		t.Fatal("reason change reported no change")
	}
	c = FindCondition(conds, ConditionStarted)
	if !c.LastTransitionTime.Equal(t0) || c.Reason != "Waiting" || c.ObservedGeneration != 2 {
		t.Fatalf("after same-status update: %+v", c)
	}

	// Identical: no change.
	if SetCondition(&conds, Condition{Type: ConditionStarted, Status: ConditionFalse, Reason: "Waiting", ObservedGeneration: 2}, t2) {
		t.Fatal("identical update reported a change")
	}

	// Status flips: time moves.
	SetCondition(&conds, Condition{Type: ConditionStarted, Status: ConditionTrue, Reason: ReasonExec}, t2)
	c = FindCondition(conds, ConditionStarted)
	if !c.LastTransitionTime.Equal(t2) || c.Status != ConditionTrue {
		t.Fatalf("after flip: %+v", c)
	}
	if !IsConditionTrue(conds, ConditionStarted) || IsConditionTrue(conds, ConditionTerminated) {
		t.Fatal("IsConditionTrue is wrong")
	}

	// An explicit lastTransitionTime on a flip wins over now.
	SetCondition(&conds, Condition{Type: ConditionTerminated, Status: ConditionTrue, LastTransitionTime: t1}, t2)
	if c := FindCondition(conds, ConditionTerminated); c == nil || !c.LastTransitionTime.Equal(t1) {
		t.Fatalf("explicit time: %+v", c)
	}
	if len(conds) != 2 {
		t.Fatalf("len = %d, want 2 (replace by type)", len(conds))
	}
	if !RemoveCondition(&conds, ConditionStarted) || RemoveCondition(&conds, ConditionStarted) || len(conds) != 1 {
		t.Fatalf("RemoveCondition: %+v", conds)
	}
	if FindCondition(nil, "x") != nil || SetCondition(nil, Condition{}, t0) {
		t.Fatal("nil handling")
	}
}
