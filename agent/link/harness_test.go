package link

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/controller"
	"procstar.dev/procstar/controller/controllertest"
	"procstar.dev/procstar/wire"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newController returns a running controller over a real runtime.
func newController(t testing.TB) *controller.Controller {
	t.Helper()
	return controllertest.New(t, controller.Options{})
}

// fakeShutdown is a ShutdownSource the test moves.
type fakeShutdown struct {
	mu      sync.Mutex // guards state and changed
	state   string
	changed chan struct{}
}

func newFakeShutdown() *fakeShutdown {
	return &fakeShutdown{state: StateActive, changed: make(chan struct{})}
}

func (f *fakeShutdown) ShutdownState() (string, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state, f.changed
}

func (f *fakeShutdown) set(st string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = st
	close(f.changed)
	f.changed = make(chan struct{})
}

// msg is a message as the server sees it: a generic map.
type msg = map[string]any

// testServer is a minimal control plane: it upgrades every request,
// answers with the extensions it accepts, and hands each connection to
// the test.
type testServer struct {
	t      testing.TB
	srv    *httptest.Server
	accept string // Procstar-Extensions response header; "" sends none
	conns  chan *serverConn
}

func newTestServer(t testing.TB, accept string) *testServer {
	s := &testServer{t: t, accept: accept, conns: make(chan *serverConn, 16)}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

// newTLSTestServer is newTestServer over TLS, with httptest's
// certificate (for 127.0.0.1 and example.com).
func newTLSTestServer(t testing.TB) *testServer {
	s := &testServer{t: t, conns: make(chan *serverConn, 16)}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

func (s *testServer) url() string {
	if u, ok := strings.CutPrefix(s.srv.URL, "https://"); ok {
		return "wss://" + u + "/"
	}
	return "ws://" + strings.TrimPrefix(s.srv.URL, "http://") + "/"
}

func (s *testServer) serve(w http.ResponseWriter, r *http.Request) {
	hdr := http.Header{}
	if s.accept != "" {
		hdr.Set(wire.ExtensionsHeader, s.accept)
	}
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, hdr)
	if err != nil {
		return
	}
	c := &serverConn{t: s.t, ws: ws, header: r.Header.Clone(), frames: make(chan frame, 4096), closed: make(chan struct{})}
	s.t.Cleanup(func() { c.ws.Close(); c.read(); <-c.closed })
	s.conns <- c
}

// next returns the next connection.
func (s *testServer) next(t testing.TB) *serverConn {
	t.Helper()
	select {
	case c := <-s.conns:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection from the agent")
	}
	return nil
}

// none checks that no connection arrives within d.
func (s *testServer) none(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-s.conns:
		t.Fatal("unexpected connection from the agent")
	case <-time.After(d):
	}
}

type frame struct {
	typ  int
	data []byte
}

// serverConn is one agent connection on the server side.
type serverConn struct {
	t      testing.TB
	ws     *websocket.Conn
	header http.Header
	frames chan frame
	closed chan struct{}
	start  sync.Once
	// timeout bounds each recv; 0 is 10 s.
	timeout time.Duration
}

// read starts reading frames (and so answering pings).
func (c *serverConn) read() {
	c.start.Do(func() {
		go func() {
			defer close(c.closed)
			for {
				typ, data, err := c.ws.ReadMessage()
				if err != nil {
					close(c.frames)
					return
				}
				c.frames <- frame{typ, data}
			}
		}()
	})
}

// recv returns the next message.
func (c *serverConn) recv(t testing.TB) msg {
	t.Helper()
	c.read()
	select {
	case f, ok := <-c.frames:
		if !ok {
			t.Fatal("connection closed")
		}
		if f.typ != websocket.BinaryMessage {
			t.Fatalf("frame type %d, want binary", f.typ)
		}
		var m msg
		if err := msgpack.Unmarshal(f.data, &m); err != nil {
			t.Fatalf("decoding %x: %v", f.data, err)
		}
		return m
	case <-time.After(cmp.Or(c.timeout, 10*time.Second)):
		t.Fatal("no message from the agent")
	}
	return nil
}

// recvType returns the next message of type typ, skipping others of
// the types in skip.
func (c *serverConn) recvType(t testing.TB, typ string, skip ...string) msg {
	t.Helper()
	for {
		m := c.recv(t)
		if m["type"] == typ {
			return m
		}
		ok := false
		for _, s := range skip {
			ok = ok || m["type"] == s
		}
		if !ok {
			t.Fatalf("got %v, want a %s", brief(m), typ)
		}
	}
}

// quiet checks that no message arrives within d.
func (c *serverConn) quiet(t testing.TB, d time.Duration) {
	t.Helper()
	c.read()
	select {
	case f, ok := <-c.frames:
		if ok {
			var m msg
			_ = msgpack.Unmarshal(f.data, &m)
			t.Fatalf("unexpected message %v", brief(m))
		}
	case <-time.After(d):
	}
}

// drain discards what arrives within d.
func (c *serverConn) drain(d time.Duration) {
	c.read()
	timeout := time.After(d)
	for {
		select {
		case <-c.frames:
		case <-timeout:
			return
		}
	}
}

