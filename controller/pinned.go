package controller

import (
	"context"
	"errors"
	"io"
	"os"
	"sync"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/runtime"
)

// PinnedOutput is one captured fd of one run of a proc; see PinOutput. It
// is an alias of an interface literal, identical to restapi.PinnedOutput,
// so that the controller implements restapi.OutputPinner without
// importing restapi.
type PinnedOutput = interface {
	// Info says how long the capture is and whether it is complete (the
	// run has exited and the capture drained). Complete is read before
	// Length, so a Complete Length is final.
	Info() (v1.OutputInfo, error)
	// ReadAt reads the capture at off, like io.ReaderAt: io.EOF at the
	// end of what has been written so far.
	ReadAt(p []byte, off int64) (int, error)
	// Done is closed once the run has exited and the capture drained.
	Done() <-chan struct{}
	// Close unpins; it is idempotent.
	Close() error
}

// PinOutput pins fd's capture of the proc's current run (process), for a
// reader that must see all of that run's output and nothing of another
// run's: a followed log. The proc may then be deleted, replaced or
// restarted; the handle keeps reading the run it was opened on.
//
// A file-backed capture (tempfile or file) is reopened, so its bytes stay
// readable after the proc is deleted and its captures released, until
// Close. A memory capture is read through the process, which the handle
// holds (Process.Hold): a delete or a restart frees it only at Close.
func (c *Controller) PinOutput(ctx context.Context, name string, fd int) (PinnedOutput, error) {
	p, err := c.current(name)
	if err != nil {
		return nil, err
	}
	if _, err := p.OutputLen(fd); err != nil {
		return nil, outputError(err)
	}
	o := &pinnedOutput{p: p, fd: fd, enc: v1.EncodingBase64}
	for _, f := range p.Spec().Fds {
		if num, err := f.Fd.Number(); err == nil && num == fd && f.Capture != nil && f.Capture.Encoding != "" {
			o.enc = f.Capture.Encoding
		}
	}
	f, err := p.OutputFile(fd)
	switch {
	case err == nil:
		o.f = f
	case !errors.Is(err, runtime.ErrNotFile):
		return nil, outputError(err)
	default:
		// A memory capture: hold it, so that a delete (which releases
		// it) cannot free the bytes before the follower has read them.
		unhold, ok := p.Hold()
		if !ok {
			return nil, outputError(runtime.ErrReleased)
		}
		o.unhold = unhold
	}
	return o, nil
}

// pinnedOutput is PinOutput's handle.
type pinnedOutput struct {
	p   Process
	fd  int
	enc v1.Encoding

	mu     sync.Mutex
	f      *os.File // the reopened capture file; nil for a memory capture
	unhold func()   // ends the Hold of a memory capture
	closed bool
}

// file returns the reopened capture file (nil for a memory capture), or
// os.ErrClosed after Close.
func (o *pinnedOutput) file() (*os.File, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return nil, os.ErrClosed
	}
	return o.f, nil
}

// File returns the pin's own open file of a file-backed capture, nil for
// a memory capture. The caller may seek it (ReadAt does not use the
// offset) but must not close it; it stays open until Close.
func (o *pinnedOutput) File() (*os.File, error) { return o.file() }

func (o *pinnedOutput) Done() <-chan struct{} { return o.p.Done() }

func (o *pinnedOutput) Info() (v1.OutputInfo, error) {
	complete := isClosed(o.p.Done())
	info := v1.OutputInfo{Encoding: o.enc, Complete: complete}
	f, err := o.file()
	if err != nil {
		return v1.OutputInfo{}, err
	}
	if f != nil {
		fi, err := f.Stat()
		if err != nil {
			return v1.OutputInfo{}, err
		}
		info.Length = fi.Size()
		return info, nil
	}
	n, err := o.p.OutputLen(o.fd)
	if errors.Is(err, runtime.ErrReleased) && complete {
		// The final length outlives the bytes, in the status.
		if st, ok := o.p.Status().Fds[string(v1.FdNameOf(o.fd))]; ok {
			n, err = st.Length, nil
		}
	}
	if err != nil {
		return v1.OutputInfo{}, outputError(err)
	}
	info.Length = n
	return info, nil
}

func (o *pinnedOutput) ReadAt(p []byte, off int64) (int, error) {
	f, err := o.file()
	if err != nil {
		return 0, err
	}
	if f != nil {
		return f.ReadAt(p, off)
	}
	n, err := o.p.ReadOutputAt(o.fd, p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return n, outputError(err)
	}
	return n, err
}

func (o *pinnedOutput) Close() error {
	o.mu.Lock()
	f, closed := o.f, o.closed
	o.closed = true
	o.mu.Unlock()
	if closed {
		return nil
	}
	if o.unhold != nil {
		o.unhold()
	}
	if f == nil {
		return nil
	}
	return f.Close()
}
