package restapi

// This file serves GET /apis/procstar.dev/v1/procs/{name}/log: a byte
// range of a captured fd, optionally followed until the proc is done,
// with HTTP ranges and gzip or zstd.

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
)

// v1Log serves …/{name}/log?fd=stdout&start=N&stop=M&follow=true.
//
// The representation is the window [start, stop) of the capture (stop
// defaults to the current end). Without follow, a Range header selects
// part of that window (206, or 416 when unsatisfiable); a start past the
// end of the output is 416. With follow, Range is ignored and the body
// streams until the window is sent or the proc's run is complete and its
// output drained (see followLog). A response with a Range applied is
// never compressed, so that Content-Range counts the bytes as they are.
// Over a unix socket, a plain request may ask for the capture file itself
// instead (see passFd).
func (h *handler) v1Log(q *request, name string) {
	v, ok := q.query()
	if !ok {
		return
	}
	fdName := v.Get("fd")
	if fdName == "" {
		fdName = string(v1.Stdout)
	}
	fd, err := v1.FdName(fdName).Number()
	if err != nil || fd < 0 {
		q.fail(badRequest("bad fd %q: want stdout, stderr or a number", fdName))
		return
	}
	start, err := int64Param(v, "start")
	if err != nil {
		q.fail(err)
		return
	}
	stop, err := int64Param(v, "stop")
	if err != nil {
		q.fail(err)
		return
	}
	follow, err := boolParam(v, "follow")
	if err != nil {
		q.fail(err)
		return
	}
	from := int64(0)
	if start != nil {
		from = *start
	}
	if stop != nil && *stop < from {
		q.fail(badRequest("stop %d is before start %d", *stop, from))
		return
	}

	ctx := q.r.Context()
	proc, err := h.b.Get(ctx, name)
	if err != nil {
		q.fail(err)
		return
	}
	spec, found := findFd(&proc, fd)
	switch {
	case !found:
		q.fail(badRequest("proc %s has no fd %s", name, v1.FdNameOf(fd)))
		return
	case spec.Capture == nil:
		q.fail(badRequest("fd %s of proc %s is not captured (it is %s)", v1.FdNameOf(fd), name, spec.Variant()))
		return
	}
	if follow {
		h.followLog(q, name, fd, spec.Capture.Encoding, from, stop)
		return
	}
	src, info, ok := h.openLog(q, name, fd)
	if !ok {
		return
	}
	defer h.closeLog(src, name, fd)
	setLogHeaders(q, spec.Capture.Encoding)
	hdr := q.w.Header()

	end := info.Length
	if stop != nil {
		end = min(end, *stop)
	}
	if from > info.Length {
		q.fail(fmt.Errorf("%w: start %d is past the end of the output (%d bytes)", errRange, from, info.Length))
		return
	}
	size := end - from
	code := http.StatusOK
	if rh := q.r.Header.Get("Range"); rh != "" {
		a, b, ok, err := parseRange(rh, size)
		if err != nil {
			hdr.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			q.fail(err)
			return
		}
		if ok {
			hdr.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", a, b-1, size))
			code = http.StatusPartialContent
			from, end = from+a, from+b
		}
	}
	if code == http.StatusOK && q.r.Method == http.MethodGet && q.r.Header.Get(v1.HeaderPassFd) == "1" && h.passFd(q, name, fd, from, end) {
		return
	}
	var first []byte
	if from < end {
		if first, err = src.read(from, end); err != nil {
			q.fail(err)
			return
		}
	}
	var enc encoder
	if code == http.StatusOK {
		enc = h.negotiate(q)
	}
	var body io.Writer = q.w
	if enc == nil {
		hdr.Set("Content-Length", strconv.FormatInt(end-from, 10))
	} else {
		body = enc
		defer enc.Close()
	}
	q.w.WriteHeader(code)
	if q.r.Method == http.MethodHead {
		return
	}
	src.copy(q, body, from, end, first)
}

// setLogHeaders sets the headers of a log response but Content-Length.
func setLogHeaders(q *request, enc v1.Encoding) {
	hdr := q.w.Header()
	hdr.Set("Content-Type", contentType(enc))
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Vary", "Accept-Encoding")
}

