package link

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/controller"
	"procstar.dev/procstar/wire"
)

func TestRegisterShape(t *testing.T) {
	tests := []struct {
		name     string
		procs    []string
		accept   string
		noRes    bool // the config has no Resources
		wantIDs  []any
		wantLabs bool
		wantRes  bool
		wantExts []string
	}{
		{name: "empty table, plain server", wantIDs: []any{}, wantExts: []string{}},
		{name: "sorted ids", procs: []string{"b", "c", "a"}, wantIDs: []any{"a", "b", "c"}, wantExts: []string{}},
		{name: "labels accepted", accept: "labels, something-else", wantIDs: []any{}, wantLabs: true, wantExts: []string{"labels"}},
		{name: "resources accepted", accept: "resources", wantIDs: []any{}, wantRes: true, wantExts: []string{"resources"}},
		{name: "both accepted", accept: "resources,labels", wantIDs: []any{}, wantLabs: true, wantRes: true,
			wantExts: []string{"labels", "resources"}},
		{name: "resources accepted, none known", accept: "resources", noRes: true, wantIDs: []any{}, wantExts: []string{"resources"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.accept)
			ctl := newController(t)
			for _, p := range tt.procs {
				createProc(t, ctl, p, "exit 0")
			}
			a := startAgent(t, srv, ctl, func(c *Config) {
				if tt.noRes {
					c.Resources = nil
				}
			})
			c := srv.next(t)
			if got := c.header.Get(wire.ExtensionsHeader); got != "push-status, push-output, labels, resources" {
				t.Errorf("offered extensions %q", got)
			}
			m := c.register(t)
			want := []string{"access_token", "conn", "proc", "proc_ids", "shutdown_state", "type"}
			if tt.wantLabs {
				want = append(want, "labels")
			}
			if tt.wantRes {
				want = append(want, "resources")
			}
			want = sortedStrings(want)
			if got := keys(m); !reflect.DeepEqual(got, want) {
				t.Errorf("Register keys %v, want %v", got, want)
			}
			if !reflect.DeepEqual(m["proc_ids"], tt.wantIDs) {
				t.Errorf("proc_ids %#v, want %#v", m["proc_ids"], tt.wantIDs)
			}
			if m["access_token"] != "secret" || m["shutdown_state"] != "active" {
				t.Errorf("token %v state %v", m["access_token"], m["shutdown_state"])
			}
			conn, _ := m["conn"].(map[string]any)
			if got := keys(conn); !reflect.DeepEqual(got, []string{"conn_id", "group_id", "restricted_exe"}) {
				t.Errorf("conn keys %v", got)
			}
			if conn["conn_id"] != "conn-1" || conn["group_id"] != "default" || conn["restricted_exe"] != nil {
				t.Errorf("conn %v", conn)
			}
			proc, _ := m["proc"].(map[string]any)
			if got := keys(proc); !reflect.DeepEqual(got, []string{"egid", "euid", "gid", "groupname", "hostname", "pid", "ppid", "uid", "username"}) {
				t.Errorf("proc keys %v", got)
			}
			if asInt(proc["pid"]) != 42 || asInt(proc["euid"]) != 1000 || proc["username"] != "tester" || proc["groupname"] != nil || proc["hostname"] != "host1" {
				t.Errorf("proc %v", proc)
			}
			if tt.wantLabs && !reflect.DeepEqual(m["labels"], map[string]any{"disk": "ssd"}) {
				t.Errorf("labels %v", m["labels"])
			}
			wantRes := map[string]any{"backend": "cgroup", "detail": "/sys/fs/cgroup/procstar.slice", "controllers": []any{"cpu", "memory"},
				"best_effort": true, "perf_counters": "available"}
			if tt.wantRes && !reflect.DeepEqual(m["resources"], wantRes) {
				t.Errorf("resources %#v, want %#v", m["resources"], wantRes)
			}
			st := a.link.Status()
			deadline := time.Now().Add(5 * time.Second)
			for !st.Connected && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
				st = a.link.Status()
			}
			if !st.Connected || st.ConnID != "conn-1" || st.Connections != 1 || st.URL != srv.url() {
				t.Errorf("status %+v", st)
			}
			if !reflect.DeepEqual(st.Extensions, tt.wantExts) {
				t.Errorf("status extensions %v", st.Extensions)
			}
		})
	}
}

