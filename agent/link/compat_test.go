package link

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"procstar.dev/procstar/controller"
	"procstar.dev/procstar/controller/controllertest"
	"procstar.dev/procstar/wire"
)

// nullFd is the fd spec {"null": {}}.
var nullFd = msg{"null": msg{}}

// fdsSpec returns a procstar spec running /bin/true with the fds given
// as name, spec pairs.
func fdsSpec(pairs ...any) msg {
	fds := []any{}
	for i := 0; i+1 < len(pairs); i += 2 {
		fds = append(fds, []any{pairs[i], pairs[i+1]})
	}
	return msg{"argv": []any{"/bin/true"}, "fds": fds}
}

func pipeRead(proc, fd string) msg { return msg{"pipe-read": msg{"proc_id": proc, "fd": fd}} }

// TestStartErrorsAreProcstars: a refused ProcStartRequest gets exactly the
// error procstar reports first, in procstar's order of checks (proc IDs in
// use, then fd names, then pipes, then the shutdown state), bare, one
// failure, never joined with others or prefixed with a field path.
func TestStartErrorsAreProcstars(t *testing.T) {
	srv := newTestServer(t, "")
	ctl := newController(t)
	createProc(t, ctl, "old", "exit 0")
	a := startAgent(t, srv, ctl, nil)
	c := srv.next(t)
	c.register(t)

	check := func(t *testing.T, specs msg, want string) {
		t.Helper()
		req := msg{"type": "ProcStartRequest", "specs": specs}
		c.send(t, req)
		m := c.recvType(t, "RequestError", "ProcResult", "ShutDown")
		if m["err"] != want {
			t.Errorf("err %q, want %q", m["err"], want)
		}
		if got := keys(m); fmt.Sprint(got) != "[err msg type]" {
			t.Errorf("RequestError keys %v", got)
		}
		if echo, _ := m["msg"].(map[string]any); echo["type"] != "ProcStartRequest" || echo["specs"] == nil {
			t.Errorf("msg %v does not echo the request", m["msg"])
		}
	}
	active := []struct {
		name  string
		specs msg
		want  string
	}{
		{"bad fd", msg{"a": fdsSpec("stdpot", nullFd)}, "bad fd: stdpot"},
		{"duplicate fd as written", msg{"a": fdsSpec("stdout", nullFd, "1", nullFd)}, "duplicate fd: 1"},
		{"bad pipe-read fd", msg{"a": fdsSpec("stdin", pipeRead("b", "bogus")), "b": fdsSpec()}, "bad fd: bogus"},
		{"unmatched read pipe", msg{"a": fdsSpec("stdin", pipeRead("b", "stdout"))}, "unmatched read pipe: b stdout"},
		{"unmatched write pipe", msg{"a": fdsSpec("stdout", "pipe-write")}, "unmatched write pipe: a 1"},
		{"first of two", msg{"a": fdsSpec("x", nullFd), "b": fdsSpec("1", nullFd, "1", nullFd)}, "bad fd: x"},
		{"procs in sorted order", msg{"b": fdsSpec("y", nullFd), "a": fdsSpec("2", nullFd, "stderr", nullFd)}, "duplicate fd: stderr"},
		{"fd names before pipes", msg{"a": fdsSpec("stdin", pipeRead("b", "bogus")), "b": fdsSpec("1", nullFd, "stdout", nullFd)}, "duplicate fd: stdout"},
		{"second reader of a pipe", msg{
			"w":  fdsSpec("stdout", "pipe-write"),
			"r1": fdsSpec("stdin", pipeRead("w", "stdout")),
			"r2": fdsSpec("stdin", pipeRead("w", "1")),
		}, "unmatched read pipe: w 1"},
		{"proc id in use before fds", msg{"a": fdsSpec("x", nullFd), "old": fdsSpec("y", nullFd)}, "duplicate proc id: old"},
		{"beyond procstar: one problem, named by proc", msg{"a": msg{"argv": []any{}}, "b": msg{"argv": []any{"x\x00"}}},
			"proc a: argv: must not be empty when exe is not set"},
	}
	for _, tt := range active {
		t.Run(tt.name, func(t *testing.T) { check(t, tt.specs, tt.want) })
	}

	a.shutdown.set(StateIdling)
	idling := []struct {
		name  string
		specs msg
		want  string
	}{
		{"proc id in use before shutting down", msg{"old": fdsSpec(), "z": fdsSpec()}, "duplicate proc id: old"},
		{"fds before shutting down", msg{"a": fdsSpec("q", nullFd)}, "bad fd: q"},
		{"shutting down", msg{"a": fdsSpec()}, "agent shutting down: idling"},
		{"empty batch", msg{}, "agent shutting down: idling"},
	}
	for _, tt := range idling {
		t.Run("idling/"+tt.name, func(t *testing.T) { check(t, tt.specs, tt.want) })
	}
	// Nothing was started.
	c.send(t, msg{"type": "ProcidListRequest"})
	if m := c.recvType(t, "ProcidList", "ProcResult"); fmt.Sprint(m["proc_ids"]) != "[old]" {
		t.Errorf("procs after refused batches: %v", m["proc_ids"])
	}
}