// OutputPinner is an optional extension of Backend, which the controller
// implements. A log read, followed or plain, pins the run (process) the
// proc has when the request comes, and reads that run's capture to its
// end: the proc may be deleted once it has exited without the reader
// missing its last bytes (the controller keeps them readable for the
// handle, by reopening a capture file or holding a memory capture), and a
// proc replaced or restarted under the same name ends a follow once the
// pinned run is drained, never splicing in another run's output. Without
// it, a read goes to the proc by name for each chunk.
type OutputPinner interface {
	// PinOutput pins fd's capture of the proc's current run. Its errors
	// are those of OutputInfo. The caller closes the handle.
	PinOutput(ctx context.Context, name string, fd int) (PinnedOutput, error)
}

// PinnedOutput is one captured fd of one run of a proc. It is an alias of
// an interface literal so that a backend can implement OutputPinner
// without importing this package (controller.PinnedOutput is the same
// type).
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

// logSource is what a log response reads: the run the proc has when the
// request comes, pinned, or (when the backend cannot pin) the proc by
// name. A plain read is pinned as a follow is, so that a proc restarted
// or replaced while a large response is sent never splices another run's
// bytes into it.
type logSource struct {
	pin PinnedOutput
	buf *[]byte // from chunkPool, with pin

	h    *handler
	name string
	fd   int
	rd   *outputReader // without pin
}

// openLog opens the source of a log response, pinning the proc's current
// run when the backend can, and returns it with what the capture holds
// now. On failure it answers q and returns false; else the caller closes
// the source (closeLog).
func (h *handler) openLog(q *request, name string, fd int) (*logSource, v1.OutputInfo, bool) {
	src := &logSource{h: h, name: name, fd: fd}
	if p, ok := h.b.(OutputPinner); ok {
		pin, err := p.PinOutput(q.r.Context(), name, fd)
		if err != nil {
			q.fail(err)
			return nil, v1.OutputInfo{}, false
		}
		src.pin, src.buf = pin, chunkPool.Get().(*[]byte)
	} else {
		src.rd = h.newOutputReader(q, name, fd)
	}
	info, err := src.info(q.r.Context())
	if err != nil {
		h.closeLog(src, name, fd)
		q.fail(err)
		return nil, v1.OutputInfo{}, false
	}
	return src, info, true
}

// closeLog closes src, logging a failure to unpin.
func (h *handler) closeLog(src *logSource, name string, fd int) {
	if err := src.close(); err != nil {
		h.log.Error(err, "unpinning output", "proc", name, "fd", fd)
	}
}

func (s *logSource) info(ctx context.Context) (v1.OutputInfo, error) {
	if s.pin != nil {
		return s.pin.Info()
	}
	return s.h.b.OutputInfo(ctx, s.name, s.fd)
}

// read reads up to logChunk bytes of [pos, end); the result is valid
// until the next read. Nothing read is an error: the length said the
// bytes were there.
func (s *logSource) read(pos, end int64) ([]byte, error) {
	var b []byte
	var err error
	if s.pin != nil {
		var n int
		n, err = s.pin.ReadAt((*s.buf)[:min(end, pos+logChunk)-pos], pos)
		b = (*s.buf)[:n]
		if n > 0 || errors.Is(err, io.EOF) {
			err = nil
		}
	} else {
		b, err = s.rd.read(pos, end)
	}
	if err == nil && len(b) == 0 {
		err = errdefs.New(errdefs.ErrUnavailable, "output is shorter than its length")
	}
	return b, err
}

// done is closed when the pinned run is complete; nil without a pin.
func (s *logSource) done() <-chan struct{} {
	if s.pin != nil {
		return s.pin.Done()
	}
	return nil
}