// started starts a link with a registered connection.
func started(t *testing.T, accept string, adjust func(*Config)) (*agentRun, *serverConn, *testServer) {
	t.Helper()
	srv := newTestServer(t, accept)
	a := startAgent(t, srv, nil, adjust)
	c := srv.next(t)
	c.register(t)
	return a, c, srv
}

func TestStartResultAndDelete(t *testing.T) {
	_, c, _ := started(t, "", nil)
	c.send(t, msg{"type": "ProcStartRequest", "specs": msg{"p1": spec("printf hello; sleep 0.3")}})
	first := c.recv(t)
	if first["type"] != "ProcResult" || first["proc_id"] != "p1" {
		t.Fatalf("first message %v, want ProcResult of p1", brief(first))
	}
	if got := keys(first); !reflect.DeepEqual(got, []string{"proc_id", "res", "type"}) {
		t.Errorf("ProcResult keys %v", got)
	}
	res := first["res"].(map[string]any)
	if res["state"] != "running" {
		t.Errorf("first state %v", res["state"])
	}
	// While it runs: delete is refused.
	c.send(t, msg{"type": "ProcDeleteRequest", "proc_id": "p1"})
	m := c.recvType(t, "RequestError")
	if m["err"] != "process running: p1" {
		t.Errorf("delete running: %v", brief(m))
	}
	if echo, _ := m["msg"].(map[string]any); echo["type"] != "ProcDeleteRequest" || echo["proc_id"] != "p1" {
		t.Errorf("echo %v", m["msg"])
	}
	// The final result comes after exit with the output drained.
	final := c.recvType(t, "ProcResult")
	res = final["res"].(map[string]any)
	if res["state"] != "terminated" {
		t.Fatalf("final %v", brief(res))
	}
	fds := res["fds"].(map[string]any)
	if out := fds["stdout"].(map[string]any); asInt(out["length"]) != 5 {
		t.Errorf("final stdout %v", out)
	}
	c.send(t, msg{"type": "ProcDeleteRequest", "proc_id": "p1"})
	if m := c.recv(t); m["type"] != "ProcDelete" || m["proc_id"] != "p1" || len(m) != 2 {
		t.Errorf("after delete: %v", brief(m))
	}
	c.send(t, msg{"type": "ProcidListRequest"})
	if m := c.recv(t); m["type"] != "ProcidList" || !reflect.DeepEqual(m["proc_ids"], []any{}) {
		t.Errorf("list: %v", brief(m))
	}
}

