// Package capture collects what a child process writes to one of its fds:
// into memory through a pipe (bounded by a head/tail limit), into an
// unlinked temporary file, or into a named file.
//
// A Capture hands the spawner the file the child's fd is dup'd from
// (ChildFile), learns that the child was forked (Started), and, once the
// child has been reaped, waits a bounded time for the output to be complete
// (Drain). Retained output is read back by offset (ReadAt) at any time,
// concurrently with the child writing it. File-backed output is read with
// pread only, so the parent never moves the file offset the child writes
// at.
//
// This package is mechanism only. It must not spawn, wait for or signal
// processes, decide policy (defaults, encodings, when to drain) or log; the
// runtime package owns those. It imports nothing from this module but
// api/v1.
package capture

import (
	"errors"
	"fmt"
	"os"
	"time"

	v1 "procstar.dev/procstar/api/v1"
)

// Options configure new captures.
type Options struct {
	// TempDir is where tempfile captures live; "" means os.TempDir()
	// ($TMPDIR or /tmp).
	TempDir string
	// PipeSize is the requested pipe buffer size for memory captures; 0
	// means the system maximum (/proc/sys/fs/pipe-max-size), capped at
	// 1 MiB. Failures to resize the pipe are ignored.
	PipeSize int
}

// Capture is one captured fd of one child process. Its methods are safe for
// concurrent use.
type Capture interface {
	// ChildFile is the file the child's fd is dup'd from (a pipe write end,
	// or the capture file). It has O_CLOEXEC set; the spawner dup2's it
	// into the child. The capture owns it: the spawner must not close it.
	// For a memory capture it is closed by Started.
	ChildFile() *os.File
	// Started is called once, right after the child was forked (or after
	// the fork failed). It closes the parent's copy of the child end where
	// that matters (the pipe write end) and starts reading (memory mode).
	// Later calls do nothing.
	Started()
	// Drain is called after the process has been reaped. It waits until
	// the output is complete (pipe EOF: every writer, grandchildren
	// included, closed it) or until deadline, then stops reading and
	// releases the pipe. It returns false if it gave up at the deadline
	// (Status then says DrainTimedOut). For file-backed captures it returns
	// true at once. Safe to call more than once; later calls return the
	// first result. Drain before Started calls Started first.
	Drain(deadline time.Time) (complete bool)
	// Len is the number of bytes the child has written so far (for files:
	// the current size, via fstat).
	Len() int64
	// ReadAt reads retained output at offset off like io.ReaderAt (io.EOF
	// at the end). Files are read with pread, never through the child's
	// shared file offset. For a limited memory capture, a range inside the
	// dropped middle returns ErrDropped.
	ReadAt(p []byte, off int64) (int, error)
	// Bytes returns all retained output (head and tail for a limited
	// memory capture, concatenated) in a new slice.
	Bytes() ([]byte, error)
	// Status describes the capture for ProcStatus.Fds.
	Status() v1.FdStatus
	// Close releases everything (stops any reader, closes fds, frees
	// retained memory). A file capture's named file is kept. After Close,
	// ReadAt and Bytes fail with os.ErrClosed; Len and Status still work.
	Close() error
}

// Errors.
var (
	// ErrDropped is returned by ReadAt for a range a capture limit dropped.
	ErrDropped = errors.New("output dropped by capture limit")
	// ErrBadSpec is returned by New for a spec it cannot honour (no spec,
	// an unknown mode, a file capture without a path).
	ErrBadSpec = errors.New("bad capture spec")
	// ErrNegativeOffset is returned by ReadAt for an offset below zero.
	ErrNegativeOffset = errors.New("negative offset")
)

// New creates a capture for spec (defaults already applied: mode and
// encoding set; an empty mode means tempfile). Errors are wrapped OS errors
// (the caller reports "failed to set up fd N: <err>"), or ErrBadSpec.
func New(spec *v1.CaptureFd, opts Options) (Capture, error) {
	if spec == nil {
		return nil, fmt.Errorf("%w: no capture spec", ErrBadSpec)
	}
	switch spec.Mode {
	case v1.CaptureTempfile, "":
		dir := opts.TempDir
		if dir == "" {
			dir = os.TempDir()
		}
		f, err := openTempfile(dir, true)
		if err != nil {
			return nil, err
		}
		return newFileCapture(f, v1.CaptureTempfile, "", spec.Encoding), nil
	case v1.CaptureFile:
		if spec.Path == "" {
			return nil, fmt.Errorf("%w: file capture needs a path", ErrBadSpec)
		}
		f, err := os.OpenFile(spec.Path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			return nil, err
		}
		return newFileCapture(f, v1.CaptureFile, spec.Path, spec.Encoding), nil
	case v1.CaptureMemory:
		return newMemCapture(spec, opts.PipeSize)
	default:
		return nil, fmt.Errorf("%w: unknown mode %q", ErrBadSpec, spec.Mode)
	}
}