// TestSignalZeroProbes: signal 0 is procstar's kill(pid, 0): no reply
// while the process is there, "no process" once it has been reaped, and
// ProcUnknown for an unknown proc. Out-of-range signals are refused.
func TestSignalZeroProbes(t *testing.T) {
	_, c, _ := started(t, "", nil)
	c.send(t, msg{"type": "ProcStartRequest", "specs": msg{"run": spec("exec sleep 30"), "done": spec("true")}})
	seen := map[string]bool{}
	for !seen["run"] || !seen["done"] {
		m := c.recvType(t, "ProcResult")
		if id := m["proc_id"].(string); id == "run" || m["res"].(map[string]any)["state"] == "terminated" {
			seen[id] = true
		}
	}
	// Requests are answered in order: the list answers first, so signal
	// 0 had no reply.
	c.send(t, msg{"type": "ProcSignalRequest", "proc_id": "run", "signum": 0})
	c.send(t, msg{"type": "ProcidListRequest"})
	if m := c.recvType(t, "ProcidList", "ProcResult"); fmt.Sprint(m["proc_ids"]) != "[done run]" {
		t.Errorf("list %v", m["proc_ids"])
	}
	for _, tt := range []struct {
		req     msg
		typ     string
		err     string
		errPart string
	}{
		{msg{"type": "ProcSignalRequest", "proc_id": "done", "signum": 0}, "RequestError", "no process", ""},
		{msg{"type": "ProcSignalRequest", "proc_id": "nope", "signum": 0}, "ProcUnknown", "", ""},
		{msg{"type": "ProcSignalRequest", "proc_id": "run", "signum": 99}, "RequestError", "", "99"},
		{msg{"type": "ProcSignalRequest", "proc_id": "run", "signum": -1}, "RequestError", "", "-1"},
	} {
		c.send(t, tt.req)
		m := c.recvType(t, tt.typ, "ProcResult")
		if tt.err != "" && m["err"] != tt.err {
			t.Errorf("%v: err %q, want %q", tt.req, m["err"], tt.err)
		}
		if tt.errPart != "" && !strings.Contains(fmt.Sprint(m["err"]), tt.errPart) {
			t.Errorf("%v: err %q, want it to mention %s", tt.req, m["err"], tt.errPart)
		}
	}
	// run is untouched by all that.
	c.send(t, msg{"type": "ProcResultRequest", "proc_id": "run"})
	if m := c.recvType(t, "ProcResult"); m["proc_id"] != "run" || m["res"].(map[string]any)["state"] != "running" {
		t.Errorf("run: %v", brief(m))
	}
	c.send(t, msg{"type": "ProcSignalRequest", "proc_id": "run", "signum": 9})
	for {
		m := c.recvType(t, "ProcResult")
		if m["proc_id"] == "run" && m["res"].(map[string]any)["state"] == "terminated" {
			break
		}
	}
}