func TestRequests(t *testing.T) {
	_, c, _ := started(t, "", nil)
	c.send(t, msg{"type": "ProcStartRequest", "specs": msg{
		"done": spec("printf 0123456789"),
		"run":  spec("exec sleep 30"),
	}})
	// Both are announced; wait for done's final result too.
	seen := map[string]bool{}
	for !seen["run"] || !seen["done terminated"] {
		m := c.recvType(t, "ProcResult")
		seen[m["proc_id"].(string)] = true
		if m["proc_id"] == "done" && m["res"].(map[string]any)["state"] == "terminated" {
			seen["done terminated"] = true
		}
	}
	// A result read just as the proc ended may say terminated before the
	// final one (sent after the drain) does; let any such repeat pass.
	c.drain(200 * time.Millisecond)
	tests := []struct {
		name string
		req  msg
		want msg // compared on the keys given
	}{
		{"list", msg{"type": "ProcidListRequest"}, msg{"type": "ProcidList", "proc_ids": []any{"done", "run"}}},
		{"result unknown", msg{"type": "ProcResultRequest", "proc_id": "nope"}, msg{"type": "ProcUnknown", "proc_id": "nope"}},
		{"signal unknown", msg{"type": "ProcSignalRequest", "proc_id": "nope", "signum": 15}, msg{"type": "ProcUnknown", "proc_id": "nope"}},
		{"signal reaped", msg{"type": "ProcSignalRequest", "proc_id": "done", "signum": 15}, msg{"type": "RequestError", "err": "no process"}},
		{"delete unknown", msg{"type": "ProcDeleteRequest", "proc_id": "nope"}, msg{"type": "ProcUnknown", "proc_id": "nope"}},
		{"delete running", msg{"type": "ProcDeleteRequest", "proc_id": "run"}, msg{"type": "RequestError", "err": "process running: run"}},
		{"duplicate start", msg{"type": "ProcStartRequest", "specs": msg{"x": spec("true"), "run": spec("true")}}, msg{"type": "RequestError", "err": "duplicate proc id: run"}},
		{"registered again", msg{"type": "Registered"}, msg{"type": "RequestError", "err": "unexpected", "msg": msg{"type": "Registered"}}},
		{"fd unknown proc", msg{"type": "ProcFdDataRequest", "proc_id": "nope", "fd": "stdout", "start": 0, "stop": nil}, msg{"type": "ProcUnknown", "proc_id": "nope"}},
		{"bad fd", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "stdpot", "start": 0, "stop": nil}, msg{"type": "RequestError", "err": "bad fd: stdpot"}},
		{"no fd", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "7", "start": 0, "stop": nil}, msg{"type": "RequestError", "err": "no fd: 7"}},
		{"no fd data", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "stderr", "start": 0, "stop": nil}, msg{"type": "RequestError", "err": "no fd data"}},
		{"all", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "stdout", "start": 0, "stop": nil},
			msg{"type": "ProcFdData", "proc_id": "done", "fd": "stdout", "start": 0, "stop": 10, "encoding": "utf-8", "data": []byte("0123456789")}},
		{"empty", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "1", "start": 0, "stop": 0},
			msg{"type": "ProcFdData", "fd": "1", "start": 0, "stop": 0, "data": []byte{}}},
		{"mid", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "stdout", "start": 3, "stop": 6},
			msg{"type": "ProcFdData", "start": 3, "stop": 6, "data": []byte("345")}},
		{"past the end", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "stdout", "start": 8, "stop": 1000},
			msg{"type": "ProcFdData", "start": 8, "stop": 10, "data": []byte("89")}},
		{"start past the end", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "stdout", "start": 50, "stop": nil},
			msg{"type": "ProcFdData", "start": 50, "stop": 50, "data": []byte{}}},
		{"start after stop", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "stdout", "start": 6, "stop": 2},
			msg{"type": "ProcFdData", "start": 6, "stop": 6, "data": []byte{}}},
		{"negative start", msg{"type": "ProcFdDataRequest", "proc_id": "done", "fd": "stdout", "start": -5, "stop": nil},
			msg{"type": "RequestError", "err": "bad range: start -5"}},
		{"result", msg{"type": "ProcResultRequest", "proc_id": "run"}, msg{"type": "ProcResult", "proc_id": "run"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(t, tt.req)
			got := c.recv(t)
			for k, v := range tt.want {
				g := got[k]
				if iv := asInt(v); iv != -1<<62 {
					if asInt(g) != iv {
						t.Errorf("%s = %v, want %v (%v)", k, g, v, brief(got))
					}
					continue
				}
				if !reflect.DeepEqual(g, v) {
					t.Errorf("%s = %#v, want %#v (%v)", k, g, v, brief(got))
				}
			}
			if got["type"] == "RequestError" {
				echo, _ := got["msg"].(map[string]any)
				if echo["type"] != tt.req["type"] {
					t.Errorf("RequestError.msg %v does not echo the request", got["msg"])
				}
				if got := keys(got); !reflect.DeepEqual(got, []string{"err", "msg", "type"}) {
					t.Errorf("RequestError keys %v", got)
				}
			}
			if got["type"] == "ProcFdData" {
				if got := keys(got); !reflect.DeepEqual(got, []string{"data", "encoding", "fd", "proc_id", "start", "stop", "type"}) {
					t.Errorf("ProcFdData keys %v", got)
				}
			}
		})
	}
	// The duplicate start was all or nothing.
	c.send(t, msg{"type": "ProcResultRequest", "proc_id": "x"})
	if m := c.recv(t); m["type"] != "ProcUnknown" {
		t.Errorf("x after a failed batch: %v", brief(m))
	}
	// Signal the running one: no reply, then its final result.
	c.send(t, msg{"type": "ProcSignalRequest", "proc_id": "run", "signum": 9})
	m := c.recvType(t, "ProcResult")
	res := m["res"].(map[string]any)
	if m["proc_id"] != "run" || res["state"] != "terminated" || res["status"].(map[string]any)["signal"] != "SIGKILL" {
		t.Errorf("after SIGKILL: %v", brief(res))
	}
}

