package cgroup

import (
	"errors"
	"fmt"

	"procstar.dev/procstar/internal/errdefs"
)

// Error classes. Errors from this package wrap these with %w; check them
// with errors.Is.
var (
	// ErrNotCgroup2 means a directory is not on a cgroup2 file system, or
	// no cgroup2 file system is mounted.
	ErrNotCgroup2 = errors.New("not a cgroup2 file system")
	// ErrNotWritable means child cgroups cannot be created in a directory;
	// the error also wraps the errno.
	ErrNotWritable = errors.New("cannot create child cgroups")
	// ErrControllerUnavailable means a limit needs a controller that is not
	// enabled for the Root's children.
	ErrControllerUnavailable = errors.New("cgroup controller unavailable")
	// ErrInvalidName means a group name is not a plain, allowed path
	// element. It is also errdefs.ErrInvalidArgument.
	ErrInvalidName = fmt.Errorf("invalid cgroup name: %w", errdefs.ErrInvalidArgument)
	// ErrInvalidLimit means a limit value is out of range. It is also
	// errdefs.ErrInvalidArgument.
	ErrInvalidLimit = fmt.Errorf("invalid cgroup limit: %w", errdefs.ErrInvalidArgument)
	// ErrKillIncomplete means Kill's fallback loop (no cgroup.kill) ran
	// out of rounds with processes still in the group.
	ErrKillIncomplete = errors.New("processes remain in cgroup after kill")
	// ErrInUse means another agent holds a directory as its cgroup root.
	ErrInUse = errors.New("held by another procstar agent (each agent needs a cgroup root of its own)")
	// ErrMalformed means a cgroup or proc file did not have the expected
	// format.
	ErrMalformed = errors.New("malformed cgroup file")
)
