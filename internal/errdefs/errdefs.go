// Package errdefs defines the error classes shared across the module, in
// the manner of containerd's errdefs: sentinels that code wraps with %w and
// checks with errors.Is. Edges (HTTP, the WebSocket link, the CLI) convert
// a class to their own codes in one place each.
//
// It holds no policy and must not import anything from this module.
package errdefs

import "errors"

// Error classes.
var (
	// ErrInvalidArgument: the request itself is wrong (bad spec, bad
	// selector, bad range). HTTP 400/422.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the object does not exist. HTTP 404.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: an object with that name exists. HTTP 409.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the request conflicts with the object's state, such as
	// a changed spec on an immutable object. HTTP 409.
	ErrConflict = errors.New("conflict")
	// ErrFailedPrecondition: the object is not in a state that allows the
	// operation, such as deleting a running proc through procstar's
	// routes. HTTP 400 there, 409 elsewhere.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable: the service cannot take the request now, such as an
	// agent that is shutting down. HTTP 503 (procstar routes: 400).
	ErrUnavailable = errors.New("unavailable")
	// ErrGone: a watch asked for a resourceVersion too old to replay.
	// HTTP 410.
	ErrGone = errors.New("gone")
	// ErrUnauthorized: missing or wrong credentials. HTTP 401.
	ErrUnauthorized = errors.New("unauthorized")
)

// classed is an error with a message of its own and a class.
type classed struct {
	class error
	msg   string
}

func (e *classed) Error() string        { return e.msg }
func (e *classed) Is(target error) bool { return target == e.class }

// New returns an error whose message is exactly msg and whose class is
// class, for errors whose wording is part of a protocol (procstar's
// "process running: ID", say) and must not carry a class prefix.
func New(class error, msg string) error {
	return &classed{class: class, msg: msg}
}

// Wrap gives err the class class, keeping err's message and chain.
func Wrap(class, err error) error {
	if err == nil {
		return nil
	}
	return &wrapped{class: class, err: err}
}

type wrapped struct {
	class error
	err   error
}

func (e *wrapped) Error() string        { return e.err.Error() }
func (e *wrapped) Unwrap() error        { return e.err }
func (e *wrapped) Is(target error) bool { return target == e.class }

// Found reads the error of a lookup by name: (true, nil) when it found
// the object, (false, nil) when it was ErrNotFound, and (false, err) for
// any other failure.
func Found(err error) (bool, error) {
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}