// TestFdDataWithoutStop: a ProcFdDataRequest without "stop" reads to the
// end, as procstar's serde Option does; "start" stays required.
func TestFdDataWithoutStop(t *testing.T) {
	_, c, _ := started(t, "", nil)
	c.send(t, msg{"type": "ProcStartRequest", "specs": msg{"p": spec("printf 0123456789")}})
	for {
		m := c.recvType(t, "ProcResult")
		if m["res"].(map[string]any)["state"] == "terminated" {
			break
		}
	}
	c.send(t, msg{"type": "ProcFdDataRequest", "proc_id": "p", "fd": "stdout", "start": 4})
	m := c.recvType(t, "ProcFdData", "ProcResult")
	if string(m["data"].([]byte)) != "456789" || asInt(m["start"]) != 4 || asInt(m["stop"]) != 10 {
		t.Errorf("without stop: %v", brief(m))
	}
	c.send(t, msg{"type": "ProcFdDataRequest", "proc_id": "p", "fd": "stdout", "stop": 3})
	m = c.recvType(t, "RequestError", "ProcResult")
	if !strings.Contains(fmt.Sprint(m["err"]), `missing field "start"`) {
		t.Errorf("without start: %v", brief(m))
	}
}

// TestDialIgnoresProxy: the agent connects directly, as procstar does,
// whatever HTTP(S)_PROXY says. The server's name does not resolve, so a
// direct dial fails at once; a dial through the proxy would send the
// proxy a CONNECT, which the proxy records before it hangs up (so before
// Dial returns).
func TestDialIgnoresProxy(t *testing.T) {
	if d := newDialer(Config{}, nil); d.Proxy != nil {
		t.Error("the dialer has a proxy function")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		line, _ := bufio.NewReader(conn).ReadString('\n')
		got <- strings.TrimSpace(line)
		conn.Close()
	}()
	proxy := "http://" + ln.Addr().String()
	for _, k := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"} {
		t.Setenv(k, proxy)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	for _, u := range []string{"wss://procstar-server.invalid:59789/", "ws://procstar-server.invalid:59789/"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, _, err := Dial(ctx, Config{URL: u, RegisterTimeout: 5 * time.Second})
		cancel()
		if err == nil {
			t.Errorf("%s: dial succeeded", u)
		}
	}
	ln.Close()
	<-done
	select {
	case line := <-got:
		t.Errorf("the dial went through the proxy: %q", line)
	default:
	}
}

// stallingBackend blocks the pusher in Result of one proc until released.
type stallingBackend struct {
	*controller.Controller
	name    string
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *stallingBackend) Result(ctx context.Context, name string) (wire.ProcRes, error) {
	if name == b.name {
		b.once.Do(func() { close(b.entered) })
		select {
		case <-b.release:
		case <-ctx.Done():
		}
	}
	return b.Controller.Result(ctx, name)
}

