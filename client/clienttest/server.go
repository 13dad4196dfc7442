// Package clienttest is an in-memory fake of procstar's v1 REST API, for
// tests of package client and of procctl. It keeps Procs in a map, serves
// list, watch, get, create, apply, delete, signal, log, /version and
// /healthz with the real API's shapes, and lets a test script what the
// "processes" do through hooks and setters.
//
// It runs no processes and must not be used outside tests.
package clienttest

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
)

// SignalCall records one signal request.
type SignalCall struct {
	Name   string
	Signal string
	Group  bool
}

// DeleteCall records one delete request.
type DeleteCall struct {
	Name               string
	GracePeriodSeconds string
	Force              bool
}

// Server is the fake API. Create it with New; it is safe for concurrent use.
type Server struct {
	// Token, when set before use, is required as a bearer token.
	Token string
	// OnCreate, when set before use, is called (without locks held) after
	// a proc is created, with the server, so a test can drive its life.
	OnCreate func(s *Server, p *v1.Proc)
	// OnSignal, when set before use, is called (without locks held) after
	// a signal request is recorded.
	OnSignal func(s *Server, c SignalCall)
	// KeepOnDelete, when set before use, marks deleted procs with a
	// deletionTimestamp but does not remove them; the test calls Remove.
	KeepOnDelete bool
	// Version is what /version returns.
	Version map[string]string
	// Now is the clock for timestamps; it defaults to time.Now.
	Now func() time.Time

	*httptest.Server

	mu      sync.Mutex // guards everything below
	rv      int64
	procs   map[string]*v1.Proc
	events  []v1.WatchEvent // every change, for watches from a resourceVersion
	changed chan struct{}   // closed and replaced on every change
	logs    map[string]map[string][]byte
	signals []SignalCall
	deletes []DeleteCall
	creates [][]string
	applies []string
	watches int
	// metadataRequests counts lists and watches that asked for metadata.
	metadataRequests int
}

// New starts a fake server on loopback. It is closed at the end of the
// test by the caller (Close).
func New() *Server {
	s := &Server{
		procs:   map[string]*v1.Proc{},
		changed: make(chan struct{}),
		logs:    map[string]map[string][]byte{},
		Version: map[string]string{"version": "v0.0.0-fake", "gitCommit": "fake", "goVersion": "go1.26", "platform": "linux/amd64"},
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Put stores p as is (creating or replacing it) and records a watch event.
func (s *Server) Put(p *v1.Proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.putLocked(p.DeepCopy())
}

func (s *Server) putLocked(p *v1.Proc) {
	t := v1.Modified
	if _, ok := s.procs[p.Metadata.Name]; !ok {
		t = v1.Added
	}
	s.rv++
	p.Metadata.ResourceVersion = strconv.FormatInt(s.rv, 10)
	if p.APIVersion == "" {
		p.APIVersion, p.Kind = v1.APIVersion, v1.KindProc
	}
	s.procs[p.Metadata.Name] = p
	s.recordLocked(t, p)
}

func (s *Server) recordLocked(t v1.WatchEventType, p *v1.Proc) {
	s.events = append(s.events, v1.WatchEvent{Type: t, Object: *p.DeepCopy()})
	close(s.changed)
	s.changed = make(chan struct{})
}

// Update applies f to the stored proc called name, records a MODIFIED
// event and reports whether the proc exists.
func (s *Server) Update(name string, f func(p *v1.Proc)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[name]
	if !ok {
		return false
	}
	p = p.DeepCopy()
	f(p)
	s.putLocked(p)
	return true
}

// Remove deletes the proc called name and records a DELETED event.
func (s *Server) Remove(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(name)
}

func (s *Server) removeLocked(name string) {
	p, ok := s.procs[name]
	if !ok {
		return
	}
	delete(s.procs, name)
	s.rv++
	p = p.DeepCopy()
	p.Metadata.ResourceVersion = strconv.FormatInt(s.rv, 10)
	s.recordLocked(v1.Deleted, p)
}

// Proc returns a copy of the stored proc called name, or nil.
func (s *Server) Proc(name string) *v1.Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.procs[name]; ok {
		return p.DeepCopy()
	}
	return nil
}

// AppendLog appends data to the captured output of fd (canonical name) of
// the proc called name.
func (s *Server) AppendLog(name, fd string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs[name] == nil {
		s.logs[name] = map[string][]byte{}
	}
	s.logs[name][fd] = append(s.logs[name][fd], data...)
	if p, ok := s.procs[name]; ok {
		if p.Status.Fds == nil {
			p.Status.Fds = map[string]v1.FdStatus{}
		}
		st := p.Status.Fds[fd]
		st.Length = int64(len(s.logs[name][fd]))
		if st.Encoding == "" {
			st.Encoding = v1.EncodingUTF8
		}
		p.Status.Fds[fd] = st
	}
	close(s.changed)
	s.changed = make(chan struct{})
}

// Signals returns the signal requests received so far.
func (s *Server) Signals() []SignalCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SignalCall(nil), s.signals...)
}

