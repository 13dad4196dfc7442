// Package restapi is procstar's HTTP API as an http.Handler: procstar
// 0.7.5's routes (/procs…), byte-compatible with the Rust agent, and the
// Kubernetes-style procstar.dev/v1 routes (/apis/procstar.dev/v1/procs…),
// plus /healthz, /readyz, /version, /metrics and /agent. It authenticates
// bearer tokens, limits request bodies and maps error classes
// (internal/errdefs) to HTTP codes in one place (status.go).
//
// It serves a Backend and holds no proc state of its own. It must not
// start processes, touch the runtime, open listeners or own goroutines that
// outlive a request; listeners, TLS and shutdown belong to the caller.
package restapi
