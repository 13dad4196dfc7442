package restapi

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-logr/logr"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/wire"
)

// Backend is what the handlers serve; the agent's controller implements it
// (and later the control plane). Errors are classed with internal/errdefs;
// their messages reach clients as they are, so they should read as one
// clear line (procstar's routes rely on exact wording such as
// "process running: ID").
type Backend interface {
	// Create starts one batch of procs, all or nothing. The objects it
	// returns may be shared: they are read, never modified.
	Create(ctx context.Context, procs []v1.Proc) ([]v1.Proc, error)
	// Apply creates proc, or leaves it be when its spec is unchanged, or
	// (with force) replaces it; a changed spec without force is ErrConflict.
	Apply(ctx context.Context, proc v1.Proc, force bool) (v1.Proc, v1.ApplyResult, error)
	// Get returns one proc, or ErrNotFound.
	Get(ctx context.Context, name string) (v1.Proc, error)
	// List returns the procs whose labels match selector.
	List(ctx context.Context, selector v1.Selector) (v1.ProcList, error)
	// Watch streams the changes of the procs selector and fields select
	// after resourceVersion ("" for now), a proc coming into the selection
	// as ADDED and leaving it as DELETED; the channel closes when ctx
	// ends. A resourceVersion too old to replay is ErrGone. Event objects
	// may be shared: they are read, never modified.
	Watch(ctx context.Context, selector v1.Selector, fields v1.FieldSelector, resourceVersion string) (<-chan v1.WatchEvent, error)
	// Delete removes a proc as opts say.
	Delete(ctx context.Context, name string, opts v1.DeleteOptions) (v1.Proc, error)
	// Signal sends sig to the proc (to its process group with group).
	Signal(ctx context.Context, name string, sig int, group bool) error
	// Result is the proc's procstar result.
	Result(ctx context.Context, name string) (wire.ProcRes, error)
	// Results are every proc's procstar result, keyed by proc ID.
	Results(ctx context.Context) (map[string]wire.ProcRes, error)
	// ReadOutput returns the captured bytes [start, stop) of fd (to the
	// current end when stop is nil).
	ReadOutput(ctx context.Context, name string, fd int, start int64, stop *int64) ([]byte, error)
	// OutputInfo says how long fd's capture is and whether it is complete
	// (the proc has exited and the capture drained).
	OutputInfo(ctx context.Context, name string, fd int) (v1.OutputInfo, error)
}

// VersionInfo is the body of GET /version.
type VersionInfo struct {
	// version of procstar.
	Version string `json:"version"`
	// gitCommit it was built from.
	GitCommit string `json:"gitCommit"`
	// goVersion it was built with.
	GoVersion string `json:"goVersion"`
	// platform is GOOS/GOARCH.
	Platform string `json:"platform"`
}

// Options configure NewHandler. The zero value serves without auth,
// /metrics or /agent.
type Options struct {
	// Logger receives request errors and recovered panics.
	Logger logr.Logger
	// Token, when non-nil, is the bearer token every route but /healthz
	// and /readyz requires. A non-nil empty Token admits nobody.
	Token []byte
	// Version is served at /version.
	Version VersionInfo
	// Metrics serves /metrics (e.g. promhttp.HandlerFor(registry, …));
	// nil gives 404. It is an http.Handler rather than a registry so that
	// this package does not depend on the Prometheus client.
	Metrics http.Handler
	// AgentInfo returns what GET /agent serves as JSON; nil gives 404.
	AgentInfo func() any
	// Ready returns nil when the server is ready; nil Ready means always.
	Ready func() error
	// MaxBodyBytes limits request bodies (413 beyond); default 8 MiB.
	MaxBodyBytes int64
	// PollInterval is how often a followed log looks for new output;
	// default 100 ms.
	PollInterval time.Duration
}

// Defaults of Options.
const (
	DefaultMaxBodyBytes = 8 << 20
	DefaultPollInterval = 100 * time.Millisecond
	// logChunk is the most bytes read from the backend at once.
	logChunk = 1 << 20
)

// v1Prefix is the path of the v1 procs collection, as segments.
var v1Prefix = []string{"apis", v1.Group, v1.Version, "procs"}

// handler serves a Backend. It is immutable after NewHandler.
type handler struct {
	b    Backend
	opts Options
	log  logr.Logger
}

// NewHandler returns the HTTP API serving b.
func NewHandler(b Backend, opts Options) http.Handler {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	return &handler{b: b, opts: opts, log: opts.Logger}
}

// routeFamily says which error shape a path gets.
type routeFamily int

const (
	familyProcstar routeFamily = iota // procstar's routes and unknown paths
	familyV1                          // /apis/…
	familyMisc                        // /healthz, /version, …
)

// request is one request being served, with its path split into
// percent-decoded segments.
type request struct {
	w      http.ResponseWriter
	r      *http.Request
	segs   []string
	family routeFamily
}

// fail writes err in the route family's error shape.
func (q *request) fail(err error) {
	if q.family == familyProcstar {
		writeProcstarError(q.w, err)
	} else {
		writeStatus(q.w, err)
	}
}