// Deletes returns the delete requests received so far.
func (s *Server) Deletes() []DeleteCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DeleteCall(nil), s.deletes...)
}

// Watches returns how many watch requests have started.
func (s *Server) Watches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.watches
}

// Finish sets the proc called name to a terminal phase with exit code
// code (Succeeded when 0, Failed otherwise).
func (s *Server) Finish(name string, code int) bool {
	now := s.now()
	return s.Update(name, func(p *v1.Proc) {
		p.Status.Phase = v1.PhaseSucceeded
		if code != 0 {
			p.Status.Phase = v1.PhaseFailed
		}
		p.Status.ExitCode = &code
		v1.SetCondition(&p.Status.Conditions, v1.Condition{Type: v1.ConditionTerminated, Status: v1.ConditionTrue, Reason: v1.ReasonExited}, now)
		if p.Status.Times == nil {
			p.Status.Times = &v1.ProcTimes{}
		}
		p.Status.Times.Stop = &now
	})
}

// Start sets the proc called name Running with pid pid.
func (s *Server) Start(name string, pid int) bool {
	now := s.now()
	return s.Update(name, func(p *v1.Proc) {
		p.Status.Phase = v1.PhaseRunning
		p.Status.Pid = pid
		v1.SetCondition(&p.Status.Conditions, v1.Condition{Type: v1.ConditionStarted, Status: v1.ConditionTrue, Reason: v1.ReasonExec}, now)
		p.Status.Times = &v1.ProcTimes{Start: &now}
	})
}

// WriteStatus writes a Status error body.
func WriteStatus(w http.ResponseWriter, code int, reason v1.StatusReason, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v1.Status{TypeMeta: v1.TypeMeta{APIVersion: "v1", Kind: "Status"}, Status: "Failure", Message: msg, Reason: reason, Code: code})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

const procsPath = "/apis/procstar.dev/v1/procs"

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.Token != "" && r.Header.Get("Authorization") != "Bearer "+s.Token {
		WriteStatus(w, http.StatusUnauthorized, v1.StatusReasonUnauthorized, "missing or wrong bearer token")
		return
	}
	path := r.URL.Path
	switch {
	case path == "/version":
		writeJSON(w, 200, s.Version)
		return
	case path == "/healthz":
		io.WriteString(w, "ok")
		return
	case path == procsPath:
		switch r.Method {
		case http.MethodGet:
			if r.URL.Query().Get("watch") == "true" {
				s.watch(w, r)
			} else {
				s.list(w, r)
			}
		case http.MethodPost:
			s.create(w, r)
		default:
			WriteStatus(w, 405, v1.StatusReasonMethodNotAllowed, "method not allowed")
		}
		return
	case strings.HasPrefix(path, procsPath+"/"):
		rest := strings.TrimPrefix(path, procsPath+"/")
		name, sub, _ := strings.Cut(rest, "/")
		switch {
		case sub == "" && r.Method == http.MethodGet:
			s.get(w, name)
		case sub == "" && r.Method == http.MethodPut:
			s.apply(w, r, name)
		case sub == "" && r.Method == http.MethodDelete:
			s.delete(w, r, name)
		case sub == "signal" && r.Method == http.MethodPost:
			s.signal(w, r, name)
		case sub == "log" && r.Method == http.MethodGet:
			s.log(w, r, name)
		default:
			WriteStatus(w, 404, v1.StatusReasonNotFound, "no route "+r.Method+" "+path)
		}
		return
	}
	WriteStatus(w, 404, v1.StatusReasonNotFound, "no route "+r.Method+" "+path)
}

func notFound(w http.ResponseWriter, name string) {
	WriteStatus(w, 404, v1.StatusReasonNotFound, fmt.Sprintf("proc %q not found", name))
}

