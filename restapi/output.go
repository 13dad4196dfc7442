package restapi

// This file reads captured output from the backend in bounded chunks and
// copies it to a response.

import (
	"context"
	"io"
	"os"
	"sync"

	"procstar.dev/procstar/internal/errdefs"
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

// sendFile writes [pos, end) to w from the capture's file, when the
// backend can open it and w can take a file (the response itself, not an
// encoder): net/http then uses sendfile. ok is false when it did not try.
func (o *outputReader) sendFile(w io.Writer, pos, end int64) (n int64, ok bool) {
	filer, isFiler := o.h.b.(OutputFiler)
	if _, takesFile := w.(io.ReaderFrom); !isFiler || !takesFile {
		return 0, false
	}
	f, err := filer.OutputFile(o.q.r.Context(), o.name, o.fd)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	if _, err := f.Seek(pos, io.SeekStart); err != nil {
		return 0, false
	}
	n, err = io.Copy(w, io.LimitReader(f, end-pos))
	if err != nil && !isClientGone(o.q.r.Context(), err) {
		o.h.log.Error(err, "sending output failed", "proc", o.name, "fd", o.fd, "offset", pos+n)
	}
	return n, true
}

// copy writes [start, end) to w in chunks of at most logChunk, beginning
// with first (already read from start), and returns the offset reached.
// flush, if not nil, runs after each chunk. It stops early if the client
// goes, or, logging, if the backend fails or has nothing more (a short
// body tells the client).
func (o *outputReader) copy(w io.Writer, start, end int64, first []byte, flush func()) int64 {
	pos := start
	chunk := first
	for {
		if len(chunk) > 0 {
			if _, err := w.Write(chunk); err != nil {
				return pos
			}
			pos += int64(len(chunk))
			if flush != nil {
				flush()
			}
		}
		if pos >= end {
			return pos
		}
		if flush == nil {
			if n, ok := o.sendFile(w, pos, end); ok {
				return pos + n
			}
		}
		var err error
		chunk, err = o.read(pos, end)
		if err != nil || len(chunk) == 0 {
			if err == nil {
				err = errdefs.New(errdefs.ErrUnavailable, "output is shorter than its length")
			}
			if !isClientGone(o.q.r.Context(), err) {
				o.h.log.Error(err, "reading output failed", "proc", o.name, "fd", o.fd, "offset", pos)
			}
			return pos
		}
	}
}
