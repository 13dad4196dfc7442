package fakecontrol

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/goleak"

	"procstar.dev/procstar/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// scripted is a hand-driven agent: a bare gorilla/websocket client.
type scripted struct {
	t    *testing.T
	ws   *websocket.Conn
	resp *http.Response
}

func newServer(t *testing.T, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func dial(t *testing.T, s *Server, hdr http.Header) *scripted {
	t.Helper()
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	if pem := s.CertPEM(); pem != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		d.TLSClientConfig = &tls.Config{RootCAs: pool}
	}
	ws, resp, err := d.Dial(s.URL(), hdr)
	if err != nil {
		t.Fatalf("dial %s: %v", s.URL(), err)
	}
	a := &scripted{t: t, ws: ws, resp: resp}
	t.Cleanup(func() { ws.Close() })
	return a
}

func (a *scripted) sendMap(m map[string]any) {
	a.t.Helper()
	b, err := msgpack.Marshal(m)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.ws.WriteMessage(websocket.BinaryMessage, b); err != nil {
		a.t.Fatalf("send: %v", err)
	}
}

// read returns the next message, or fails.
func (a *scripted) read() map[string]any {
	a.t.Helper()
	m, err := a.tryRead(5 * time.Second)
	if err != nil {
		a.t.Fatalf("read: %v", err)
	}
	return m
}

func (a *scripted) tryRead(d time.Duration) (map[string]any, error) {
	_ = a.ws.SetReadDeadline(time.Now().Add(d))
	mt, b, err := a.ws.ReadMessage()
	if err != nil {
		return nil, err
	}
	if mt != websocket.BinaryMessage {
		return nil, errors.New("text frame from server")
	}
	return decodeMap(b)
}

// expectClosed waits for the server to close the socket.
func (a *scripted) expectClosed() error {
	a.t.Helper()
	for {
		_, err := a.tryRead(5 * time.Second)
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) || strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "reset") {
				return err
			}
			a.t.Fatalf("expected the server to close, got %v", err)
		}
	}
}

func registerMsg(connID, group, token string, procIDs []string) map[string]any {
	var ids any
	if procIDs != nil {
		l := make([]any, len(procIDs))
		for i, id := range procIDs {
			l[i] = id
		}
		ids = l
	}
	return map[string]any{
		"type":           "Register",
		"conn":           map[string]any{"conn_id": connID, "group_id": group, "restricted_exe": nil},
		"proc":           map[string]any{"pid": 1, "ppid": 0, "uid": 0, "euid": 0, "username": "root", "gid": 0, "egid": 0, "groupname": nil, "hostname": "h"},
		"proc_ids":       ids,
		"access_token":   token,
		"shutdown_state": "active",
	}
}

