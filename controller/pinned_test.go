package controller

import (
	"errors"
	"io"
	"os"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
)

// TestPinOutput pins a run's stdout, deletes the proc once it is done
// (which releases its captures) and creates another under the same name:
// the handle still describes the first run, and reads its bytes until it
// is closed.
func TestPinOutput(t *testing.T) {
	c, ctx := newReal(t, nil)
	for _, mode := range []v1.CaptureMode{v1.CaptureTempfile, v1.CaptureMemory} {
		t.Run(string(mode), func(t *testing.T) {
			name := "pin-" + string(mode)
			p := shProc(name, "printf 'first run\\n'")
			p.Spec.Fds = []v1.FdSpec{{Fd: v1.Stdout, Capture: &v1.CaptureFd{Mode: mode, Encoding: v1.EncodingUTF8}}}
			if _, err := c.Create(ctx, []v1.Proc{p}); err != nil {
				t.Fatal(err)
			}
			pin, err := c.PinOutput(ctx, name, 1)
			if err != nil {
				t.Fatal(err)
			}
			defer pin.Close()
			select {
			case <-pin.Done():
			case <-time.After(10 * time.Second):
				t.Fatal("the run never completed")
			}
			if _, err := c.Delete(ctx, name, v1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			next := shProc(name, "printf 'the second run writes more\\n'")
			next.Spec.Fds = p.Spec.Fds
			if _, err := c.Create(ctx, []v1.Proc{next}); err != nil {
				t.Fatal(err)
			}
			waitFor(t, c, name, "the second run ended", terminal)

			info, err := pin.Info()
			if err != nil || info.Length != 10 || !info.Complete || info.Encoding != v1.EncodingUTF8 {
				t.Errorf("Info after delete = %+v, %v; want the first run's 10 bytes, complete", info, err)
			}
			// Both kinds stay readable: a file capture through its reopened
			// file, a memory one because the handle holds it.
			buf := make([]byte, 64)
			n, err := pin.ReadAt(buf, 0)
			if string(buf[:n]) != "first run\n" || (err != nil && !errors.Is(err, io.EOF)) {
				t.Errorf("ReadAt after delete = %q, %v", buf[:n], err)
			}
			if err := pin.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if _, err := pin.ReadAt(buf, 0); !errors.Is(err, os.ErrClosed) {
				t.Errorf("ReadAt after Close: %v", err)
			}
		})
	}
}

func TestPinOutputErrors(t *testing.T) {
	c, ctx := newReal(t, nil)
	if _, err := c.PinOutput(ctx, "nope", 1); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("unknown proc: %v", err)
	}
	p := shProc("plain", "exit 0")
	p.Spec.Fds = []v1.FdSpec{{Fd: v1.Stdout, Capture: &v1.CaptureFd{}}, {Fd: v1.Stderr, Null: &v1.NullFd{}}}
	if _, err := c.Create(ctx, []v1.Proc{p}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PinOutput(ctx, "plain", 2); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("fd that is not captured: %v", err)
	}
	if _, err := c.PinOutput(ctx, "plain", 7); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("fd the proc does not have: %v", err)
	}
}
