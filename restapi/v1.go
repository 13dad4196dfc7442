package restapi

// This file serves the Kubernetes-style routes under
// /apis/procstar.dev/v1/procs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	yamlv2 "go.yaml.in/yaml/v2"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
)

// applyHeader carries an apply's result: created, unchanged or configured.
const applyHeader = "X-Procstar-Apply"

// serveV1 routes /apis/….
func (h *handler) serveV1(q *request) {
	s := q.segs
	if len(s) < len(v1Prefix) || !slices.Equal(s[:len(v1Prefix)], v1Prefix) {
		q.fail(fmt.Errorf("%w: %s (the API lives under /apis/%s/%s/procs)", errNoRoute, q.r.URL.Path, v1.Group, v1.Version))
		return
	}
	rest := s[len(v1Prefix):]
	if len(rest) > 0 && rest[0] == "" && len(rest) == 1 {
		rest = nil // a trailing slash on the collection
	}
	for _, seg := range rest {
		if seg == "" {
			q.fail(fmt.Errorf("%w: %s", errNoRoute, q.r.URL.Path))
			return
		}
	}
	switch {
	case len(rest) == 0:
		if !q.methods(http.MethodGet, http.MethodPost) {
			return
		}
		if q.r.Method == http.MethodPost {
			h.v1Create(q)
		} else {
			h.v1List(q)
		}
	case len(rest) == 1:
		if !q.methods(http.MethodGet, http.MethodPut, http.MethodDelete) {
			return
		}
		switch q.r.Method {
		case http.MethodPut:
			h.v1Apply(q, rest[0])
		case http.MethodDelete:
			h.v1Delete(q, rest[0])
		default:
			h.v1Get(q, rest[0])
		}
	case len(rest) == 2 && rest[1] == "signal":
		if q.methods(http.MethodPost) {
			h.v1Signal(q, rest[0])
		}
	case len(rest) == 2 && rest[1] == "log":
		if q.methods(http.MethodGet) {
			h.v1Log(q, rest[0])
		}
	default:
		q.fail(fmt.Errorf("%w: %s", errNoRoute, q.r.URL.Path))
	}
}

// query returns the URL's query, or fails the request.
func (q *request) query() (url.Values, bool) {
	v, err := url.ParseQuery(q.r.URL.RawQuery)
	if err != nil {
		q.fail(badRequest("bad query string: %v", err))
		return nil, false
	}
	return v, true
}

// boolParam reads an optional boolean query parameter.
func boolParam(v url.Values, name string) (bool, error) {
	s := v.Get(name)
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest("query parameter %s=%q: want true or false", name, s)
	}
	return b, nil
}

// int64Param reads an optional non-negative integer query parameter.
func int64Param(v url.Values, name string) (*int64, error) {
	if !v.Has(name) {
		return nil, nil
	}
	s := v.Get(name)
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return nil, badRequest("query parameter %s=%q: want a whole number of 0 or more", name, s)
	}
	return &n, nil
}

// selectorParams parses labelSelector and fieldSelector.
func selectorParams(v url.Values) (v1.Selector, v1.FieldSelector, error) {
	sel, err := v1.ParseSelector(v.Get("labelSelector"))
	if err != nil {
		return nil, v1.FieldSelector{}, err
	}
	fsel, err := v1.ParseFieldSelector(v.Get("fieldSelector"))
	return sel, fsel, err
}

// GET /apis/procstar.dev/v1/procs[?labelSelector=][&fieldSelector=][&watch=true&resourceVersion=]
func (h *handler) v1List(q *request) {
	v, ok := q.query()
	if !ok {
		return
	}
	sel, fsel, err := selectorParams(v)
	if err != nil {
		q.fail(err)
		return
	}
	watch, err := boolParam(v, "watch")
	if err != nil {
		q.fail(err)
		return
	}
	metadata, err := wantsMetadata(q.r, true)
	if err != nil {
		q.fail(err)
		return
	}
	if watch {
		h.v1Watch(q, sel, fsel, v.Get("resourceVersion"), metadata)
		return
	}
	list, err := h.b.List(q.r.Context(), sel)
	if err != nil {
		q.fail(err)
		return
	}
	list.Items = slices.DeleteFunc(list.Items, func(p v1.Proc) bool { return !fsel.Matches(&p) })
	if metadata {
		out := v1.MetadataListOf(&list)
		writeJSONAs(q.w, http.StatusOK, v1.MetadataMediaType(v1.KindPartialObjectMetadataList), &out)
		return
	}
	list.APIVersion, list.Kind = v1.APIVersion, v1.KindProcList
	if list.Items == nil {
		list.Items = []v1.Proc{}
	}
	writeJSON(q.w, http.StatusOK, list)
}

