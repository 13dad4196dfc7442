package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// runAgent runs the agent with cfg in the background and returns a channel
// with its exit code.
func runAgent(t *testing.T, cfg Config) (<-chan int, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	cfg.Stdout = &out
	cfg.Stderr = &bytes.Buffer{}
	code := make(chan int, 1)
	go func() { code <- Run(context.Background(), cfg) }()
	return code, &out
}

func waitCode(t *testing.T, code <-chan int) int {
	t.Helper()
	select {
	case c := <-code:
		return c
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not finish")
	}
	return -1
}

func writeSpec(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const sleepSpec = `apiVersion: procstar.dev/v1
kind: Proc
metadata: {name: sleeper}
spec:
  argv: [/bin/sleep, "600"]
`

func results(t *testing.T, out *bytes.Buffer) map[string]map[string]any {
	t.Helper()
	var res map[string]map[string]any
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("bad results %q: %v", out.String(), err)
	}
	return res
}

func TestExitModeCollectsResults(t *testing.T) {
	spec := writeSpec(t, `apiVersion: procstar.dev/v1
kind: Proc
metadata: {name: one}
spec:
  argv: [/bin/sh, -c, "echo one; exit 3"]
  fds: [{fd: stdout, capture: {mode: memory, encoding: utf-8}}]
---
apiVersion: procstar.dev/v1
kind: Proc
metadata: {name: two}
spec:
  argv: [/bin/echo, two]
  fds: [{fd: stdout, capture: {mode: tempfile, encoding: utf-8}}]
`)
	code, out := runAgent(t, Config{Input: spec, Print: true})
	if c := waitCode(t, code); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
	res := results(t, out)
	if got := res["one"]["status"].(map[string]any)["exit_code"]; got != float64(3) {
		t.Errorf("one exit_code %v", got)
	}
	if got := res["two"]["fds"].(map[string]any)["stdout"].(map[string]any)["text"]; got != "two\n" {
		t.Errorf("two stdout %q", got)
	}
}

func TestSigtermInExitModeTerminatesAndPrints(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	code, out := runAgent(t, Config{Input: writeSpec(t, sleepSpec), Print: true, Signals: sigs})
	sigs <- syscall.SIGTERM
	if c := waitCode(t, code); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
	if sig := results(t, out)["sleeper"]["status"].(map[string]any)["signal"]; sig != "SIGTERM" {
		t.Fatalf("signal %v", sig)
	}
}

func TestSigtermEscalatesToKill(t *testing.T) {
	// The proc ignores SIGTERM, so the agent must SIGKILL it after the
	// grace period. It touches a file once its trap is in place.
	ready := filepath.Join(t.TempDir(), "ready")
	spec := writeSpec(t, `apiVersion: procstar.dev/v1
kind: Proc
metadata: {name: stubborn}
spec:
  argv: [/bin/sh, -c, "trap '' TERM; touch `+ready+`; while :; do sleep 0.05; done"]
`)
	sigs := make(chan os.Signal, 1)
	code, out := runAgent(t, Config{Input: spec, Print: true, Signals: sigs, TermGrace: 300 * time.Millisecond, DeleteGrace: 100 * time.Millisecond})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proc never became ready")
		}
	}
	sigs <- syscall.SIGTERM
	if c := waitCode(t, code); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
	if sig := results(t, out)["stubborn"]["status"].(map[string]any)["signal"]; sig != "SIGKILL" {
		t.Fatalf("signal %v, want SIGKILL", sig)
	}
}

func TestSigquitKillsAtOnce(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	code, out := runAgent(t, Config{Input: writeSpec(t, sleepSpec), Print: true, Signals: sigs})
	sigs <- syscall.SIGQUIT
	if c := waitCode(t, code); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
	if sig := results(t, out)["sleeper"]["status"].(map[string]any)["signal"]; sig != "SIGKILL" {
		t.Fatalf("signal %v", sig)
	}
}

func TestWaitModeExitsAtOnceWhenEmpty(t *testing.T) {
	code, _ := runAgent(t, Config{Wait: true})
	if c := waitCode(t, code); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
}

// TestWaitModeSignalsStayInForce checks the fixed procstar behaviour: after
// SIGUSR1 (idling, which cannot finish while a proc is undeleted), a
// SIGTERM is still handled and ends the agent.
func TestWaitModeSignalsStayInForce(t *testing.T) {
	sigs := make(chan os.Signal, 2)
	code, _ := runAgent(t, Config{Input: writeSpec(t, sleepSpec), Wait: true, Signals: sigs, DeleteGrace: 50 * time.Millisecond})
	sigs <- syscall.SIGUSR1
	sigs <- syscall.SIGTERM
	if c := waitCode(t, code); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
}

func TestNoModeIsDataError(t *testing.T) {
	var stderr bytes.Buffer
	c := Run(context.Background(), Config{Stderr: &stderr})
	if c != ExitDataErr || !strings.Contains(stderr.String(), "Specify at least one of") {
		t.Fatalf("exit %d, stderr %q", c, stderr.String())
	}
}