// register dials and registers, and checks Registered comes back.
func register(t *testing.T, s *Server, connID, group string, procIDs []string) *scripted {
	t.Helper()
	a := dial(t, s, nil)
	a.sendMap(registerMsg(connID, group, s.opts.Token, procIDs))
	if m := a.read(); m["type"] != "Registered" || len(m) != 1 {
		t.Fatalf("got %v, want Registered", m)
	}
	if _, err := s.WaitConn(ctxT(t), connID); err != nil {
		t.Fatal(err)
	}
	return a
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func result(procID, state string) map[string]any {
	return map[string]any{"type": "ProcResult", "proc_id": procID, "res": map[string]any{"state": state, "errors": []any{}, "pid": 7}}
}

var trueSpec = wire.ProcSpec{Argv: []string{"/bin/true"}}

// startVia starts procID through the server while a answers with a
// running ProcResult.
func startVia(t *testing.T, s *Server, a *scripted, group, procID string) *Process {
	t.Helper()
	type ret struct {
		p   *Process
		err error
	}
	ch := make(chan ret, 1)
	go func() {
		p, err := s.Start(ctxT(t), group, procID, trueSpec)
		ch <- ret{p, err}
	}()
	m := a.read()
	if m["type"] != "ProcStartRequest" {
		t.Fatalf("got %v, want ProcStartRequest", m)
	}
	spec := m["specs"].(map[string]any)[procID].(map[string]any)
	if argv := spec["argv"].([]any); len(argv) != 1 || argv[0] != "/bin/true" {
		t.Fatalf("spec argv = %v", argv)
	}
	a.sendMap(result(procID, "running"))
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.p.First()["state"] != "running" {
		t.Fatalf("first = %v", r.p.First())
	}
	return r.p
}

func TestStartAndRequests(t *testing.T) {
	s := newServer(t, Options{Token: "tok"})
	a := register(t, s, "c1", "default", []string{})
	p := startVia(t, s, a, "default", "p1")
	if p.ConnID() != "c1" {
		t.Errorf("conn = %s", p.ConnID())
	}
	ctx := ctxT(t)
	stop := int64(4)
	tests := []struct {
		name string
		do   func() error
		want map[string]any
	}{
		{"result", p.RequestResult, map[string]any{"type": "ProcResultRequest", "proc_id": "p1"}},
		{"signal", func() error { return p.Signal(15) }, map[string]any{"type": "ProcSignalRequest", "proc_id": "p1", "signum": int64(15)}},
		{"fd data", func() error { return p.RequestFdData("stdout", 1, &stop) },
			map[string]any{"type": "ProcFdDataRequest", "proc_id": "p1", "fd": "stdout", "start": int64(1), "stop": int64(4)}},
		{"fd data to end", func() error { return p.RequestFdData("stderr", 0, nil) },
			map[string]any{"type": "ProcFdDataRequest", "proc_id": "p1", "fd": "stderr", "start": int64(0), "stop": nil}},
		{"delete", p.RequestDelete, map[string]any{"type": "ProcDeleteRequest", "proc_id": "p1"}},
		{"list", func() error { return s.Send("c1", "ProcidListRequest", nil) }, map[string]any{"type": "ProcidListRequest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.do(); err != nil {
				t.Fatal(err)
			}
			got := a.read()
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %#v, want %#v", k, got[k], v)
				}
			}
		})
	}

	// Answers route to the process.
	a.sendMap(map[string]any{"type": "ProcFdData", "proc_id": "p1", "fd": "stdout", "start": 1, "stop": 4, "encoding": "utf-8", "data": []byte("abc")})
	u, err := p.Next(ctx)
	if err != nil || u.Kind != UpdateFdData || string(u.FdData.Data) != "abc" || u.FdData.Stop != 4 || *u.FdData.Encoding != "utf-8" {
		t.Fatalf("fd data update = %+v, %v", u, err)
	}
	a.sendMap(result("p1", "terminated"))
	if res, err := p.WaitState(ctx, "terminated"); err != nil || res["pid"] != int64(7) {
		t.Fatalf("WaitState = %v, %v", res, err)
	}
	a.sendMap(map[string]any{"type": "ProcDelete", "proc_id": "p1"})
	if u, _ := p.Next(ctx); u.Kind != UpdateDelete || !errors.Is(u.Error(), ErrDeleted) {
		t.Fatalf("update = %+v", u)
	}
	if _, ok := s.Process("p1"); ok {
		t.Error("p1 still in the table after ProcDelete")
	}
	// ProcidList answers and adopts.
	go func() {
		m := a.read()
		if m["type"] == "ProcidListRequest" {
			a.sendMap(map[string]any{"type": "ProcidList", "proc_ids": []any{"q1", "q2"}})
		}
	}()
	ids, err := s.ProcidList(ctx, "c1")
	if err != nil || len(ids) != 2 || ids[0] != "q1" {
		t.Fatalf("ProcidList = %v, %v", ids, err)
	}
	if got := s.ProcIDs(); len(got) != 2 {
		t.Errorf("ProcIDs = %v", got)
	}
	if v := s.Violations(); len(v) != 0 {
		t.Errorf("violations: %v", v)
	}
}