// v1Watch streams watch events as newline-delimited JSON, flushed after
// each burst, until the client goes or the backend closes the channel.
// With metadata, each event's object is the proc's PartialObjectMetadata.
func (h *handler) v1Watch(q *request, sel v1.Selector, fsel v1.FieldSelector, rv string, metadata bool) {
	ctx := q.r.Context()
	events, err := h.b.Watch(ctx, sel, fsel, rv)
	if err != nil {
		q.fail(err)
		return
	}
	rc := http.NewResponseController(q.w)
	contentType := "application/json"
	if metadata {
		contentType = v1.MetadataMediaType(v1.KindPartialObjectMetadata)
	}
	q.w.Header().Set("Content-Type", contentType)
	q.w.Header().Set("Cache-Control", "no-store")
	q.w.WriteHeader(http.StatusOK)
	_ = rc.Flush()
	enc := &watchEncoder{metadata: metadata}
	enc.enc = json.NewEncoder(&enc.buf)
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if err := h.writeWatchEvent(q.w, enc, ev); err != nil {
				return
			}
			// Flush once a burst has been written, not after every event:
			// a batch of creates then costs one write, not one per line.
			if len(events) == 0 {
				if err := rc.Flush(); err != nil {
					return
				}
			}
		}
	}
}

// writeWatchEvent writes ev to w as one line (an ERROR event as an
// Expired Status, as Kubernetes does).
func (h *handler) writeWatchEvent(w io.Writer, enc *watchEncoder, ev v1.WatchEvent) error {
	enc.buf.Reset()
	var line any
	switch {
	case ev.Type == v1.WatchError:
		// The backend dropped a watcher that fell behind.
		line = watchErrorEvent{Type: v1.WatchError, Object: v1.Status{
			TypeMeta: v1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status:   "Failure",
			Message:  "watch fell behind at resourceVersion " + ev.Object.Metadata.ResourceVersion + "; list again and watch from the list's resourceVersion",
			Reason:   v1.StatusReasonGone,
			Code:     http.StatusGone,
		}}
	case enc.metadata:
		enc.meta = v1.MetadataWatchEvent{Type: ev.Type, Object: v1.MetadataOf(&ev.Object)}
		line = &enc.meta
	default:
		enc.cur = ev
		line = &enc.cur
	}
	if err := enc.enc.Encode(line); err != nil {
		h.log.Error(err, "encoding watch event failed", "proc", ev.Object.Metadata.Name)
		return err
	}
	_, err := w.Write(enc.buf.Bytes())
	return err
}

// watchEncoder is a watch stream's JSON encoder, the buffer it writes to,
// and the one event it encodes through (boxing each event in an interface
// would copy it to the heap): cur, or meta for a metadata-only stream.
type watchEncoder struct {
	buf      bytes.Buffer
	enc      *json.Encoder
	metadata bool
	cur      v1.WatchEvent
	meta     v1.MetadataWatchEvent
}

// watchErrorEvent is an ERROR line of a watch stream, whose object is a
// Status rather than a Proc.
type watchErrorEvent struct {
	Type   v1.WatchEventType `json:"type"`
	Object v1.Status         `json:"object"`
}

// readV1Body reads the body of an apply and decodes exactly one Proc from
// JSON or YAML.
func readV1Body(q *request) (v1.Proc, error) {
	body, err := readV1Bytes(q)
	if err != nil {
		return v1.Proc{}, err
	}
	return decodeOneProc(body, "send exactly one")
}

