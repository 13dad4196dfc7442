package benchpairs

import (
	"testing"
	"time"
)

func TestP50(t *testing.T) {
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{[]time.Duration{3, 1, 2}, 2},
		{[]time.Duration{4, 1, 3, 2}, 3},
		{[]time.Duration{7}, 7},
	} {
		if got := P50(tc.in); got != tc.want {
			t.Errorf("P50(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestReportOverhead: the overhead is the median of the pairs'
// differences, which here differs from the difference of the medians.
func TestReportOverhead(t *testing.T) {
	us := time.Microsecond
	test := []time.Duration{100 * us, 300 * us, 500 * us}
	raw := []time.Duration{90 * us, 100 * us, 480 * us}
	r := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
		}
		ReportOverhead(b, "link", test, raw)
	})
	want := map[string]float64{"link-p50-µs": 300, "raw-p50-µs": 100, "p50-diff-µs": 200, "overhead-p50-µs": 20}
	for k, v := range want {
		if r.Extra[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, r.Extra[k], v, r.Extra)
		}
	}
}

func TestReportPhase(t *testing.T) {
	us := time.Microsecond
	r := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
		}
		ReportPhase(b, "post", []time.Duration{50 * us, 90 * us, 10 * us}, []time.Duration{5 * us, 5 * us, 5 * us})
	})
	if got := r.Extra["post-extra-µs"]; got != 45 {
		t.Errorf("post-extra-µs = %v, want 45 (all: %v)", got, r.Extra)
	}
}
