package e2e_test

// End-to-end tests of procstar --agent (issue 4): the real agent, as the
// built binary and in process through agent.Run, driven over a real
// WebSocket by test/fakecontrol, a fake of procstar 0.7.5's Python control
// plane. Every test ends by checking that the fake saw no protocol
// violation: the agent spoke exactly what the Python server accepts.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/gorilla/websocket"

	"procstar.dev/procstar/agent"
	"procstar.dev/procstar/test/fakecontrol"
	"procstar.dev/procstar/wire"
)

// linkAgent is procstar --agent running as the built binary.
type linkAgent struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	code   int
}

func startLinkAgent(t *testing.T, env []string, args ...string) *linkAgent {
	t.Helper()
	cmd := exec.Command(procstarBin, args...)
	cmd.Env = append(os.Environ(), env...)
	a := &linkAgent{t: t, cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = a.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			a.code = ee.ExitCode()
		} else if err != nil {
			a.code = -1
		}
		close(a.done)
	}()
	t.Cleanup(func() {
		select {
		case <-a.done:
		default:
			// SIGQUIT lets the agent clean up (its cgroup root); SIGKILL
			// only if it hangs.
			_ = cmd.Process.Signal(syscall.SIGQUIT)
			select {
			case <-a.done:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-a.done
			}
		}
		if t.Failed() {
			t.Logf("agent stderr:\n%s", a.stderr.String())
		}
	})
	return a
}

// wait waits for the agent to exit and returns its exit code.
func (a *linkAgent) wait(d time.Duration) int {
	a.t.Helper()
	select {
	case <-a.done:
		return a.code
	case <-time.After(d):
		a.t.Fatalf("agent still running after %v; stderr:\n%s", d, a.stderr.String())
	}
	return -1
}

func (a *linkAgent) running() bool {
	select {
	case <-a.done:
		return false
	default:
		return true
	}
}

// linkArgs are the flags every binary test uses: a ws:// URL, a fixed
// conn ID, quick reconnects and a short delete grace, so that the SIGQUIT
// at the end of a test stops the agent quickly (a later --delete-grace in
// extra wins).
func linkArgs(srv *fakecontrol.Server, connID string, extra ...string) []string {
	return append([]string{"--agent", "--agent-url", srv.URL(), "--conn-id", connID,
		"--connect-interval-start", "0.05", "--connect-interval-max", "0.2", "--log-level", "info",
		"--delete-grace", "200ms"}, extra...)
}