// TestRecreatedAcrossWatchGap: a proc deleted and created again under the
// same name while the pusher's watch fell behind the history is another
// proc: after the resync the server gets ProcDelete for the old one, then
// the new one's results.
func TestRecreatedAcrossWatchGap(t *testing.T) {
	ctl := controllertest.New(t, controller.Options{HistorySize: 8})

	srv := newTestServer(t, "")
	b := &stallingBackend{Controller: ctl, name: "gate", entered: make(chan struct{}), release: make(chan struct{})}
	released := false
	release := func() {
		if !released {
			released = true
			close(b.release)
		}
	}
	t.Cleanup(release)
	c := runLink(t, srv, b)
	c.register(t)

	// x's first and final results (the first may already say terminated).
	createProc(t, ctl, "x", "exit 0")
	for range 2 {
		if m := c.recvType(t, "ProcResult"); m["proc_id"] != "x" {
			t.Fatalf("got %v, want a result of x", brief(m))
		}
	}
	// Stall the pusher, and make more changes than its watch can hold.
	createProc(t, ctl, "gate", "exit 0")
	select {
	case <-b.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the pusher did not read gate's result")
	}
	const fillers = 60
	for i := range fillers {
		createProc(t, ctl, fmt.Sprintf("f%02d", i), "exit 0")
	}
	deleteExited(t, ctl, "x")
	createProc(t, ctl, "x", "exit 0")
	release()

	// Once every filler has been announced and then a later proc too, the
	// resync is over.
	var xs []string
	record := func(m msg) {
		if m["proc_id"] == "x" {
			xs = append(xs, fmt.Sprint(m["type"]))
		}
	}
	seen := map[string]bool{}
	for i := 0; len(seen) < fillers+1; i++ {
		if i > 20*fillers {
			t.Fatalf("only %d of the procs announced", len(seen))
		}
		m := c.recv(t)
		record(m)
		if id := fmt.Sprint(m["proc_id"]); m["type"] == "ProcResult" && (id == "gate" || strings.HasPrefix(id, "f")) {
			seen[id] = true
		}
	}
	createProc(t, ctl, "z", "exit 0")
	for i := 0; ; i++ {
		if i > 20*fillers {
			t.Fatal("no result of z")
		}
		m := c.recv(t)
		record(m)
		if m["proc_id"] == "z" {
			break
		}
	}
	if len(xs) < 2 || xs[0] != "ProcDelete" || xs[1] != "ProcResult" {
		t.Errorf("messages about x after the gap: %v, want ProcDelete then ProcResult", xs)
	}
}

// heldResult holds the first reply to a ProcResultRequest of proc p that
// reads "running": it kills p, then holds the reply until the server has
// seen a pushed final result of p, or for at most a second (as a preempted
// reader would be held).
type heldResult struct {
	*controller.Controller
	armed    atomic.Bool
	sawFinal chan struct{}
	killed   chan error
}

func (h *heldResult) Result(ctx context.Context, name string) (wire.ProcRes, error) {
	r, err := h.Controller.Result(ctx, name)
	if err == nil && name == "p" && r.State == "running" && h.armed.CompareAndSwap(true, false) {
		h.killed <- h.Controller.Signal(ctx, "p", 9, false)
		select {
		case <-h.sawFinal:
		case <-time.After(time.Second):
		}
	}
	return r, err
}

// TestReplyNeverOlderThanPush: a ProcResultRequest answered while the
// proc ends never reaches the server after the pushed final result: the
// server sees running, then terminated, not the other way round.
func TestReplyNeverOlderThanPush(t *testing.T) {
	srv := newTestServer(t, "")
	ctl := newController(t)
	h := &heldResult{Controller: ctl, sawFinal: make(chan struct{}), killed: make(chan error, 1)}
	c := runLink(t, srv, h)
	c.register(t)
	c.send(t, msg{"type": "ProcStartRequest", "specs": msg{"p": spec("exec sleep 30")}})
	if m := c.recvType(t, "ProcResult"); m["res"].(map[string]any)["state"] != "running" {
		t.Fatalf("first result %v", brief(m))
	}
	h.armed.Store(true)
	c.send(t, msg{"type": "ProcResultRequest", "proc_id": "p"})
	var states []string
	for len(states) < 2 {
		m := c.recvType(t, "ProcResult")
		st := fmt.Sprint(m["res"].(map[string]any)["state"])
		states = append(states, st)
		if st == "terminated" && len(states) == 1 {
			close(h.sawFinal)
		}
	}
	if err := <-h.killed; err != nil {
		t.Fatal(err)
	}
	if states[0] != "running" || states[1] != "terminated" {
		t.Errorf("server saw %v, want [running terminated]", states)
	}
}

// TestWriteTimeoutScales: a large frame gets time for a slow link beyond
// WriteTimeout; a small one gets WriteTimeout.
func TestWriteTimeoutScales(t *testing.T) {
	if d := writeTimeout(time.Minute, 100); d >= time.Minute+time.Millisecond {
		t.Errorf("small frame: %v", d)
	}
	if d := writeTimeout(time.Minute, 64<<20); d != time.Minute+256*time.Second {
		t.Errorf("64 MiB frame: %v", d)
	}
}
