package capture

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
)

// Pipe and read buffer sizes.
const (
	maxPipeSize   = 1 << 20 // cap on the default pipe size
	readBufSize   = 1 << 20 // every reader reads with a buffer this large
	pipeMaxSizeFn = "/proc/sys/fs/pipe-max-size"
)

// readBufs holds read buffers. A reader takes one only when the pipe has
// data and gives it back as soon as the pipe is empty, so a thousand idle
// captures hold no buffers.
var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

var defaultPipeSize = sync.OnceValue(func() int {
	data, err := os.ReadFile(pipeMaxSizeFn)
	if err != nil {
		return maxPipeSize
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || n <= 0 {
		return maxPipeSize
	}
	return min(n, maxPipeSize)
})

// memCapture reads a pipe into a Buffer. One goroutine reads the pipe's
// read end through the Go netpoller (the fd is nonblocking, so a reader
// with nothing to read parks on epoll and holds no thread). Drain and Close
// stop it with a read deadline and wait for it to end, so it never outlives
// them; after a Drain that timed out, discardRest reads the rest of the
// pipe, and drops it, until EOF.
type memCapture struct {
	encoding v1.Encoding
	w        *os.File // pipe write end, the child's; closed by Started
	r        *os.File // pipe read end, nonblocking, in the netpoller
	started  sync.Once
	done     chan struct{} // closed when the reader goroutine has ended

	// stopMu serializes Drain and Close; it is held while they wait for the
	// reader, never by the reader itself.
	stopMu   sync.Mutex
	drained  bool // Drain finished; complete is its result
	complete bool
	closed   bool
	// closing: Close has begun; a Drain it cuts short keeps nothing of
	// the pipe (discardRest is for a Drain that ran out of time).
	closing atomic.Bool

	// mu guards buf, eof, readErr, timedOut and released. The reader holds
	// it only to append what it read; nobody holds it across a syscall.
	mu       sync.Mutex
	buf      *Buffer
	eof      bool  // the reader saw EOF: the output is complete
	readErr  error // the reader's unexpected read error, if any
	timedOut bool  // Drain gave up at its deadline
	released bool  // Close freed buf; its counts are kept in relLen, relDrop
	relLen   int64
	relDrop  int64
}

func newMemCapture(spec *v1.CaptureFd, pipeSize int) (*memCapture, error) {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	if pipeSize <= 0 {
		pipeSize = defaultPipeSize()
	}
	// The kernel may refuse (EPERM past the user's pipe quota); the pipe
	// then keeps its default size.
	_, _ = unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, pipeSize)
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, os.NewSyscallError("fcntl", err)
	}
	c := &memCapture{
		encoding: spec.Encoding,
		r:        os.NewFile(uintptr(fds[0]), "capture-pipe-r"),
		w:        os.NewFile(uintptr(fds[1]), "capture-pipe-w"),
		done:     make(chan struct{}),
		buf:      NewBuffer(spec.Limit),
	}
	// A deadline is how Drain stops the reader; make sure it can.
	if err := c.r.SetReadDeadline(time.Time{}); err != nil {
		c.r.Close()
		c.w.Close()
		return nil, fmt.Errorf("capture pipe is not pollable: %w", err)
	}
	return c, nil
}

func (c *memCapture) ChildFile() *os.File { return c.w }

func (c *memCapture) Started() {
	c.started.Do(func() {
		c.w.Close()
		go c.read()
	})
}

// read is the reader goroutine: it appends everything the pipe yields to
// buf until EOF, a read deadline or an error.
func (c *memCapture) read() {
	defer close(c.done)
	rc, err := c.r.SyscallConn()
	if err != nil {
		c.finish(false, err)
		return
	}
	var bp *[]byte // a pooled buffer, held only while the pipe has data
	defer func() {
		if bp != nil {
			readBufs.Put(bp)
		}
	}()
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			if bp == nil {
				bp = readBufs.Get().(*[]byte)
			}
			for {
				n, rerr = unix.Read(int(fd), *bp)
				if rerr != unix.EINTR {
					break
				}
			}
			if rerr == unix.EAGAIN {
				readBufs.Put(bp)
				bp = nil
				return false // park on epoll until readable
			}
			return true
		})
		switch {
		case err != nil: // deadline (Drain or Close) or a closed file
			c.finish(false, err)
			return
		case rerr != nil:
			c.finish(false, os.NewSyscallError("read", rerr))
			return
		case n == 0:
			c.finish(true, nil)
			return
		}
		c.mu.Lock()
		c.buf.Write((*bp)[:n])
		c.mu.Unlock()
	}
}

