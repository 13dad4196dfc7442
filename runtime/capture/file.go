package capture

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
)

// fileCapture keeps output in a file the child writes straight into: an
// unlinked tempfile or a named file. The parent reads it with pread only
// and never moves the offset the child writes at.
type fileCapture struct {
	f        *os.File // the capture file; O_RDWR, O_CLOEXEC
	mode     v1.CaptureMode
	path     string // named file; "" for a tempfile
	encoding v1.Encoding
	lastLen  atomic.Int64 // size at the last successful fstat
	closed   atomic.Bool
}

func newFileCapture(f *os.File, mode v1.CaptureMode, path string, enc v1.Encoding) *fileCapture {
	return &fileCapture{f: f, mode: mode, path: path, encoding: enc}
}

// openTempfile opens an unlinked file in dir, mode 0600, O_RDWR|O_CLOEXEC.
// With tryTmpfile it uses O_TMPFILE, which never has a directory entry,
// and falls back to create-then-unlink where the filesystem refuses it.
func openTempfile(dir string, tryTmpfile bool) (*os.File, error) {
	if tryTmpfile {
		for {
			fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
			if err == nil {
				return os.NewFile(uintptr(fd), filepath.Join(dir, "(procstar-capture)")), nil
			}
			if errors.Is(err, unix.EINTR) {
				continue
			}
			// EOPNOTSUPP: the filesystem has no O_TMPFILE. EISDIR or EINVAL:
			// the kernel does not know the flag. Anything else is real.
			if !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EINVAL) {
				return nil, &os.PathError{Op: "open", Path: dir, Err: err}
			}
			break
		}
	}
	f, err := os.CreateTemp(dir, "procstar-capture-*")
	if err != nil {
		return nil, err
	}
	if err := os.Remove(f.Name()); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (c *fileCapture) ChildFile() *os.File { return c.f }

// Started does nothing: the parent keeps the file open to read it.
func (c *fileCapture) Started() {}

// Drain returns true at once: a file holds all output when it is written.
func (c *fileCapture) Drain(time.Time) bool { return true }

func (c *fileCapture) Len() int64 {
	fi, err := c.f.Stat()
	if err != nil {
		return c.lastLen.Load()
	}
	c.lastLen.Store(fi.Size())
	return fi.Size()
}

func (c *fileCapture) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, ErrNegativeOffset
	}
	if c.closed.Load() {
		return 0, os.ErrClosed
	}
	return c.f.ReadAt(p, off) // pread(2)
}

func (c *fileCapture) Bytes() ([]byte, error) {
	if c.closed.Load() {
		return nil, os.ErrClosed
	}
	size := c.Len()
	buf := make([]byte, size)
	n, err := c.f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

func (c *fileCapture) Status() v1.FdStatus {
	return v1.FdStatus{
		Length:   c.Len(),
		Encoding: c.encoding,
		Mode:     c.mode,
		Path:     c.path,
	}
}

// Reopen opens the capture file again, read-only and with an offset of
// its own, through /proc/self/fd: sendfile(2) reads at a file's offset,
// which must never be the one the child writes at. The caller closes it.
func (c *fileCapture) Reopen() (*os.File, error) {
	if c.closed.Load() {
		return nil, os.ErrClosed
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nf *os.File
	var oerr error
	// Control keeps the fd from being closed while it is used.
	if err := rc.Control(func(fd uintptr) {
		p := "/proc/self/fd/" + strconv.Itoa(int(fd))
		nfd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			oerr = &fs.PathError{Op: "open", Path: p, Err: err}
			return
		}
		nf = os.NewFile(uintptr(nfd), c.f.Name())
	}); err != nil {
		return nil, err
	}
	return nf, oerr
}

// Close closes the file. A tempfile is gone after that; a named file stays.
func (c *fileCapture) Close() error {
	c.Len() // remember the final size for Status
	c.closed.Store(true)
	err := c.f.Close()
	if errors.Is(err, os.ErrClosed) {
		return nil
	}
	return err
}
