package restapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/wire"
)

// fakeProc is one proc of fakeBackend.
type fakeProc struct {
	proc     v1.Proc
	res      wire.ProcRes
	out      map[int][]byte
	file     map[int]*os.File // output read with ReadAt instead of out
	fileLen  map[int]int64
	complete bool
	running  bool
}

// signalCall records one Signal call.
type signalCall struct {
	name  string
	sig   int
	group bool
}

// fakeBackend is an in-memory Backend with canned results and output and
// a controllable Complete.
type fakeBackend struct {
	mu sync.Mutex // guards every field below
	// procs by name.
	procs map[string]*fakeProc
	// rv is the last resourceVersion; history holds events after minRV.
	rv      int
	minRV   int
	history []v1.WatchEvent
	// watchers holds each watch's selection; unlike the controller, the
	// fake filters on the event's object alone, with no ADDED or DELETED
	// for a proc entering or leaving it.
	watchers map[chan v1.WatchEvent]func(*v1.Proc) bool
	signals  []signalCall
	deletes  []v1.DeleteOptions
	// failCreate, when set, is Create's error.
	failCreate error
	// outputReads counts ReadOutput calls.
	outputReads int
	// filesOpened counts OutputFile calls.
	filesOpened int
}

func newFake() *fakeBackend {
	return &fakeBackend{procs: map[string]*fakeProc{}, watchers: map[chan v1.WatchEvent]func(*v1.Proc) bool{}}
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// testSpec is a spec with a utf-8 stdout capture, a base64 stderr capture
// and a null stdin.
func testSpec() v1.ProcSpec {
	f := false
	return v1.ProcSpec{
		Argv: []string{"/bin/echo", "hi"},
		Fds: []v1.FdSpec{
			{Fd: v1.Stdin, Null: &v1.NullFd{}},
			{Fd: v1.Stdout, Capture: &v1.CaptureFd{Encoding: v1.EncodingUTF8, Attached: &f}},
			{Fd: "2", Capture: &v1.CaptureFd{}},
		},
	}
}

// add puts a proc with output into the fake and records an event.
func (f *fakeBackend) add(name string, labels map[string]string, stdout, stderr string, running bool) {
	p := v1.Proc{Metadata: v1.ObjectMeta{Name: name, Labels: labels}, Spec: testSpec()}
	p.SetDefaults()
	p.Status.Phase = v1.PhaseSucceeded
	if running {
		p.Status.Phase = v1.PhaseRunning
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := &fakeProc{
		proc:     p,
		res:      fakeRes(running),
		out:      map[int][]byte{1: []byte(stdout), 2: []byte(stderr)},
		complete: !running,
		running:  running,
	}
	f.procs[name] = fp
	f.emitLocked(v1.Added, fp)
}

func fakeRes(running bool) wire.ProcRes {
	now := wire.NewTime(t0.Add(1500 * time.Millisecond))
	r := wire.ProcRes{State: wire.StateRunning, Pid: 4242, Times: wire.Times{Start: wire.NewTime(t0), Now: now, Elapsed: 1.5}}
	if !running {
		code := 0
		r.State = wire.StateTerminated
		r.Times.Stop = &now
		r.Status = &wire.Status{Status: 0, ExitCode: &code}
	}
	return r
}

// emitLocked bumps the resourceVersion and sends ev to matching watchers.
func (f *fakeBackend) emitLocked(t v1.WatchEventType, fp *fakeProc) {
	f.rv++
	fp.proc.Metadata.ResourceVersion = strconv.Itoa(f.rv)
	ev := v1.WatchEvent{Type: t, Object: *fp.proc.DeepCopy()}
	f.history = append(f.history, ev)
	for ch, selects := range f.watchers {
		if selects(&ev.Object) {
			select {
			case ch <- ev:
			default:
			}
		}
	}
}

// compact forgets history up to rv, so older resourceVersions are Gone.
func (f *fakeBackend) compact(rv int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.minRV = rv
	f.history = slices.DeleteFunc(f.history, func(e v1.WatchEvent) bool {
		n, _ := strconv.Atoi(e.Object.Metadata.ResourceVersion)
		return n <= rv
	})
}

// appendOutput adds bytes to a proc's fd.
func (f *fakeBackend) appendOutput(name string, fd int, b string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.procs[name]
	fp.out[fd] = append(fp.out[fd], b...)
}

// finish marks a proc complete.
func (f *fakeBackend) finish(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp := f.procs[name]
	fp.complete, fp.running = true, false
	fp.res = fakeRes(false)
	fp.proc.Status.Phase = v1.PhaseSucceeded
	f.emitLocked(v1.Modified, fp)
}

func (f *fakeBackend) get(name string) (*fakeProc, error) {
	fp, ok := f.procs[name]
	if !ok {
		return nil, errdefs.New(errdefs.ErrNotFound, fmt.Sprintf("proc %s not found", name))
	}
	return fp, nil
}

func (f *fakeBackend) Create(_ context.Context, procs []v1.Proc) ([]v1.Proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failCreate != nil {
		return nil, f.failCreate
	}
	for _, p := range procs {
		if _, ok := f.procs[p.Metadata.Name]; ok {
			return nil, errdefs.New(errdefs.ErrAlreadyExists, fmt.Sprintf("proc %s already exists", p.Metadata.Name))
		}
	}
	var out []v1.Proc
	for _, p := range procs {
		p.Metadata.UID = "uid-" + p.Metadata.Name
		p.Status.Phase = v1.PhaseRunning
		fp := &fakeProc{proc: p, res: fakeRes(true), out: map[int][]byte{}, running: true}
		f.procs[p.Metadata.Name] = fp
		f.emitLocked(v1.Added, fp)
		out = append(out, *fp.proc.DeepCopy())
	}
	return out, nil
}

func (f *fakeBackend) Apply(ctx context.Context, p v1.Proc, force bool) (v1.Proc, v1.ApplyResult, error) {
	f.mu.Lock()
	fp, ok := f.procs[p.Metadata.Name]
	f.mu.Unlock()
	if !ok {
		out, err := f.Create(ctx, []v1.Proc{p})
		if err != nil {
			return v1.Proc{}, "", err
		}
		return out[0], v1.ApplyCreated, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if slices.Equal(fp.proc.Spec.Argv, p.Spec.Argv) {
		return *fp.proc.DeepCopy(), v1.ApplyUnchanged, nil
	}
	if !force {
		return v1.Proc{}, "", errdefs.New(errdefs.ErrConflict, fmt.Sprintf("proc %s exists with another spec; the spec is immutable (use force to replace it)", p.Metadata.Name))
	}
	fp.proc.Spec = p.Spec
	f.emitLocked(v1.Modified, fp)
	return *fp.proc.DeepCopy(), v1.ApplyConfigured, nil
}

func (f *fakeBackend) Get(_ context.Context, name string) (v1.Proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp, err := f.get(name)
	if err != nil {
		return v1.Proc{}, err
	}
	return *fp.proc.DeepCopy(), nil
}

func (f *fakeBackend) List(_ context.Context, sel v1.Selector) (v1.ProcList, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := v1.ProcList{Metadata: v1.ListMeta{ResourceVersion: strconv.Itoa(f.rv)}}
	for _, name := range slices.Sorted(maps.Keys(f.procs)) {
		p := f.procs[name].proc
		if sel.Matches(p.Metadata.Labels) {
			l.Items = append(l.Items, *p.DeepCopy())
		}
	}
	return l, nil
}

func (f *fakeBackend) Watch(ctx context.Context, sel v1.Selector, fields v1.FieldSelector, rv string) (<-chan v1.WatchEvent, error) {
	selects := func(p *v1.Proc) bool { return sel.Matches(p.Metadata.Labels) && fields.Matches(p) }
	f.mu.Lock()
	defer f.mu.Unlock()
	var backlog []v1.WatchEvent
	if rv == "" {
		for _, name := range slices.Sorted(maps.Keys(f.procs)) {
			backlog = append(backlog, v1.WatchEvent{Type: v1.Added, Object: *f.procs[name].proc.DeepCopy()})
		}
	} else {
		n, err := strconv.Atoi(rv)
		if err != nil {
			return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("bad resourceVersion %q", rv))
		}
		if n < f.minRV {
			return nil, errdefs.New(errdefs.ErrGone, fmt.Sprintf("resourceVersion %d is too old; the oldest is %d", n, f.minRV))
		}
		for _, e := range f.history {
			if m, _ := strconv.Atoi(e.Object.Metadata.ResourceVersion); m > n {
				backlog = append(backlog, e)
			}
		}
	}
	backlog = slices.DeleteFunc(backlog, func(e v1.WatchEvent) bool { return !selects(&e.Object) })
	ch := make(chan v1.WatchEvent, 100+len(backlog))
	for _, e := range backlog {
		ch <- e
	}
	f.watchers[ch] = selects
	go func() {
		<-ctx.Done()
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.watchers, ch)
		close(ch)
	}()
	return ch, nil
}

func (f *fakeBackend) Delete(_ context.Context, name string, opts v1.DeleteOptions) (v1.Proc, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp, err := f.get(name)
	if err != nil {
		return v1.Proc{}, err
	}
	f.deletes = append(f.deletes, opts)
	if fp.running && opts.RefuseRunning {
		return v1.Proc{}, errdefs.New(errdefs.ErrFailedPrecondition, "process running: "+name)
	}
	delete(f.procs, name)
	f.emitLocked(v1.Deleted, fp)
	return *fp.proc.DeepCopy(), nil
}

func (f *fakeBackend) Signal(_ context.Context, name string, sig int, group bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp, err := f.get(name)
	if err != nil {
		return err
	}
	if sig < 0 || sig > 64 {
		return errdefs.New(errdefs.ErrInvalidArgument, "EINVAL: Invalid argument")
	}
	if !fp.running {
		return errdefs.New(errdefs.ErrFailedPrecondition, "no process")
	}
	f.signals = append(f.signals, signalCall{name, sig, group})
	return nil
}

func (f *fakeBackend) Result(_ context.Context, name string) (wire.ProcRes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp, err := f.get(name)
	if err != nil {
		return wire.ProcRes{}, err
	}
	return fp.res, nil
}

func (f *fakeBackend) Results(context.Context) (map[string]wire.ProcRes, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	m := map[string]wire.ProcRes{}
	for name, fp := range f.procs {
		m[name] = fp.res
	}
	return m, nil
}

func (f *fakeBackend) ReadOutput(_ context.Context, name string, fd int, start int64, stop *int64) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outputReads++
	fp, err := f.get(name)
	if err != nil {
		return nil, err
	}
	if file := fp.file[fd]; file != nil {
		end := fp.fileLen[fd]
		if stop != nil {
			end = min(end, *stop)
		}
		if start >= end {
			return nil, nil
		}
		buf := make([]byte, end-start)
		n, err := file.ReadAt(buf, start)
		if err != nil && err != io.EOF {
			return nil, err
		}
		return buf[:n], nil
	}
	b, ok := fp.out[fd]
	if !ok {
		return nil, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("no fd: %d", fd))
	}
	end := int64(len(b))
	if stop != nil {
		end = min(end, *stop)
	}
	if start >= end {
		return nil, nil
	}
	return slices.Clone(b[start:end]), nil
}

