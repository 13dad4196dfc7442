package controller

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	v1 "procstar.dev/procstar/api/v1"
)

// metrics are the controller's Prometheus metrics. A nil *metrics records
// nothing, so callers need no checks.
type metrics struct {
	procs        *prometheus.GaugeVec
	starts       prometheus.Counter
	exits        *prometheus.CounterVec
	spawnLatency prometheus.Histogram
	captureBytes prometheus.Counter
}

// newMetrics registers the metrics on reg; nil reg means no metrics.
func newMetrics(reg *prometheus.Registry) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		procs: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "procstar_procs",
			Help: "Procs in the table, by phase.",
		}, []string{"phase"}),
		starts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "procstar_starts_total",
			Help: "Processes started, restarts included.",
		}),
		exits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "procstar_exits_total",
			Help: "Runs that ended, by the reason of the Terminated condition.",
		}, []string{"reason"}),
		spawnLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "procstar_spawn_latency_seconds",
			Help:    "Time from a create (or restart) request to the process running.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		captureBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "procstar_capture_bytes_total",
			Help: "Bytes captured from the fds of runs that ended.",
		}),
	}
	for _, c := range []prometheus.Collector{m.procs, m.starts, m.exits, m.spawnLatency, m.captureBytes} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	for _, ph := range []v1.ProcPhase{v1.PhasePending, v1.PhaseRunning, v1.PhaseSucceeded, v1.PhaseFailed, v1.PhaseError, v1.PhaseUnknown} {
		m.procs.WithLabelValues(string(ph)).Set(0)
	}
	// Every reason a run can end with has a series from the start, so
	// that rate() and absent() see the first exit of each.
	for _, r := range []string{v1.ReasonExited, v1.ReasonSignaled, v1.ReasonTimedOut, v1.ReasonKilled, v1.ReasonOOMKilled,
		v1.ReasonExecFailed, v1.ReasonSetupFailed, v1.ReasonRestricted} {
		m.exits.WithLabelValues(r).Add(0)
	}
	return m, nil
}

// phaseChange moves one proc from phase from to phase to ("" for none).
func (m *metrics) phaseChange(from, to v1.ProcPhase) {
	if m == nil || from == to {
		return
	}
	if from != "" {
		m.procs.WithLabelValues(string(from)).Dec()
	}
	if to != "" {
		m.procs.WithLabelValues(string(to)).Inc()
	}
}

// started records a process start after latency.
func (m *metrics) started(latency time.Duration) {
	if m == nil {
		return
	}
	m.starts.Inc()
	m.spawnLatency.Observe(latency.Seconds())
}

// exited records the end of a run with its reason and captured bytes.
func (m *metrics) exited(reason string, captured int64) {
	if m == nil {
		return
	}
	m.exits.WithLabelValues(reason).Inc()
	if captured > 0 {
		m.captureBytes.Add(float64(captured))
	}
}
