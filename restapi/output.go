package restapi

// This file reads captured output from the backend in bounded chunks and
// copies it to a response.

import (
	"context"
	"os"
	"sync"
)

// OutputReaderAt is an optional extension of Backend. A backend that
// implements it lets the output routes read into one reused buffer per
// request instead of a fresh slice per chunk; for large outputs that is
// the difference between allocator-bound and network-bound throughput.
type OutputReaderAt interface {
	// ReadOutputAt reads bytes of fd's capture starting at offset off
	// into p and returns how many. Fewer than len(p) (0 at the end) is
	// not an error.
	ReadOutputAt(ctx context.Context, name string, fd int, p []byte, off int64) (int, error)
}

// OutputFiler is an optional extension of Backend for file-backed
// captures: the output routes then send the rest of a plain, fixed-length
// body straight from the file (sendfile(2) on a TCP connection), with no
// copy through the agent.
type OutputFiler interface {
	// OutputFile opens the file holding fd's output with an offset of its
	// own; the caller closes it. An error (a memory capture, say) makes
	// the route read chunks instead.
	OutputFile(ctx context.Context, name string, fd int) (*os.File, error)
}

// chunkPool holds logChunk-byte buffers for OutputReaderAt backends.
var chunkPool = sync.Pool{New: func() any {
	b := make([]byte, logChunk)
	return &b
}}

// outputReader reads one fd of one proc for one request.
type outputReader struct {
	h    *handler
	q    *request
	name string
	fd   int
	at   OutputReaderAt // nil unless the backend implements it
	buf  *[]byte        // from chunkPool, when at is set
}

func (h *handler) newOutputReader(q *request, name string, fd int) *outputReader {
	o := &outputReader{h: h, q: q, name: name, fd: fd}
	if at, ok := h.b.(OutputReaderAt); ok {
		o.at = at
		o.buf = chunkPool.Get().(*[]byte)
	}
	return o
}

// close returns the buffer. The last chunk read must no longer be in use.
func (o *outputReader) close() {
	if o.buf != nil {
		chunkPool.Put(o.buf)
		o.buf = nil
	}
}

// read reads up to logChunk bytes of [start, end). With an OutputReaderAt
// backend the result aliases the request's buffer and is valid until the
// next read.
func (o *outputReader) read(start, end int64) ([]byte, error) {
	if start >= end {
		return nil, nil
	}
	ctx := o.q.r.Context()
	stop := min(end, start+logChunk)
	if o.at != nil {
		n, err := o.at.ReadOutputAt(ctx, o.name, o.fd, (*o.buf)[:stop-start], start)
		if n > 0 || err == nil {
			return (*o.buf)[:n], nil
		}
		return nil, err
	}
	b, err := o.h.b.ReadOutput(ctx, o.name, o.fd, start, &stop)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > stop-start {
		b = b[:stop-start]
	}
	return b, nil
}