func TestDecodeSpecsBothForms(t *testing.T) {
	procs, err := DecodeSpecs([]byte(`{"specs": {"b": {"argv": ["/bin/true"]}, "a": {"argv": ["/bin/true"]}}}`))
	if err != nil || len(procs) != 2 || procs[0].Metadata.Name != "a" {
		t.Fatalf("procstar JSON: %v, %+v", err, procs)
	}
	procs, err = DecodeSpecs([]byte(sleepSpec))
	if err != nil || len(procs) != 1 || procs[0].Metadata.Name != "sleeper" {
		t.Fatalf("YAML: %v, %+v", err, procs)
	}
	if _, err := DecodeSpecs([]byte(`{"specs": {"x": {"argv": []}}}`)); err == nil {
		t.Fatal("empty argv with no exe accepted")
	}
	if _, err := DecodeSpecs([]byte("apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: x}\nspec: {argv: [/bin/true]}\n---\napiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: x}\nspec: {argv: [/bin/true]}\n")); err == nil {
		t.Fatal("duplicate names accepted")
	}
}

// TestSigquitLeavesUnkillableProcs checks that after SIGKILL the agent
// waits only killWait for procs to die, not the SIGTERM grace: a proc
// frozen by the cgroup v1 freezer, which holds SIGKILL until thawed,
// stands in for one stuck in the kernel.
func TestSigquitLeavesUnkillableProcs(t *testing.T) {
	freezer := "/sys/fs/cgroup/freezer"
	if _, err := os.Stat(filepath.Join(freezer, "freezer.state")); err != nil {
		if _, err := os.Stat(filepath.Join(freezer, "cgroup.procs")); err != nil {
			t.Skip("no cgroup v1 freezer here, so no proc that survives SIGKILL")
		}
	}
	dir := filepath.Join(freezer, fmt.Sprintf("procstar-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cannot make a freezer cgroup: %v", err)
	}
	state := filepath.Join(dir, "freezer.state")
	t.Cleanup(func() {
		os.WriteFile(state, []byte("THAWED"), 0o644)
		for deadline := time.Now().Add(10 * time.Second); os.Remove(dir) != nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	})
	ready := filepath.Join(t.TempDir(), "ready")
	spec := writeSpec(t, `apiVersion: procstar.dev/v1
kind: Proc
metadata: {name: frozen}
spec:
  argv: [/bin/sh, -c, "echo $$ > `+dir+`/cgroup.procs && touch `+ready+` && exec sleep 100"]
`)
	sigs := make(chan os.Signal, 1)
	code, _ := runAgent(t, Config{Input: spec, Print: true, Signals: sigs, DeleteGrace: 100 * time.Millisecond})
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the proc never became ready")
		}
	}
	if err := os.WriteFile(state, []byte("FROZEN"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sigs <- syscall.SIGQUIT
	if c := waitCode(t, code); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
	// The default SIGTERM grace is 60 s; killWait is 5.
	if d := time.Since(start); d > killWait+20*time.Second {
		t.Fatalf("the agent took %v to end after SIGQUIT", d)
	}
}

// TestSdNotifyDrainIsNotStopping: under systemd (NOTIFY_SOCKET), a
// SIGUSR1 drain must not send STOPPING=1, which starts TimeoutStopSec and
// would have systemd kill the agent in mid-drain; SIGTERM sends it.
func TestSdNotifyDrainIsNotStopping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	// next returns the next notification, or "" after a quiet while.
	next := func(wait time.Duration) string {
		buf := make([]byte, 4096)
		_ = conn.SetReadDeadline(time.Now().Add(wait))
		n, err := conn.Read(buf)
		if err != nil {
			return ""
		}
		return string(buf[:n])
	}
	sigs := make(chan os.Signal, 1)
	code, _ := runAgent(t, Config{Input: writeSpec(t, sleepSpec), Wait: true, Signals: sigs, DeleteGrace: 100 * time.Millisecond})
	if m := next(20 * time.Second); !strings.Contains(m, "READY=1") {
		t.Fatalf("first notification %q, want READY=1", m)
	}
	sigs <- syscall.SIGUSR1
	if m := next(20 * time.Second); m != "STATUS=shutting down: idling" {
		t.Fatalf("after SIGUSR1: %q", m)
	}
	if m := next(500 * time.Millisecond); m != "" {
		t.Fatalf("after SIGUSR1, also %q", m)
	}
	sigs <- syscall.SIGTERM
	if m := next(20 * time.Second); !strings.Contains(m, "STOPPING=1") {
		t.Fatalf("after SIGTERM: %q, want STOPPING=1", m)
	}
	if c := waitCode(t, code); c != ExitOK {
		t.Fatalf("exit %d", c)
	}
}

// TestFailedInputClosesListener: when the input procs fail to start,
// the listener bound for --serve is closed, its unix socket removed.
func TestFailedInputClosesListener(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	spec := writeSpec(t, `{"specs": {"x": {"argv": ["/bin/true"], "fds": [["stdpot", {"null": {}}]]}}}`)
	code, _ := runAgent(t, Config{Input: spec, Serve: true, Listen: ServeConfig{Addr: "unix:" + sock}})
	if c := waitCode(t, code); c != ExitDataErr {
		t.Fatalf("exit %d, want %d", c, ExitDataErr)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Run: %v", err)
	}
	if c, err := net.Dial("unix", sock); err == nil {
		c.Close()
		t.Error("the listener still accepts connections")
	}
}
