// Package benchpairs reports benchmarks that time a path under test
// against its raw baseline in back-to-back pairs, so that a change of
// load on the machine hits both halves of a pair. It is for benchmarks
// only.
package benchpairs

import (
	"slices"
	"testing"
	"time"
)

// ReportOverhead reports, for pairs test[i] and raw[i], the p50 of each
// side (NAME-p50-µs and raw-p50-µs), the difference of those two p50s
// (p50-diff-µs), and the p50 of the pairs' own differences
// (overhead-p50-µs), which keeps the pairing the difference of p50s
// throws away.
func ReportOverhead(b *testing.B, name string, test, raw []time.Duration) {
	over := pairedP50(b, test, raw)
	tp, rp := P50(test), P50(raw)
	b.ReportMetric(float64(tp.Microseconds()), name+"-p50-µs")
	b.ReportMetric(float64(rp.Microseconds()), "raw-p50-µs")
	b.ReportMetric(float64((tp - rp).Microseconds()), "p50-diff-µs")
	b.ReportMetric(float64(over.Microseconds()), "overhead-p50-µs")
}

// ReportPhase reports, for one phase of each pair (the same stretch of
// the path under test and of the raw one), the p50 of the pairs'
// differences as PHASE-extra-µs: where in the path the overhead goes.
func ReportPhase(b *testing.B, phase string, test, raw []time.Duration) {
	b.ReportMetric(float64(pairedP50(b, test, raw).Microseconds()), phase+"-extra-µs")
}

// pairedP50 is the p50 of test[i] - raw[i].
func pairedP50(b *testing.B, test, raw []time.Duration) time.Duration {
	if len(test) != len(raw) || len(test) == 0 {
		b.Fatalf("benchpairs: %d test and %d raw times", len(test), len(raw))
	}
	over := make([]time.Duration, len(test))
	for i := range test {
		over[i] = test[i] - raw[i]
	}
	return P50(over)
}

// P50 is the median of ds (the upper middle one of an even count).
func P50(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
