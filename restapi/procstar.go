package restapi

// This file serves procstar 0.7.5's routes, byte-compatible with the Rust
// agent (reference §5): the same paths, checks in the same order, the same
// status codes, detail strings and JSON bytes. Deliberate differences that
// break no client: a Content-Type with parameters is accepted, paths are
// matched percent-decoded, bodies are limited (413), output is streamed
// rather than read whole, and 405 responses carry an Allow header.

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/internal/signals"
	"procstar.dev/procstar/wire"
)

// serveProcstar routes /procs… and every unknown path.
func (h *handler) serveProcstar(q *request) {
	s := q.segs
	if len(s) == 0 || s[0] != "procs" {
		q.fail(errNoRoute)
		return
	}
	// A path parameter matches one non-empty segment, as in matchit.
	for _, seg := range s[1:] {
		if seg == "" {
			q.fail(errNoRoute)
			return
		}
	}
	switch {
	case len(s) == 1:
		if !q.methods(http.MethodGet, http.MethodPost) {
			return
		}
		if q.r.Method == http.MethodPost {
			h.procsPost(q)
		} else {
			h.procsGet(q)
		}
	case len(s) == 2:
		if !q.methods(http.MethodGet, http.MethodDelete) {
			return
		}
		if q.r.Method == http.MethodDelete {
			h.procDelete(q, s[1])
		} else {
			h.procGet(q, s[1])
		}
	case len(s) == 4 && s[2] == "signals":
		if q.methods(http.MethodPost) {
			h.procSignal(q, s[1], s[3])
		}
	case len(s) == 5 && s[2] == "output" && s[4] == "data":
		if q.methods(http.MethodGet) {
			h.procOutput(q, s[1], s[3])
		}
	default:
		q.fail(errNoRoute)
	}
}

// procstarData writes {"data": data}.
func procstarData(q *request, data any) {
	writeProcstarJSON(q.w, http.StatusOK, procstarObject{"data": data})
}

// GET /procs
func (h *handler) procsGet(q *request) {
	res, err := h.b.Results(q.r.Context())
	if err != nil {
		q.fail(err)
		return
	}
	if res == nil {
		res = map[string]wire.ProcRes{}
	}
	procstarData(q, procstarObject{"procs": res})
}

// POST /procs
func (h *handler) procsPost(q *request) {
	// procstar reads the whole body before it looks at anything.
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			q.fail(err)
		} else {
			q.fail(badRequest("reading body: %v", err))
		}
		return
	}
	if !isJSON(q.r.Header.Get("Content-Type")) {
		q.fail(badRequest("body not JSON"))
		return
	}
	if len(body) == 0 {
		q.fail(badRequest("no body"))
		return
	}
	specs, err := wire.DecodeSpecMap(body)
	if err != nil {
		q.fail(badRequest("parsing body: %s", oneLine(err.Error())))
		return
	}
	// A start failure is 400 with procstar's error string: the first
	// problem procstar would report, in its order of checks.
	ctx := q.r.Context()
	procs, err := wire.PrepareStart(specs, func(id string) (bool, error) {
		_, err := h.b.Get(ctx, id)
		return errdefs.Found(err)
	})
	if err != nil {
		q.fail(err)
		return
	}
	for i := range procs {
		procs[i].SetDefaults()
	}
	if err := v1.ValidateProcs(procs); err != nil {
		q.fail(&startError{text: wire.StartErrorText(err, procs), err: err})
		return
	}
	if len(procs) > 0 {
		if _, err := h.b.Create(ctx, procs); err != nil {
			q.fail(&startError{text: wire.StartErrorText(err, procs), err: err})
			return
		}
	}
	procstarData(q, procstarObject{})
}

// startError is a start failure told in procstar's words.
type startError struct {
	text string
	err  error
}

func (e *startError) Error() string { return e.text }
func (e *startError) Unwrap() error { return e.err }

// isJSON reports whether a Content-Type is application/json, parameters
// allowed (procstar wants the exact string).
func isJSON(ct string) bool {
	if ct == "" {
		return false
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// GET /procs/:id
func (h *handler) procGet(q *request, id string) {
	res, err := h.b.Result(q.r.Context(), id)
	if err != nil {
		q.fail(err)
		return
	}
	procstarData(q, procstarObject{"procs": procstarObject{id: res}})
}

// DELETE /procs/:id
func (h *handler) procDelete(q *request, id string) {
	if _, err := h.b.Delete(q.r.Context(), id, v1.DeleteOptions{RefuseRunning: true}); err != nil {
		q.fail(err)
		return
	}
	procstarData(q, procstarObject{})
}

// POST /procs/:id/signals/:signum. The signum is checked before the proc,
// as procstar does.
func (h *handler) procSignal(q *request, id, signum string) {
	sig, ok := parseProcstarSignum(signum)
	if !ok {
		q.fail(badRequest("unknwon signum")) // sic: procstar's wording
		return
	}
	if err := h.b.Signal(q.r.Context(), id, sig, false); err != nil {
		q.fail(err)
		return
	}
	procstarData(q, procstarObject{})
}

// parseProcstarSignum accepts what procstar's parse_signum does: an exact
// upper-case signal name ("SIGTERM") or a decimal C int ("15", "+15",
// "-1"). Real-time names ("SIGRTMIN+1") are accepted too; procstar's
// table lacks them.
func parseProcstarSignum(s string) (int, bool) {
	if strings.HasPrefix(s, "SIG") {
		if n, err := signals.Parse(s); err == nil && signals.Name(n) == s {
			return n, true
		}
	}
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// GET /procs/:id/output/:fd/data
func (h *handler) procOutput(q *request, id, fdName string) {
	fd, err := v1.FdName(fdName).Number()
	if err != nil {
		q.fail(badRequest("bad fd: %s", fdName))
		return
	}
	ctx := q.r.Context()
	proc, err := h.b.Get(ctx, id)
	if err != nil {
		q.fail(err)
		return
	}
	spec, found := findFd(&proc, fd)
	if !found {
		q.fail(badRequest("no fd: %d", fd))
		return
	}
	if spec.Capture == nil {
		q.w.Header().Set("Content-Type", "application/octet-stream")
		q.w.Header().Set("Content-Length", "0")
		q.w.WriteHeader(http.StatusOK)
		return
	}
	src, info, ok := h.openLog(q, id, fd)
	if !ok {
		return
	}
	defer h.closeLog(src, id, fd)
	// Read the first chunk before committing to 200, so that an error
	// still gets an error body.
	var first []byte
	if info.Length > 0 {
		if first, err = src.read(0, info.Length); err != nil {
			q.fail(err)
			return
		}
	}
	q.w.Header().Set("Content-Type", contentType(spec.Capture.Encoding))
	q.w.Header().Set("Content-Length", strconv.FormatInt(info.Length, 10))
	q.w.WriteHeader(http.StatusOK)
	if q.r.Method == http.MethodHead {
		return
	}
	src.copy(q, q.w, 0, info.Length, first)
}

// findFd returns the spec entry of fd number fd.
func findFd(p *v1.Proc, fd int) (v1.FdSpec, bool) {
	for _, f := range p.Spec.Fds {
		if n, err := f.Fd.Number(); err == nil && n == fd {
			return f, true
		}
	}
	return v1.FdSpec{}, false
}

// contentType is procstar's Content-Type for a capture's encoding.
func contentType(enc v1.Encoding) string {
	if enc == v1.EncodingUTF8 {
		return "text/plain; charset=utf-8"
	}
	return "application/octet-stream"
}