// selectors parses the labelSelector and fieldSelector parameters.
func selectors(r *http.Request) (v1.Selector, v1.FieldSelector, error) {
	sel, err := v1.ParseSelector(r.URL.Query().Get("labelSelector"))
	if err != nil {
		return nil, v1.FieldSelector{}, err
	}
	fsel, err := v1.ParseFieldSelector(r.URL.Query().Get("fieldSelector"))
	return sel, fsel, err
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	sel, fsel, err := selectors(r)
	if err != nil {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	l := v1.ProcList{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProcList}, Items: []v1.Proc{}}
	l.Metadata.ResourceVersion = strconv.FormatInt(s.rv, 10)
	for _, p := range s.procs {
		if sel.Matches(p.Metadata.Labels) && fsel.Matches(p) {
			l.Items = append(l.Items, *p.DeepCopy())
		}
	}
	s.mu.Unlock()
	sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].Metadata.Name < l.Items[j].Metadata.Name })
	if s.wantsMetadata(r) {
		writeJSON(w, 200, v1.MetadataListOf(&l))
		return
	}
	writeJSON(w, 200, l)
}

// wantsMetadata reports whether a list or watch asks for the metadata
// view (a simpler reading of Accept than the agent's), and counts it.
func (s *Server) wantsMetadata(r *http.Request) bool {
	if !strings.Contains(r.Header.Get("Accept"), "as=PartialObjectMetadata") {
		return false
	}
	s.mu.Lock()
	s.metadataRequests++
	s.mu.Unlock()
	return true
}

// MetadataRequests is how many lists and watches asked for procs'
// metadata alone.
func (s *Server) MetadataRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.metadataRequests
}

// watch serves a watch. Unlike the agent's, it filters events on the
// object they carry only: it never turns them into ADDED or DELETED.
func (s *Server) watch(w http.ResponseWriter, r *http.Request) {
	sel, fsel, err := selectors(r)
	if err != nil {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	s.watches++
	from := s.rv
	if v := r.URL.Query().Get("resourceVersion"); v != "" {
		from, err = strconv.ParseInt(v, 10, 64)
		if err != nil || from < 0 {
			s.mu.Unlock()
			WriteStatus(w, 400, v1.StatusReasonBadRequest, "bad resourceVersion "+strconv.Quote(v))
			return
		}
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	metadata := s.wantsMetadata(r)
	enc := json.NewEncoder(w)
	for {
		s.mu.Lock()
		var batch []v1.WatchEvent
		for _, ev := range s.events {
			rv, _ := strconv.ParseInt(ev.Object.Metadata.ResourceVersion, 10, 64)
			if rv > from {
				batch = append(batch, ev)
				from = rv
			}
		}
		ch := s.changed
		s.mu.Unlock()
		for _, ev := range batch {
			if !sel.Matches(ev.Object.Metadata.Labels) || !fsel.Matches(&ev.Object) {
				continue
			}
			var line any = ev
			if metadata {
				line = v1.MetadataWatchEvent{Type: ev.Type, Object: v1.MetadataOf(&ev.Object)}
			}
			if enc.Encode(line) != nil {
				return
			}
		}
		if fl != nil {
			fl.Flush()
		}
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
	}
}

func (s *Server) get(w http.ResponseWriter, name string) {
	p := s.Proc(name)
	if p == nil {
		notFound(w, name)
		return
	}
	writeJSON(w, 200, p)
}

func decodeBody(w http.ResponseWriter, r *http.Request) (*v1.Proc, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, err.Error())
		return nil, false
	}
	return decodeOne(w, b)
}

func decodeOne(w http.ResponseWriter, b []byte) (*v1.Proc, bool) {
	procs, err := v1.Decode(b)
	if err != nil {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, err.Error())
		return nil, false
	}
	if len(procs) != 1 {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, "want one proc")
		return nil, false
	}
	p := &procs[0]
	if err := p.Validate(); err != nil {
		WriteStatus(w, 422, v1.StatusReasonInvalid, err.Error())
		return nil, false
	}
	return p, true
}

func (s *Server) newProcLocked(p *v1.Proc) *v1.Proc {
	q := p.DeepCopy()
	q.Status = v1.ProcStatus{Phase: v1.PhasePending}
	now := s.now()
	q.Metadata.CreationTimestamp = &now
	q.Metadata.Generation = 1
	q.Metadata.UID = fmt.Sprintf("uid-%d", s.rv+1)
	s.putLocked(q)
	return q.DeepCopy()
}

func (s *Server) create(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, err.Error())
		return
	}
	var head struct {
		Kind string `json:"kind"`
	}
	if json.Unmarshal(b, &head) == nil && head.Kind == v1.KindProcList {
		s.createBatch(w, b)
		return
	}
	p, ok := decodeOne(w, b)
	if !ok {
		return
	}
	if msg := unmatchedPipe([]v1.Proc{*p}); msg != "" {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, msg)
		return
	}
	s.mu.Lock()
	s.creates = append(s.creates, []string{p.Metadata.Name})
	if _, exists := s.procs[p.Metadata.Name]; exists {
		s.mu.Unlock()
		WriteStatus(w, 409, v1.StatusReasonAlreadyExists, fmt.Sprintf("proc %q already exists", p.Metadata.Name))
		return
	}
	q := s.newProcLocked(p)
	s.mu.Unlock()
	writeJSON(w, 201, q)
	if s.OnCreate != nil {
		s.OnCreate(s, q)
	}
}