func newFake(t *testing.T, opts fakecontrol.Options) *fakecontrol.Server {
	t.Helper()
	if opts.PingInterval == 0 {
		opts.PingInterval = 200 * time.Millisecond
	}
	srv, err := fakecontrol.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		for _, v := range srv.Violations() {
			t.Errorf("protocol violation: %v", v)
		}
	})
	return srv
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// spec parses a procstar JSON spec into the map a Python client sends.
func spec(t *testing.T, js string) map[string]any {
	t.Helper()
	m, err := fakecontrol.JSONMap([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func start(t *testing.T, ctx context.Context, srv *fakecontrol.Server, group, id, js string) *fakecontrol.Process {
	t.Helper()
	ps, err := srv.StartRaw(ctx, group, map[string]any{id: spec(t, js)})
	if err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return ps[0]
}

func exitCode(t *testing.T, res map[string]any) any {
	t.Helper()
	st, ok := res["status"].(map[string]any)
	if !ok {
		t.Fatalf("no status in %v", res)
	}
	return st["exit_code"]
}

const letters = "abcdefghijklmnopqrstuvwxyz"

func TestLinkRequests(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakecontrol.Options{Token: "s3cret"})
	a := startLinkAgent(t, []string{"PROCSTAR_AGENT_TOKEN=s3cret"}, linkArgs(srv, "req", "--group-id", "g1")...)
	ctx := ctxFor(t, 40*time.Second)
	c, err := srv.WaitConn(ctx, "req")
	if err != nil {
		t.Fatal(err)
	}
	if c.GroupID != "g1" || c.Register.Proc.Pid != a.cmd.Process.Pid || c.Register.ProcIDs == nil ||
		len(c.Register.ProcIDs) != 0 || c.ShutdownState != "active" || len(c.Extensions) != 0 {
		t.Errorf("register = %+v", c)
	}

	t.Run("ping after registering", func(t *testing.T) {
		// The agent pings right after Registered (then every 20 s).
		deadline := time.Now().Add(2 * time.Second)
		for {
			c, _ := srv.Conn("req")
			if c.Pings > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no ping from the agent within 2 s of registering")
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("start and result", func(t *testing.T) {
		p := start(t, ctx, srv, "g1", "exit3", `{"argv": ["/bin/sh", "-c", "echo hello; exit 3"],
			"fds": [["stdout", {"capture": {"mode": "memory", "encoding": "utf-8"}}]]}`)
		if st := p.First()["state"]; st != "running" && st != "terminated" {
			t.Errorf("first state = %v", st)
		}
		res, err := p.WaitState(ctx, "terminated")
		if err != nil {
			t.Fatal(err)
		}
		if exitCode(t, res) != int64(3) {
			t.Errorf("exit code = %v", exitCode(t, res))
		}
		if out := res["fds"].(map[string]any)["stdout"].(map[string]any); out["text"] != "hello\n" {
			t.Errorf("stdout = %v", out)
		}
		if _, err := fakecontrol.ProcRes(res); err != nil {
			t.Errorf("result is not a procstar result: %v", err)
		}
		if err := p.RequestResult(); err != nil {
			t.Fatal(err)
		}
		if res, err := p.NextResult(ctx); err != nil || res["state"] != "terminated" {
			t.Errorf("requested result = %v, %v", res, err)
		}
	})

	t.Run("apsis systemd properties", func(t *testing.T) {
		// Apsis sends these for every job. procstar ignores them where it
		// has no systemd, so the agent runs the proc whatever it can
		// enforce (here a cgroup v2 subtree with no memory or pids
		// controller, or a host with both).
		p := start(t, ctx, srv, "g1", "apsis", `{"argv": ["/bin/true"], "systemd_properties": {"slice":
			{"tasks_accounting": true, "memory_accounting": true, "memory_max": 1073741824, "memory_swap_max": 0}}}`)
		res, err := p.WaitState(ctx, "terminated")
		if err != nil {
			t.Fatal(err)
		}
		if exitCode(t, res) != int64(0) {
			t.Errorf("exit code = %v", exitCode(t, res))
		}
		if err := p.Delete(ctx); err != nil {
			t.Error(err)
		}
	})

	t.Run("exec failure", func(t *testing.T) {
		// As procstar's: state error, one error string, exit code 63, and
		// every result of the proc with the same start time. Apsis reads
		// status.exit_code of any result that is not running.
		p := start(t, ctx, srv, "g1", "noexe", `{"argv": ["/nonexistent/x"]}`)
		first := p.First()
		res, err := p.WaitState(ctx, "error")
		if err != nil {
			t.Fatal(err)
		}
		if errs, _ := res["errors"].([]any); len(errs) != 1 || errs[0] != "execve failed: /nonexistent/x: No such file or directory (os error 2)" {
			t.Errorf("errors = %v", res["errors"])
		}
		if exitCode(t, res) != int64(63) {
			t.Errorf("exit code = %v", exitCode(t, res))
		}
		if res["rusage"] == nil {
			t.Error("no rusage")
		}
		if err := p.RequestResult(); err != nil {
			t.Fatal(err)
		}
		again, err := p.NextResult(ctx)
		if err != nil {
			t.Fatal(err)
		}
		start := func(r map[string]any) any { return r["times"].(map[string]any)["start"] }
		if start(first) != start(res) || start(res) != start(again) {
			t.Errorf("start times differ: %v, %v, %v", start(first), start(res), start(again))
		}
		if _, err := fakecontrol.ProcRes(again); err != nil {
			t.Errorf("result is not a procstar result: %v", err)
		}
		if err := p.Delete(ctx); err != nil {
			t.Error(err)
		}
	})

	t.Run("signal", func(t *testing.T) {
		p := start(t, ctx, srv, "g1", "sleeper", `{"argv": ["/bin/sleep", "30"]}`)
		if err := p.Signal(int(syscall.SIGTERM)); err != nil {
			t.Fatal(err)
		}
		res, err := p.WaitState(ctx, "terminated")
		if err != nil {
			t.Fatal(err)
		}
		if st := res["status"].(map[string]any); st["signum"] != int64(15) || st["signal"] != "SIGTERM" {
			t.Errorf("status = %v", st)
		}
	})

	t.Run("fd data", func(t *testing.T) {
		p := start(t, ctx, srv, "g1", "letters", `{"argv": ["/bin/printf", "`+letters+`"],
			"fds": [["stdout", {"capture": {"mode": "tempfile", "encoding": "utf-8", "attached": false}}]]}`)
		if _, err := p.WaitState(ctx, "terminated"); err != nil {
			t.Fatal(err)
		}
		i64 := func(v int64) *int64 { return &v }
		tests := []struct {
			name        string
			start       int64
			stop        *int64
			want        string
			wantStop    int64
			wantClamped bool
		}{
			{"zero bytes", 0, i64(0), "", 0, false},
			{"mid-range", 5, i64(10), "fghij", 10, false},
			{"to the end", 20, nil, "uvwxyz", 26, false},
			{"past the end", 20, i64(100), "uvwxyz", 26, true},
			{"start past the end", 100, i64(200), "", 100, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				d, err := p.FdData(ctx, "stdout", tt.start, tt.stop)
				if err != nil {
					t.Fatal(err)
				}
				if string(d.Data) != tt.want || d.Encoding == nil || *d.Encoding != "utf-8" {
					t.Errorf("data = %q (encoding %v), want %q", d.Data, d.Encoding, tt.want)
				}
				if d.Stop != d.Start+int64(len(d.Data)) {
					t.Errorf("stop %d != start %d + %d", d.Stop, d.Start, len(d.Data))
				}
				if !tt.wantClamped && d.Stop != tt.wantStop {
					t.Errorf("stop = %d, want %d", d.Stop, tt.wantStop)
				}
			})
		}
		// An fd that is not in the spec is a RequestError, not a crash.
		if _, err := p.FdData(ctx, "stderr", 0, nil); err == nil {
			t.Error("fd data of an fd not in the spec succeeded")
		}
	})

	t.Run("fd data 64 MiB", func(t *testing.T) {
		const size = 64 << 20
		p := start(t, ctx, srv, "g1", "big", fmt.Sprintf(`{"argv": ["/bin/sh", "-c", "yes 0123456789abcde | head -c %d"],
			"fds": [["stdout", {"capture": {"mode": "tempfile", "encoding": null, "attached": false}}]]}`, size))
		if _, err := p.WaitState(ctx, "terminated"); err != nil {
			t.Fatal(err)
		}
		d, err := p.FdData(ctx, "stdout", 0, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Data) != size || d.Stop != size || d.Encoding != nil {
			t.Fatalf("got %d bytes, stop %d, encoding %v", len(d.Data), d.Stop, d.Encoding)
		}
		if !bytes.Equal(d.Data, bytes.Repeat([]byte("0123456789abcde\n"), size/16)) {
			t.Error("64 MiB data differs")
		}
	})

	t.Run("delete", func(t *testing.T) {
		p := start(t, ctx, srv, "g1", "del", `{"argv": ["/bin/sleep", "30"]}`)
		var ae *fakecontrol.AgentError
		if err := p.Delete(ctx); !errors.As(err, &ae) || ae.Err != "process running: del" || ae.Msg["type"] != "ProcDeleteRequest" {
			t.Fatalf("delete of a running proc: %v", err)
		}
		_ = p.Signal(int(syscall.SIGKILL))
		if _, err := p.WaitState(ctx, "terminated"); err != nil {
			t.Fatal(err)
		}
		if err := p.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		// The agent no longer knows it.
		if err := srv.Send("req", "ProcResultRequest", map[string]any{"proc_id": "del"}); err != nil {
			t.Fatal(err)
		}
		if m, err := srv.NextMessage(ctx, "req"); err != nil || m.Type != "ProcUnknown" || m.Fields["proc_id"] != "del" {
			t.Fatalf("after delete: %+v, %v", m, err)
		}
	})

	t.Run("list", func(t *testing.T) {
		ids, err := srv.ProcidList(ctx, "req")
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"big", "exit3", "letters", "sleeper"}
		if strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Errorf("proc ids = %v, want %v", ids, want)
		}
	})

	t.Run("unknown proc", func(t *testing.T) {
		for _, typ := range []string{"ProcSignalRequest", "ProcDeleteRequest", "ProcResultRequest"} {
			fields := map[string]any{"proc_id": "nope"}
			if typ == "ProcSignalRequest" {
				fields["signum"] = 15
			}
			if err := srv.Send("req", typ, fields); err != nil {
				t.Fatal(err)
			}
			if m, err := srv.NextMessage(ctx, "req"); err != nil || m.Type != "ProcUnknown" || m.Fields["proc_id"] != "nope" {
				t.Errorf("%s for an unknown proc: %+v, %v", typ, m, err)
			}
		}
	})

	t.Run("bad start", func(t *testing.T) {
		// A bad spec in a batch fails the whole batch: nothing starts.
		_, err := srv.StartRaw(ctx, "g1", map[string]any{
			"good": spec(t, `{"argv": ["/bin/true"]}`),
			"bad":  spec(t, `{"argv": ["/bin/true"], "fds": [["stdout", {"bogus": {}}]]}`),
		})
		var ae *fakecontrol.AgentError
		if !errors.As(err, &ae) || ae.Msg["type"] != "ProcStartRequest" {
			t.Fatalf("bad batch: %v", err)
		}
		ids, err := srv.ProcidList(ctx, "req")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if id == "good" || id == "bad" {
				t.Errorf("half-started batch: %v", ids)
			}
		}
	})

	t.Run("malformed and unknown messages", func(t *testing.T) {
		bogus := []struct {
			name      string
			frameType int
			data      []byte
			wantError bool // a RequestError comes back
		}{
			{"not msgpack", websocket.BinaryMessage, []byte{0xc1, 0xff}, false},
			{"not a map", websocket.BinaryMessage, []byte{0x93, 1, 2, 3}, false},
			{"map without type", websocket.BinaryMessage, []byte{0x81, 0xa1, 'x', 0x01}, false},
			{"text frame", websocket.TextMessage, []byte(`{"type": "ProcidListRequest"}`), false},
			{"unknown type", websocket.BinaryMessage, pack(t, map[string]any{"type": "Bogus", "proc_id": "x"}), true},
			{"missing field", websocket.BinaryMessage, pack(t, map[string]any{"type": "ProcResultRequest"}), true},
			{"wrong field type", websocket.BinaryMessage, pack(t, map[string]any{"type": "ProcSignalRequest", "proc_id": "x", "signum": "TERM"}), true},
			{"extra field", websocket.BinaryMessage, pack(t, map[string]any{"type": "ProcidListRequest", "x": 1}), true},
			{"Registered again", websocket.BinaryMessage, pack(t, map[string]any{"type": "Registered"}), true},
			{"bad spec", websocket.BinaryMessage, pack(t, map[string]any{"type": "ProcStartRequest", "specs": map[string]any{"q": map[string]any{"argv": 5}}}), true},
		}
		for _, tt := range bogus {
			t.Run(tt.name, func(t *testing.T) {
				if err := srv.SendFrame("req", tt.frameType, tt.data); err != nil {
					t.Fatal(err)
				}
				if tt.wantError {
					m, err := srv.NextMessage(ctx, "req")
					if err != nil || m.Type != "RequestError" {
						t.Fatalf("got %+v, %v; want a RequestError", m, err)
					}
					if msg, _ := m.Fields["msg"].(map[string]any); msg["type"] == nil {
						t.Errorf("RequestError.msg lacks the type: %v", m.Fields)
					}
				}
				// The agent stays up, on the same connection.
				if _, err := srv.ProcidList(ctx, "req"); err != nil {
					t.Fatal(err)
				}
				if c, _ := srv.Conn("req"); c.NumConnections != 1 || !c.Open {
					t.Errorf("conn = %+v", c)
				}
			})
		}
		if !a.running() {
			t.Fatal("agent exited")
		}
	})
}

func pack(t *testing.T, m map[string]any) []byte {
	t.Helper()
	b, err := msgpackMarshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestLinkWrongTokenBackoff(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakecontrol.Options{Token: "right"})
	sub := srv.Subscribe()
	defer sub.Close()
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("wrong\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startLinkAgent(t, nil, "--agent", "--agent-url", srv.URL(), "--conn-id", "tok", "--agent-token-file", tokenFile,
		"--connect-interval-start", "0.2", "--connect-interval-mult", "2", "--connect-interval-max", "0.5", "--connect-count-max", "4")
	ctx := ctxFor(t, 30*time.Second)
	var times []time.Time
	for range 4 {
		e, err := sub.Wait(ctx, fakecontrol.EventDenied)
		if err != nil {
			t.Fatal(err)
		}
		times = append(times, e.Time)
	}
	if code := a.wait(10 * time.Second); code != 1 {
		t.Errorf("exit code %d, want 1", code)
	}
	if !strings.Contains(a.stderr.String(), "websocket connection failed") {
		t.Errorf("stderr lacks the failure: %s", a.stderr.String())
	}
	// The agent logs each wait it chose: 0.2, 0.4 and 0.5 s (the max),
	// each within ±20% jitter. The attempts came no sooner than that; how
	// much later depends on the machine's load, so that is not checked.
	m := regexp.MustCompile(`"failures": (\d), "retryIn": "([^"]+)"`).FindAllStringSubmatch(a.stderr.String(), -1)
	if len(m) != 3 {
		t.Fatalf("want 3 logged waits, got %q", m)
	}
	for i, want := range []time.Duration{200, 400, 500} {
		want *= time.Millisecond
		wait, err := time.ParseDuration(m[i][2])
		if err != nil || m[i][1] != strconv.Itoa(i+1) || wait < want*8/10 || wait > want*12/10 {
			t.Errorf("failure %s: wait %s, want %v ±20%%", m[i][1], m[i][2], want)
		}
		if gap := times[i+1].Sub(times[i]); gap < wait-20*time.Millisecond {
			t.Errorf("attempt %d came %v after the previous, before its wait of %v", i+2, gap, wait)
		}
	}
	if len(srv.Conns()) != 0 {
		t.Errorf("a denied agent is tracked: %v", srv.Conns())
	}
}

func TestLinkConnectCountMax(t *testing.T) {
	t.Parallel()
	// Nothing listens on a port we just closed.
	srv := newFake(t, fakecontrol.Options{})
	url := srv.URL()
	srv.Stop()
	for _, tc := range []struct {
		max      string
		failures int
	}{{"3", 3}, {"1", 1}, {"0", 1}} { // procstar: failures >= max, so 0 acts as 1
		// A wait of 0 is procstar's "retry at once".
		a := startLinkAgent(t, nil, "--agent", "--agent-url", url, "--connect-interval-start", "0", "--connect-count-max", tc.max)
		if code := a.wait(20 * time.Second); code != 1 {
			t.Errorf("max %s: exit code %d, want 1; stderr: %s", tc.max, code, a.stderr.String())
		}
		if n := strings.Count(a.stderr.String(), "connection attempt failed"); n != tc.failures-1 {
			t.Errorf("max %s: %d failures logged before the last, want %d; stderr: %s", tc.max, n, tc.failures-1, a.stderr.String())
		}
	}
}

func TestLinkServerRestart(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakecontrol.Options{})
	startLinkAgent(t, nil, linkArgs(srv, "rs")...)
	ctx := ctxFor(t, 30*time.Second)
	if _, err := srv.WaitConn(ctx, "rs"); err != nil {
		t.Fatal(err)
	}
	long := start(t, ctx, srv, "default", "long", `{"argv": ["/bin/sleep", "30"]}`)
	short := start(t, ctx, srv, "default", "short", `{"argv": ["/bin/sh", "-c", "sleep 0.3; exit 7"]}`)
	pid := long.First()["pid"]

	srv.Stop()
	time.Sleep(800 * time.Millisecond) // short finishes while disconnected
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	c, err := srv.WaitFor(ctx, "rs", func(c fakecontrol.Conn, ok bool) bool { return ok && c.Open && c.NumConnections >= 2 })
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.Register.ProcIDs, ",") != "long,short" {
		t.Errorf("re-registered with proc ids %v", c.Register.ProcIDs)
	}
	// Reconciliation asked for both results: the short one's is final.
	res, err := short.WaitState(ctx, "terminated")
	if err != nil {
		t.Fatal(err)
	}
	if exitCode(t, res) != int64(7) {
		t.Errorf("short exit code = %v", exitCode(t, res))
	}
	res, err = long.NextResult(ctx)
	if err != nil || res["state"] != "running" || res["pid"] != pid {
		t.Fatalf("long after reconnect = %v, %v (pid was %v)", res, err, pid)
	}
	_ = long.Signal(int(syscall.SIGKILL))
	if _, err := long.WaitState(ctx, "terminated"); err != nil {
		t.Fatal(err)
	}
}