// copy writes [pos, end) to w, beginning with first (already read from
// pos). The rest goes straight from the capture file when the source has
// one and w can take a file (sendfile(2) on a TCP connection), else in
// chunks of at most logChunk. It stops early if the client goes, or,
// logging, if the output cannot be read (a short body tells the client).
func (s *logSource) copy(q *request, w io.Writer, pos, end int64, first []byte) {
	ctx := q.r.Context()
	_, takesFile := w.(io.ReaderFrom)
	chunk := first
	for {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		pos += int64(len(chunk))
		if pos >= end {
			return
		}
		if takesFile {
			if f, release := s.file(ctx); f != nil {
				s.sendFile(ctx, w, f, pos, end)
				release()
				return
			}
			takesFile = false // a memory capture: chunks from here on
		}
		var err error
		if chunk, err = s.read(pos, end); err != nil {
			if !isClientGone(ctx, err) {
				s.h.log.Error(err, "reading output failed", "proc", s.name, "fd", s.fd, "offset", pos)
			}
			return
		}
	}
}

// file returns the capture's file, which the caller may seek, and a
// function to call when done with it: the pin's own file, or one the
// backend opens by name. It returns nil when there is none (a memory
// capture, or a backend that cannot open files).
func (s *logSource) file(ctx context.Context) (*os.File, func()) {
	if s.pin != nil {
		if pf, ok := s.pin.(pinnedFile); ok {
			if f, err := pf.File(); err == nil && f != nil {
				return f, func() {}
			}
		}
		return nil, nil
	}
	if filer, ok := s.h.b.(OutputFiler); ok {
		if f, err := filer.OutputFile(ctx, s.name, s.fd); err == nil {
			return f, func() { f.Close() }
		}
	}
	return nil, nil
}

// sendFile writes [pos, end) of f to w, which takes a file: net/http then
// uses sendfile(2).
func (s *logSource) sendFile(ctx context.Context, w io.Writer, f *os.File, pos, end int64) {
	var n int64
	_, err := f.Seek(pos, io.SeekStart)
	if err == nil {
		n, err = io.Copy(w, io.LimitReader(f, end-pos))
	}
	if err != nil && !isClientGone(ctx, err) {
		s.h.log.Error(err, "sending output failed", "proc", s.name, "fd", s.fd, "offset", pos+n)
	}
}

// pinnedFile is an optional extension of PinnedOutput for a file-backed
// capture: File is the pin's own open file of the capture (nil for a
// memory capture), which the caller may seek, but not close.
type pinnedFile interface {
	File() (*os.File, error)
}

func (s *logSource) close() error {
	if s.pin == nil {
		s.rd.close()
		return nil
	}
	chunkPool.Put(s.buf)
	return s.pin.Close()
}

// followLog streams from from until stop, or until the capture is complete
// and drained, looking for new output every PollInterval (and at once when
// a pinned run completes). With an OutputPinner backend it reads the run
// the proc had when the request came (see OutputPinner).
//
// Errors before the 200 are answered as usual. After it, a failure to
// read what the capture's length promises (a proc deleted under a backend
// that cannot pin, a read error) is logged and aborts the response: the
// client sees the stream broken (no final chunk), never a clean end short
// of the output.
func (h *handler) followLog(q *request, name string, fd int, encoding v1.Encoding, from int64, stop *int64) {
	ctx := q.r.Context()
	src, info, ok := h.openLog(q, name, fd)
	if !ok {
		return
	}
	defer h.closeLog(src, name, fd)
	setLogHeaders(q, encoding)
	rc := http.NewResponseController(q.w)
	enc := h.negotiate(q)
	q.w.WriteHeader(http.StatusOK)
	var out io.Writer = q.w
	flush := func() { _ = rc.Flush() }
	if enc != nil {
		out = enc
		flush = func() {
			_ = enc.Flush()
			_ = rc.Flush()
		}
	}
	flush()
	ended := false // the stream is whole: end it properly
	defer func() {
		if enc != nil {
			if !ended {
				// Free the encoder without ending the compressed
				// stream, which would read as complete.
				enc.Reset(io.Discard)
			}
			_ = enc.Close()
		}
		if ended {
			_ = rc.Flush()
		}
	}()
	if q.r.Method == http.MethodHead {
		ended = true
		return
	}
	fail := func(err error, pos int64) {
		if isClientGone(ctx, err) {
			return
		}
		h.log.Error(err, "following output failed; aborting the response", "proc", name, "fd", fd, "offset", pos)
		panic(http.ErrAbortHandler)
	}
	pos := from
	done := src.done()
	timer := time.NewTimer(h.opts.PollInterval)
	defer timer.Stop()
	for {
		end := info.Length
		if stop != nil {
			end = min(end, *stop)
		}
		for pos < end {
			chunk, err := src.read(pos, end)
			if err != nil {
				fail(err, pos)
				return
			}
			if _, err := out.Write(chunk); err != nil {
				return // the client is gone
			}
			pos += int64(len(chunk))
			flush()
		}
		if (stop != nil && pos >= *stop) || (info.Complete && pos >= info.Length) {
			ended = true
			return
		}
		timer.Reset(h.opts.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-done:
			done = nil
		}
		var err error
		if info, err = src.info(ctx); err != nil {
			fail(err, pos)
			return
		}
	}
}