func (f *fakeBackend) OutputInfo(_ context.Context, name string, fd int) (v1.OutputInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp, err := f.get(name)
	if err != nil {
		return v1.OutputInfo{}, err
	}
	if _, ok := fp.file[fd]; ok {
		return v1.OutputInfo{Length: fp.fileLen[fd], Complete: true}, nil
	}
	b, ok := fp.out[fd]
	if !ok {
		return v1.OutputInfo{}, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("no fd: %d", fd))
	}
	return v1.OutputInfo{Length: int64(len(b)), Encoding: v1.EncodingUTF8, Complete: fp.complete}, nil
}

// fakeAt is fakeBackend with the OutputReaderAt extension.
type fakeAt struct{ *fakeBackend }

func (f fakeAt) ReadOutputAt(_ context.Context, name string, fd int, p []byte, off int64) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outputReads++
	fp, err := f.get(name)
	if err != nil {
		return 0, err
	}
	if file := fp.file[fd]; file != nil {
		end := fp.fileLen[fd]
		if off >= end {
			return 0, nil
		}
		n, err := file.ReadAt(p[:min(int64(len(p)), end-off)], off)
		if err == io.EOF {
			err = nil
		}
		return n, err
	}
	b, ok := fp.out[fd]
	if !ok {
		return 0, errdefs.New(errdefs.ErrInvalidArgument, fmt.Sprintf("no fd: %d", fd))
	}
	if off >= int64(len(b)) {
		return 0, nil
	}
	return copy(p, b[off:]), nil
}

