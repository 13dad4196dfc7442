package errdefs

import (
	"errors"
	"fmt"
	"io"
	"testing"
)

func TestNewKeepsMessageAndClass(t *testing.T) {
	err := New(ErrFailedPrecondition, "process running: p1")
	if err.Error() != "process running: p1" {
		t.Errorf("message %q", err.Error())
	}
	if !errors.Is(err, ErrFailedPrecondition) || errors.Is(err, ErrNotFound) {
		t.Error("wrong class")
	}
	if !errors.Is(fmt.Errorf("outer: %w", err), ErrFailedPrecondition) {
		t.Error("class lost through wrapping")
	}
}

func TestWrap(t *testing.T) {
	err := Wrap(ErrInvalidArgument, io.ErrUnexpectedEOF)
	if !errors.Is(err, ErrInvalidArgument) || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Error("class or cause lost")
	}
	if err.Error() != io.ErrUnexpectedEOF.Error() {
		t.Errorf("message %q", err.Error())
	}
	if Wrap(ErrNotFound, nil) != nil {
		t.Error("Wrap(nil) != nil")
	}
}

func TestFound(t *testing.T) {
	other := errors.New("table unavailable")
	for _, tc := range []struct {
		err   error
		found bool
		out   error
	}{
		{nil, true, nil},
		{New(ErrNotFound, "proc not found: x"), false, nil},
		{other, false, other},
	} {
		if found, err := Found(tc.err); found != tc.found || err != tc.out {
			t.Errorf("Found(%v) = %v, %v; want %v, %v", tc.err, found, err, tc.found, tc.out)
		}
	}
}