func TestLinkReadTimeout(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakecontrol.Options{PingInterval: 50 * time.Millisecond})
	sub := srv.Subscribe()
	defer sub.Close()
	// The timeout is 40 ping intervals: a loaded CI machine can starve a
	// ping round trip for several hundred milliseconds.
	startLinkAgent(t, nil, linkArgs(srv, "rt", "--agent-read-timeout", "2")...)
	ctx := ctxFor(t, 30*time.Second)
	if _, err := srv.WaitConn(ctx, "rt"); err != nil {
		t.Fatal(err)
	}
	// Pings keep a quiet connection alive past the read timeout.
	time.Sleep(3 * time.Second)
	if c, _ := srv.Conn("rt"); c.NumConnections != 1 || !c.Open {
		t.Fatalf("the agent reconnected while the server pinged: %+v", c)
	}
	stalled := time.Now()
	srv.SetStalled(true)
	e, err := sub.Wait(ctx, fakecontrol.EventClose)
	srv.SetStalled(false)
	if err != nil {
		t.Fatal(err)
	}
	// The timeout counts from the last ping the agent read, which on a
	// loaded machine can be a few hundred milliseconds before the stall.
	if d := e.Time.Sub(stalled); d < time.Second || d > 10*time.Second {
		t.Errorf("the agent dropped the silent connection after %v, want about 2 s", d)
	}
	// It reconnects. On a loaded machine the server can see the close
	// late, still stalled for the new connection, which then times out
	// too: more than one reconnect is no failure.
	if _, err := srv.WaitFor(ctx, "rt", func(c fakecontrol.Conn, ok bool) bool { return ok && c.Open && c.NumConnections >= 2 }); err != nil {
		t.Fatal(err)
	}
}

