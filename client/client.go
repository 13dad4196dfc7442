// Package client is the Go client of procstar's Kubernetes-style REST API
// (/apis/procstar.dev/v1), as served by the agent's `procstar --serve` and
// by the control plane. procctl and the end-to-end tests use it.
//
// It speaks HTTP and HTTPS (with a CA file) and HTTP over a unix socket
// ("unix:/path" server addresses), with bearer-token auth. Every error the
// server returns comes back as an *APIError, which matches the
// internal/errdefs classes with errors.Is; a failure to reach the server
// comes back as a *ConnError.
//
// It must not import the runtime, controller or agent packages, and it
// holds no presentation: wording for humans belongs to procctl.
package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/internal/signals"
)

// ProcsPath is the path of the procs collection of the v1 API.
const ProcsPath = "/apis/" + v1.Group + "/" + v1.Version + "/procs"

// ApplyHeader is the response header of a PUT that says what the apply
// did: created, unchanged or configured.
const ApplyHeader = "X-Procstar-Apply"

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 1 << 20

// maxObjectBody bounds how much of an object or list response is read.
const maxObjectBody = 1 << 30

// ErrBadConfig is matched by every error New returns for a bad Config.
var ErrBadConfig = errors.New("bad client config")

// Config says how to reach a server.
type Config struct {
	// Server is http://host:port, https://host:port or unix:/path.
	Server string
	// Token is sent as "Authorization: Bearer TOKEN" when not empty.
	Token string
	// CAFile is a PEM file of CA certificates that verify an https server.
	// Empty means the system pool.
	CAFile string
	// InsecureSkipVerify turns off verification of the server's
	// certificate. For tests only.
	InsecureSkipVerify bool
	// Timeout bounds each request that is not a stream (everything but
	// Watch and a following Logs); for Logs it bounds the wait for the
	// answer to begin, not the download. Zero means no bound beyond ctx.
	Timeout time.Duration
	// UserAgent is sent as User-Agent when not empty.
	UserAgent string
}

// Client talks to one server. It is safe for concurrent use.
type Client struct {
	server  string // as configured, for messages
	socket  string // the unix socket's path, for a unix: server
	base    url.URL
	hc      *http.Client
	token   string
	timeout time.Duration
	agent   string
}

// New checks cfg and returns a client for it. It does not contact the
// server.
func New(cfg Config) (*Client, error) {
	server := strings.TrimSpace(cfg.Server)
	if server == "" {
		return nil, fmt.Errorf("%w: no server address", ErrBadConfig)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	c := &Client{server: server, token: cfg.Token, timeout: cfg.Timeout, agent: cfg.UserAgent}
	if path, ok := strings.CutPrefix(server, "unix:"); ok {
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return nil, fmt.Errorf("%w: unix: address without a socket path", ErrBadConfig)
		}
		c.base = url.URL{Scheme: "http", Host: "procstar"}
		c.socket = path
		var d net.Dialer
		tr.Proxy = nil
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", path)
		}
	} else {
		u, err := url.Parse(server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%w: server %q is not http://HOST:PORT, https://HOST:PORT or unix:/PATH", ErrBadConfig, server)
		}
		c.base = url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(u.Path, "/")}
	}
	if cfg.CAFile != "" || cfg.InsecureSkipVerify {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipVerify} //nolint:gosec // asked for explicitly
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("%w: read CA file: %w", ErrBadConfig, err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("%w: CA file %s holds no PEM certificate", ErrBadConfig, cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		tr.TLSClientConfig = tc
	}
	c.hc = &http.Client{Transport: tr}
	return c, nil
}

// Server returns the server address as configured.
func (c *Client) Server() string { return c.server }