func TestMalformedFrames(t *testing.T) {
	_, c, _ := started(t, "", nil)
	// Not msgpack, not a map, a map without type: logged only.
	c.sendRaw(t, websocket.BinaryMessage, []byte{0xc1, 0xff, 0x00})
	c.sendRaw(t, websocket.BinaryMessage, []byte{0x93, 1, 2, 3})
	c.send(t, msg{"proc_id": "x"})
	// A text frame: ignored.
	c.sendRaw(t, websocket.TextMessage, []byte(`{"type":"ProcidListRequest"}`))
	c.quiet(t, 200*time.Millisecond)
	// A map with a type that does not decode: RequestError with the raw map.
	tests := []struct {
		name string
		req  msg
	}{
		{"missing field", msg{"type": "ProcResultRequest"}},
		{"extra field", msg{"type": "ProcResultRequest", "proc_id": "a", "bogus": 1}},
		{"wrong type", msg{"type": "ProcSignalRequest", "proc_id": "a", "signum": "TERM"}},
		{"unknown type", msg{"type": "Frobnicate", "x": int64(1)}},
		{"bad spec", msg{"type": "ProcStartRequest", "specs": msg{"a": msg{"argv": []any{"true"}, "bogus": true}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send(t, tt.req)
			m := c.recv(t)
			if m["type"] != "RequestError" || m["err"] == "" {
				t.Fatalf("got %v, want RequestError", brief(m))
			}
			echo, _ := m["msg"].(map[string]any)
			if echo["type"] != tt.req["type"] || len(echo) != len(tt.req) {
				t.Errorf("msg %v, want the raw request %v", echo, tt.req)
			}
		})
	}
	// Still up.
	c.send(t, msg{"type": "ProcidListRequest"})
	if m := c.recv(t); m["type"] != "ProcidList" {
		t.Errorf("after malformed frames: %v", brief(m))
	}
}

func TestFdData64MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB")
	}
	_, c, _ := started(t, "", nil)
	c.timeout = time.Minute // a loaded machine
	const size = 64 << 20
	c.send(t, msg{"type": "ProcStartRequest", "specs": msg{"big": spec("head -c 67108864 /dev/zero")}})
	for {
		m := c.recvType(t, "ProcResult")
		if m["res"].(map[string]any)["state"] == "terminated" {
			break
		}
	}
	begin := time.Now()
	c.send(t, msg{"type": "ProcFdDataRequest", "proc_id": "big", "fd": "stdout", "start": 0, "stop": nil})
	m := c.recv(t)
	t.Logf("64 MiB ProcFdData round trip (with the test server's decode): %v", time.Since(begin))
	data, _ := m["data"].([]byte)
	if m["type"] != "ProcFdData" || len(data) != size || asInt(m["stop"]) != size || !bytes.Equal(data[size-3:], []byte{0, 0, 0}) {
		t.Fatalf("got %v", brief(m))
	}
}

func TestShutdownPushes(t *testing.T) {
	a, c, srv := started(t, "", nil)
	a.shutdown.set(StateIdling)
	if m := c.recv(t); m["type"] != "ShutDown" || m["shutdown_state"] != "idling" || len(m) != 2 {
		t.Fatalf("got %v", brief(m))
	}
	a.shutdown.set(StateDone)
	if m := c.recv(t); m["type"] != "ShutDown" || m["shutdown_state"] != "done" {
		t.Fatalf("got %v", brief(m))
	}
	c.waitClosed(t)
	if err := a.wait(t); err != nil {
		t.Errorf("Run = %v", err)
	}
	srv.none(t, 200*time.Millisecond)
}

