package client

// This file receives a capture file passed over the agent's unix socket
// (v1.HeaderPassFd), so that a local log reader reads at file speed.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"syscall"

	v1 "procstar.dev/procstar/api/v1"
)

// maxPassedFds bounds the files one response may carry; the server passes
// one.
const maxPassedFds = 4

// fdConn is a unix connection that keeps the files passed to it in
// SCM_RIGHTS messages.
type fdConn struct {
	*net.UnixConn
	oob   []byte // Read's ancillary buffer; reads are not concurrent
	mu    sync.Mutex
	files []*os.File
	err   error // ancillary data that could not be taken whole
}

func (c *fdConn) Read(p []byte) (int, error) {
	n, oobn, flags, _, err := c.ReadMsgUnix(p, c.oob)
	if oobn > 0 || flags&syscall.MSG_CTRUNC != 0 {
		c.take(c.oob[:oobn], flags&syscall.MSG_CTRUNC != 0)
	}
	return n, err
}

func (c *fdConn) take(oob []byte, truncated bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if truncated {
		c.err = errors.New("the server passed more files than expected")
	}
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		c.err = fmt.Errorf("ancillary data: %w", err)
		return
	}
	for i := range msgs {
		fds, err := syscall.ParseUnixRights(&msgs[i])
		if err != nil {
			continue // not SCM_RIGHTS
		}
		for _, fd := range fds {
			syscall.CloseOnExec(fd)
			c.files = append(c.files, os.NewFile(uintptr(fd), "passed capture"))
		}
	}
}

// passed returns the files received and forgets them; the caller owns
// them.
func (c *fdConn) passed() ([]*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	files, err := c.files, c.err
	c.files = nil
	return files, err
}

// passFdClient returns an HTTP client for one request over a new
// connection to the unix socket at path, and that connection once dialled.
func passFdClient(path string) (*http.Client, func() *fdConn) {
	var mu sync.Mutex
	var conn *fdConn
	tr := &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "unix", path)
			if err != nil {
				return nil, err
			}
			c := &fdConn{UnixConn: nc.(*net.UnixConn), oob: make([]byte, syscall.CmsgSpace(4*maxPassedFds))}
			mu.Lock()
			conn = c
			mu.Unlock()
			return c, nil
		},
	}
	return &http.Client{Transport: tr}, func() *fdConn {
		mu.Lock()
		defer mu.Unlock()
		return conn
	}
}

// passedWindow turns a response that passed a file into a reader of its
// window.
func passedWindow(resp *http.Response, conn *fdConn) (io.ReadCloser, error) {
	var files []*os.File
	var err error
	if conn != nil {
		files, err = conn.passed()
	}
	closeAll := func() {
		for _, f := range files {
			f.Close()
		}
	}
	if err == nil && len(files) != 1 {
		err = fmt.Errorf("the server said it passed a file, and %d came", len(files))
	}
	off, errO := strconv.ParseInt(resp.Header.Get(v1.HeaderOutputOffset), 10, 64)
	n, errN := strconv.ParseInt(resp.Header.Get(v1.HeaderOutputLength), 10, 64)
	if err == nil && (errO != nil || errN != nil || off < 0 || n < 0) {
		err = fmt.Errorf("bad passed window: offset %q, length %q", resp.Header.Get(v1.HeaderOutputOffset), resp.Header.Get(v1.HeaderOutputLength))
	}
	if err == nil {
		_, err = files[0].Seek(off, io.SeekStart)
	}
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("%w: %w", ErrBadResponse, err)
	}
	return &fileWindow{f: files[0], r: &io.LimitedReader{R: files[0], N: n}}, nil
}

// fileWindow reads a window of a passed file. WriteTo lets io.Copy hand
// the window to the destination's ReadFrom, which copies file to file in
// the kernel (copy_file_range) where it can.
type fileWindow struct {
	f *os.File
	r *io.LimitedReader
}

func (w *fileWindow) Read(p []byte) (int, error)           { return w.r.Read(p) }
func (w *fileWindow) WriteTo(dst io.Writer) (int64, error) { return io.Copy(dst, w.r) }
func (w *fileWindow) Close() error                         { return w.f.Close() }
