package v1

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"time"
)

// SameSpec reports whether two specs are the same once defaults are
// filled in (on copies), by their canonical JSON, so that nil and empty
// lists or maps (which JSON omits alike) are equal. It is how apply tells
// an unchanged spec from a changed one.
func SameSpec(a, b *ProcSpec) bool {
	da, db := a.DeepCopy(), b.DeepCopy()
	da.SetDefaults()
	db.SetDefaults()
	ja, errA := json.Marshal(da)
	jb, errB := json.Marshal(db)
	if errA != nil || errB != nil {
		return reflect.DeepEqual(da, db)
	}
	return bytes.Equal(ja, jb)
}

// Duration returns timeout.seconds as a time.Duration. It saturates at the
// largest Duration (about 292 years) and is 0 for a value that is not
// positive, so no float can overflow it.
func (t *Timeout) Duration() time.Duration { return secondsToDuration(t.Seconds) }

// GracePeriod returns timeout.gracePeriodSeconds as a time.Duration, or
// the default of 30 s when unset, saturating like Duration.
func (t *Timeout) GracePeriod() time.Duration {
	if t.GracePeriodSeconds == nil {
		return secondsToDuration(DefaultGracePeriodSeconds)
	}
	return secondsToDuration(*t.GracePeriodSeconds)
}

func secondsToDuration(s float64) time.Duration {
	switch {
	case math.IsNaN(s) || s <= 0:
		return 0
	case s >= float64(math.MaxInt64)/float64(time.Second):
		return math.MaxInt64
	}
	return time.Duration(s * float64(time.Second))
}

// Variant returns the JSON name of the one variant f sets ("null",
// "capture", "pipeRead", …), or "" when it sets none or several.
func (f *FdSpec) Variant() string {
	if set := f.variantNames(); len(set) == 1 {
		return set[0]
	}
	return ""
}

// Validate checks the list's apiVersion and kind (either may be empty) and
// every item, with item names unique. Paths start "items[i].".
func (l *ProcList) Validate() error {
	var errs ErrorList
	if l.APIVersion != "" && l.APIVersion != APIVersion {
		errs.add("apiVersion", "must be %q", APIVersion)
	}
	if l.Kind != "" && l.Kind != KindProcList {
		errs.add("kind", "must be %q", KindProcList)
	}
	if err := ValidateProcs(l.Items); err != nil {
		errs = append(errs, err.(ErrorList)...)
	}
	return errs.ToError()
}