func TestDoneWhileDisconnected(t *testing.T) {
	srv := newTestServer(t, "")
	a := startAgent(t, srv, nil, func(c *Config) { c.ConnectIntervalStart = time.Hour; c.ConnectIntervalMax = time.Hour })
	c := srv.next(t)
	c.recv(t) // Register, never answered
	c.ws.Close()
	a.shutdown.set(StateDone)
	if err := a.wait(t); err != nil {
		t.Errorf("Run = %v", err)
	}
}

func TestReadTimeoutReconnects(t *testing.T) {
	srv := newTestServer(t, "")
	ctl := newController(t)
	createProc(t, ctl, "keep", "exit 0")
	startAgent(t, srv, ctl, func(c *Config) { c.ReadTimeout = 300 * time.Millisecond })
	c := srv.next(t)
	// Answer Registered, then go silent: no reads, so no pongs.
	data, _ := readOne(t, c)
	if !strings.Contains(string(data), "Register") {
		t.Fatalf("first frame %q", data)
	}
	c.send(t, msg{"type": "Registered"})
	start := time.Now()
	c2 := srv.next(t)
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("reconnected after %v, before the read timeout", d)
	}
	m := c2.register(t)
	if !reflect.DeepEqual(m["proc_ids"], []any{"keep"}) {
		t.Errorf("re-registered with %v", m["proc_ids"])
	}
	// The second connection, read (so pinged and ponged), stays up.
	c2.send(t, msg{"type": "ProcidListRequest"})
	if m := c2.recv(t); m["type"] != "ProcidList" {
		t.Errorf("got %v", brief(m))
	}
}

// readOne reads one frame without starting the read loop.
func readOne(t testing.TB, c *serverConn) ([]byte, error) {
	t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, data, err := c.ws.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	return data, nil
}

func TestServerDropReconnectsAtOnce(t *testing.T) {
	_, c, srv := started(t, "", func(c *Config) { c.ConnectIntervalStart = time.Hour; c.ConnectIntervalMax = time.Hour })
	c.ws.Close()
	c2 := srv.next(t)
	c2.register(t)
}

// recordingAfter records back-off waits and fires at once.
type recordingAfter struct {
	mu    sync.Mutex // guards waits
	waits []time.Duration
}

func (r *recordingAfter) after(d time.Duration) <-chan time.Time {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	ch := make(chan time.Time, 1)
	ch <- time.Now()
	return ch
}

func TestBackoffAndCountMax(t *testing.T) {
	tests := []struct {
		name   string
		reject bool // a server that closes instead of Registered
	}{
		{name: "nothing listening"},
		{name: "server rejects", reject: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, "")
			url := srv.url()
			if !tt.reject {
				srv.srv.Close()
			} else {
				go func() {
					for c := range srv.conns {
						c.recv(t)
						c.ws.Close()
					}
				}()
				t.Cleanup(func() { close(srv.conns) })
			}
			rec := &recordingAfter{}
			a := startAgent(t, srv, nil, func(c *Config) {
				c.URL = url
				c.ConnectIntervalStart = 10 * time.Millisecond
				c.ConnectIntervalMult = 3
				c.ConnectIntervalMax = 100 * time.Millisecond
				c.ConnectCountMax = 5
				c.After = rec.after
				c.Jitter = func(d time.Duration) time.Duration { return d }
			})
			err := a.wait(t)
			if !errors.Is(err, ErrConnectFailed) || !strings.HasPrefix(err.Error(), "websocket connection failed: ") {
				t.Fatalf("Run = %v", err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			want := []time.Duration{10 * time.Millisecond, 30 * time.Millisecond, 90 * time.Millisecond, 100 * time.Millisecond}
			if !reflect.DeepEqual(rec.waits, want) {
				t.Errorf("waits %v, want %v", rec.waits, want)
			}
			if st := a.link.Status(); st.Attempts != 5 || st.Failures != 5 || st.LastError == "" || st.Connected {
				t.Errorf("status %+v", st)
			}
		})
	}
}