func TestLinkWait(t *testing.T) {
	t.Parallel()
	t.Run("timeout without work", func(t *testing.T) {
		t.Parallel()
		srv := newFake(t, fakecontrol.Options{})
		sub := srv.Subscribe()
		defer sub.Close()
		begin := time.Now()
		a := startLinkAgent(t, nil, linkArgs(srv, "w1", "--wait", "--wait-timeout", "1")...)
		if code := a.wait(20 * time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}
		if d := time.Since(begin); d < time.Second {
			t.Errorf("exited after %v, before the wait timeout", d)
		}
		e, err := sub.Wait(ctxFor(t, 5*time.Second), fakecontrol.EventShutDown)
		if err != nil || e.State != "done" {
			t.Fatalf("shutdown event = %+v, %v", e, err)
		}
		if _, err := sub.Wait(ctxFor(t, 5*time.Second), fakecontrol.EventRemove); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(a.stderr.String(), "no work assigned after 1 seconds") {
			t.Errorf("stderr: %s", a.stderr.String())
		}
	})
	t.Run("exit after work is deleted", func(t *testing.T) {
		t.Parallel()
		srv := newFake(t, fakecontrol.Options{})
		a := startLinkAgent(t, nil, linkArgs(srv, "w2", "--wait", "--wait-timeout", "30")...)
		ctx := ctxFor(t, 30*time.Second)
		p := start(t, ctx, srv, "default", "job", `{"argv": ["/bin/sh", "-c", "sleep 0.2"]}`)
		if _, err := p.WaitState(ctx, "terminated"); err != nil {
			t.Fatal(err)
		}
		if !a.running() {
			t.Fatal("agent exited before the proc was deleted")
		}
		if err := p.Delete(ctx); err != nil {
			t.Fatal(err)
		}
		if code := a.wait(10 * time.Second); code != 0 {
			t.Errorf("exit code %d", code)
		}
		if _, err := srv.WaitFor(ctx, "w2", func(c fakecontrol.Conn, ok bool) bool { return !ok }); err != nil {
			t.Error(err)
		}
	})
}