// createBatch creates the items of a ProcList body, all or nothing, as
// the agent does: unique names, none existing, every pipeRead matched by
// a pipeWrite of the batch.
func (s *Server) createBatch(w http.ResponseWriter, b []byte) {
	procs, err := v1.Decode(b)
	if err != nil {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, err.Error())
		return
	}
	if len(procs) == 0 {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, "the ProcList has no items; send at least one Proc")
		return
	}
	if err := v1.ValidateProcs(procs); err != nil {
		WriteStatus(w, 422, v1.StatusReasonInvalid, err.Error())
		return
	}
	names := make([]string, len(procs))
	for i := range procs {
		names[i] = procs[i].Metadata.Name
	}
	if msg := unmatchedPipe(procs); msg != "" {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, msg)
		return
	}
	s.mu.Lock()
	s.creates = append(s.creates, names)
	for _, n := range names {
		if _, exists := s.procs[n]; exists {
			s.mu.Unlock()
			WriteStatus(w, 409, v1.StatusReasonAlreadyExists, "duplicate proc id: "+n)
			return
		}
	}
	l := v1.ProcList{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProcList}}
	for i := range procs {
		l.Items = append(l.Items, *s.newProcLocked(&procs[i]))
	}
	s.mu.Unlock()
	writeJSON(w, 201, l)
	if s.OnCreate != nil {
		for i := range l.Items {
			s.OnCreate(s, &l.Items[i])
		}
	}
}

// unmatchedPipe is the agent's message for a batch in which a pipeRead
// names no pipeWrite of the batch, or a pipeWrite has no reader; "" when
// every pipe has both ends.
func unmatchedPipe(procs []v1.Proc) string {
	writers := map[string]bool{}
	for i := range procs {
		for _, f := range procs[i].Spec.Fds {
			if f.PipeWrite != nil {
				writers[procs[i].Metadata.Name+" "+string(f.Fd.Canonical())] = false
			}
		}
	}
	for i := range procs {
		for _, f := range procs[i].Spec.Fds {
			if f.PipeRead == nil {
				continue
			}
			k := f.PipeRead.ProcID + " " + string(f.PipeRead.Fd.Canonical())
			if _, ok := writers[k]; !ok {
				return fmt.Sprintf("unmatched read pipe: %s %s", f.PipeRead.ProcID, f.PipeRead.Fd)
			}
			writers[k] = true
		}
	}
	for i := range procs {
		for _, f := range procs[i].Spec.Fds {
			if f.PipeWrite != nil && !writers[procs[i].Metadata.Name+" "+string(f.Fd.Canonical())] {
				n, _ := f.Fd.Number()
				return fmt.Sprintf("unmatched write pipe: %s %d", procs[i].Metadata.Name, n)
			}
		}
	}
	return ""
}

// Applies returns the names of the apply (PUT) requests received so far.
func (s *Server) Applies() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.applies...)
}

// Creates returns the names of each create request received so far (a
// batch's names together), failed ones included.
func (s *Server) Creates() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.creates))
	for i, c := range s.creates {
		out[i] = append([]string(nil), c...)
	}
	return out
}

func (s *Server) apply(w http.ResponseWriter, r *http.Request, name string) {
	p, ok := decodeBody(w, r)
	if !ok {
		return
	}
	if p.Metadata.Name != name {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, "name in body does not match the URL")
		return
	}
	force := r.URL.Query().Get("force") == "true"
	s.mu.Lock()
	s.applies = append(s.applies, name)
	old, exists := s.procs[name]
	if msg := unmatchedPipe([]v1.Proc{*p}); msg != "" && (!exists || force && !reflect.DeepEqual(old.Spec, p.Spec)) {
		s.mu.Unlock()
		WriteStatus(w, 400, v1.StatusReasonBadRequest, msg)
		return
	}
	var res v1.ApplyResult
	var q *v1.Proc
	switch {
	case !exists:
		res, q = v1.ApplyCreated, s.newProcLocked(p)
	case reflect.DeepEqual(old.Spec, p.Spec):
		res, q = v1.ApplyUnchanged, old.DeepCopy()
	case !force:
		s.mu.Unlock()
		WriteStatus(w, 409, v1.StatusReasonConflict, fmt.Sprintf("proc %q: spec is immutable; it changed", name))
		return
	default:
		s.removeLocked(name)
		res, q = v1.ApplyConfigured, s.newProcLocked(p)
	}
	s.mu.Unlock()
	w.Header().Set("X-Procstar-Apply", string(res))
	code := 200
	if res == v1.ApplyCreated {
		code = 201
	}
	writeJSON(w, code, q)
	if res != v1.ApplyUnchanged && s.OnCreate != nil {
		s.OnCreate(s, q)
	}
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	s.mu.Lock()
	s.deletes = append(s.deletes, DeleteCall{Name: name, GracePeriodSeconds: q.Get("gracePeriodSeconds"), Force: q.Get("force") == "true"})
	p, ok := s.procs[name]
	if !ok {
		s.mu.Unlock()
		notFound(w, name)
		return
	}
	p = p.DeepCopy()
	now := s.now()
	p.Metadata.DeletionTimestamp = &now
	s.putLocked(p)
	if !s.KeepOnDelete {
		s.removeLocked(name)
	}
	s.mu.Unlock()
	writeJSON(w, 200, p)
}