// Close releases idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// APIError is an error response of the server: its HTTP status code and
// the reason and message of its Status body.
type APIError struct {
	// Code is the HTTP status code.
	Code int
	// Reason is the Status reason, e.g. NotFound. When the body was not a
	// Status it is derived from Code, and is empty when NotAPI is set.
	Reason v1.StatusReason
	// Message is the server's message, one line. When NotAPI is set it is
	// the detail of a procstar error body, the first line of a plain-text
	// body, or else the status line: never a raw JSON or HTML body.
	Message string
	// NotAPI is set when the answer was not an error of the v1 API (a
	// Status, by its kind or its reason): something else answered at that
	// address, such as another web server, a proxy, or procstar's own
	// routes under a wrong path prefix. Such an answer matches ErrNotAPI,
	// and of the errdefs classes only ErrUnauthorized (401, 403) and
	// ErrUnavailable (503): a 404 from it says nothing about any proc.
	NotAPI bool
	// Method and Path are the request's (Path with the server's own path
	// prefix), for messages.
	Method, Path string
}

// ErrNotAPI is matched by an *APIError whose answer did not come from the
// v1 API (see APIError.NotAPI).
var ErrNotAPI = errors.New("not an answer of the procstar v1 API")

// Error returns the server's message, or the status text when it sent none.
func (e *APIError) Error() string {
	if e.NotAPI {
		return fmt.Sprintf("%s %s: HTTP %d that is not a procstar v1 API answer (%s)", e.Method, e.Path, e.Code, e.Message)
	}
	if e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
}

// Is matches ErrNotAPI when NotAPI is set, and the errdefs class of the
// reason, or of the code when the reason is unknown.
func (e *APIError) Is(target error) bool {
	if target == ErrNotAPI {
		return e.NotAPI
	}
	return target != nil && target == e.Class()
}

// Class returns the errdefs sentinel for e, or nil when none fits.
func (e *APIError) Class() error {
	if e.NotAPI {
		switch e.Code {
		case http.StatusUnauthorized, http.StatusForbidden:
			return errdefs.ErrUnauthorized
		case http.StatusServiceUnavailable:
			return errdefs.ErrUnavailable
		}
		return nil
	}
	switch e.Reason {
	case v1.StatusReasonNotFound:
		return errdefs.ErrNotFound
	case v1.StatusReasonAlreadyExists:
		return errdefs.ErrAlreadyExists
	case v1.StatusReasonConflict:
		return errdefs.ErrConflict
	case v1.StatusReasonBadRequest, v1.StatusReasonInvalid, v1.StatusReasonRequestTooLarge,
		v1.StatusReasonRangeNotSatisfiable, v1.StatusReasonMethodNotAllowed:
		return errdefs.ErrInvalidArgument
	case v1.StatusReasonGone:
		return errdefs.ErrGone
	case v1.StatusReasonUnauthorized:
		return errdefs.ErrUnauthorized
	case v1.StatusReasonServiceUnavailable:
		return errdefs.ErrUnavailable
	}
	switch e.Code {
	case http.StatusNotFound:
		return errdefs.ErrNotFound
	case http.StatusConflict:
		return errdefs.ErrConflict
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusRequestEntityTooLarge,
		http.StatusRequestedRangeNotSatisfiable, http.StatusMethodNotAllowed:
		return errdefs.ErrInvalidArgument
	case http.StatusGone:
		return errdefs.ErrGone
	case http.StatusUnauthorized, http.StatusForbidden:
		return errdefs.ErrUnauthorized
	case http.StatusServiceUnavailable:
		return errdefs.ErrUnavailable
	case http.StatusPreconditionFailed:
		return errdefs.ErrFailedPrecondition
	}
	return nil
}