func TestBackoffResetsAfterSuccess(t *testing.T) {
	srv := newTestServer(t, "")
	rec := &recordingAfter{}
	var n int
	var mu sync.Mutex
	go func() {
		for c := range srv.conns {
			mu.Lock()
			n++
			k := n
			mu.Unlock()
			c.recv(t)
			if k == 3 {
				c.send(t, msg{"type": "Registered"})
			}
			c.ws.Close()
		}
	}()
	t.Cleanup(func() { close(srv.conns) })
	a := startAgent(t, srv, nil, func(c *Config) {
		c.ConnectIntervalStart = 10 * time.Millisecond
		c.ConnectIntervalMult = 2
		c.ConnectIntervalMax = time.Second
		c.ConnectCountMax = 4
		c.After = rec.after
		c.Jitter = func(d time.Duration) time.Duration { return d }
	})
	if err := a.wait(t); !errors.Is(err, ErrConnectFailed) {
		t.Fatalf("Run = %v", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// Two failures, a success (reset), then four failures.
	want := []time.Duration{10, 20, 10, 20, 40}
	for i := range want {
		want[i] *= time.Millisecond
	}
	if !reflect.DeepEqual(rec.waits, want) {
		t.Errorf("waits %v, want %v", rec.waits, want)
	}
}

func TestExtensionsPushed(t *testing.T) {
	_, c, _ := started(t, "push-status, push-output", nil)
	c.send(t, msg{"type": "ProcStartRequest", "specs": msg{"p": spec("printf abc; sleep 0.5; printf def; sleep 0.3")}})
	first := c.recv(t)
	if first["type"] != "ProcResult" {
		t.Fatalf("first %v", brief(first))
	}
	var out []byte
	intermediate := 0
	for {
		m := c.recv(t)
		switch m["type"] {
		case "ProcFdData":
			if m["fd"] != "stdout" || asInt(m["start"]) != int64(len(out)) || m["encoding"] != "utf-8" {
				t.Fatalf("chunk %v after %d bytes", brief(m), len(out))
			}
			data := m["data"].([]byte)
			if asInt(m["stop"]) != int64(len(out)+len(data)) {
				t.Errorf("chunk stop %v", m["stop"])
			}
			out = append(out, data...)
		case "ProcResult":
			res := m["res"].(map[string]any)
			if res["state"] == "running" {
				intermediate++
				continue
			}
			if string(out) != "abcdef" {
				t.Errorf("output before the final result %q", out)
			}
			if intermediate == 0 {
				t.Errorf("no intermediate result")
			}
			return
		default:
			t.Fatalf("unexpected %v", brief(m))
		}
	}
}

func TestNoExtensionsNoPushes(t *testing.T) {
	_, c, _ := started(t, "", nil)
	c.send(t, msg{"type": "ProcStartRequest", "specs": msg{"p": spec("printf abc; sleep 0.5")}})
	var types []string
	for {
		m := c.recv(t)
		types = append(types, m["type"].(string))
		if m["type"] == "ProcResult" && m["res"].(map[string]any)["state"] == "terminated" {
			break
		}
	}
	if !reflect.DeepEqual(types, []string{"ProcResult", "ProcResult"}) {
		t.Errorf("messages %v, want just the first and final results", types)
	}
}

func TestDeleteFromElsewherePushed(t *testing.T) {
	a, c, _ := started(t, "", nil)
	createProc(t, a.ctl, "local", "exit 0")
	if m := c.recvType(t, "ProcResult"); m["proc_id"] != "local" {
		t.Fatalf("got %v", brief(m))
	}
	for {
		if m := c.recvType(t, "ProcResult"); m["res"].(map[string]any)["state"] == "terminated" {
			break
		}
	}
	if _, err := a.ctl.Delete(context.Background(), "local", v1DeleteOpts()); err != nil {
		t.Fatal(err)
	}
	if m := c.recv(t); m["type"] != "ProcDelete" || m["proc_id"] != "local" {
		t.Errorf("got %v", brief(m))
	}
}

func TestSendQueueBounds(t *testing.T) {
	q := newSendQueue(100)
	if err := q.push(make([]byte, 150)); err != nil {
		t.Fatalf("an empty queue takes any frame: %v", err)
	}
	if err := q.push(make([]byte, 1)); !errors.Is(err, errQueueFull) {
		t.Fatalf("push over the bound = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := q.pushWait(ctx, make([]byte, 10)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("pushWait on a full queue = %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- q.pushWait(context.Background(), make([]byte, 10)) }()
	if f, _, ok := q.pop(); !ok || len(f) != 150 {
		t.Fatal("pop")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	q.finish()
	if err := q.push([]byte{1}); err != nil {
		t.Fatal(err)
	}
	if f, _, ok := q.pop(); !ok || len(f) != 10 {
		t.Fatal("queued frame lost")
	}
	if _, finished, ok := q.pop(); ok || !finished {
		t.Fatalf("after finish: ok %v finished %v", ok, finished)
	}
}

func TestServerURL(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string
		err  bool
	}{
		{cfg: Config{Host: "example.com"}, want: "wss://example.com:59789/"},
		{cfg: Config{Host: "::1", Port: 8443}, want: "wss://[::1]:8443/"},
		{cfg: Config{Host: "h", Port: 70000}, err: true},
		{cfg: Config{}, err: true},
		{cfg: Config{URL: "ws://127.0.0.1:1234"}, want: "ws://127.0.0.1:1234/"},
		{cfg: Config{URL: "wss://h/x", Host: "ignored"}, want: "wss://h/x"},
		{cfg: Config{URL: "http://h/"}, err: true},
	}
	for _, tt := range tests {
		got, err := tt.cfg.ServerURL()
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%+v: %q, %v; want %q (error %v)", tt.cfg, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrConfig) {
			t.Errorf("error %v is not ErrConfig", err)
		}
	}
}

func v1DeleteOpts() v1.DeleteOptions { return v1.DeleteOptions{RefuseRunning: true} }

func TestTLS(t *testing.T) {
	srv := newTLSTestServer(t)
	pemFile := filepath.Join(t.TempDir(), "server.pem")
	block := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.srv.Certificate().Raw})
	if err := os.WriteFile(pemFile, block, 0o600); err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.srv.URL, "https://"))
	portNum, _ := strconv.Atoi(port)
	tests := []struct {
		name   string
		adjust func(*Config)
		ok     bool
		errHas string
	}{
		{"extra root", func(c *Config) { c.URL = ""; c.Host = "127.0.0.1"; c.Port = portNum; c.RootCertFile = pemFile }, true, ""},
		{"system roots only", func(c *Config) { c.URL = srv.url() }, false, "certificate"},
		{"wrong host name", func(c *Config) { c.URL = ""; c.Host = "localhost"; c.Port = portNum; c.RootCertFile = pemFile }, false, "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := startAgent(t, srv, nil, func(c *Config) {
				tt.adjust(c)
				c.ConnectCountMax = 1
			})
			if tt.ok {
				c := srv.next(t)
				c.register(t)
				return
			}
			err := a.wait(t)
			if !errors.Is(err, ErrConnectFailed) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Run = %v, want a failure mentioning %q", err, tt.errHas)
			}
		})
	}
	if _, err := New(Config{Host: "h", RootCertFile: filepath.Join(t.TempDir(), "missing.pem")}, newController(t)); !errors.Is(err, ErrConfig) {
		t.Errorf("missing root cert file: %v", err)
	}
}