func TestStrictFields(t *testing.T) {
	reg := func(mod func(m map[string]any)) map[string]any {
		m := registerMsg("c1", "default", "", nil)
		mod(m)
		return m
	}
	tests := []struct {
		name      string
		first     map[string]any // replaces Register when set
		raw       []byte         // sent after registering, as is
		text      bool
		msg       map[string]any // sent after registering
		wantClose bool
	}{
		{name: "register without token", first: reg(func(m map[string]any) { delete(m, "access_token") }), wantClose: true},
		{name: "register without shutdown_state", first: reg(func(m map[string]any) { delete(m, "shutdown_state") }), wantClose: true},
		{name: "register bad shutdown_state", first: reg(func(m map[string]any) { m["shutdown_state"] = "Active" }), wantClose: true},
		{name: "register conn extra key", first: reg(func(m map[string]any) { m["conn"].(map[string]any)["x"] = 1 }), wantClose: true},
		{name: "register proc missing key", first: reg(func(m map[string]any) { delete(m["proc"].(map[string]any), "egid") }), wantClose: true},
		{name: "register proc_ids not strings", first: reg(func(m map[string]any) { m["proc_ids"] = []any{1} }), wantClose: true},
		{name: "first message not Register", first: map[string]any{"type": "ProcidList", "proc_ids": []any{}}, wantClose: true},
		{name: "register resources not a map", first: reg(func(m map[string]any) { m["resources"] = "cgroup" }), wantClose: true},
		{name: "register resources nil", first: reg(func(m map[string]any) { m["resources"] = nil }), wantClose: true},
		{name: "register resources extra key", first: reg(withResources(func(r map[string]any) { r["cpus"] = 4 })), wantClose: true},
		{name: "register resources missing key", first: reg(withResources(func(r map[string]any) { delete(r, "perf_counters") })), wantClose: true},
		{name: "register resources backend int", first: reg(withResources(func(r map[string]any) { r["backend"] = 1 })), wantClose: true},
		{name: "register resources controllers nil", first: reg(withResources(func(r map[string]any) { r["controllers"] = nil })), wantClose: true},
		{name: "register resources controllers ints", first: reg(withResources(func(r map[string]any) { r["controllers"] = []any{1} })), wantClose: true},
		{name: "register resources best_effort string", first: reg(withResources(func(r map[string]any) { r["best_effort"] = "yes" })), wantClose: true},
		{name: "register resources JSON names", first: reg(withResources(func(r map[string]any) {
			r["bestEffort"], r["perfCounters"] = r["best_effort"], r["perf_counters"]
			delete(r, "best_effort")
			delete(r, "perf_counters")
		})), wantClose: true},
		{name: "register extra top-level key", first: reg(func(m map[string]any) { m["future"] = true })},
		{name: "register without proc_ids", first: reg(func(m map[string]any) { delete(m, "proc_ids") })},
		{name: "text frame", text: true, wantClose: true},
		{name: "not msgpack", raw: []byte{0xc1}, wantClose: true},
		{name: "not a map", raw: []byte{0x93, 1, 2, 3}, wantClose: true},
		{name: "trailing bytes", raw: append(mustPack(map[string]any{"type": "ProcUnknown", "proc_id": "x"}), 0), wantClose: true},
		{name: "no type", msg: map[string]any{"proc_id": "x"}, wantClose: true},
		{name: "unknown type", msg: map[string]any{"type": "Bogus"}, wantClose: true},
		{name: "result extra key", msg: map[string]any{"type": "ProcResult", "proc_id": "x", "res": map[string]any{}, "extra": 1}, wantClose: true},
		{name: "result missing res", msg: map[string]any{"type": "ProcResult", "proc_id": "x"}, wantClose: true},
		{name: "fd data as str", msg: map[string]any{"type": "ProcFdData", "proc_id": "x", "fd": "stdout", "start": 0, "stop": 1, "encoding": nil, "data": "a"}, wantClose: true},
		{name: "fd data missing encoding", msg: map[string]any{"type": "ProcFdData", "proc_id": "x", "fd": "stdout", "start": 0, "stop": 1, "data": []byte("a")}, wantClose: true},
		{name: "request error extra", msg: map[string]any{"type": "RequestError", "msg": map[string]any{"type": "X"}, "err": "e", "proc_id": "x"}, wantClose: true},
		{name: "list nil", msg: map[string]any{"type": "ProcidList", "proc_ids": nil}, wantClose: true},
		{name: "shutdown extra key", msg: map[string]any{"type": "ShutDown", "shutdown_state": "idling", "extra": 1}},
		{name: "shutdown bad state", msg: map[string]any{"type": "ShutDown", "shutdown_state": "gone"}, wantClose: true},
		{name: "valid unknown", msg: map[string]any{"type": "ProcUnknown", "proc_id": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{})
			a := dial(t, s, nil)
			first := tt.first
			if first == nil {
				first = registerMsg("c1", "default", "", nil)
			}
			a.sendMap(first)
			if tt.first == nil {
				if m := a.read(); m["type"] != "Registered" {
					t.Fatalf("got %v", m)
				}
				switch {
				case tt.text:
					_ = a.ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ProcidList"}`))
				case tt.raw != nil:
					_ = a.ws.WriteMessage(websocket.BinaryMessage, tt.raw)
				default:
					a.sendMap(tt.msg)
				}
			}
			if tt.wantClose {
				a.expectClosed()
				v := s.Violations()
				if len(v) != 1 || !errors.Is(v[0], ErrProtocol) {
					t.Fatalf("violations = %v", v)
				}
				return
			}
			if tt.first != nil {
				if m := a.read(); m["type"] != "Registered" {
					t.Fatalf("got %v", m)
				}
			}
			// The connection stays up: a ProcidList round trip works.
			if _, err := s.WaitConn(ctxT(t), "c1"); err != nil {
				t.Fatal(err)
			}
			go func() {
				if m, err := a.tryRead(5 * time.Second); err == nil && m["type"] == "ProcidListRequest" {
					a.sendMap(map[string]any{"type": "ProcidList", "proc_ids": []any{}})
				}
			}()
			if _, err := s.ProcidList(ctxT(t), "c1"); err != nil {
				t.Fatal(err)
			}
			if v := s.Violations(); len(v) != 0 {
				t.Fatalf("violations = %v", v)
			}
		})
	}
}

