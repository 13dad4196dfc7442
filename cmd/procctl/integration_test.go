// This file runs procctl in process against the real REST handler,
// controller and runtime with real processes. The end-to-end tests with the
// real binaries live in test/e2e.

package main

import (
	"net"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"procstar.dev/procstar/controller"
	"procstar.dev/procstar/controller/controllertest"
	"procstar.dev/procstar/restapi"
)

func newRealHarness(t *testing.T) *harness {
	return newRealHarnessOpts(t, restapi.Options{Version: restapi.VersionInfo{Version: "v-test"}})
}

func newRealHarnessOpts(t *testing.T, opts restapi.Options) *harness {
	return newRealHarnessOn(t, opts, false)
}

// newRealHarnessOn serves the real API over loopback TCP, or over a unix
// socket (the server address is then unix:/path).
func newRealHarnessOn(t *testing.T, opts restapi.Options, overUnix bool) *harness {
	t.Helper()
	c := controllertest.New(t, controller.Options{})
	srv := httptest.NewUnstartedServer(restapi.NewHandler(c, opts))
	server := ""
	if overUnix {
		sock := filepath.Join(t.TempDir(), "api.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		srv.Listener.Close()
		srv.Listener = l
		server = "unix:" + sock
	}
	srv.Start()
	if !overUnix {
		server = srv.URL
	}
	t.Cleanup(srv.Close)
	home := t.TempDir()
	h := &harness{t: t, home: home, now: time.Now, vars: map[string]string{"HOME": home, "PROCSTAR_SERVER": server}}
	return h
}

const realYAML = `apiVersion: procstar.dev/v1
kind: Proc
metadata: {name: NAME, labels: {suite: real}}
spec:
  argv: [/bin/sh, -c, 'SCRIPT']
  fds:
    - {fd: stdin, null: {}}
    - {fd: stdout, capture: {mode: memory, encoding: utf-8}}
    - {fd: stderr, capture: {mode: memory, encoding: utf-8}}
`

func realProc(name, script string) string {
	return strings.NewReplacer("NAME", name, "SCRIPT", script).Replace(realYAML)
}

func TestRealServer(t *testing.T) {
	h := newRealHarness(t)
	f := h.write("p.yaml", realProc("hello", "echo hello; echo oops >&2"))
	check(t, h.run("apply", "-f", f), 0, "proc/hello created\n", "")
	check(t, h.run("wait", "hello", "--for=terminal", "--timeout=10s"), 0, "proc/hello condition met\n", "")
	check(t, h.run("logs", "hello"), 0, "hello\n", "")
	check(t, h.run("logs", "hello", "--fd", "stderr"), 0, "oops\n", "")
	check(t, h.run("apply", "-f", f), 0, "proc/hello unchanged\n", "")
	changed := h.write("p.yaml", realProc("hello", "echo changed"))
	check(t, h.run("apply", "-f", changed), 1, "", `error: proc "hello" exists with a different spec, and a proc's spec is immutable: pass --force to delete and re-create it`+"\n")
	// A dry run agrees with the agent's apply, and changes nothing.
	check(t, h.run("apply", "-f", f, "--dry-run"), 0, "proc/hello unchanged (dry run)\n", "")
	check(t, h.run("apply", "-f", changed, "--dry-run"), 1, "", `error: proc "hello" exists with a different spec, and a proc's spec is immutable: pass --force to delete and re-create it`+"\n")
	check(t, h.run("apply", "-f", changed, "--dry-run", "--force"), 0, "proc/hello configured (dry run)\n", "")
	check(t, h.run("apply", "-f", h.write("n.yaml", realProc("new", "true")), "--dry-run"), 0, "proc/new created (dry run)\n", "")
	check(t, h.run("apply", "-f", f), 0, "proc/hello unchanged\n", "")
	check(t, h.run("get", "proc", "new"), 1, "", `error: proc "new" not found`+"\n")
	// A signal to a proc that has ended.
	check(t, h.run("kill", "hello"), 1, "", `error: proc "hello" is not running (it ended Succeeded, exit code 0); nothing to signal`+"\n")
	// A wrong path prefix reaches procstar's own routes, not the v1 API:
	// that is not "no such proc".
	server := h.vars["PROCSTAR_SERVER"] + "/foo"
	notAPI := func(path string) string {
		return "error: server " + server + " did not answer as a procstar API (HTTP 404 on /foo/apis/procstar.dev/v1/procs" + path + "); check --server\n"
	}
	check(t, h.run("--server", server, "get", "procs"), 1, "", notAPI(""))
	check(t, h.run("--server", server, "logs", "hello"), 1, "", notAPI("/hello/log"))
	check(t, h.run("--server", server, "kill", "hello"), 1, "", notAPI("/hello/signal"))
	r := h.run("get", "procs", "-l", "suite=real")
	if r.code != 0 || !strings.Contains(r.stdout, "hello   Succeeded") {
		t.Errorf("get: %+v", r)
	}
	check(t, h.run("get", "procs", "--field-selector", "status.phase=Succeeded,metadata.name=hello", "-o", "name"), 0, "proc/hello\n", "")
	check(t, h.run("get", "procs", "-l", "suite=real", "--field-selector", "status.phase=Running"), 0, "", "No procs found.\n")
	r = h.run("describe", "proc", "hello")
	if r.code != 0 || !strings.Contains(r.stdout, "Phase:") || !strings.Contains(r.stdout, "stdout  6") {
		t.Errorf("describe: %+v", r)
	}
	t.Logf("describe:\n%s", r.stdout)
	check(t, h.run("logs", "nope"), 1, "", `error: proc "nope" not found`+"\n")
	check(t, h.run("logs", "hello", "--fd", "7"), 1, "", `error: cannot read the output of proc "hello": proc hello has no fd 7`+"\n")
	r = h.run("logs", "hello", "--start", "1000")
	if r.code != 1 || !strings.HasPrefix(r.stderr, `error: cannot read the output of proc "hello": `) || !strings.Contains(r.stderr, "past the end") {
		t.Errorf("logs past the end: %+v", r)
	}
	r = h.run("get", "procs", "-o", "wide")
	t.Logf("get -o wide:\n%s", r.stdout)

	// logs -f byte for byte, while the proc writes.
	script := `i=0; while [ $i -lt 200 ]; do echo line $i; i=$((i+1)); done; sleep 0.2; echo end`
	check(t, h.run("apply", "-f", h.write("f.yaml", realProc("follow", script))), 0, "proc/follow created\n", "")
	r = h.run("logs", "-f", "follow")
	var want strings.Builder
	for i := 0; i < 200; i++ {
		want.WriteString("line " + itoa(i) + "\n")
	}
	want.WriteString("end\n")
	if r.code != 0 || r.stdout != want.String() {
		t.Errorf("logs -f: code %d, %d bytes (want %d), stderr %q", r.code, len(r.stdout), want.Len(), r.stderr)
	}

	// kill, wait for failure, delete.
	check(t, h.run("apply", "-f", h.write("s.yaml", realProc("sleeper", "exec sleep 30"))), 0, "proc/sleeper created\n", "")
	check(t, h.run("wait", "sleeper", "--for=phase=Running", "--timeout=10s"), 0, "proc/sleeper condition met\n", "")
	check(t, h.run("kill", "sleeper", "-s", "KILL"), 0, "proc/sleeper signaled (SIGKILL)\n", "")
	check(t, h.run("wait", "sleeper", "--timeout=10s"), 1, "", `error: proc "sleeper" ended Failed (signal SIGKILL)`+"\n")
	check(t, h.run("delete", "proc", "sleeper", "hello"), 0, "proc/sleeper deleted\nproc/hello deleted\n", "")

	// run --wait --rm.
	start := time.Now()
	check(t, h.run("run", "r1", "--wait", "--rm", "--", "sh", "-c", "echo out; echo err >&2; exit 7"), 7, "out\n", "err\n")
	// A timeout says so; a proc that never ran says why.
	check(t, h.run("run", "r2", "--wait", "--rm", "--timeout", "200ms", "--", "sleep", "30"), 143, "",
		`error: proc "r2" timed out after 200ms and was stopped (signal SIGTERM)`+"\n")
	check(t, h.run("run", "r3", "--wait", "--rm", "--", "/nonexistent/x"), 1, "",
		`error: proc "r3" could not start: Error: execve failed: /nonexistent/x: No such file or directory (os error 2)`+"\n")
	if time.Since(start) > 10*time.Second {
		t.Error("run --wait took too long")
	}
	r = h.run("version")
	if r.code != 0 || !strings.Contains(r.stdout, "Server Version: v-test") {
		t.Errorf("version: %+v", r)
	}
}

// TestRealServerUnixSocket reads logs over a unix socket, where a
// tempfile capture comes as the file itself and a memory capture as a
// body: the bytes are the same either way.
func TestRealServerUnixSocket(t *testing.T) {
	h := newRealHarnessOn(t, restapi.Options{}, true)
	yaml := strings.NewReplacer("mode: memory", "mode: tempfile").Replace(realProc("big", "seq 1 200000; echo oops >&2"))
	check(t, h.run("apply", "-f", h.write("big.yaml", yaml)), 0, "proc/big created\n", "")
	check(t, h.run("wait", "big", "--for=terminal", "--timeout=10s"), 0, "proc/big condition met\n", "")
	var want strings.Builder
	for i := 1; i <= 200000; i++ {
		want.WriteString(itoa(i) + "\n")
	}
	r := h.run("logs", "big")
	if r.code != 0 || r.stdout != want.String() {
		t.Fatalf("logs: code %d, %d bytes (want %d), stderr %q", r.code, len(r.stdout), want.Len(), r.stderr)
	}
	check(t, h.run("logs", "big", "--tail-bytes", "7"), 0, "199999\n200000\n"[7:], "")
	check(t, h.run("logs", "big", "--start", "6"), 0, want.String()[6:], "")
	check(t, h.run("logs", "big", "--fd", "stderr"), 0, "oops\n", "")
	check(t, h.run("apply", "-f", h.write("mem.yaml", realProc("mem", "echo hello"))), 0, "proc/mem created\n", "")
	check(t, h.run("wait", "mem", "--for=terminal", "--timeout=10s"), 0, "proc/mem condition met\n", "")
	check(t, h.run("logs", "mem"), 0, "hello\n", "")
}

// TestRealServerPipeline applies the pipeline sample: its two procs,
// joined by a pipe, start in one batch and the consumer counts what the
// producer wrote.
func TestRealServerPipeline(t *testing.T) {
	h := newRealHarness(t)
	f := "../../config/samples/pipeline.yaml"
	check(t, h.run("apply", "-f", f, "--dry-run"), 0, "proc/pipeline-producer created (dry run)\nproc/pipeline-consumer created (dry run)\n", "")
	check(t, h.run("apply", "-f", f), 0, "proc/pipeline-producer created\nproc/pipeline-consumer created\n", "")
	check(t, h.run("wait", "pipeline-producer", "pipeline-consumer", "--for=terminal", "--timeout=10s"), 0,
		"proc/pipeline-producer condition met\nproc/pipeline-consumer condition met\n", "")
	// The producer writes "hello through a pipe\n"; wc -c counts it.
	check(t, h.run("logs", "pipeline-consumer"), 0, itoa(len("hello through a pipe\n"))+"\n", "")
	check(t, h.run("apply", "-f", f), 0, "proc/pipeline-producer unchanged\nproc/pipeline-consumer unchanged\n", "")
	check(t, h.run("apply", "-f", f, "--dry-run"), 0, "proc/pipeline-producer unchanged (dry run)\nproc/pipeline-consumer unchanged (dry run)\n", "")
	check(t, h.run("delete", "proc", "pipeline-consumer"), 0, "proc/pipeline-consumer deleted\n", "")
	check(t, h.run("apply", "-f", f), 1, "", `error: procs "pipeline-producer" and "pipeline-consumer" are joined by pipes and must start together, but only "pipeline-producer" exists: delete it (procctl delete proc pipeline-producer) and apply again`+"\n")
	check(t, h.run("delete", "proc", "pipeline-producer"), 0, "proc/pipeline-producer deleted\n", "")
	check(t, h.run("create", "-f", f), 0, "proc/pipeline-producer created\nproc/pipeline-consumer created\n", "")
	check(t, h.run("wait", "pipeline-consumer", "--for=terminal", "--timeout=10s"), 0, "proc/pipeline-consumer condition met\n", "")
	check(t, h.run("logs", "pipeline-consumer"), 0, itoa(len("hello through a pipe\n"))+"\n", "")
}

func itoa(i int) string {
	return strconv.Itoa(i)
}

func TestRealServerAuth(t *testing.T) {
	h := newRealHarnessOpts(t, restapi.Options{Token: []byte("sekrit")})
	for _, tc := range []struct {
		token string
		code  int
	}{{"", 1}, {"wrong", 1}, {"sekrit", 0}} {
		r := h.run("get", "procs", "--token", tc.token)
		if r.code != tc.code {
			t.Errorf("token %q: %+v", tc.token, r)
		}
		if tc.code != 0 && !strings.Contains(r.stderr, "refused the credentials") {
			t.Errorf("token %q: %q", tc.token, r.stderr)
		}
	}
}