// reasonForCode is the Status reason a bare HTTP status code stands for.
func reasonForCode(code int) v1.StatusReason {
	switch code {
	case http.StatusBadRequest:
		return v1.StatusReasonBadRequest
	case http.StatusUnauthorized, http.StatusForbidden:
		return v1.StatusReasonUnauthorized
	case http.StatusNotFound:
		return v1.StatusReasonNotFound
	case http.StatusMethodNotAllowed:
		return v1.StatusReasonMethodNotAllowed
	case http.StatusConflict:
		return v1.StatusReasonConflict
	case http.StatusGone:
		return v1.StatusReasonGone
	case http.StatusRequestEntityTooLarge:
		return v1.StatusReasonRequestTooLarge
	case http.StatusRequestedRangeNotSatisfiable:
		return v1.StatusReasonRangeNotSatisfiable
	case http.StatusUnprocessableEntity:
		return v1.StatusReasonInvalid
	case http.StatusServiceUnavailable:
		return v1.StatusReasonServiceUnavailable
	}
	if code >= 500 {
		return v1.StatusReasonInternalError
	}
	return ""
}

// ConnError is a failure to reach the server or to read its answer:
// connection refused, DNS, TLS, a broken stream. It matches
// errdefs.ErrUnavailable and unwraps to the cause, so that
// errors.Is(err, syscall.ECONNREFUSED) works.
type ConnError struct {
	// Server is the address as configured.
	Server string
	// Err is the cause.
	Err error
}

// Error returns "SERVER: CAUSE".
func (e *ConnError) Error() string { return e.Server + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ConnError) Unwrap() error { return e.Err }

// Is matches errdefs.ErrUnavailable.
func (e *ConnError) Is(target error) bool { return target == errdefs.ErrUnavailable }

// ErrBadResponse is matched by an answer the client cannot decode.
var ErrBadResponse = errors.New("bad response from server")

// BadResponseError is a 2xx answer whose body the client cannot decode:
// not JSON, or not the shape it asked for. It matches ErrBadResponse.
type BadResponseError struct {
	// Method and Path are the request's (Path with the server's own path
	// prefix).
	Method, Path string
	// Err is the decoding error.
	Err error
}

// Error returns "bad response from server: METHOD PATH: CAUSE".
func (e *BadResponseError) Error() string {
	return fmt.Sprintf("%s: %s %s: %s", ErrBadResponse, e.Method, e.Path, e.Err)
}

// Is matches ErrBadResponse.
func (e *BadResponseError) Is(target error) bool { return target == ErrBadResponse }

// Unwrap returns the decoding error.
func (e *BadResponseError) Unwrap() error { return e.Err }

// request is one call.
type request struct {
	method string
	path   string // below the base, e.g. ProcsPath + "/x"
	query  url.Values
	body   any
	stream bool // no Config.Timeout: the caller reads for as long as it likes
	// timeHeaders: Config.Timeout bounds the wait for the response's
	// headers only; the body, which may be large, takes as long as the
	// caller reads it.
	timeHeaders bool
	gzip        bool // ask for gzip and decode it
	// passFd asks a unix: server to pass the file behind the body
	// (v1.HeaderPassFd); the body then reads from it.
	passFd bool
	// accept is the Accept header; empty: application/json.
	accept string
}