// validResources is a valid Register.resources map.
func validResources() map[string]any {
	return map[string]any{"backend": "cgroup", "detail": "/sys/fs/cgroup/procstar", "controllers": []any{"cpu", "memory"},
		"best_effort": true, "perf_counters": "available"}
}

// withResources sets a Register's resources to a valid map changed by
// edit.
func withResources(edit func(r map[string]any)) func(m map[string]any) {
	return func(m map[string]any) {
		r := validResources()
		edit(r)
		m["resources"] = r
	}
}

func mustPack(m map[string]any) []byte {
	b, err := msgpack.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func TestWrongToken(t *testing.T) {
	s := newServer(t, Options{Token: "right"})
	sub := s.Subscribe()
	defer sub.Close()
	a := dial(t, s, nil)
	a.sendMap(registerMsg("c1", "default", "wrong", nil))
	err := a.expectClosed()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Text != "permission denied" {
		t.Fatalf("close = %v, want permission denied", err)
	}
	e, err := sub.Wait(ctxT(t), EventDenied)
	if err != nil || e.ConnID != "c1" || !errors.Is(e.Err, ErrPermissionDenied) {
		t.Fatalf("event = %+v, %v", e, err)
	}
	if _, ok := s.Conn("c1"); ok {
		t.Error("a denied conn is tracked")
	}
}

func TestRegisterTimeout(t *testing.T) {
	s := newServer(t, Options{RegisterTimeout: 100 * time.Millisecond})
	a := dial(t, s, nil)
	start := time.Now()
	a.expectClosed()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
}

func TestReconnectReconciliation(t *testing.T) {
	s := newServer(t, Options{})
	sub := s.Subscribe()
	defer sub.Close()
	a := register(t, s, "c1", "default", []string{})
	pa := startVia(t, s, a, "default", "a")
	pb := startVia(t, s, a, "default", "b")
	a2 := register(t, s, "c1", "default", []string{"a", "x"})
	// The old socket is closed.
	a.expectClosed()
	// a is shared: the server asks for its result.
	if m := a2.read(); m["type"] != "ProcResultRequest" || m["proc_id"] != "a" {
		t.Fatalf("got %v", m)
	}
	ctx := ctxT(t)
	if u, err := pb.Next(ctx); err != nil || u.Kind != UpdateUnknown {
		t.Fatalf("b update = %+v, %v", u, err)
	}
	if _, ok := s.Process("x"); !ok {
		t.Error("x was not adopted")
	}
	if _, ok := s.Process("b"); ok {
		t.Error("b is still known")
	}
	a2.sendMap(result("a", "terminated"))
	if res, err := pa.NextResult(ctx); err != nil || res["state"] != "terminated" {
		t.Fatalf("a = %v, %v", res, err)
	}
	c, _ := s.Conn("c1")
	if c.NumConnections != 2 || !c.Open {
		t.Errorf("conn = %+v", c)
	}
	for _, k := range []EventKind{EventAdd, EventReconnect} {
		if _, err := sub.Wait(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	// A Register without proc_ids skips reconciliation.
	register(t, s, "c1", "default", nil)
	if _, ok := s.Process("x"); !ok {
		t.Error("x dropped by a Register without proc_ids")
	}
}

func TestGroupChangeRejected(t *testing.T) {
	s := newServer(t, Options{})
	sub := s.Subscribe()
	defer sub.Close()
	a := register(t, s, "c1", "g1", []string{})
	a.ws.Close()
	if _, err := s.WaitFor(ctxT(t), "c1", func(c Conn, ok bool) bool { return ok && !c.Open }); err != nil {
		t.Fatal(err)
	}
	b := dial(t, s, nil)
	b.sendMap(registerMsg("c1", "g2", "", []string{}))
	if m := b.read(); m["type"] != "Registered" {
		t.Fatalf("got %v", m)
	}
	b.expectClosed()
	if e, err := sub.Wait(ctxT(t), EventRejected); err != nil || !errors.Is(e.Err, ErrGroupChanged) {
		t.Fatalf("event = %+v, %v", e, err)
	}
	if c, _ := s.Conn("c1"); c.GroupID != "g1" || c.Open {
		t.Errorf("conn = %+v", c)
	}
}

func TestReconnectTimeout(t *testing.T) {
	s := newServer(t, Options{ReconnectTimeout: 50 * time.Millisecond})
	a := register(t, s, "c1", "default", []string{})
	p := startVia(t, s, a, "default", "p")
	a.ws.Close()
	u, err := p.Next(ctxT(t))
	if err != nil || u.Kind != UpdateConnectionTimeout || !errors.Is(u.Error(), ErrConnectionTimeout) {
		t.Fatalf("update = %+v, %v", u, err)
	}
	if _, ok := s.Conn("c1"); ok {
		t.Error("conn still tracked after the timeout")
	}

	// A reconnect in time cancels the timer.
	b := register(t, s, "c2", "default", []string{})
	q := startVia(t, s, b, "default", "q")
	b.ws.Close()
	register(t, s, "c2", "default", []string{"q"})
	time.Sleep(150 * time.Millisecond)
	if q.Pending() != 0 {
		u, _ := q.Next(ctxT(t))
		t.Fatalf("q got %v after a reconnect in time", u.Kind)
	}
}

func TestShutDownDone(t *testing.T) {
	s := newServer(t, Options{ReconnectTimeout: time.Hour})
	sub := s.Subscribe()
	defer sub.Close()
	a := register(t, s, "c1", "default", []string{})
	ctx := ctxT(t)
	a.sendMap(map[string]any{"type": "ShutDown", "shutdown_state": "idling"})
	if e, err := sub.Wait(ctx, EventShutDown); err != nil || e.State != "idling" {
		t.Fatalf("event = %+v, %v", e, err)
	}
	// An idling conn gets no work.
	sctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.Start(sctx, "default", "p", trueSpec); !errors.Is(err, ErrNoOpenConnection) {
		t.Fatalf("start on idling conn: %v", err)
	}
	a.sendMap(map[string]any{"type": "ShutDown", "shutdown_state": "done"})
	a.ws.Close()
	if _, err := sub.Wait(ctx, EventRemove); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Conn("c1"); ok {
		t.Error("done conn still tracked")
	}
}

func TestChooseConn(t *testing.T) {
	s := newServer(t, Options{})
	ctx := ctxT(t)
	agents := map[string]*scripted{}
	for _, id := range []string{"c1", "c2", "c3"} {
		agents[id] = register(t, s, id, "g", []string{})
	}
	agents["c3"].sendMap(map[string]any{"type": "ShutDown", "shutdown_state": "idling"})
	if _, err := s.WaitFor(ctx, "c3", func(c Conn, ok bool) bool { return c.ShutdownState == "idling" }); err != nil {
		t.Fatal(err)
	}
	register(t, s, "other", "h", []string{})
	counts := map[string]int{}
	for i := 0; i < 40; i++ {
		id, err := s.choose(ctx, "g")
		if err != nil {
			t.Fatal(err)
		}
		counts[id]++
	}
	if counts["c1"] == 0 || counts["c2"] == 0 || counts["c3"] != 0 || counts["other"] != 0 {
		t.Errorf("choices = %v", counts)
	}
}

func TestStartErrors(t *testing.T) {
	s := newServer(t, Options{})
	a := register(t, s, "c1", "default", []string{})
	ctx := ctxT(t)
	type ret struct {
		ps  []*Process
		err error
	}
	tests := []struct {
		name   string
		answer func(m map[string]any)
		want   func(error) bool
	}{
		{"request error", func(m map[string]any) {
			a.sendMap(map[string]any{"type": "RequestError", "msg": m, "err": "bad spec"})
		}, func(err error) bool {
			var ae *AgentError
			return errors.As(err, &ae) && ae.Err == "bad spec"
		}},
		{"fd data first", func(m map[string]any) {
			for id := range m["specs"].(map[string]any) {
				a.sendMap(map[string]any{"type": "ProcFdData", "proc_id": id, "fd": "stdout", "start": 0, "stop": 0, "encoding": nil, "data": []byte{}})
			}
		}, func(err error) bool { return errors.Is(err, ErrFirstUpdateNotResult) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := make(chan ret, 1)
			ids := []string{"x" + string(rune('a'+i)), "y" + string(rune('a'+i))}
			go func() {
				ps, err := s.StartRaw(ctx, "default", map[string]any{ids[0]: map[string]any{"argv": []any{"/bin/true"}}, ids[1]: map[string]any{"argv": []any{"/bin/true"}}})
				ch <- ret{ps, err}
			}()
			m := a.read()
			m["type"] = "ProcStartRequest"
			tt.answer(m)
			r := <-ch
			if !tt.want(r.err) || len(r.ps) != 2 {
				t.Fatalf("StartRaw = %v, %v", r.ps, r.err)
			}
		})
	}
	// A second start of a known ID fails at once.
	if _, err := s.Start(ctx, "default", "xa", trueSpec); !errors.Is(err, ErrProcessExists) {
		t.Errorf("restart: %v", err)
	}
	// "no process" for a signal is only logged: it lands in the inbox.
	a.sendMap(map[string]any{"type": "RequestError", "msg": map[string]any{"type": "ProcSignalRequest", "proc_id": "xa", "signum": 15}, "err": "no process"})
	if m, err := s.NextMessage(ctx, "c1"); err != nil || m.Fields["err"] != "no process" {
		t.Fatalf("inbox = %+v, %v", m, err)
	}
	p, _ := s.Process("xa")
	if p.Pending() != 0 {
		t.Error("no-process error routed to the proc")
	}
}

func TestExtensionsHeader(t *testing.T) {
	tests := []struct {
		name    string
		accept  []wire.Extension
		offer   string
		want    string
		wantExt []wire.Extension
	}{
		{"plain server", nil, "push-output, push-status, labels, resources", "", nil},
		{"some accepted", []wire.Extension{wire.ExtPushOutput, wire.ExtLabels}, "push-status, labels, resources, push-output",
			"labels, push-output", []wire.Extension{wire.ExtLabels, wire.ExtPushOutput}},
		{"resources accepted", []wire.Extension{wire.ExtResources, wire.ExtLabels}, "push-status,resources", "resources",
			[]wire.Extension{wire.ExtResources}},
		{"all accepted", []wire.Extension{wire.ExtPushStatus, wire.ExtPushOutput, wire.ExtLabels, wire.ExtResources},
			"push-status, push-output, labels, resources", "push-status, push-output, labels, resources",
			[]wire.Extension{wire.ExtPushStatus, wire.ExtPushOutput, wire.ExtLabels, wire.ExtResources}},
		{"none offered", []wire.Extension{wire.ExtPushOutput}, "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newServer(t, Options{AcceptExtensions: tt.accept})
			hdr := http.Header{}
			if tt.offer != "" {
				hdr.Set(wire.ExtensionsHeader, tt.offer)
			}
			a := dial(t, s, hdr)
			if got := a.resp.Header.Get(wire.ExtensionsHeader); got != tt.want {
				t.Errorf("response header = %q, want %q", got, tt.want)
			}
			m := registerMsg("c1", "default", "", []string{})
			m["labels"] = map[string]any{"disk": "ssd"}
			m["resources"] = validResources()
			a.sendMap(m)
			a.read()
			c, err := s.WaitConn(ctxT(t), "c1")
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(c.Extensions, tt.wantExt) {
				t.Errorf("extensions = %v, want %v", c.Extensions, tt.wantExt)
			}
			if c.Register.Labels["disk"] != "ssd" {
				t.Errorf("labels = %v", c.Register.Labels)
			}
			if r := c.Register.Resources; r == nil || r.Backend != "cgroup" {
				t.Errorf("resources = %+v", r)
			}
			// Labels or resources without their extension are each a
			// (non-closing) violation.
			want := 0
			for _, e := range []wire.Extension{wire.ExtLabels, wire.ExtResources} {
				if !hasExt(tt.wantExt, e) {
					want++
				}
			}
			if got := len(s.Violations()); got != want {
				t.Errorf("violations = %v, want %d", s.Violations(), want)
			}
		})
	}
}

// TestRegisterResources: the server exposes the resources an agent sent
// in Register, and counts them as a violation only when it did not accept
// the resources extension.
func TestRegisterResources(t *testing.T) {
	tests := []struct {
		name          string
		accept        bool
		resources     map[string]any // nil sends no key
		want          *wire.AgentResources
		wantViolation bool
	}{
		{name: "accepted", accept: true, resources: validResources(),
			want: &wire.AgentResources{Backend: "cgroup", Detail: "/sys/fs/cgroup/procstar", Controllers: []string{"cpu", "memory"},
				BestEffort: true, PerfCounters: "available"}},
		{name: "accepted, no controllers", accept: true,
			resources: map[string]any{"backend": "none", "detail": "no cgroup v2", "controllers": []any{}, "best_effort": false,
				"perf_counters": "perf_event_paranoid is 3"},
			want: &wire.AgentResources{Backend: "none", Detail: "no cgroup v2", Controllers: []string{},
				PerfCounters: "perf_event_paranoid is 3"}},
		{name: "accepted, not sent", accept: true},
		{name: "not accepted", resources: validResources(),
			want: &wire.AgentResources{Backend: "cgroup", Detail: "/sys/fs/cgroup/procstar", Controllers: []string{"cpu", "memory"},
				BestEffort: true, PerfCounters: "available"},
			wantViolation: true},
		{name: "not accepted, not sent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{}
			if tt.accept {
				opts.AcceptExtensions = []wire.Extension{wire.ExtResources}
			}
			s := newServer(t, opts)
			a := dial(t, s, http.Header{wire.ExtensionsHeader: {"labels, resources"}})
			m := registerMsg("c1", "default", "", []string{})
			if tt.resources != nil {
				m["resources"] = tt.resources
			}
			a.sendMap(m)
			if got := a.read(); got["type"] != "Registered" {
				t.Fatalf("got %v", got)
			}
			c, err := s.WaitConn(ctxT(t), "c1")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Register.Resources, tt.want) {
				t.Errorf("resources = %+v, want %+v", c.Register.Resources, tt.want)
			}
			v := s.Violations()
			if tt.wantViolation != (len(v) == 1) || len(v) > 1 {
				t.Fatalf("violations = %v, want one: %v", v, tt.wantViolation)
			}
			if tt.wantViolation && !errors.Is(v[0], ErrProtocol) {
				t.Errorf("violation %v is not ErrProtocol", v[0])
			}
			if !c.Open {
				t.Error("connection closed")
			}
		})
	}
}

