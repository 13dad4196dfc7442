package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

// TestNotProcstarServer: an answer that is not the v1 API's (a plain web
// server, a proxy) is never read as "no such proc", and never printed raw.
func TestNotProcstarServer(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, ctype, body string
		code              int
	}{
		{"html 404", "text/html", "<!DOCTYPE HTML>\n<html><head><title>Error response</title></head></html>\n", 404},
		{"procstar route 404", "application/json", `{"errors":{"detail":null,"status":"404 Not Found"}}`, 404},
		{"json 400", "application/json", `{"error":"bad"}`, 400},
		{"proxy 502", "text/html", "<html>Bad Gateway</html>", 502},
	} {
		t.Run(tc.name, func(t *testing.T) {
			web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.ctype)
				w.WriteHeader(tc.code)
				io.WriteString(w, tc.body)
			}))
			t.Cleanup(web.Close)
			server := web.URL + "/foo"
			want := func(path string) string {
				return "error: server " + server + " did not answer as a procstar API (HTTP " + itoa(tc.code) + " on /foo" + path + "); check --server\n"
			}
			const procs = "/apis/procstar.dev/v1/procs"
			check(t, h.run("--server", server, "get", "procs"), 1, "", want(procs))
			check(t, h.run("--server", server, "get", "procs", "a", "b"), 1, "", want(procs+"/a"))
			check(t, h.run("--server", server, "logs", "hello"), 1, "", want(procs+"/hello/log"))
			check(t, h.run("--server", server, "describe", "proc", "hello"), 1, "", want(procs+"/hello"))
			check(t, h.run("--server", server, "delete", "proc", "hello", "other"), 1, "", want(procs+"/hello"))
			check(t, h.run("--server", server, "kill", "hello", "other"), 1, "", want(procs+"/hello/signal"))
			check(t, h.run("--server", server, "wait", "hello"), 1, "", want(procs))
			check(t, h.run("--server", server, "apply", "-f", h.write("p.yaml", twoYAML)), 1, "", want(procs+"/hello"))
			check(t, h.run("--server", server, "version"), 1, "Client Version: "+clientVersion()+"\n", want("/version"))
		})
	}
	// 200 with something that is not procstar JSON.
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>welcome</html>")
	}))
	t.Cleanup(web.Close)
	check(t, h.run("--server", web.URL, "get", "procs"), 1, "", "error: server "+web.URL+" did not answer GET /apis/procstar.dev/v1/procs as a procstar API does (its body is not the JSON procctl expects); check --server, and that the server is a procstar of a version procctl knows\n")
}

// TestSchemeMismatchMessages: https:// to a plain-HTTP server and http://
// to a TLS one each say which scheme to use.
func TestSchemeMismatchMessages(t *testing.T) {
	h := newHarness(t)
	plain := strings.Replace(h.srv.URL, "http://", "https://", 1)
	check(t, h.run("--server", plain, "get", "procs"), 1, "", "error: server "+plain+" does not speak TLS (use http:// instead of https://?)\n")
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	t.Cleanup(tlsSrv.Close)
	asHTTP := strings.Replace(tlsSrv.URL, "https://", "http://", 1)
	check(t, h.run("--server", asHTTP, "get", "procs"), 1, "", "error: server "+asHTTP+" speaks TLS only (use https:// instead of http://)\n")
}

// TestKillEnded: a signal to a proc that has no process says why.
func TestKillEnded(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("done", v1.PhaseRunning, nil))
	h.srv.Finish("done", 0)
	h.srv.Put(fakeProc("failed", v1.PhaseRunning, nil))
	h.srv.Update("failed", func(p *v1.Proc) { p.Status.Phase, p.Status.Signal = v1.PhaseFailed, "SIGKILL" })
	h.srv.Put(fakeProc("broken", v1.PhaseRunning, nil))
	h.srv.Update("broken", func(p *v1.Proc) {
		p.Status.Phase, p.Status.Errors = v1.PhaseError, []string{"execve failed: No such file"}
	})
	check(t, h.run("kill", "done"), 1, "", `error: proc "done" is not running (it ended Succeeded, exit code 0); nothing to signal`+"\n")
	check(t, h.run("kill", "failed", "done"), 1, "",
		`error: proc "failed" is not running (it ended Failed, signal SIGKILL); nothing to signal`+"\n"+
			`error: proc "done" is not running (it ended Succeeded, exit code 0); nothing to signal`+"\n")
	check(t, h.run("kill", "broken"), 1, "", `error: proc "broken" is not running (it ended Error: execve failed: No such file); nothing to signal`+"\n")
}

// TestWideControlCharacters: a command with a newline (or an escape)
// stays on its row.
func TestWideControlCharacters(t *testing.T) {
	h := newHarness(t)
	p := fakeProc("multi", v1.PhaseRunning, nil)
	p.Spec.Argv = []string{"/bin/sh", "-c", "echo one\necho two\t\x1b[31m"}
	p.Status.Agent = &v1.AgentRef{Hostname: "host\nname"}
	h.srv.Put(p)
	want := "NAME    PHASE     PID      EXIT     AGE   AGENT        RESTARTS   REASON   COMMAND\n" +
		`multi   Running   <none>   <none>   60s   host\nname   0          <none>   /bin/sh -c $'echo one\necho two\t\x1b[31m'` + "\n"
	check(t, h.run("get", "procs", "-o", "wide"), 0, want, "")
}

func TestServerVersionUnknownCommit(t *testing.T) {
	h := newHarness(t)
	h.srv.Version["gitCommit"] = ""
	r := h.run("version")
	if r.code != 0 || !strings.HasSuffix(r.stdout, "Server Version: v0.0.0-fake (commit unknown, go1.26, linux/amd64)\n") {
		t.Errorf("version: %+v", r)
	}
	if got := formatVersion("devel", "", "go1.26", "linux/amd64"); got != "devel (commit unknown, go1.26, linux/amd64)" {
		t.Errorf("formatVersion = %q", got)
	}
}

// TestCompletionTyped: get, describe and delete want the type first.
func TestCompletionTyped(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("alpha", v1.PhaseRunning, nil))
	h.srv.Put(fakeProc("beta", v1.PhaseRunning, nil))
	completions := func(args ...string) string {
		r := h.run(append([]string{"__complete"}, args...)...)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		return strings.Join(lines[:len(lines)-1], " ") // the last line is the directive
	}
	for _, cmd := range []string{"get", "describe", "delete"} {
		if got := completions(cmd, ""); got != "procs" {
			t.Errorf("%s: %q, want procs", cmd, got)
		}
		if got := completions(cmd, "procs", ""); got != "alpha beta" {
			t.Errorf("%s procs: %q", cmd, got)
		}
		if got := completions(cmd, "proc/"); got != "proc/alpha proc/beta" {
			t.Errorf("%s proc/: %q", cmd, got)
		}
		if got := completions(cmd, "pods", ""); got != "" {
			t.Errorf("%s pods: %q", cmd, got)
		}
	}
	if got := completions("delete", "proc", "alpha", ""); got != "beta" {
		t.Errorf("delete proc alpha: %q", got)
	}
	if got := completions("kill", ""); got != "alpha beta" {
		t.Errorf("kill: %q", got)
	}
	if got := completions("logs", "alpha", ""); got != "" {
		t.Errorf("logs alpha: %q", got)
	}
}