// methods checks the method against the allowed ones (HEAD goes with
// GET) and writes 405 if it is not one of them.
func (q *request) methods(allowed ...string) bool {
	m := q.r.Method
	for _, a := range allowed {
		if m == a || (m == http.MethodHead && a == http.MethodGet) {
			return true
		}
	}
	allow := strings.Join(allowed, ", ")
	q.w.Header().Set("Allow", allow)
	q.fail(fmt.Errorf("%w: %s %s (allowed: %s)", errMethodNotAllowed, m, q.r.URL.Path, allow))
	return false
}

// splitPath splits the escaped path into decoded segments. ok is false for
// a path that is not absolute or does not decode.
func splitPath(r *http.Request) (segs []string, ok bool) {
	p := r.URL.EscapedPath()
	if !strings.HasPrefix(p, "/") {
		return nil, false
	}
	segs = strings.Split(p[1:], "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return nil, false
		}
		segs[i] = d
	}
	return segs, true
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &trackingWriter{ResponseWriter: w}
	q := &request{w: rw, r: r}
	defer h.recoverPanic(q, rw)

	segs, ok := splitPath(r)
	q.segs = segs
	switch {
	case ok && len(segs) >= 1 && segs[0] == "apis":
		q.family = familyV1
	case ok && len(segs) == 1 && (segs[0] == "healthz" || segs[0] == "readyz" ||
		segs[0] == "version" || segs[0] == "metrics" || segs[0] == "agent"):
		q.family = familyMisc
	}
	if !ok {
		q.fail(errNoRoute)
		return
	}
	if q.family == familyMisc && (segs[0] == "healthz" || segs[0] == "readyz") {
		h.serveMisc(q)
		return
	}
	if !h.authorized(r) {
		q.fail(errdefs.New(errdefs.ErrUnauthorized, "missing or wrong bearer token: send \"Authorization: Bearer <token>\""))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes)
	switch q.family {
	case familyMisc:
		h.serveMisc(q)
	case familyV1:
		h.serveV1(q)
	default:
		h.serveProcstar(q)
	}
}

// authorized checks the bearer token in constant time.
func (h *handler) authorized(r *http.Request) bool {
	if h.opts.Token == nil {
		return true
	}
	if len(h.opts.Token) == 0 {
		return false
	}
	auth := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(auth) < len(prefix) || !strings.EqualFold(auth[:len(prefix)], prefix) {
		return false
	}
	got := []byte(strings.TrimSpace(auth[len(prefix):]))
	return subtle.ConstantTimeCompare(got, h.opts.Token) == 1
}

// recoverPanic turns a panic in a handler into a logged 500 (when nothing
// has been written yet). http.ErrAbortHandler passes through.
func (h *handler) recoverPanic(q *request, rw *trackingWriter) {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler { //nolint:errorlint // sentinel panic value
		panic(v)
	}
	h.log.Error(fmt.Errorf("panic: %v", v), "handler panicked", "method", q.r.Method, "path", q.r.URL.Path)
	if !rw.wrote {
		q.fail(errInternal)
	}
}

// trackingWriter records whether the header has been written. It passes
// Flush on through Unwrap (http.ResponseController).
type trackingWriter struct {
	http.ResponseWriter
	wrote bool
}

func (t *trackingWriter) WriteHeader(code int) {
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// ReadFrom passes a copy on to the underlying writer's ReadFrom, which is
// where net/http sends a file with sendfile(2).
func (t *trackingWriter) ReadFrom(r io.Reader) (int64, error) {
	t.wrote = true
	if rf, ok := t.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{t.ResponseWriter}, r)
}

// Flush implements http.Flusher.
func (t *trackingWriter) Flush() {
	t.wrote = true
	_ = http.NewResponseController(t.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// serveMisc serves /healthz, /readyz, /version, /metrics and /agent.
func (h *handler) serveMisc(q *request) {
	if !q.methods(http.MethodGet) {
		return
	}
	switch q.segs[0] {
	case "healthz":
		writeText(q.w, http.StatusOK, "ok\n")
	case "readyz":
		if h.opts.Ready != nil {
			if err := h.opts.Ready(); err != nil {
				writeText(q.w, http.StatusServiceUnavailable, "not ready: "+oneLine(err.Error())+"\n")
				return
			}
		}
		writeText(q.w, http.StatusOK, "ok\n")
	case "version":
		writeJSON(q.w, http.StatusOK, h.opts.Version)
	case "metrics":
		if h.opts.Metrics == nil {
			q.fail(errdefs.New(errdefs.ErrNotFound, "metrics are not enabled on this server"))
			return
		}
		h.opts.Metrics.ServeHTTP(q.w, q.r)
	case "agent":
		if h.opts.AgentInfo == nil {
			q.fail(errdefs.New(errdefs.ErrNotFound, "this server is not an agent"))
			return
		}
		writeJSON(q.w, http.StatusOK, h.opts.AgentInfo())
	}
}

// writeText writes a plain-text body.
func writeText(w http.ResponseWriter, code int, s string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(s))
}

// oneLine replaces line breaks so a message stays one line.
func oneLine(s string) string {
	return strings.NewReplacer("\r\n", "; ", "\n", "; ", "\r", "; ").Replace(s)
}

// badRequest classes a message as a client error.
func badRequest(format string, args ...any) error {
	return errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
}

// isClientGone reports whether err is the client going away mid-request.
func isClientGone(ctx context.Context, err error) bool {
	return ctx.Err() != nil || errors.Is(err, context.Canceled)
}