func (s *Server) signal(w http.ResponseWriter, r *http.Request, name string) {
	var body struct {
		Signal string `json:"signal"`
		Group  bool   `json:"group"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, "bad body: "+err.Error())
		return
	}
	if _, err := signals.Parse(body.Signal); err != nil {
		WriteStatus(w, 400, v1.StatusReasonBadRequest, err.Error())
		return
	}
	s.mu.Lock()
	p, ok := s.procs[name]
	if !ok {
		s.mu.Unlock()
		notFound(w, name)
		return
	}
	if terminal(p.Status.Phase) {
		// The agent's answer for a proc without a process.
		s.mu.Unlock()
		WriteStatus(w, 409, v1.StatusReasonConflict, "no process")
		return
	}
	c := SignalCall{Name: name, Signal: body.Signal, Group: body.Group}
	s.signals = append(s.signals, c)
	s.mu.Unlock()
	writeJSON(w, 200, map[string]any{})
	if s.OnSignal != nil {
		s.OnSignal(s, c)
	}
}

func terminal(p v1.ProcPhase) bool {
	return p == v1.PhaseSucceeded || p == v1.PhaseFailed || p == v1.PhaseError
}

func (s *Server) log(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	fd := v1.FdName(q.Get("fd"))
	if fd == "" {
		fd = v1.Stdout
	}
	fd = fd.Canonical()
	start, _ := strconv.ParseInt(q.Get("start"), 10, 64)
	stop := int64(-1)
	if v := q.Get("stop"); v != "" {
		stop, _ = strconv.ParseInt(v, 10, 64)
	}
	follow := q.Get("follow") == "true"
	s.mu.Lock()
	p, ok := s.procs[name]
	if !ok {
		s.mu.Unlock()
		notFound(w, name)
		return
	}
	if _, ok := p.Status.Fds[string(fd)]; !ok {
		if _, ok := s.logs[name][string(fd)]; !ok {
			s.mu.Unlock()
			WriteStatus(w, 400, v1.StatusReasonBadRequest, fmt.Sprintf("proc %s has no captured fd %s", name, fd))
			return
		}
	}
	n := int64(len(s.logs[name][string(fd)]))
	s.mu.Unlock()
	if start > n && !follow {
		WriteStatus(w, 416, v1.StatusReasonRangeNotSatisfiable, fmt.Sprintf("start %d is past the end (%d)", start, n))
		return
	}
	var out io.Writer = w
	var zw *gzip.Writer
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		zw = gzip.NewWriter(w)
		out = zw
		defer zw.Close()
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(200)
	fl, _ := w.(http.Flusher)
	pos := start
	for {
		s.mu.Lock()
		data := s.logs[name][string(fd)]
		end := int64(len(data))
		if stop >= 0 && stop < end {
			end = stop
		}
		var chunk []byte
		if pos < end {
			chunk = bytes.Clone(data[pos:end])
		}
		done := true
		if cur, ok := s.procs[name]; ok && follow && !terminal(cur.Status.Phase) {
			done = false
		}
		if stop >= 0 && end >= stop {
			done = true
		}
		ch := s.changed
		s.mu.Unlock()
		if len(chunk) > 0 {
			if _, err := out.Write(chunk); err != nil {
				return
			}
			pos += int64(len(chunk))
			if zw != nil {
				zw.Flush()
			}
			if fl != nil {
				fl.Flush()
			}
			continue
		}
		if done {
			return
		}
		select {
		case <-ch:
		case <-r.Context().Done():
			return
		}
	}
}