// waitClosed waits for the agent to close the connection.
func (c *serverConn) waitClosed(t testing.TB) {
	t.Helper()
	c.read()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("connection not closed")
		}
	}
}

func (c *serverConn) send(t testing.TB, m msg) {
	t.Helper()
	data, err := msgpack.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	c.sendRaw(t, websocket.BinaryMessage, data)
}

func (c *serverConn) sendRaw(t testing.TB, typ int, data []byte) {
	t.Helper()
	if err := c.ws.WriteMessage(typ, data); err != nil {
		t.Fatal(err)
	}
}

// register reads Register and answers Registered.
func (c *serverConn) register(t testing.TB) msg {
	t.Helper()
	m := c.recv(t)
	if m["type"] != "Register" {
		t.Fatalf("first message %v, want Register", brief(m))
	}
	c.send(t, msg{"type": "Registered"})
	return m
}

// brief prints a message with long data cut.
func brief(m msg) string {
	out := map[string]any{}
	for k, v := range m {
		if b, ok := v.([]byte); ok && len(b) > 64 {
			v = fmt.Sprintf("<%d bytes>", len(b))
		}
		out[k] = v
	}
	return fmt.Sprint(out)
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return sortedStrings(out)
}

func sortedStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

func asInt(v any) int64 {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return int64(rv.Uint())
	}
	return -1 << 62
}

// agentRun is a link running against a test server.
type agentRun struct {
	cfg      Config
	ctl      *controller.Controller
	shutdown *fakeShutdown
	link     *Link
	cancel   context.CancelFunc
	done     chan error
}

// startAgent runs a link to srv with cfg adjusted by adjust.
func startAgent(t testing.TB, srv *testServer, ctl *controller.Controller, adjust func(*Config)) *agentRun {
	t.Helper()
	if ctl == nil {
		ctl = newController(t)
	}
	user := "tester"
	a := &agentRun{ctl: ctl, shutdown: newFakeShutdown(), done: make(chan error, 1)}
	a.cfg = Config{
		URL:    srv.url(),
		Conn:   wire.ConnInfo{ConnID: "conn-1", GroupID: "default"},
		Proc:   wire.ProcInfo{Pid: 42, Ppid: 1, UID: 1000, EUID: 1000, Username: &user, GID: 100, EGID: 100, Groupname: nil, Hostname: "host1"},
		Token:  "secret",
		Labels: map[string]string{"disk": "ssd"},
		Resources: &wire.AgentResources{Backend: "cgroup", Detail: "/sys/fs/cgroup/procstar.slice",
			Controllers: []string{"cpu", "memory"}, BestEffort: true, PerfCounters: "available"},
		Shutdown:             a.shutdown,
		ConnectIntervalStart: 10 * time.Millisecond,
		ConnectIntervalMax:   50 * time.Millisecond,
		StatusInterval:       100 * time.Millisecond,
	}
	if adjust != nil {
		adjust(&a.cfg)
	}
	l, err := New(a.cfg, ctl)
	if err != nil {
		t.Fatal(err)
	}
	a.link = l
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	go func() { a.done <- l.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			buf := make([]byte, 1<<20)
			t.Errorf("link did not stop:\n%s", buf[:goruntime.Stack(buf, true)])
		}
	})
	return a
}

// runLink runs a link to srv over backend b, with only what the protocol
// needs configured, until the test ends, and returns its connection.
func runLink(t testing.TB, srv *testServer, b Backend) *serverConn {
	t.Helper()
	l, err := New(Config{URL: srv.url(), Conn: wire.ConnInfo{ConnID: "c", GroupID: "default"}, Shutdown: newFakeShutdown()}, b)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return srv.next(t)
}

// deleteExited deletes name as procstar's delete does, retrying until its
// process has exited.
func deleteExited(t testing.TB, ctl *controller.Controller, name string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := ctl.Delete(context.Background(), name, v1.DeleteOptions{RefuseRunning: true})
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wait waits for Run to return and returns its error.
func (a *agentRun) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-a.done:
		a.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("link still running")
	}
	return nil
}

// spec returns a procstar spec map running sh -c script with stdout
// captured (utf-8, tempfile).
func spec(script string) msg {
	return msg{
		"argv": []any{"/bin/sh", "-c", script},
		"fds": []any{
			[]any{"stdout", msg{"capture": msg{"mode": "tempfile", "encoding": "utf-8", "attached": false}}},
			[]any{"stderr", msg{"null": msg{}}},
		},
	}
}

// createProc creates a proc directly in the controller.
func createProc(t testing.TB, ctl *controller.Controller, name, script string) {
	t.Helper()
	p := v1.Proc{Metadata: v1.ObjectMeta{Name: name}, Spec: v1.ProcSpec{Argv: []string{"/bin/sh", "-c", script}}}
	p.SetDefaults()
	if _, err := ctl.Create(context.Background(), []v1.Proc{p}); err != nil {
		t.Fatal(err)
	}
}