// do sends r and returns the response when its status is 2xx; any other
// status becomes an *APIError. The caller closes the body. cancel must be
// called when the body is done with.
func (c *Client) do(ctx context.Context, r request) (*http.Response, context.CancelFunc, error) {
	cancel := context.CancelFunc(func() {})
	var headersTimer *time.Timer
	switch {
	case r.stream || c.timeout <= 0:
	case r.timeHeaders:
		var cancelCause context.CancelCauseFunc
		ctx, cancelCause = context.WithCancelCause(ctx)
		headersTimer = time.AfterFunc(c.timeout, func() { cancelCause(context.DeadlineExceeded) })
		cancel = func() {
			headersTimer.Stop()
			cancelCause(context.Canceled)
		}
	default:
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
	}
	u := c.base
	u.Path = c.base.Path + r.path
	u.RawQuery = r.query.Encode()
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			cancel()
			return nil, nil, fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.gzip {
		req.Header.Set("Accept", "*/*")
		req.Header.Set("Accept-Encoding", "gzip")
	} else if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	} else {
		req.Header.Set("Accept", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.agent != "" {
		req.Header.Set("User-Agent", c.agent)
	}
	hc, conn := c.hc, func() *fdConn { return nil }
	if r.passFd && c.socket != "" {
		hc, conn = passFdClient(c.socket)
		req.Header.Set(v1.HeaderPassFd, "1")
	}
	resp, err := hc.Do(req)
	if err != nil {
		cancel()
		if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
			return nil, nil, context.Cause(ctx)
		}
		return nil, nil, &ConnError{Server: c.server, Err: unwrapURLError(err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer cancel()
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		if wantsTLS(resp, b) {
			return nil, nil, &ConnError{Server: c.server, Err: ErrServerWantsTLS}
		}
		return nil, nil, decodeErrorBody(resp, b)
	}
	if headersTimer != nil && !headersTimer.Stop() {
		// The headers came just as the time ran out.
		resp.Body.Close()
		cancel()
		return nil, nil, context.DeadlineExceeded
	}
	if fc := conn(); fc != nil {
		if resp.Header.Get(v1.HeaderPassFd) != "1" {
			// The body comes the usual way; nothing should have come
			// besides it.
			files, _ := fc.passed()
			for _, f := range files {
				f.Close()
			}
		} else {
			resp.Body.Close()
			body, err := passedWindow(resp, fc)
			if err != nil {
				cancel()
				return nil, nil, &ConnError{Server: c.server, Err: err}
			}
			resp.Body, resp.ContentLength = body, -1
		}
	}
	if r.gzip && strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			resp.Body.Close()
			cancel()
			return nil, nil, &ConnError{Server: c.server, Err: fmt.Errorf("%w: gzip: %w", ErrBadResponse, err)}
		}
		resp.Body = &gzipBody{zr: zr, raw: resp.Body}
		resp.Header.Del("Content-Encoding")
		resp.ContentLength = -1
	}
	return resp, cancel, nil
}

// unwrapURLError drops *url.Error's "Get "URL": " prefix, which repeats
// what the caller knows.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

type gzipBody struct {
	zr  *gzip.Reader
	raw io.ReadCloser
}

func (g *gzipBody) Read(p []byte) (int, error) { return g.zr.Read(p) }
func (g *gzipBody) Close() error {
	g.zr.Close()
	return g.raw.Close()
}

// ErrServerWantsTLS is matched (inside a *ConnError) when an http://
// server answers that it speaks HTTPS only.
var ErrServerWantsTLS = errors.New("the server speaks HTTPS, not plain HTTP")

// wantsTLS reports whether resp is a TLS server's answer to a plain-HTTP
// request: Go's servers write "Client sent an HTTP request to an HTTPS
// server.", nginx "The plain HTTP request was sent to HTTPS port".
func wantsTLS(resp *http.Response, body []byte) bool {
	if resp.StatusCode != http.StatusBadRequest || resp.Request == nil || resp.Request.URL.Scheme != "http" {
		return false
	}
	return bytes.Contains(body, []byte("Client sent an HTTP request to an HTTPS server")) ||
		bytes.Contains(body, []byte("The plain HTTP request was sent to HTTPS port"))
}

// decodeErrorBody turns a non-2xx response with body b into an *APIError.
// Only a v1 Status (kind Status, or a body with a reason) is the API's
// answer; anything else is NotAPI.
func decodeErrorBody(resp *http.Response, b []byte) *APIError {
	e := &APIError{Code: resp.StatusCode}
	if req := resp.Request; req != nil {
		e.Method = req.Method
		if req.URL != nil {
			e.Path = req.URL.Path
		}
	}
	if st, ok := v1StatusBody(b); ok {
		e.Reason, e.Message = st.Reason, st.Message
		if e.Reason == "" {
			e.Reason = reasonForCode(resp.StatusCode)
		}
	} else {
		e.NotAPI = true
		if msg, ok := procstarError(b); ok {
			e.Message = msg
		} else if isPlainText(resp.Header.Get("Content-Type"), b) {
			e.Message = firstLine(string(b))
		}
	}
	e.Message = oneLine(e.Message)
	if e.Message == "" {
		e.Message = fmt.Sprintf("%d %s", e.Code, http.StatusText(e.Code))
	}
	return e
}