func TestLinkSIGUSR1Drain(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakecontrol.Options{ReconnectTimeout: time.Minute})
	sub := srv.Subscribe()
	defer sub.Close()
	a := startLinkAgent(t, nil, linkArgs(srv, "drain")...)
	ctx := ctxFor(t, 30*time.Second)
	p := start(t, ctx, srv, "default", "job", `{"argv": ["/bin/sh", "-c", "sleep 0.3"]}`)
	if err := a.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	if e, err := sub.Wait(ctx, fakecontrol.EventShutDown); err != nil || e.State != "idling" {
		t.Fatalf("event = %+v, %v", e, err)
	}
	// No new work: the server will not choose it, and a start sent anyway
	// is refused.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err := srv.StartRaw(short, "default", map[string]any{"new": spec(t, `{"argv": ["/bin/true"]}`)})
	cancel()
	if !errors.Is(err, fakecontrol.ErrNoOpenConnection) {
		t.Errorf("start on an idling agent: %v", err)
	}
	if err := srv.Send("drain", "ProcStartRequest", map[string]any{"specs": map[string]any{"new": spec(t, `{"argv": ["/bin/true"]}`)}}); err != nil {
		t.Fatal(err)
	}
	if m, err := srv.NextMessage(ctx, "drain"); err != nil || m.Type != "RequestError" || !strings.Contains(fmt.Sprint(m.Fields["err"]), "idling") {
		t.Errorf("start while idling: %+v, %v", m, err)
	}
	// The running proc finishes and can be collected, then the agent is done.
	if _, err := p.WaitState(ctx, "terminated"); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if e, err := sub.Wait(ctx, fakecontrol.EventShutDown); err != nil || e.State != "done" {
		t.Fatalf("event = %+v, %v", e, err)
	}
	if code := a.wait(10 * time.Second); code != 0 {
		t.Errorf("exit code %d", code)
	}
	// Done: dropped at once, no reconnect timer, no reconnect.
	if _, err := sub.Wait(ctx, fakecontrol.EventRemove); err != nil {
		t.Fatal(err)
	}
}

