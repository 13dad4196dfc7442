package restapi

// This file serves GET /apis/procstar.dev/v1/procs/{name}/log: a byte
// range of a captured fd, optionally followed until the proc is done,
// with HTTP ranges and gzip or zstd.

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	v1 "procstar.dev/procstar/api/v1"
)

// v1Log serves …/{name}/log?fd=stdout&start=N&stop=M&follow=true.
//
// The representation is the window [start, stop) of the capture (stop
// defaults to the current end). Without follow, a Range header selects
// part of that window (206, or 416 when unsatisfiable); a start past the
// end of the output is 416. With follow, Range is ignored and the body
// streams until the window is sent or the proc is complete and its output
// drained. A response with a Range applied is never compressed, so that
// Content-Range counts the bytes as they are. Over a unix socket, a plain
// request may ask for the capture file itself instead (see passFd).
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
	info, err := h.b.OutputInfo(ctx, name, fd)
	if err != nil {
		q.fail(err)
		return
	}
	hdr := q.w.Header()
	hdr.Set("Content-Type", contentType(spec.Capture.Encoding))
	hdr.Set("Accept-Ranges", "bytes")
	hdr.Set("Vary", "Accept-Encoding")

	if follow {
		h.followLog(q, name, fd, from, stop)
		return
	}

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
	out := h.newOutputReader(q, name, fd)
	defer out.close()
	first, err := out.read(from, end)
	if err != nil {
		q.fail(err)
		return
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
	out.copy(body, from, end, first, nil)
}

// followLog streams from from until stop or until the capture is complete
// and drained, polling OutputInfo every PollInterval.
func (h *handler) followLog(q *request, name string, fd int, from int64, stop *int64) {
	ctx := q.r.Context()
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
	defer func() {
		if enc != nil {
			_ = enc.Close()
		}
		_ = rc.Flush()
	}()
	if q.r.Method == http.MethodHead {
		return
	}
	rd := h.newOutputReader(q, name, fd)
	defer rd.close()
	pos := from
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for {
		info, err := h.b.OutputInfo(ctx, name, fd)
		if err != nil {
			if !isClientGone(ctx, err) {
				h.log.Error(err, "following output failed", "proc", name, "fd", fd)
			}
			return
		}
		end := info.Length
		if stop != nil {
			end = min(end, *stop)
		}
		if pos < end {
			first, err := rd.read(pos, end)
			if err != nil {
				if !isClientGone(ctx, err) {
					h.log.Error(err, "following output failed", "proc", name, "fd", fd)
				}
				return
			}
			pos = rd.copy(out, pos, end, first, flush)
			if pos < end {
				return // client gone or backend failed; copy logged
			}
		}
		if (stop != nil && pos >= *stop) || (info.Complete && pos >= info.Length) {
			return
		}
		timer.Reset(h.opts.PollInterval)
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
	}
}

// encoder is a streaming compressor.
type encoder interface {
	io.WriteCloser
	Flush() error
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