// v1StatusBody decodes b as the v1 API's Status: a JSON object whose kind
// is Status, or (from a server that leaves kind out) whose reason is set.
func v1StatusBody(b []byte) (v1.Status, bool) {
	var st v1.Status
	if json.Unmarshal(b, &st) != nil {
		return v1.Status{}, false
	}
	if st.Kind == "Status" || (st.Kind == "" && st.Reason != "") {
		return st, true
	}
	return v1.Status{}, false
}

// isPlainText reports whether an error body is short human text worth
// quoting: a text/plain body, or one with no type that does not look like
// markup or JSON.
func isPlainText(contentType string, b []byte) bool {
	t := bytes.TrimSpace(b)
	if len(t) == 0 || !utf8.Valid(t) || t[0] == '<' || t[0] == '{' || t[0] == '[' {
		return false
	}
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "text/plain"
}

// procstarError reads procstar's own error body, {"errors": {"detail": …}}.
func procstarError(b []byte) (string, bool) {
	var body struct {
		Errors struct {
			Detail string `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &body) != nil || body.Errors.Detail == "" {
		return "", false
	}
	return body.Errors.Detail, true
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	const max = 200
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// getJSON does r and decodes a JSON body into out.
func (c *Client) getJSON(ctx context.Context, r request, out any) (http.Header, int, error) {
	resp, cancel, err := c.do(ctx, r)
	if err != nil {
		return nil, 0, err
	}
	defer cancel()
	defer resp.Body.Close()
	if out == nil {
		_, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		if err != nil {
			return nil, 0, c.readErr(ctx, err)
		}
		return resp.Header, resp.StatusCode, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxObjectBody))
	if err != nil {
		return nil, 0, c.readErr(ctx, err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, 0, &BadResponseError{Method: r.method, Path: c.base.Path + r.path, Err: err}
	}
	return resp.Header, resp.StatusCode, nil
}

func (c *Client) readErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return &ConnError{Server: c.server, Err: err}
}

func procPath(name string) string {
	return ProcsPath + "/" + url.PathEscape(name)
}

// checkName refuses a name no proc can have before asking the server, so
// that "a/b" cannot address another route.
func checkName(name string) error {
	if err := v1.ValidateName(name); err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Errorf("proc name %q: %w", name, err))
	}
	return nil
}

// ListOptions select the procs of List and Watch, in the syntax of the
// labelSelector and fieldSelector query parameters (v1.ParseSelector,
// v1.ParseFieldSelector). The zero value selects every proc.
type ListOptions struct {
	// LabelSelector is a label selector, e.g. "team=data,tier!=web".
	LabelSelector string
	// FieldSelector is a field selector, e.g. "status.phase=Running".
	FieldSelector string
	// MetadataOnly asks for each proc's metadata alone (Kubernetes'
	// PartialObjectMetadata): the procs that List returns and that Watch's
	// events carry then have only apiVersion, kind and metadata set, and
	// the server neither encodes nor sends their specs and statuses. The
	// selectors still select on the whole proc.
	MetadataOnly bool
}

// accept is the Accept header for a list or watch with these options. A
// server without metadata views falls back to whole procs, which decode
// the same way.
func (o ListOptions) accept() string {
	if o.MetadataOnly {
		return v1.MetadataMediaType(v1.KindPartialObjectMetadataList) + "," +
			v1.MetadataMediaType(v1.KindPartialObjectMetadata) + ",application/json"
	}
	return ""
}

// addTo sets the options' query parameters in q.
func (o ListOptions) addTo(q url.Values) {
	if o.LabelSelector != "" {
		q.Set("labelSelector", o.LabelSelector)
	}
	if o.FieldSelector != "" {
		q.Set("fieldSelector", o.FieldSelector)
	}
}

// List returns the procs that opts select.
func (c *Client) List(ctx context.Context, opts ListOptions) (*v1.ProcList, error) {
	q := url.Values{}
	opts.addTo(q)
	var l v1.ProcList
	if _, _, err := c.getJSON(ctx, request{method: http.MethodGet, path: ProcsPath, query: q, accept: opts.accept()}, &l); err != nil {
		return nil, err
	}
	return &l, nil
}

// Get returns the proc called name.
func (c *Client) Get(ctx context.Context, name string) (*v1.Proc, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	var p v1.Proc
	if _, _, err := c.getJSON(ctx, request{method: http.MethodGet, path: procPath(name)}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Create creates proc; it fails with errdefs.ErrAlreadyExists when a proc
// of that name exists.
func (c *Client) Create(ctx context.Context, proc *v1.Proc) (*v1.Proc, error) {
	var p v1.Proc
	if _, _, err := c.getJSON(ctx, request{method: http.MethodPost, path: ProcsPath, body: withTypeMeta(proc)}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// CreateBatch creates procs as one batch, all or nothing, with one POST of
// a ProcList: the server starts them together, as procs joined by pipes
// (pipeRead) must be. It returns the created procs in order. It fails
// with errdefs.ErrAlreadyExists when a proc of one of the names exists,
// and creates none then.
func (c *Client) CreateBatch(ctx context.Context, procs []v1.Proc) ([]v1.Proc, error) {
	if len(procs) == 0 {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, "no procs to create")
	}
	list := v1.ProcList{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProcList}, Items: make([]v1.Proc, len(procs))}
	for i := range procs {
		if err := checkName(procs[i].Metadata.Name); err != nil {
			return nil, err
		}
		list.Items[i] = *withTypeMeta(&procs[i])
	}
	var out v1.ProcList
	if _, _, err := c.getJSON(ctx, request{method: http.MethodPost, path: ProcsPath, body: &list}, &out); err != nil {
		return nil, err
	}
	if len(out.Items) != len(procs) {
		return nil, &BadResponseError{Method: http.MethodPost, Path: c.base.Path + ProcsPath,
			Err: fmt.Errorf("created %d procs for a batch of %d (a server too old to create a ProcList?)", len(out.Items), len(procs))}
	}
	return out.Items, nil
}

// Apply creates proc or, when it exists, leaves it alone if its spec is
// the same. A changed spec fails with errdefs.ErrConflict unless force,
// which replaces the proc.
func (c *Client) Apply(ctx context.Context, proc *v1.Proc, force bool) (*v1.Proc, v1.ApplyResult, error) {
	if err := checkName(proc.Metadata.Name); err != nil {
		return nil, "", err
	}
	q := url.Values{}
	if force {
		q.Set("force", "true")
	}
	var p v1.Proc
	h, code, err := c.getJSON(ctx, request{method: http.MethodPut, path: procPath(proc.Metadata.Name), query: q, body: withTypeMeta(proc)}, &p)
	if err != nil {
		return nil, "", err
	}
	res := v1.ApplyResult(strings.ToLower(strings.TrimSpace(h.Get(ApplyHeader))))
	switch res {
	case v1.ApplyCreated, v1.ApplyUnchanged, v1.ApplyConfigured:
	default:
		// A server that does not say: infer what it can.
		switch {
		case code == http.StatusCreated:
			res = v1.ApplyCreated
		case force:
			res = v1.ApplyConfigured
		default:
			res = v1.ApplyUnchanged
		}
	}
	return &p, res, nil
}

// DryRunApply says what Apply(proc, force) would do, and changes nothing:
// it gets the proc and compares it with PreviewApply. A changed spec
// without force fails with errdefs.ErrConflict, as Apply does.
func (c *Client) DryRunApply(ctx context.Context, proc *v1.Proc, force bool) (v1.ApplyResult, error) {
	live, err := c.Get(ctx, proc.Metadata.Name)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		live = nil
	case err != nil:
		return "", err
	}
	return PreviewApply(live, proc, force)
}

// PreviewApply says what applying desired does to live, the proc as the
// server has it (nil when there is none), the way the agent's apply
// decides: created when there is none; unchanged when the specs, with
// defaults filled in, are the same and so are the labels and annotations;
// configured when only labels or annotations differ, or (with force) when
// the spec does; else errdefs.ErrConflict with the agent's message. A
// proc being deleted counts as changed.
//
// The specs are compared with v1.SameSpec, as the agent does.
func PreviewApply(live, desired *v1.Proc, force bool) (v1.ApplyResult, error) {
	if live == nil {
		return v1.ApplyCreated, nil
	}
	name := desired.Metadata.Name
	deleting := live.Metadata.DeletionTimestamp != nil
	if !deleting && v1.SameSpec(&live.Spec, &desired.Spec) {
		if !sameMap(live.Metadata.Labels, desired.Metadata.Labels) || !sameMap(live.Metadata.Annotations, desired.Metadata.Annotations) {
			return v1.ApplyConfigured, nil
		}
		return v1.ApplyUnchanged, nil
	}
	if force {
		return v1.ApplyConfigured, nil
	}
	if deleting {
		return "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("proc %s is being deleted; wait for it to go, or apply with --force", name))
	}
	return "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("spec of proc %s is immutable; delete it or apply with --force", name))
}

func sameMap(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

func withTypeMeta(p *v1.Proc) *v1.Proc {
	if p.APIVersion != "" && p.Kind != "" {
		return p
	}
	q := *p
	if q.APIVersion == "" {
		q.APIVersion = v1.APIVersion
	}
	if q.Kind == "" {
		q.Kind = v1.KindProc
	}
	return &q
}

// Delete asks the server to delete the proc called name. A running proc
// is stopped first (stop signal, grace period, SIGKILL; opts.Force skips
// the grace). It returns the proc as it was when deletion was accepted,
// with its deletionTimestamp set.
func (c *Client) Delete(ctx context.Context, name string, opts v1.DeleteOptions) (*v1.Proc, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	q := url.Values{}
	if opts.GracePeriodSeconds != nil {
		q.Set("gracePeriodSeconds", strconv.FormatFloat(*opts.GracePeriodSeconds, 'f', -1, 64))
	}
	if opts.Force {
		q.Set("force", "true")
	}
	if opts.RefuseRunning {
		q.Set("refuseRunning", "true")
	}
	var p v1.Proc
	if _, _, err := c.getJSON(ctx, request{method: http.MethodDelete, path: procPath(name), query: q}, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// SignalRequest is the body of POST …/procs/{name}/signal.
type SignalRequest struct {
	// Signal is the canonical signal name, e.g. SIGTERM.
	Signal string `json:"signal"`
	// Group sends the signal to the proc's whole process group.
	Group bool `json:"group"`
}

// Signal sends sig (a name such as "TERM" or "SIGTERM", or a number) to
// the proc called name, or to its process group when group is set.
func (c *Client) Signal(ctx context.Context, name, sig string, group bool) error {
	if err := checkName(name); err != nil {
		return err
	}
	n, err := signals.Parse(sig)
	if err != nil {
		return errdefs.Wrap(errdefs.ErrInvalidArgument, err)
	}
	body := SignalRequest{Signal: signals.Name(n), Group: group}
	_, _, err = c.getJSON(ctx, request{method: http.MethodPost, path: procPath(name) + "/signal", body: body}, nil)
	return err
}

// LogOptions choose the bytes Logs returns.
type LogOptions struct {
	// Fd is the captured fd: stdout (the default), stderr or a number.
	Fd string
	// Start is the first byte offset.
	Start int64
	// Stop is the offset to stop before; 0 means the end of the output.
	Stop int64
	// Follow keeps the stream open until the proc has exited and its
	// output has drained.
	Follow bool
	// TailBytes, when positive, starts at the last TailBytes bytes written
	// so far (it overrides Start). It costs one Get.
	TailBytes int64
}

// Logs returns the captured output of an fd of the proc called name. The
// caller must close the reader. The bytes arrive as the server sends them,
// gzip-compressed on the wire when the server can. From a unix: server,
// without Follow, a file-backed capture comes as the file itself, passed
// over the socket, and the reader reads it directly.
func (c *Client) Logs(ctx context.Context, name string, opts LogOptions) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	fd := v1.FdName(opts.Fd)
	if fd == "" {
		fd = v1.Stdout
	}
	if n, err := fd.Number(); err != nil || n < 0 || n > v1.MaxFd {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Errorf("bad fd %q: want stdout, stderr or a number", opts.Fd))
	}
	fd = fd.Canonical()
	if opts.Start < 0 || opts.Stop < 0 || opts.TailBytes < 0 {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, errors.New("log offsets must be 0 or more"))
	}
	start := opts.Start
	if opts.TailBytes > 0 {
		p, err := c.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		st, ok := p.Status.Fds[string(fd)]
		if !ok {
			return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("proc %q has no captured output on fd %s", name, fd))
		}
		start = max(0, st.Length-opts.TailBytes)
	}
	if opts.Stop > 0 && opts.Stop < start {
		return nil, errdefs.Wrap(errdefs.ErrInvalidArgument, fmt.Errorf("log stop %d is before start %d", opts.Stop, start))
	}
	q := url.Values{}
	q.Set("fd", string(fd))
	if start > 0 {
		q.Set("start", strconv.FormatInt(start, 10))
	}
	if opts.Stop > 0 {
		q.Set("stop", strconv.FormatInt(opts.Stop, 10))
	}
	if opts.Follow {
		q.Set("follow", "true")
	}
	// A unix: server is on this host: it can pass the capture file itself
	// instead of copying it through the socket, unless it must be followed.
	local := c.socket != "" && !opts.Follow
	resp, cancel, err := c.do(ctx, request{method: http.MethodGet, path: procPath(name) + "/log", query: q, stream: opts.Follow, timeHeaders: true, gzip: !local, passFd: local})
	if err != nil {
		return nil, err
	}
	return &streamBody{rc: resp.Body, cancel: cancel, c: c, ctx: ctx}, nil
}

// streamBody turns transport errors while reading into *ConnError and
// releases the request's context on Close.
type streamBody struct {
	rc     io.ReadCloser
	cancel context.CancelFunc
	c      *Client
	ctx    context.Context
}

func (s *streamBody) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if err != nil && err != io.EOF {
		err = s.c.readErr(s.ctx, err)
	}
	return n, err
}

// WriteTo hands the body to the source's WriteTo when it has one (a passed
// file: io.Copy then copies in the kernel where it can).
func (s *streamBody) WriteTo(w io.Writer) (int64, error) {
	if wt, ok := s.rc.(io.WriterTo); ok {
		return wt.WriteTo(w)
	}
	return io.Copy(w, struct{ io.Reader }{s})
}

func (s *streamBody) Close() error {
	err := s.rc.Close()
	s.cancel()
	return err
}

// VersionInfo is the body of GET /version.
type VersionInfo struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Version returns the server's version.
func (c *Client) Version(ctx context.Context) (*VersionInfo, error) {
	var v VersionInfo
	if _, _, err := c.getJSON(ctx, request{method: http.MethodGet, path: "/version"}, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Healthz returns nil when the server answers /healthz with 2xx.
func (c *Client) Healthz(ctx context.Context) error {
	_, _, err := c.getJSON(ctx, request{method: http.MethodGet, path: "/healthz"}, nil)
	return err
}