func TestFdDataHeadMatchesEncodeMessage(t *testing.T) {
	utf8 := "utf-8"
	tests := []wire.ProcFdData{
		{ProcID: "p", Fd: "stdout", Start: 0, Stop: 3, Encoding: &utf8, Data: []byte("abc")},
		{ProcID: "p", Fd: "7", Start: 1 << 40, Stop: 1<<40 + 300, Data: bytes.Repeat([]byte{1}, 300)},
		{ProcID: "", Fd: "stderr", Start: 5, Stop: 5, Data: []byte{}},
		{ProcID: strings.Repeat("x", 300), Fd: "1", Start: 0, Stop: 70000, Data: make([]byte, 70000)},
	}
	for _, m := range tests {
		want, err := wire.EncodeMessage(m)
		if err != nil {
			t.Fatal(err)
		}
		head, err := fdDataHead(m, len(m.Data))
		if err != nil {
			t.Fatal(err)
		}
		if got := append(head, m.Data...); !bytes.Equal(got, want) {
			t.Errorf("%s/%s: fast frame differs from EncodeMessage:\n%x\n%x", m.ProcID, m.Fd, got[:min(len(got), 80)], want[:min(len(want), 80)])
		}
	}
}

// The controller reads output straight into reply frames.
var _ OutputReaderAt = (*controller.Controller)(nil)