// ---- HTTP helpers ----

// testServer serves a fake with opts.
func testServer(t testing.TB, fb *fakeBackend, opts Options) *httptest.Server {
	t.Helper()
	return testServerFor(t, fb, opts)
}

// testServerFor serves any Backend with opts.
func testServerFor(t testing.TB, b Backend, opts Options) *httptest.Server {
	t.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 5 * time.Millisecond
	}
	srv := httptest.NewServer(NewHandler(b, opts))
	t.Cleanup(srv.Close)
	return srv
}

// response is a finished HTTP exchange.
type response struct {
	code   int
	header http.Header
	body   string
}

// do sends a request with optional body and headers ("Name: value").
func do(t testing.TB, srv *httptest.Server, method, path, body string, headers ...string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the path exactly as written (percent-encoding included).
	req.URL.Opaque = "//" + req.URL.Host + strings.SplitN(path, "?", 2)[0]
	for _, h := range headers {
		if h == "" {
			continue
		}
		k, v, _ := strings.Cut(h, ":")
		req.Header.Set(k, strings.TrimSpace(v))
	}
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{code: resp.StatusCode, header: resp.Header, body: string(b)}
}

// fakeFiler is fakeAt with the OutputFiler extension, for file-backed
// outputs.
type fakeFiler struct{ fakeAt }

func (f fakeFiler) OutputFile(_ context.Context, name string, fd int) (*os.File, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fp, err := f.get(name)
	if err != nil {
		return nil, err
	}
	file := fp.file[fd]
	if file == nil {
		return nil, errors.New("not a file")
	}
	f.filesOpened++
	return os.Open(file.Name())
}
