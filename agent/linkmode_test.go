package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	v1 "procstar.dev/procstar/api/v1"
)

// wsServer is a minimal control plane for the agent's --agent tests: it
// registers every agent and hands the test each message.
type wsServer struct {
	srv  *httptest.Server
	msgs chan map[string]any
	mu   sync.Mutex // guards conn
	conn *websocket.Conn
}

func newWSServer(t *testing.T) *wsServer {
	s := &wsServer{msgs: make(chan map[string]any, 1024)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conn = ws
		s.mu.Unlock()
		defer ws.Close()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			var m map[string]any
			if err := msgpack.Unmarshal(data, &m); err != nil {
				continue
			}
			if m["type"] == "Register" {
				s.send(map[string]any{"type": "Registered"})
			}
			s.msgs <- m
		}
	}))
	t.Cleanup(func() {
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

func (s *wsServer) url() string { return "ws://" + strings.TrimPrefix(s.srv.URL, "http://") + "/" }

func (s *wsServer) send(m map[string]any) {
	data, _ := msgpack.Marshal(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	_ = s.conn.WriteMessage(websocket.BinaryMessage, data)
}

// expect returns the next message, which must be of type typ. Repeated
// ProcResults (a result read as the proc ended, then the final one) are
// skipped.
func (s *wsServer) expect(t *testing.T, typ string) map[string]any {
	t.Helper()
	for {
		select {
		case m := <-s.msgs:
			if m["type"] == typ {
				return m
			}
			if m["type"] != "ProcResult" {
				t.Fatalf("got %v, want a %s", m, typ)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("no %s from the agent", typ)
			return nil
		}
	}
}

func runAgentErr(t *testing.T, cfg Config) (<-chan int, *bytes.Buffer) {
	t.Helper()
	var errOut bytes.Buffer
	cfg.Stdout = &bytes.Buffer{}
	cfg.Stderr = &errOut
	code := make(chan int, 1)
	go func() { code <- Run(context.Background(), cfg) }()
	return code, &errOut
}

func TestAgentNoHost(t *testing.T) {
	t.Setenv(EnvAgentHost, "")
	code, errOut := runAgentErr(t, Config{Agent: true})
	if c := waitCode(t, code); c != ExitUsage {
		t.Errorf("exit %d, want %d", c, ExitUsage)
	}
	if !strings.Contains(errOut.String(), "no agent server hostname; use --agent-host or set PROCSTAR_AGENT_HOST") {
		t.Errorf("stderr %q", errOut.String())
	}
}

func TestAgentWaitTimeout(t *testing.T) {
	s := newWSServer(t)
	code, _ := runAgentErr(t, Config{Agent: true, Wait: true, Link: LinkConfig{URL: s.url(), WaitTimeout: 200 * time.Millisecond}})
	s.expect(t, "Register")
	if m := s.expect(t, "ShutDown"); m["shutdown_state"] != "done" {
		t.Errorf("got %v", m)
	}
	if c := waitCode(t, code); c != ExitOK {
		t.Errorf("exit %d", c)
	}
}

func TestAgentWaitDoneAfterWork(t *testing.T) {
	s := newWSServer(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _ := runAgentErr(t, Config{Agent: true, Wait: true, ConnID: "c1", GroupID: "g",
		Link: LinkConfig{URL: s.url(), TokenFile: tokenFile, WaitTimeout: time.Minute}})
	reg := s.expect(t, "Register")
	if reg["access_token"] != "tok" || reg["conn"].(map[string]any)["conn_id"] != "c1" || reg["conn"].(map[string]any)["group_id"] != "g" {
		t.Errorf("Register %v", reg)
	}
	s.send(map[string]any{"type": "ProcStartRequest", "specs": map[string]any{"p": map[string]any{"argv": []any{"/bin/true"}}}})
	for {
		m := s.expect(t, "ProcResult")
		if m["res"].(map[string]any)["state"] == "terminated" {
			break
		}
	}
	s.send(map[string]any{"type": "ProcDeleteRequest", "proc_id": "p"})
	s.expect(t, "ProcDelete")
	// Straight to done, without idling.
	if m := s.expect(t, "ShutDown"); m["shutdown_state"] != "done" {
		t.Errorf("got %v", m)
	}
	if c := waitCode(t, code); c != ExitOK {
		t.Errorf("exit %d", c)
	}
}

func TestAgentSIGUSR1Pushes(t *testing.T) {
	s := newWSServer(t)
	sigs := make(chan os.Signal, 1)
	code, _ := runAgentErr(t, Config{Agent: true, Signals: sigs, Link: LinkConfig{URL: s.url()}})
	s.expect(t, "Register")
	s.send(map[string]any{"type": "ProcStartRequest", "specs": map[string]any{"p": map[string]any{"argv": []any{"/bin/true"}}}})
	for {
		m := s.expect(t, "ProcResult")
		if m["res"].(map[string]any)["state"] == "terminated" {
			break
		}
	}
	sigs <- syscall.SIGUSR1
	if m := s.expect(t, "ShutDown"); m["shutdown_state"] != "idling" {
		t.Errorf("got %v", m)
	}
	// Idling refuses new work with procstar's words.
	s.send(map[string]any{"type": "ProcStartRequest", "specs": map[string]any{"q": map[string]any{"argv": []any{"/bin/true"}}}})
	if m := s.expect(t, "RequestError"); m["err"] != "agent shutting down: idling" {
		t.Errorf("got %v", m)
	}
	// The server collects the result, deletes, and the agent is done.
	s.send(map[string]any{"type": "ProcResultRequest", "proc_id": "p"})
	s.expect(t, "ProcResult")
	s.send(map[string]any{"type": "ProcDeleteRequest", "proc_id": "p"})
	s.expect(t, "ProcDelete")
	if m := s.expect(t, "ShutDown"); m["shutdown_state"] != "done" {
		t.Errorf("got %v", m)
	}
	if c := waitCode(t, code); c != ExitOK {
		t.Errorf("exit %d", c)
	}
}

func TestAgentConnectCountMaxExits1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	code, _ := runAgentErr(t, Config{Agent: true, Link: LinkConfig{URL: "ws://" + addr + "/", ConnectCountMax: 2,
		ConnectIntervalStart: time.Millisecond, ConnectIntervalMax: time.Millisecond}})
	if c := waitCode(t, code); c != ExitFailure {
		t.Errorf("exit %d, want %d", c, ExitFailure)
	}
}

func TestAgentInfoLink(t *testing.T) {
	s := newWSServer(t)
	ready := make(chan net.Addr, 1)
	sigs := make(chan os.Signal, 1)
	code, _ := runAgentErr(t, Config{Agent: true, Serve: true, Signals: sigs, Ready: ready,
		Listen: ServeConfig{Addr: "127.0.0.1:0"}, Link: LinkConfig{URL: s.url()}})
	addr := <-ready
	s.expect(t, "Register")
	var info struct {
		Link struct {
			Connected bool   `json:"connected"`
			URL       string `json:"url"`
		} `json:"link"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for !info.Link.Connected && time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr.String() + "/agent")
		if err != nil {
			t.Fatal(err)
		}
		_ = json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		time.Sleep(20 * time.Millisecond)
	}
	if !info.Link.Connected || info.Link.URL != s.url() {
		t.Errorf("link %+v", info.Link)
	}
	sigs <- syscall.SIGUSR1
	if c := waitCode(t, code); c != ExitOK {
		t.Errorf("exit %d", c)
	}
}

// The wait for first work is armed before the link starts: a proc that
// starts, ends and is deleted before waitModeAgent's goroutine runs must
// still end the agent, not leave it waiting for work until the timeout
// (TestAgentWaitDoneAfterWork hit this under load).
func TestWaitModeAgentWorkBeforeItRuns(t *testing.T) {
	n := newNode(t)
	defer n.stop()
	a := &agent{cfg: Config{Link: LinkConfig{WaitTimeout: time.Minute}}, log: logr.Discard(), ctl: n.ctl, shutdown: NewShutdown()}
	first := a.firstWork()
	if first == nil {
		t.Fatal("no first-work channel for an empty table")
	}
	ctx := context.Background()
	p := v1.Proc{Metadata: v1.ObjectMeta{Name: "p"}, Spec: v1.ProcSpec{Argv: []string{"/bin/true"}}}
	p.SetDefaults()
	if _, err := n.ctl.Create(ctx, []v1.Proc{p}); err != nil {
		t.Fatal(err)
	}
	if second := a.firstWork(); second != nil {
		t.Error("a first-work channel for a table with a proc in it")
	}
	deadline := time.Now().Add(10 * time.Second)
	for deleted := false; n.ctl.Len() != 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("proc p was not deleted")
		}
		if got, err := n.ctl.Get(ctx, "p"); !deleted && err == nil && got.Status.Phase == v1.PhaseSucceeded {
			if _, err := n.ctl.Delete(ctx, "p", v1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			deleted = true
		}
	}

	done := make(chan struct{})
	go func() {
		a.waitModeAgent(ctx, first)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("still waiting for work that has come and gone")
	}
	if st, _ := a.shutdown.State(); st != Done {
		t.Errorf("shutdown state %v, want done", st)
	}
}