func TestTLS(t *testing.T) {
	s := newServer(t, Options{TLS: true})
	if !strings.HasPrefix(s.URL(), "wss://127.0.0.1:") {
		t.Fatalf("URL = %s", s.URL())
	}
	pem, err := readFile(s.CertFile())
	if err != nil || !bytes.Equal(pem, s.CertPEM()) {
		t.Fatalf("cert file: %v", err)
	}
	register(t, s, "c1", "default", []string{})
	// An untrusting client fails the handshake.
	if _, _, err := websocket.DefaultDialer.Dial(s.URL(), nil); err == nil {
		t.Error("dial without the CA succeeded")
	}
}

func TestRestartAndStall(t *testing.T) {
	s := newServer(t, Options{PingInterval: 20 * time.Millisecond})
	port := s.Port()
	a := register(t, s, "c1", "default", []string{})
	// Pings arrive; with the server stalled they stop and pings are not
	// answered.
	pings := make(chan string, 100)
	a.ws.SetPingHandler(func(d string) error { pings <- d; return nil })
	go func() {
		for {
			if _, _, err := a.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	select {
	case <-pings:
	case <-time.After(2 * time.Second):
		t.Fatal("no ping from the server")
	}
	s.SetStalled(true)
	time.Sleep(50 * time.Millisecond)
	for len(pings) > 0 {
		<-pings
	}
	time.Sleep(100 * time.Millisecond)
	if len(pings) != 0 {
		t.Errorf("%d pings while stalled", len(pings))
	}
	pongs := make(chan struct{}, 1)
	a.ws.SetPongHandler(func(string) error { pongs <- struct{}{}; return nil })
	_ = a.ws.WriteControl(websocket.PingMessage, []byte("x"), time.Now().Add(time.Second))
	select {
	case <-pongs:
		t.Error("a stalled server answered a ping")
	case <-time.After(100 * time.Millisecond):
	}
	s.SetStalled(false)

	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if s.Port() != port {
		t.Errorf("port %d after restart, was %d", s.Port(), port)
	}
	if c, _ := s.Conn("c1"); c.Open {
		t.Error("conn open after restart")
	}
	register(t, s, "c1", "default", []string{})
	if c, _ := s.Conn("c1"); c.NumConnections != 2 {
		t.Errorf("conn = %+v", c)
	}
}

func TestProcRes(t *testing.T) {
	res := map[string]any{"state": "terminated", "errors": []any{}, "pid": int64(5), "proc_stat": nil, "proc_statm": nil,
		"cgroup_accounting": nil, "times": map[string]any{"start": "2025-01-02T03:04:05+00:00", "now": "2025-01-02T03:04:06+00:00", "stop": nil, "elapsed": 1.5},
		"status": nil, "rusage": nil, "fds": map[string]any{}}
	r, err := ProcRes(res)
	if err != nil {
		t.Fatal(err)
	}
	if r.State != "terminated" || r.Pid != 5 {
		t.Errorf("ProcRes = %+v", r)
	}
	if _, err := ProcRes(map[string]any{"state": 1}); err == nil {
		t.Error("a bad res decoded")
	}
}

func TestSpecMap(t *testing.T) {
	m, err := JSONMap([]byte(`{"argv": ["a"], "fds": [["stdout", {"dup": {"fd": 2}}]], "f": 1.5}`))
	if err != nil {
		t.Fatal(err)
	}
	fd := m["fds"].([]any)[0].([]any)[1].(map[string]any)["dup"].(map[string]any)["fd"]
	if fd != int64(2) || m["f"] != 1.5 {
		t.Errorf("numbers: %#v %#v", fd, m["f"])
	}
	sm, err := SpecMap(trueSpec)
	if err != nil || sm["argv"].([]any)[0] != "/bin/true" {
		t.Fatalf("SpecMap = %v, %v", sm, err)
	}
}

func FuzzDecodeAgentMessage(f *testing.F) {
	f.Add(mustPack(registerMsg("c", "g", "t", []string{"a"})))
	f.Add(mustPack(result("p", "running")))
	f.Add(mustPack(map[string]any{"type": "ProcFdData", "proc_id": "x", "fd": "stdout", "start": 0, "stop": 1, "encoding": nil, "data": []byte("a")}))
	f.Add([]byte{0x81, 0xa4, 't', 'y', 'p', 'e', 0xc0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, m, err := decodeAgentMessage(b)
		if err == nil && typ == "Register" {
			_ = registerFrom(m)
		}
	})
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }

// BenchmarkDecodeResult is the fake's own share of a ProcResult round
// trip: the strict decode of a typical 1 KiB result frame.
func BenchmarkDecodeResult(b *testing.B) {
	res := map[string]any{"state": "terminated", "errors": []any{}, "pid": 12345,
		"proc_stat":  map[string]any{"pid": 12345, "comm": "true", "state": "Z", "ppid": 1, "utime": 0.0, "stime": 0.0, "rss": 0, "signal": []any{}},
		"proc_statm": nil, "cgroup_accounting": nil,
		"times":  map[string]any{"start": "2025-01-02T03:04:05.123456789+00:00", "now": "2025-01-02T03:04:06.5+00:00", "stop": "2025-01-02T03:04:06.001234+00:00", "elapsed": 0.877},
		"status": map[string]any{"status": 0, "exit_code": 0, "signum": nil, "signal": nil, "core_dump": false},
		"rusage": map[string]any{"utime": 0.25, "stime": 0.01, "maxrss": 1074790400, "minflt": 1, "majflt": 0, "nswap": 0, "inblock": 0, "oublock": 8, "nvcsw": 3, "nivcsw": 1},
		"fds":    map[string]any{}}
	frame := mustPack(map[string]any{"type": "ProcResult", "proc_id": "p", "res": res})
	b.SetBytes(int64(len(frame)))
	for range b.N {
		if _, _, err := decodeAgentMessage(frame); err != nil {
			b.Fatal(err)
		}
	}
}