func TestLinkThousandProcs(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakecontrol.Options{})
	a := startLinkAgent(t, nil, linkArgs(srv, "many")...)
	ctx := ctxFor(t, 50*time.Second)
	if _, err := srv.WaitConn(ctx, "many"); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	specs := make(map[string]any, n)
	for i := range n {
		specs[fmt.Sprintf("p%04d", i)] = spec(t, `{"argv": ["/bin/true"]}`)
	}
	ps, err := srv.StartRaw(ctx, "default", specs)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != n {
		t.Fatalf("%d procs", len(ps))
	}
	for _, p := range ps {
		res, err := p.WaitState(ctx, "terminated")
		if err != nil {
			t.Fatal(err)
		}
		if exitCode(t, res) != int64(0) {
			t.Fatalf("%s: %v", p.ID(), res)
		}
	}
	ids, err := srv.ProcidList(ctx, "many")
	if err != nil || len(ids) != n {
		t.Fatalf("proc ids: %d, %v", len(ids), err)
	}
	if !a.running() {
		t.Fatal("agent exited")
	}
	c, _ := srv.Conn("many")
	t.Logf("1000 procs over %d connection(s)", c.NumConnections)
}

func TestLinkTLS(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakecontrol.Options{TLS: true, Token: "t"})
	port := fmt.Sprint(srv.Port())
	t.Run("trusted", func(t *testing.T) {
		// procstar's own way: wss://HOST:PORT/ with the cert as an extra root.
		startLinkAgent(t, []string{"PROCSTAR_AGENT_CERT=" + srv.CertFile(), "PROCSTAR_AGENT_TOKEN=t", "PROCSTAR_AGENT_HOST=localhost"},
			"--agent", "--agent-port", port, "--conn-id", "tls", "--connect-interval-start", "0.05", "--delete-grace", "200ms")
		ctx := ctxFor(t, 20*time.Second)
		if _, err := srv.WaitConn(ctx, "tls"); err != nil {
			t.Fatal(err)
		}
		p := start(t, ctx, srv, "default", "tls1", `{"argv": ["/bin/true"]}`)
		if _, err := p.WaitState(ctx, "terminated"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		a := startLinkAgent(t, []string{"PROCSTAR_AGENT_TOKEN=t"},
			"--agent", "--agent-host", "localhost", "--agent-port", port, "--conn-id", "tls2",
			"--connect-interval-start", "0.05", "--connect-count-max", "2")
		if code := a.wait(20 * time.Second); code != 1 {
			t.Errorf("exit code %d, want 1", code)
		}
		if _, ok := srv.Conn("tls2"); ok {
			t.Error("an agent that does not trust the server registered")
		}
	})
}