// gappyBackend's first Watch waits for release, then reports that the
// watcher fell behind (an ERROR event), as a slow watcher would see.
type gappyBackend struct {
	*controller.Controller
	release chan struct{}
	once    sync.Once
}

func (g *gappyBackend) Watch(ctx context.Context, sel v1.Selector, fields v1.FieldSelector, rv string) (<-chan v1.WatchEvent, error) {
	first := false
	g.once.Do(func() { first = true })
	if !first {
		return g.Controller.Watch(ctx, sel, fields, rv)
	}
	ch := make(chan v1.WatchEvent, 1)
	go func() {
		defer close(ch)
		select {
		case <-g.release:
			ch <- v1.WatchEvent{Type: v1.WatchError}
		case <-ctx.Done():
		}
	}()
	return ch, nil
}

func TestResyncAfterWatchGap(t *testing.T) {
	srv := newTestServer(t, "")
	ctl := newController(t)
	createProc(t, ctl, "old", "exit 0")
	g := &gappyBackend{Controller: ctl, release: make(chan struct{})}
	c := runLink(t, srv, g)
	if m := c.register(t); !reflect.DeepEqual(m["proc_ids"], []any{"old"}) {
		t.Fatalf("Register proc_ids %v", m["proc_ids"])
	}
	// Changes the pusher cannot see until it resyncs.
	createProc(t, ctl, "new", "exec sleep 30")
	deleteExited(t, ctl, "old")
	c.quiet(t, 100*time.Millisecond)
	close(g.release)
	got := map[string]string{}
	for len(got) < 2 {
		m := c.recv(t)
		got[m["proc_id"].(string)] = m["type"].(string)
	}
	if !reflect.DeepEqual(got, map[string]string{"new": "ProcResult", "old": "ProcDelete"}) {
		t.Errorf("after resync: %v", got)
	}
	// And the watch goes on: a signal's final result arrives.
	if err := ctl.Signal(context.Background(), "new", 9, false); err != nil {
		t.Fatal(err)
	}
	if m := c.recv(t); m["type"] != "ProcResult" || m["res"].(map[string]any)["state"] != "terminated" {
		t.Errorf("after resync and kill: %v", brief(m))
	}
}

// TestWriteThroughKeepsOrder: a reply is written straight through only
// when nothing is queued and no frame is being written; otherwise it goes
// behind what is queued.
func TestWriteThroughKeepsOrder(t *testing.T) {
	s := &session{q: newSendQueue(1 << 20)}
	if err := s.q.push([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if s.writeThrough([]byte("second")) {
		t.Fatal("wrote through past a queued frame")
	}
	s.wmu.Lock()
	if s.writeThrough([]byte("second")) {
		t.Fatal("wrote through while another frame was being written")
	}
	s.wmu.Unlock()
	s.q.finish()
	if f, _, ok := s.q.pop(); !ok || string(f) != "first" {
		t.Fatalf("pop %q %v, want the queued frame", f, ok)
	}
	if s.writeThrough([]byte("late")) {
		t.Fatal("wrote through after finish")
	}
}
