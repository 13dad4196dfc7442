package runtime

import (
	"errors"
	"fmt"

	"procstar.dev/procstar/runtime/trampoline"
)

// Error sentinels. Wrapped errors keep them reachable through errors.Is.
var (
	// ErrNotRunning means the process has been reaped (or never forked), so
	// it can no longer be signalled. The text is procstar's.
	ErrNotRunning = errors.New("no process")
	// ErrNoFd means the proc's spec does not list the fd.
	ErrNoFd = errors.New("no fd")
	// ErrNotCapture means the fd is listed but is not a capture.
	ErrNotCapture = errors.New("no fd data")
	// ErrReleased means Release has freed the proc's captures.
	ErrReleased = errors.New("proc released")
	// ErrClosed means the Runtime has been closed.
	ErrClosed = errors.New("runtime closed")
	// ErrInvalidSpec wraps every batch check failure.
	ErrInvalidSpec = errors.New("invalid spec")
	// ErrBadSignal means a signal number outside 1..64.
	ErrBadSignal = errors.New("bad signal")
	// ErrBadRange means an output range that cannot be read.
	ErrBadRange = errors.New("bad output range")
	// ErrNotFile means a capture is kept in memory, not in a file.
	ErrNotFile = errors.New("capture is not a file")
)

// specError is a batch check failure: its text is exactly the message
// (procstar's wording), and it matches ErrInvalidSpec.
type specError struct{ msg string }

func (e *specError) Error() string        { return e.msg }
func (e *specError) Is(target error) bool { return target == ErrInvalidSpec }

func specErrorf(format string, args ...any) error {
	return &specError{msg: fmt.Sprintf(format, args...)}
}

func noFd(fd int) error { return fmt.Errorf("%w: %d", ErrNoFd, fd) }

// osError formats err like Rust's io::Error Display, as procstar's messages
// carry it: "No such file or directory (os error 2)".
func osError(err error) string { return trampoline.OSError(err) }