func TestLinkExtensions(t *testing.T) {
	t.Parallel()
	const script = `for i in 1 2 3 4 5; do echo $i; sleep 0.15; done`
	tests := []struct {
		name   string
		accept []wire.Extension
	}{
		{"on", []wire.Extension{wire.ExtPushStatus, wire.ExtPushOutput, wire.ExtLabels}},
		{"off", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			on := tt.accept != nil
			srv := newFake(t, fakecontrol.Options{AcceptExtensions: tt.accept})
			startLinkAgent(t, nil, linkArgs(srv, "ext", "--label", "disk=ssd", "--label", "zone=a", "--status-interval", "0.1")...)
			ctx := ctxFor(t, 30*time.Second)
			c, err := srv.WaitConn(ctx, "ext")
			if err != nil {
				t.Fatal(err)
			}
			if on {
				if len(c.Extensions) != 3 || c.Register.Labels["disk"] != "ssd" || c.Register.Labels["zone"] != "a" {
					t.Errorf("conn = %+v", c)
				}
			} else if len(c.Extensions) != 0 || c.Register.Labels != nil {
				t.Errorf("conn = %+v", c)
			}
			p := start(t, ctx, srv, "default", "ticker", `{"argv": ["/bin/sh", "-c", "`+script+`"],
				"fds": [["stdout", {"capture": {"mode": "tempfile", "encoding": "utf-8", "attached": false}}]]}`)
			var running int
			var out bytes.Buffer
			var next int64
			for {
				u, err := p.Next(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if u.Kind == fakecontrol.UpdateFdData {
					if u.FdData.Start != next {
						t.Errorf("pushed chunk at %d, want %d", u.FdData.Start, next)
					}
					next = u.FdData.Stop
					out.Write(u.FdData.Data)
					continue
				}
				if u.Kind != fakecontrol.UpdateResult {
					t.Fatalf("update %v", u.Kind)
				}
				if u.State() == "running" {
					running++
					continue
				}
				break
			}
			if on {
				if running < 2 {
					t.Errorf("%d intermediate results pushed over ~0.75 s, want several", running)
				}
				if out.String() != "1\n2\n3\n4\n5\n" {
					t.Errorf("pushed output %q", out.String())
				}
			} else if running != 0 || out.Len() != 0 {
				t.Errorf("a plain server got %d intermediate results and %d pushed bytes", running, out.Len())
			}
		})
	}
}

