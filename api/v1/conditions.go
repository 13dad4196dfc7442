package v1

import "time"

// SetCondition puts c into *conds, replacing the condition of the same
// type if there is one, and reports whether anything changed.
// lastTransitionTime moves only when the status flips (or the condition is
// new): it is then c.LastTransitionTime if set, else now, in UTC. When the
// status is unchanged the old lastTransitionTime is kept and reason,
// message and observedGeneration are updated.
func SetCondition(conds *[]Condition, c Condition, now time.Time) (changed bool) {
	if conds == nil {
		return false
	}
	ltt := c.LastTransitionTime
	if ltt.IsZero() {
		ltt = now
	}
	ltt = ltt.UTC()
	existing := FindCondition(*conds, c.Type)
	if existing == nil {
		c.LastTransitionTime = ltt
		*conds = append(*conds, c)
		return true
	}
	if existing.Status != c.Status {
		c.LastTransitionTime = ltt
		*existing = c
		return true
	}
	c.LastTransitionTime = existing.LastTransitionTime
	if *existing == c {
		return false
	}
	*existing = c
	return true
}

// FindCondition returns a pointer to the condition of type t in conds, or
// nil. The pointer aliases the slice element.
func FindCondition(conds []Condition, t string) *Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// IsConditionTrue reports whether conds has a condition of type t whose
// status is True.
func IsConditionTrue(conds []Condition, t string) bool {
	c := FindCondition(conds, t)
	return c != nil && c.Status == ConditionTrue
}

// RemoveCondition deletes the condition of type t from *conds and reports
// whether there was one.
func RemoveCondition(conds *[]Condition, t string) bool {
	if conds == nil {
		return false
	}
	for i := range *conds {
		if (*conds)[i].Type == t {
			*conds = append((*conds)[:i], (*conds)[i+1:]...)
			return true
		}
	}
	return false
}