// encoder is a streaming compressor.
type encoder interface {
	io.WriteCloser
	Flush() error
	Reset(w io.Writer)
}

// negotiate picks zstd or gzip from Accept-Encoding, preferring zstd,
// sets Content-Encoding and returns the compressor over q.w, or nil for
// identity.
func (h *handler) negotiate(q *request) encoder {
	zq, gq := acceptEncodings(q.r.Header.Values("Accept-Encoding"))
	switch {
	case zq > 0 && zq >= gq:
		zw, err := zstd.NewWriter(q.w, zstd.WithEncoderLevel(zstd.SpeedFastest),
			zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(true))
		if err != nil {
			return nil
		}
		q.w.Header().Set("Content-Encoding", "zstd")
		return zw
	case gq > 0:
		gw, err := gzip.NewWriterLevel(q.w, gzip.BestSpeed)
		if err != nil {
			return nil
		}
		q.w.Header().Set("Content-Encoding", "gzip")
		return gw
	}
	return nil
}

// acceptEncodings returns the q-values of zstd and gzip in Accept-Encoding
// headers ("*" counts for both when they are not named).
func acceptEncodings(headers []string) (zstdQ, gzipQ float64) {
	zstdQ, gzipQ = -1, -1
	star := -1.0
	for _, h := range headers {
		for part := range strings.SplitSeq(h, ",") {
			name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
			name = strings.ToLower(strings.TrimSpace(name))
			qv := 1.0
			for p := range strings.SplitSeq(params, ";") {
				k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
					f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
					if err != nil {
						f = 0
					}
					qv = f
				}
			}
			switch name {
			case "zstd":
				zstdQ = qv
			case "gzip", "x-gzip":
				gzipQ = qv
			case "*":
				star = qv
			}
		}
	}
	if zstdQ < 0 {
		zstdQ = max(star, 0)
	}
	if gzipQ < 0 {
		gzipQ = max(star, 0)
	}
	return zstdQ, gzipQ
}

// parseRange parses a single-range Range header against a representation
// of size bytes and returns [a, b). ok is false when the header should be
// ignored (not "bytes=", or several ranges, or malformed: RFC 9110 lets a
// server ignore those). An unsatisfiable range is an error wrapping
// errRange.
func parseRange(h string, size int64) (a, b int64, ok bool, err error) {
	spec, found := strings.CutPrefix(strings.TrimSpace(h), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, nil
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, nil
	}
	first, last = strings.TrimSpace(first), strings.TrimSpace(last)
	unsat := fmt.Errorf("%w: %s of %d bytes", errRange, h, size)
	switch {
	case first == "" && last == "":
		return 0, 0, false, nil
	case first == "":
		n, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || n < 0 {
			return 0, 0, false, nil
		}
		if n == 0 || size == 0 {
			return 0, 0, false, unsat
		}
		return max(size-n, 0), size, true, nil
	}
	s, perr := strconv.ParseInt(first, 10, 64)
	if perr != nil || s < 0 {
		return 0, 0, false, nil
	}
	e := size - 1
	if last != "" {
		l, perr := strconv.ParseInt(last, 10, 64)
		if perr != nil || l < s {
			return 0, 0, false, nil
		}
		e = min(l, size-1)
	}
	if s >= size {
		return 0, 0, false, unsat
	}
	return s, e + 1, true, nil
}

// Assert that both compressors satisfy encoder.
var (
	_ encoder = (*gzip.Writer)(nil)
	_ encoder = (*zstd.Encoder)(nil)
)