// TestLinkInProcess drives agent.Run itself, through its Config.
func TestLinkInProcess(t *testing.T) {
	t.Parallel()
	srv := newFake(t, fakecontrol.Options{Token: "in"})
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("in"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	logger := funcr.New(func(prefix, args string) { fmt.Fprintln(&logs, prefix, args) }, funcr.Options{Verbosity: 1})
	sigs := make(chan os.Signal, 1)
	var stdout, stderr syncBuffer
	cfg := agent.Config{
		Agent:   true,
		GroupID: "inproc",
		ConnID:  "inproc",
		Link: agent.LinkConfig{
			URL: srv.URL(), TokenFile: tokenFile,
			ConnectIntervalStart: 50 * time.Millisecond, ConnectIntervalMax: 200 * time.Millisecond,
		},
		Signals: sigs,
		Stdout:  &stdout, Stderr: &stderr,
	}
	done := make(chan struct{})
	var code int
	go func() {
		code = agent.Run(logr.NewContext(context.Background(), logger), cfg)
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			sigs <- syscall.SIGQUIT
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Error("agent.Run did not return after SIGQUIT")
			}
		}
		if t.Failed() {
			t.Logf("agent logs:\n%s", logs.String())
		}
	})
	ctx := ctxFor(t, 30*time.Second)
	c, err := srv.WaitConn(ctx, "inproc")
	if err != nil {
		t.Fatal(err)
	}
	if c.Register.Proc.Pid != os.Getpid() || c.GroupID != "inproc" {
		t.Errorf("register = %+v", c.Register)
	}
	var ps []*fakecontrol.Process
	for i := range 3 {
		ps = append(ps, start(t, ctx, srv, "inproc", fmt.Sprint("ip", i), fmt.Sprintf(`{"argv": ["/bin/sh", "-c", "exit %d"]}`, i)))
	}
	for i, p := range ps {
		res, err := p.WaitState(ctx, "terminated")
		if err != nil {
			t.Fatal(err)
		}
		if exitCode(t, res) != int64(i) {
			t.Errorf("%s exit code %v", p.ID(), exitCode(t, res))
		}
	}
	// SIGUSR1: idling, then done once the table is empty.
	sub := srv.Subscribe()
	defer sub.Close()
	sigs <- syscall.SIGUSR1
	if e, err := sub.Wait(ctx, fakecontrol.EventShutDown); err != nil || e.State != "idling" {
		t.Fatalf("event = %+v, %v", e, err)
	}
	for _, p := range ps {
		if err := p.Delete(ctx); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
		if code != 0 {
			t.Errorf("agent.Run = %d", code)
		}
	case <-ctx.Done():
		t.Fatal("agent.Run did not return after the drain")
	}
	ids := srv.ProcIDs()
	sort.Strings(ids)
	if len(ids) != 0 {
		t.Errorf("server still has procs %v", ids)
	}
}
