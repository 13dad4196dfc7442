package controller

import (
	"context"
	"os"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/runtime"
)

// Runtime starts processes. It is what the controller needs of
// *runtime.Runtime (see FromRuntime); tests use a fake.
type Runtime interface {
	// Start starts a batch (pipes may join its procs) and returns one
	// Process per request, in request order. An error starts nothing.
	Start(ctx context.Context, reqs []runtime.Request) ([]Process, error)
}

// Process is one started (or failed) process; the methods are those of
// *runtime.Proc, with the same semantics and error sentinels.
type Process interface {
	// ID returns the proc ID.
	ID() string
	// Spec returns the spec the process was started from; read only.
	Spec() *v1.ProcSpec
	// Pid returns the process ID, or 0 if it was never forked.
	Pid() int
	// Started returns when the process was forked, or its start failed.
	Started() time.Time
	// Status returns a snapshot of what has been observed.
	Status() v1.ProcStatus
	// Resources says how the process's resources are controlled; nil if
	// it was never forked.
	Resources() *v1.ResourceStatus
	// Exited is closed once the process has been reaped (or at once if it
	// was never forked).
	Exited() <-chan struct{}
	// Done is closed once Exited is and every capture has been drained;
	// Status is final from then on.
	Done() <-chan struct{}
	// Signal sends sig to the process; runtime.ErrNotRunning once reaped.
	Signal(sig int) error
	// SignalGroup sends sig to the process group; runtime.ErrNotRunning
	// once the leader has been reaped.
	SignalGroup(sig int) error
	// Output returns the whole retained output of a captured fd.
	Output(fd int) ([]byte, error)
	// ReadOutput returns bytes [start, stop) of a captured fd.
	ReadOutput(fd int, start int64, stop *int64) ([]byte, error)
	// ReadOutputAt reads a captured fd at an offset into p (io.ReaderAt).
	ReadOutputAt(fd int, p []byte, off int64) (int, error)
	// OutputFile opens a file-backed capture for reading with an offset
	// of its own; runtime.ErrNotFile for a memory capture.
	OutputFile(fd int) (*os.File, error)
	// OutputLen returns how many bytes were written to a captured fd.
	OutputLen(fd int) (int64, error)
	// Release frees the captures; idempotent.
	Release() error
	// Hold keeps the captures readable past Release until unhold is
	// called; ok is false once they have been freed.
	Hold() (unhold func(), ok bool)
}

// FromRuntime adapts a *runtime.Runtime to Runtime.
func FromRuntime(rt *runtime.Runtime) Runtime { return runtimeAdapter{rt} }

type runtimeAdapter struct{ rt *runtime.Runtime }

func (a runtimeAdapter) Start(ctx context.Context, reqs []runtime.Request) ([]Process, error) {
	procs, err := a.rt.Start(ctx, reqs)
	if err != nil {
		return nil, err
	}
	out := make([]Process, len(procs))
	for i, p := range procs {
		out[i] = p
	}
	return out, nil
}

// isClosed reports whether ch is closed, without blocking.
func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