func (c *memCapture) finish(eof bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.eof = eof
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		c.readErr = err
	}
}

// stopReader makes the reader end now and waits for it. Its caller holds
// stopMu and has called Started.
func (c *memCapture) stopReader() {
	select {
	case <-c.done:
		return
	default:
	}
	// A deadline in the past fails the reader's current or next read at
	// once, whether or not the pipe has data.
	_ = c.r.SetReadDeadline(time.Unix(1, 0))
	<-c.done
}

func (c *memCapture) Drain(deadline time.Time) bool {
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.drained || c.closed {
		return c.complete
	}
	c.Started()
	t := time.NewTimer(time.Until(deadline))
	select {
	case <-c.done:
	case <-t.C:
		c.stopReader()
	}
	t.Stop()
	c.mu.Lock()
	c.complete = c.eof
	c.timedOut = !c.eof && c.readErr == nil
	c.mu.Unlock()
	if c.timedOut && !c.closing.Load() {
		discardRest(c.r)
	}
	c.r.Close()
	c.drained = true
	return c.complete
}

// discardRest keeps reading, and dropping, what is still written to the
// pipe of r after a Drain gave up on it, until EOF, through a duplicate of
// its fd. Closing the read end instead would kill whatever still holds the
// write end (a killTree: false leftover) with SIGPIPE at its next write;
// procstar reads until EOF. The reader parks on epoll, holding no thread.
func discardRest(r *os.File) {
	rc, err := r.SyscallConn()
	if err != nil {
		return
	}
	dup := -1
	_ = rc.Control(func(fd uintptr) {
		dup, err = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	})
	if err != nil || dup < 0 {
		return
	}
	f := os.NewFile(uintptr(dup), "capture-pipe-rest") // nonblocking: pollable
	go func() {
		defer f.Close()
		var buf [4096]byte
		for {
			if _, err := f.Read(buf[:]); err != nil {
				return
			}
		}
	}()
}

func (c *memCapture) Len() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return c.relLen
	}
	return c.buf.Len()
}

func (c *memCapture) ReadAt(p []byte, off int64) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return 0, os.ErrClosed
	}
	return c.buf.ReadAt(p, off)
}

func (c *memCapture) Bytes() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return nil, os.ErrClosed
	}
	return c.buf.Bytes(), nil
}

func (c *memCapture) Status() v1.FdStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := v1.FdStatus{
		Encoding:      c.encoding,
		Mode:          v1.CaptureMemory,
		DrainTimedOut: c.timedOut,
	}
	if c.released {
		st.Length, st.Dropped = c.relLen, c.relDrop
	} else {
		st.Length, st.Dropped = c.buf.Len(), c.buf.Dropped()
	}
	return st
}

// Close stops the reader if it still runs, closes both pipe ends and frees
// the retained output.
func (c *memCapture) Close() error {
	// Cut short a Drain that is waiting (it holds stopMu): its reader ends
	// now and it returns false.
	c.closing.Store(true)
	_ = c.r.SetReadDeadline(time.Unix(1, 0))
	c.stopMu.Lock()
	defer c.stopMu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	// Never started: close the write end without starting a reader.
	c.started.Do(func() {
		c.w.Close()
		close(c.done)
	})
	c.stopReader()
	c.r.Close()
	c.mu.Lock()
	c.relLen, c.relDrop = c.buf.Len(), c.buf.Dropped()
	c.buf = nil
	c.released = true
	c.mu.Unlock()
	return nil
}