// readV1Bytes checks the Content-Type of a create or apply and reads its
// (non-empty) body.
func readV1Bytes(q *request) ([]byte, error) {
	if ct := q.r.Header.Get("Content-Type"); ct != "" && ct != "application/json" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return nil, fmt.Errorf("%w: Content-Type %q does not parse", errMediaType, ct)
		case mt == "application/json", mt == "application/yaml", mt == "application/x-yaml",
			mt == "text/yaml", mt == "text/x-yaml":
		default:
			return nil, fmt.Errorf("%w: Content-Type %q; send application/json or application/yaml", errMediaType, mt)
		}
	}
	body, err := io.ReadAll(q.r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, fmt.Errorf("request body is larger than %d bytes: %w", tooLarge.Limit, err)
		}
		return nil, badRequest("reading body: %v", err)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("empty body: send one Proc as JSON or YAML")
	}
	return body, nil
}

// decodeOneProc decodes exactly one Proc from body; hint ends the message
// for a body that holds another number.
func decodeOneProc(body []byte, hint string) (v1.Proc, error) {
	procs, err := v1.Decode(body)
	if err != nil {
		return v1.Proc{}, err
	}
	if len(procs) != 1 {
		return v1.Proc{}, badRequest("body holds %d procs; %s", len(procs), hint)
	}
	return procs[0], nil
}

// procListItems reports whether body is a ProcList (by the kind of its
// first document) and how many items that list has. A body that does not
// parse is not a list here; v1.Decode then says what is wrong with it.
func procListItems(body []byte) (int, bool) {
	if !bytes.Contains(body, []byte(v1.KindProcList)) {
		return 0, false // the common case, a single Proc, without a parse
	}
	var head struct {
		Kind  string `json:"kind" yaml:"kind"`
		Items []any  `json:"items" yaml:"items"`
	}
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '{' {
		// The first JSON value: YAML documents may follow it.
		if json.NewDecoder(bytes.NewReader(t)).Decode(&head) != nil {
			return 0, false
		}
	} else if yamlv2.Unmarshal(body, &head) != nil {
		return 0, false
	}
	return len(head.Items), head.Kind == v1.KindProcList
}

// prepare fills defaults and validates.
func prepare(p *v1.Proc) error {
	p.SetDefaults()
	if err := p.Validate(); err != nil {
		return fmt.Errorf("proc %q is invalid: %w", p.Metadata.Name, err)
	}
	return nil
}

// POST /apis/procstar.dev/v1/procs
//
// The body is a Proc, created alone (201 with the Proc), or a ProcList,
// whose items are created as one batch, all or nothing (201 with a
// ProcList): procs joined by pipes (pipeRead) must start in one batch.
func (h *handler) v1Create(q *request) {
	body, err := readV1Bytes(q)
	if err != nil {
		q.fail(err)
		return
	}
	if n, ok := procListItems(body); ok {
		h.v1CreateBatch(q, body, n)
		return
	}
	p, err := decodeOneProc(body, "send exactly one, or a ProcList to create them as one batch")
	if err == nil {
		err = prepare(&p)
	}
	if err != nil {
		q.fail(err)
		return
	}
	created, err := h.b.Create(q.r.Context(), []v1.Proc{p})
	if err != nil {
		q.fail(err)
		return
	}
	if len(created) == 1 {
		p = created[0]
	}
	writeJSON(q.w, http.StatusCreated, &p)
}

// v1CreateBatch creates the items of a ProcList body, of n items, as one
// batch.
func (h *handler) v1CreateBatch(q *request, body []byte, n int) {
	procs, err := v1.Decode(body)
	if err != nil {
		q.fail(err)
		return
	}
	if len(procs) != n {
		q.fail(badRequest("body holds a ProcList and other documents; send one ProcList"))
		return
	}
	if n == 0 {
		q.fail(badRequest("the ProcList has no items; send at least one Proc"))
		return
	}
	first := make(map[string]int, n)
	for i := range procs {
		name := procs[i].Metadata.Name
		if j, dup := first[name]; dup && name != "" {
			q.fail(badRequest("the ProcList names proc %q twice (items[%d] and items[%d]); names in a batch must be unique", name, j, i))
			return
		}
		first[name] = i
		if err := prepare(&procs[i]); err != nil {
			q.fail(fmt.Errorf("items[%d]: %w", i, err))
			return
		}
	}
	created, err := h.b.Create(q.r.Context(), procs)
	if err != nil {
		q.fail(err)
		return
	}
	if len(created) != len(procs) {
		q.fail(fmt.Errorf("%w: the backend created %d procs for a batch of %d", errInternal, len(created), len(procs)))
		return
	}
	writeJSON(q.w, http.StatusCreated, &v1.ProcList{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProcList},
		Items:    created,
	})
}

// GET /apis/procstar.dev/v1/procs/{name}
func (h *handler) v1Get(q *request, name string) {
	metadata, err := wantsMetadata(q.r, false)
	if err != nil {
		q.fail(err)
		return
	}
	p, err := h.b.Get(q.r.Context(), name)
	if err != nil {
		q.fail(err)
		return
	}
	if metadata {
		m := v1.MetadataOf(&p)
		writeJSONAs(q.w, http.StatusOK, v1.MetadataMediaType(v1.KindPartialObjectMetadata), &m)
		return
	}
	writeJSON(q.w, http.StatusOK, p)
}

// PUT /apis/procstar.dev/v1/procs/{name}[?force=true]
func (h *handler) v1Apply(q *request, name string) {
	v, ok := q.query()
	if !ok {
		return
	}
	force, err := boolParam(v, "force")
	if err != nil {
		q.fail(err)
		return
	}
	p, err := readV1Body(q)
	if err != nil {
		q.fail(err)
		return
	}
	switch p.Metadata.Name {
	case "":
		p.Metadata.Name = name
	case name:
	default:
		q.fail(badRequest("metadata.name %q does not match the name %q in the URL", p.Metadata.Name, name))
		return
	}
	if err := prepare(&p); err != nil {
		q.fail(err)
		return
	}
	out, res, err := h.b.Apply(q.r.Context(), p, force)
	if err != nil {
		q.fail(err)
		return
	}
	q.w.Header().Set(applyHeader, string(res))
	code := http.StatusOK
	if res == v1.ApplyCreated {
		code = http.StatusCreated
	}
	writeJSON(q.w, code, out)
}

// DELETE /apis/procstar.dev/v1/procs/{name}[?gracePeriodSeconds=N][&force=true]
func (h *handler) v1Delete(q *request, name string) {
	v, ok := q.query()
	if !ok {
		return
	}
	var opts v1.DeleteOptions
	var err error
	if opts.Force, err = boolParam(v, "force"); err != nil {
		q.fail(err)
		return
	}
	if v.Has("gracePeriodSeconds") {
		s := v.Get("gracePeriodSeconds")
		g, err := strconv.ParseFloat(s, 64)
		if err != nil || g < 0 || math.IsNaN(g) || math.IsInf(g, 0) {
			q.fail(badRequest("query parameter gracePeriodSeconds=%q: want a number of seconds, 0 or more", s))
			return
		}
		opts.GracePeriodSeconds = &g
	}
	p, err := h.b.Delete(q.r.Context(), name, opts)
	if err != nil {
		q.fail(err)
		return
	}
	writeJSON(q.w, http.StatusOK, p)
}

// signalRequest is the body of POST …/{name}/signal.
type signalRequest struct {
	// signal is a name ("SIGTERM", "TERM") or a number.
	Signal *v1.Signal `json:"signal"`
	// group sends the signal to the proc's process group.
	Group bool `json:"group"`
}

// POST /apis/procstar.dev/v1/procs/{name}/signal
func (h *handler) v1Signal(q *request, name string) {
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
	if ct := q.r.Header.Get("Content-Type"); ct != "" && !isJSON(ct) {
		q.fail(fmt.Errorf("%w: Content-Type %q; send application/json", errMediaType, ct))
		return
	}
	var req signalRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		q.fail(badRequest(`bad signal request: %v; send {"signal": "SIGTERM", "group": false}`, err))
		return
	}
	if dec.More() {
		q.fail(badRequest("bad signal request: data after the JSON object"))
		return
	}
	if req.Signal == nil {
		q.fail(badRequest(`bad signal request: "signal" is required, e.g. {"signal": "SIGTERM"}`))
		return
	}
	sig, err := req.Signal.Number()
	if err != nil {
		q.fail(badRequest("bad signal %q: %v", string(*req.Signal), err))
		return
	}
	if err := h.b.Signal(q.r.Context(), name, sig, req.Group); err != nil {
		q.fail(err)
		return
	}
	target := "proc"
	if req.Group {
		target = "process group of proc"
	}
	writeJSON(q.w, http.StatusOK, v1.Status{
		TypeMeta: v1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   "Success",
		Message:  fmt.Sprintf("sent %s to %s %s", signals.Name(sig), target, name),
		Code:     http.StatusOK,
	})
}
