package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/client"
	"procstar.dev/procstar/client/clienttest"
	"procstar.dev/procstar/internal/version"
)

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// harness runs procctl in-process against a fake server.
type harness struct {
	t        *testing.T
	srv      *clienttest.Server
	home     string
	vars     map[string]string
	terminal bool
	now      func() time.Time // nil: testNow
	redraw   time.Duration
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	srv := clienttest.New()
	srv.Now = func() time.Time { return testNow.Add(-10 * time.Second) }
	t.Cleanup(srv.Close)
	home := t.TempDir()
	return &harness{t: t, srv: srv, home: home, vars: map[string]string{"HOME": home, "PROCSTAR_SERVER": srv.URL}}
}

type result struct {
	stdout, stderr string
	code           int
}

func (h *harness) env(stdin string, stdout, stderr io.Writer) env {
	return env{
		stdin:      strings.NewReader(stdin),
		stdout:     stdout,
		stderr:     stderr,
		now:        h.clock,
		getenv:     func(k string) string { return h.vars[k] },
		newClient:  client.New,
		isTerminal: func(io.Writer) bool { return h.terminal },
		redraw:     h.redraw,
	}
}

func (h *harness) clock() time.Time {
	if h.now != nil {
		return h.now()
	}
	return testNow
}

func (h *harness) runStdin(stdin string, args ...string) result {
	h.t.Helper()
	var out, errb syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, args, h.env(stdin, &out, &errb))
	return result{out.String(), errb.String(), code}
}

func (h *harness) run(args ...string) result {
	h.t.Helper()
	return h.runStdin("", args...)
}

// start runs procctl in the background; stop it by cancelling ctx.
func (h *harness) start(ctx context.Context, args ...string) (out, errb *syncBuffer, done <-chan int) {
	out, errb = &syncBuffer{}, &syncBuffer{}
	ch := make(chan int, 1)
	go func() { ch <- run(ctx, args, h.env("", out, errb)) }()
	return out, errb, ch
}

func (h *harness) write(name, content string) string {
	h.t.Helper()
	p := filepath.Join(h.t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func check(t *testing.T, r result, code int, stdout, stderr string) {
	t.Helper()
	if r.code != code || r.stdout != stdout || r.stderr != stderr {
		t.Errorf("got code %d\nstdout %q\nstderr %q\nwant code %d\nstdout %q\nstderr %q", r.code, r.stdout, r.stderr, code, stdout, stderr)
	}
}

// oneErrorLine checks that stderr is exactly one "error: " line.
func oneErrorLine(t *testing.T, r result) {
	t.Helper()
	if !strings.HasPrefix(r.stderr, "error: ") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("stderr is not one error line: %q", r.stderr)
	}
}

const helloYAML = `apiVersion: procstar.dev/v1
kind: Proc
metadata:
  name: hello
  labels: {app: hello}
spec:
  argv: [/bin/echo, hello]
`

const twoYAML = helloYAML + `---
apiVersion: procstar.dev/v1
kind: Proc
metadata: {name: second}
spec: {argv: [/bin/true]}
`

func fakeProc(name string, phase v1.ProcPhase, labels map[string]string) *v1.Proc {
	created := testNow.Add(-time.Minute)
	return &v1.Proc{
		Metadata: v1.ObjectMeta{Name: name, Labels: labels, CreationTimestamp: &created},
		Spec:     v1.ProcSpec{Argv: []string{"/bin/" + name}},
		Status:   v1.ProcStatus{Phase: phase},
	}
}

func TestApply(t *testing.T) {
	h := newHarness(t)
	file := h.write("p.yaml", twoYAML)
	check(t, h.run("apply", "-f", file), 0, "proc/hello created\nproc/second created\n", "")
	check(t, h.run("apply", "-f", file), 0, "proc/hello unchanged\nproc/second unchanged\n", "")

	changed := h.write("p.yaml", strings.Replace(helloYAML, "hello]", "bye]", 1))
	r := h.run("apply", "-f", changed)
	check(t, r, 1, "", `error: proc "hello" exists with a different spec, and a proc's spec is immutable: pass --force to delete and re-create it`+"\n")
	check(t, h.run("apply", "-f", changed, "--force"), 0, "proc/hello configured\n", "")
	if p := h.srv.Proc("hello"); p == nil || p.Spec.Argv[1] != "bye" {
		t.Errorf("after --force the server has %+v", p)
	}

	// stdin and a directory.
	check(t, h.runStdin(strings.Replace(helloYAML, "hello\n", "from-stdin\n", 1), "apply", "-f", "-"), 0, "proc/from-stdin created\n", "")
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "b.yml"), []byte(strings.Replace(helloYAML, "name: hello", "name: dir-b", 1)), 0o644)
	os.WriteFile(filepath.Join(dir, "a.json"), []byte(`{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"dir-a"},"spec":{"argv":["/bin/true"]}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("not a manifest"), 0o644)
	check(t, h.run("apply", "-f", dir), 0, "proc/dir-a created\nproc/dir-b created\n", "")

	// Dry run sends nothing.
	dry := h.write("d.yaml", strings.Replace(helloYAML, "name: hello", "name: dry", 1))
	check(t, h.run("apply", "-f", dry, "--dry-run"), 0, "proc/dry created (dry run)\n", "")
	if h.srv.Proc("dry") != nil {
		t.Error("--dry-run created the proc")
	}
}

func TestApplyBadInput(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		name, content, want string
	}{
		{"unknown field", helloYAML + "  bogus: 1\n", `unknown field "spec.bogus"`},
		{"bad yaml", "apiVersion: [\n", "p.yaml"},
		{"invalid", "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: x}\nspec: {}\n", "proc x is invalid"},
		{"duplicate", helloYAML + "---\n" + helloYAML, `proc "hello" is defined twice`},
		{"empty", "\n", "no procs found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.run("apply", "-f", h.write("p.yaml", tc.content))
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
				t.Errorf("got %+v, want exit 2 and %q", r, tc.want)
			}
			oneErrorLine(t, r)
		})
	}
	r := h.run("apply", "-f", "/nonexistent/p.yaml")
	check(t, r, 2, "", "error: cannot read /nonexistent/p.yaml: no such file or directory\n")
	r = h.run("apply")
	check(t, r, 2, "", "error: no input: pass -f FILE, -f DIR or -f -\n")
	if got := h.srv.Proc("hello"); got != nil {
		t.Error("a bad input sent a proc")
	}
}

func TestCreate(t *testing.T) {
	h := newHarness(t)
	file := h.write("p.yaml", helloYAML)
	check(t, h.run("create", "-f", file), 0, "proc/hello created\n", "")
	check(t, h.run("create", "-f", file), 1, "", `error: proc "hello" already exists (use apply to leave an identical proc alone, or delete it first)`+"\n")
}

func TestGet(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("b", v1.PhaseRunning, map[string]string{"team": "x"}))
	h.srv.Put(fakeProc("a", v1.PhaseSucceeded, nil))
	table := "NAME   PHASE       PID      EXIT     AGE\n" +
		"a      Succeeded   <none>   <none>   60s\n" +
		"b      Running     <none>   <none>   60s\n"
	check(t, h.run("get", "procs"), 0, table, "")
	check(t, h.run("get", "proc"), 0, table, "")
	check(t, h.run("get", "procs", "-l", "team=x", "-o", "name"), 0, "proc/b\n", "")
	if n := h.srv.MetadataRequests(); n != 1 {
		t.Errorf("tables and -o name made %d metadata-only lists, want 1 (-o name's)", n)
	}
	check(t, h.run("get", "procs/a", "-o", "jsonpath={.status.phase}"), 0, "Succeeded", "")
	check(t, h.run("get", "proc", "a", "b", "-o", "name"), 0, "proc/a\nproc/b\n", "")
	check(t, h.run("get", "procs", "-l", "team=nobody"), 0, "", "No procs found.\n")
	check(t, h.run("get", "procs", "--field-selector", "status.phase=Running", "-o", "name"), 0, "proc/b\n", "")
	check(t, h.run("get", "procs", "--field-selector", "status.phase!=Running", "-o", "name"), 0, "proc/a\n", "")

	r := h.run("get", "proc", "a", "nope", "-o", "name")
	check(t, r, 1, "proc/a\n", `error: proc "nope" not found`+"\n")

	r = h.run("get", "procs", "-o", "yaml")
	if r.code != 0 || !strings.Contains(r.stdout, "kind: ProcList") || !strings.Contains(r.stdout, "name: b") {
		t.Errorf("-o yaml: %+v", r)
	}
	r = h.run("get", "proc", "a", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"kind": "Proc"`) {
		t.Errorf("-o json single: %+v", r)
	}

	for _, args := range [][]string{
		{"get"},
		{"get", "pods"},
		{"get", "procs", "-o", "xml"},
		{"get", "procs", "-l", "a in ("},
		{"get", "procs", "a", "-l", "x=y"},
		{"get", "procs", "--field-selector", "spec.exe=/bin/true"},
		{"get", "procs", "a", "--field-selector", "status.phase=Running"},
	} {
		r := h.run(args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2 (%q)", args, r.code, r.stderr)
		}
		oneErrorLine(t, r)
	}
}

func TestGetWatch(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("a", v1.PhasePending, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb, done := h.start(ctx, "get", "procs", "-w")
	eventually(t, "the table", func() bool { return strings.Contains(out.String(), "a      Pending") })
	eventually(t, "the watch", func() bool { return h.srv.Watches() == 1 })
	h.srv.Start("a", 31)
	h.srv.Put(fakeProc("b", v1.PhaseRunning, nil))
	eventually(t, "the watch rows", func() bool { return strings.Count(out.String(), "\n") == 4 })
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("exit %d, stderr %q", code, errb.String())
	}
	want := "NAME   PHASE     PID      EXIT     AGE\n" +
		"a      Pending   <none>   <none>   60s\n" +
		"a      Running   31       <none>   60s\n" +
		"b      Running   <none>   <none>   60s\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}

func TestGetWatchName(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("a", v1.PhasePending, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, _, done := h.start(ctx, "get", "proc", "a", "-w", "-o", "name")
	eventually(t, "the watch", func() bool { return h.srv.Watches() == 1 })
	h.srv.Put(fakeProc("other", v1.PhaseRunning, nil))
	h.srv.Start("a", 1)
	eventually(t, "the event", func() bool { return out.String() == "proc/a\nproc/a\n" })
	cancel()
	<-done
	if n := h.srv.MetadataRequests(); n != 1 {
		t.Errorf("-w -o name made %d metadata-only requests, want 1 (the watch)", n)
	}
}

func TestDescribe(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("a", v1.PhaseRunning, map[string]string{"k": "v"}))
	r := h.run("describe", "proc", "a")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Name:") || !strings.Contains(r.stdout, "Labels:            k=v") || !strings.Contains(r.stdout, "Phase:     Running") {
		t.Errorf("describe: %+v", r)
	}
	check(t, h.run("describe", "proc", "nope"), 1, "", `error: proc "nope" not found`+"\n")
	check(t, h.run("describe", "proc"), 2, "", "error: name the proc to describe: procctl describe proc NAME\n")
}

func TestDelete(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("a", v1.PhaseRunning, nil))
	h.srv.Put(fakeProc("b", v1.PhaseRunning, nil))
	h.srv.Put(fakeProc("hello", v1.PhaseRunning, nil))
	check(t, h.run("delete", "proc", "a", "nope", "b", "--grace-period", "5", "--force"), 1,
		"proc/a deleted\nproc/b deleted\n", `error: proc "nope" not found`+"\n")
	d := h.srv.Deletes()
	if len(d) != 3 || d[0].GracePeriodSeconds != "5" || !d[0].Force || h.srv.Proc("a") != nil {
		t.Errorf("server saw %+v", d)
	}
	check(t, h.run("delete", "-f", h.write("p.yaml", helloYAML)), 0, "proc/hello deleted\n", "")
	if d := h.srv.Deletes(); d[len(d)-1].GracePeriodSeconds != "" || d[len(d)-1].Force {
		t.Errorf("defaults sent %+v", d[len(d)-1])
	}
	check(t, h.run("delete"), 2, "", "error: name the procs to delete: procctl delete proc NAME… or -f FILE\n")
	check(t, h.run("delete", "proc", "x", "--grace-period", "-1"), 2, "", "error: --grace-period must be 0 or more seconds\n")
}

func TestKill(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("a", v1.PhaseRunning, nil))
	check(t, h.run("kill", "a"), 0, "proc/a signaled (SIGTERM)\n", "")
	check(t, h.run("kill", "-s", "9", "--group", "proc/a"), 0, "proc/a signaled (SIGKILL)\n", "")
	got := h.srv.Signals()
	if len(got) != 2 || got[0] != (clienttest.SignalCall{Name: "a", Signal: "SIGTERM"}) || got[1] != (clienttest.SignalCall{Name: "a", Signal: "SIGKILL", Group: true}) {
		t.Errorf("server saw %+v", got)
	}
	check(t, h.run("kill", "-s", "BOGUS", "a"), 2, "", `error: unknown signal "BOGUS": use a name such as TERM, KILL, HUP, RTMIN+1 or a number`+"\n")
	check(t, h.run("kill", "nope"), 1, "", `error: proc "nope" not found`+"\n")
}

func TestWait(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("done", v1.PhaseSucceeded, nil))
	failed := fakeProc("failed", v1.PhaseFailed, nil)
	failed.Status.ExitCode = new(int)
	*failed.Status.ExitCode = 3
	h.srv.Put(failed)
	h.srv.Put(fakeProc("running", v1.PhaseRunning, nil))

	check(t, h.run("wait", "done", "--for=terminal"), 0, "proc/done condition met\n", "")
	check(t, h.run("wait", "failed", "--for=terminal"), 1, "", `error: proc "failed" ended Failed (exit code 3)`+"\n")
	check(t, h.run("wait", "failed", "--for=phase=failed"), 0, "proc/failed condition met\n", "")
	check(t, h.run("wait", "nope"), 1, "", `error: proc "nope" not found`+"\n")
	check(t, h.run("wait", "running", "--timeout=100ms"), 1, "",
		"error: timed out after 100ms waiting for terminal (running is Running); raise --timeout to wait longer\n")
	// A request that times out is the server's fault, not the wait's.
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	t.Cleanup(hang.Close)
	check(t, h.run("wait", "running", "--timeout=1h", "--request-timeout=50ms", "--server", hang.URL), 1, "",
		"error: server "+hang.URL+" did not answer within 50ms (raise --request-timeout, or check the server)\n")
	check(t, h.run("wait", "done", "--for=phase=Running"), 1, "", `error: proc "done" ended Succeeded and will never have phase Running`+"\n")
	check(t, h.run("wait", "done", "--for=condition=Started"), 1, "", `error: proc "done" ended Succeeded and will never have condition Started=True`+"\n")
	for _, bad := range []string{"--for=bogus", "--for=phase=Sleeping", "--for=condition=", "--for=condition=X=maybe", "--timeout=-1s"} {
		r := h.run("wait", "done", bad)
		if r.code != 2 {
			t.Errorf("%s: exit %d (%q)", bad, r.code, r.stderr)
		}
		oneErrorLine(t, r)
	}
}

func TestWaitFor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		args   []string
		change func(s *clienttest.Server)
		code   int
		stdout string
		stderr string
	}{
		{"terminal success", []string{"--for=terminal"}, func(s *clienttest.Server) { s.Finish("p", 0) }, 0, "proc/p condition met\n", ""},
		{"terminal failure", []string{"--for=terminal"}, func(s *clienttest.Server) { s.Finish("p", 2) }, 1, "", `error: proc "p" ended Failed (exit code 2)` + "\n"},
		{"condition", []string{"--for=condition=Started"}, func(s *clienttest.Server) { s.Start("p", 5) }, 0, "proc/p condition met\n", ""},
		{"phase", []string{"--for=phase=Running"}, func(s *clienttest.Server) { s.Start("p", 5) }, 0, "proc/p condition met\n", ""},
		{"phase never", []string{"--for=phase=Running"}, func(s *clienttest.Server) { s.Finish("p", 0) }, 1, "", `error: proc "p" ended Succeeded (exit code 0) and will never have phase Running` + "\n"},
		{"deleted", []string{"--for=terminal"}, func(s *clienttest.Server) { s.Remove("p") }, 1, "", `error: proc "p" was deleted before it was terminal (it was Pending)` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.srv.Put(fakeProc("p", v1.PhasePending, nil))
			out, errb, done := h.start(context.Background(), append([]string{"wait", "p"}, tc.args...)...)
			eventually(t, "the watch", func() bool { return h.srv.Watches() == 1 })
			tc.change(h.srv)
			code := <-done
			check(t, result{out.String(), errb.String(), code}, tc.code, tc.stdout, tc.stderr)
		})
	}
}

func TestWaitProgress(t *testing.T) {
	h := newHarness(t)
	h.terminal = true
	h.srv.Put(fakeProc("p", v1.PhasePending, nil))
	out, errb, done := h.start(context.Background(), "wait", "p")
	eventually(t, "the watch", func() bool { return h.srv.Watches() == 1 })
	h.srv.Start("p", 1)
	h.srv.Finish("p", 0)
	if code := <-done; code != 0 || out.String() != "proc/p condition met\n" {
		t.Fatalf("exit %d, %q %q", code, out.String(), errb.String())
	}
	if !strings.Contains(errb.String(), "waiting 0s for terminal: p is Pending…") || !strings.Contains(errb.String(), "p is Running") {
		t.Errorf("no progress on a terminal: %q", errb.String())
	}
	// The line is redrawn while nothing changes, and its clock moves:
	// here a second of it passes in each millisecond.
	h.srv.Put(fakeProc("r", v1.PhasePending, nil))
	h.redraw = 5 * time.Millisecond
	began := time.Now()
	h.now = func() time.Time { return testNow.Add(time.Since(began) * 1000) }
	_, errb, done = h.start(context.Background(), "wait", "r")
	eventually(t, "the watch", func() bool { return h.srv.Watches() == 2 })
	eventually(t, "redraws with the time waited", func() bool {
		ages := map[string]bool{}
		for _, m := range regexp.MustCompile(`waiting (\S+) for`).FindAllStringSubmatch(errb.String(), -1) {
			ages[m[1]] = true
		}
		return len(ages) >= 3
	})
	h.srv.Finish("r", 0)
	<-done
	if s := errb.String(); !strings.Contains(s, "for terminal: r is Pending…") || !strings.HasSuffix(s, "\r\033[K") {
		t.Errorf("redrawn progress: %q", s)
	}
	h.now, h.redraw = nil, 0
	// Not a terminal: quiet.
	h.terminal = false
	h.srv.Put(fakeProc("q", v1.PhasePending, nil))
	_, errb, done = h.start(context.Background(), "wait", "q")
	eventually(t, "the watch", func() bool { return h.srv.Watches() == 3 })
	h.srv.Finish("q", 0)
	<-done
	if errb.String() != "" {
		t.Errorf("progress in a pipe: %q", errb.String())
	}
}

func TestLogs(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("a", v1.PhaseSucceeded, nil))
	h.srv.AppendLog("a", "stdout", []byte("line one\nline two\n"))
	h.srv.AppendLog("a", "stderr", []byte("warning\n"))
	check(t, h.run("logs", "a"), 0, "line one\nline two\n", "")
	check(t, h.run("logs", "proc/a", "--fd", "stderr"), 0, "warning\n", "")
	check(t, h.run("logs", "a", "--start", "5"), 0, "one\nline two\n", "")
	check(t, h.run("logs", "a", "--tail-bytes", "9"), 0, "line two\n", "")
	check(t, h.run("logs", "nope"), 1, "", `error: proc "nope" not found`+"\n")
	check(t, h.run("logs", "a", "--fd", "7"), 1, "", `error: cannot read the output of proc "a": proc a has no captured fd 7`+"\n")
	check(t, h.run("logs", "a", "--tail-bytes", "1", "--fd", "5"), 1, "", `error: proc "a" has no captured output on fd 5 (see 'procctl describe proc a' for its captured fds)`+"\n")
	check(t, h.run("logs", "a", "--start", "1000"), 1, "", `error: cannot read the output of proc "a": start 1000 is past the end (18)`+"\n")
	check(t, h.run("logs", "a", "b"), 2, "", "error: logs takes one proc name: procctl logs NAME\n")
}

func TestLogsFollow(t *testing.T) {
	h := newHarness(t)
	h.terminal = true
	h.srv.Put(fakeProc("a", v1.PhaseRunning, nil))
	h.srv.AppendLog("a", "stdout", []byte("first\n"))
	out, errb, done := h.start(context.Background(), "logs", "-f", "a")
	eventually(t, "the first line", func() bool { return out.String() == "first\n" })
	h.srv.AppendLog("a", "stdout", []byte("second\n"))
	eventually(t, "the second line", func() bool { return out.String() == "first\nsecond\n" })
	h.srv.Finish("a", 0)
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %q", code, errb.String())
	}
	wantErr := `following stdout of proc "a" until it ends (Ctrl-C to stop)…` + "\n" + `proc "a" ended after 13 bytes: Succeeded (exit code 0)` + "\n"
	if errb.String() != wantErr {
		t.Errorf("stderr %q, want %q", errb.String(), wantErr)
	}
}

func TestRun(t *testing.T) {
	h := newHarness(t)
	h.srv.OnCreate = func(s *clienttest.Server, p *v1.Proc) {
		go func() {
			s.Start(p.Metadata.Name, 100)
			s.AppendLog(p.Metadata.Name, "stdout", []byte("out: "+strings.Join(p.Spec.Argv, " ")+"\n"))
			s.AppendLog(p.Metadata.Name, "stderr", []byte("err\n"))
			code := 0
			if len(p.Spec.Argv) > 1 {
				code = 3
			}
			s.Finish(p.Metadata.Name, code)
		}()
	}
	check(t, h.run("run", "plain", "--", "true"), 0, "proc/plain created\n", "")
	p := h.srv.Proc("plain")
	if p == nil || !p.Spec.PathSearch || len(p.Spec.Fds) != 3 || p.Spec.Fds[1].Capture.Mode != v1.CaptureMemory || p.Spec.Fds[2].Capture.Encoding != v1.EncodingUTF8 {
		t.Fatalf("run built %+v", p)
	}
	check(t, h.run("run", "w", "--wait", "--", "/bin/true"), 0, "out: /bin/true\n", "err\n")
	check(t, h.run("run", "x", "--wait", "--rm", "-l", "k=v", "-e", "A=B", "--", "false", "arg"), 3, "out: false arg\n", "err\n")
	if h.srv.Proc("x") != nil {
		t.Error("--rm left the proc")
	}
	check(t, h.run("run", "w", "--", "true"), 1, "", `error: proc "w" already exists (delete it first, or pick another name)`+"\n")
	for _, args := range [][]string{
		{"run"},
		{"run", "n"},
		{"run", "n", "cmd"},
		{"run", "n", "--rm", "--", "true"},
		{"run", "bad/name", "--", "true"},
		{"run", "n", "-l", "nokv", "--", "true"},
	} {
		r := h.run(args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d (%q)", args, r.code, r.stderr)
		}
		oneErrorLine(t, r)
	}
}

func TestRunSignaledAndError(t *testing.T) {
	h := newHarness(t)
	h.srv.OnCreate = func(s *clienttest.Server, p *v1.Proc) {
		go s.Update(p.Metadata.Name, func(q *v1.Proc) {
			if q.Metadata.Name == "sig" {
				q.Status.Phase, q.Status.Signal = v1.PhaseFailed, "SIGKILL"
			} else {
				q.Status.Phase, q.Status.Errors = v1.PhaseError, []string{"execve failed: No such file or directory"}
			}
		})
	}
	check(t, h.run("run", "sig", "--wait", "--", "sleep", "9"), 137, "", "")
	check(t, h.run("run", "err", "--wait", "--", "/nope"), 1, "", `error: proc "err" could not start: Error: execve failed: No such file or directory`+"\n")
}

func TestErrors(t *testing.T) {
	h := newHarness(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	check(t, h.run("get", "procs", "--server", dead), 1, "", "error: cannot reach server "+dead+": connection refused (is procstar --serve running?)\n")
	check(t, h.run("apply", "-f", h.write("p.yaml", helloYAML), "--server", dead), 1, "", "error: cannot reach server "+dead+": connection refused (is procstar --serve running?)\n")

	h.srv.Token = "sekrit"
	want := "error: server " + h.srv.URL + " refused the credentials (missing or wrong bearer token): pass --token or set token/tokenFile in your config context\n"
	check(t, h.run("get", "procs"), 1, "", want)
	check(t, h.run("get", "procs", "--token", "wrong"), 1, "", want)
	check(t, h.run("get", "procs", "--token", "sekrit"), 0, "", "No procs found.\n")
	check(t, h.run("get", "proc", "x", "--token", "sekrit"), 1, "", `error: proc "x" not found`+"\n")

	check(t, h.run("get", "procs", "--server", "ftp://x"), 2, "", `error: bad client config: server "ftp://x" is not http://HOST:PORT, https://HOST:PORT or unix:/PATH (check --server or your config context)`+"\n")
	check(t, h.run("bogus"), 2, "", "error: unknown command \"bogus\" (see 'procctl --help')\n")
	check(t, h.run("get", "procs", "--nope"), 2, "", "error: unknown flag: --nope (see 'procctl get --help')\n")
	check(t, h.run("version", "extra"), 2, "", "error: version takes no arguments (see 'procctl version --help')\n")
}

func TestConfig(t *testing.T) {
	h := newHarness(t)
	delete(h.vars, "PROCSTAR_SERVER")
	h.srv.Token = "from-file"
	dir := filepath.Join(h.home, ".config", "procstar")
	os.MkdirAll(dir, 0o755)
	os.WriteFile(filepath.Join(dir, "token"), []byte("from-file\n"), 0o600)
	cfg := "currentContext: local\ncontexts:\n" +
		"- {name: local, server: " + h.srv.URL + ", tokenFile: token}\n" +
		"- {name: other, server: 'http://127.0.0.1:1'}\n"
	os.WriteFile(filepath.Join(dir, "config.yaml"), []byte(cfg), 0o600)

	check(t, h.run("get", "procs"), 0, "", "No procs found.\n")
	r := h.run("get", "procs", "--context", "other")
	check(t, r, 1, "", "error: cannot reach server http://127.0.0.1:1: connection refused (is procstar --serve running?)\n")
	check(t, h.run("get", "procs", "--context", "missing"), 2, "",
		`error: context "missing" is not in `+filepath.Join(dir, "config.yaml")+" (known contexts: local, other)\n")

	// $PROCSTAR_SERVER beats the current context; --server beats both.
	h.vars["PROCSTAR_SERVER"] = "http://127.0.0.1:1"
	check(t, h.run("get", "procs"), 1, "", "error: cannot reach server http://127.0.0.1:1: connection refused (is procstar --serve running?)\n")
	check(t, h.run("get", "procs", "--server", h.srv.URL), 0, "", "No procs found.\n")
	// An explicit --context beats $PROCSTAR_SERVER.
	check(t, h.run("get", "procs", "--context", "local"), 0, "", "No procs found.\n")
	// A context's token goes only to its own server: not to one named by
	// $PROCSTAR_SERVER or --server, unless --token says so.
	other := clienttest.New()
	t.Cleanup(other.Close)
	other.Token = "from-file"
	h.vars["PROCSTAR_SERVER"] = other.URL
	refused := "error: server " + other.URL + " refused the credentials (missing or wrong bearer token): pass --token or set token/tokenFile in your config context\n"
	check(t, h.run("get", "procs"), 1, "", refused)
	delete(h.vars, "PROCSTAR_SERVER")
	check(t, h.run("get", "procs", "--server", other.URL), 1, "", refused)
	check(t, h.run("get", "procs", "--server", other.URL, "--token", "from-file"), 0, "", "No procs found.\n")
	check(t, h.run("get", "procs", "--server", h.srv.URL), 0, "", "No procs found.\n")

	// Contexts but no currentContext: say so rather than use the default.
	nocur := h.write("nocur.yaml", "contexts:\n- {name: a, server: 'http://127.0.0.1:1'}\n- {name: b, server: 'http://127.0.0.1:2'}\n")
	check(t, h.run("get", "procs", "--config", nocur), 2, "", "error: "+nocur+" has contexts (a, b) but no currentContext: pass --context NAME or set currentContext\n")
	check(t, h.run("get", "procs", "--config", nocur, "--server", h.srv.URL, "--token", "from-file"), 0, "", "No procs found.\n")

	// $XDG_CONFIG_HOME moves the file; --config names it.
	xdg := t.TempDir()
	h.vars["XDG_CONFIG_HOME"] = xdg
	check(t, h.run("get", "procs"), 1, "", "error: cannot reach server "+DefaultServer+": connection refused (is procstar --serve running?)\n")
	check(t, h.run("get", "procs", "--config", filepath.Join(dir, "config.yaml")), 0, "", "No procs found.\n")
	check(t, h.run("get", "procs", "--config", "/nonexistent.yaml"), 2, "", "error: cannot read config file: /nonexistent.yaml: no such file or directory\n")
	for text, want := range map[string]string{
		"contexts: [{name: x, sever: y}]\n":                  `unknown field "sever"`,
		"contexts: {x: 1}\n":                                 "contexts: want a list, not a map",
		"contexts: [{name: x, insecureSkipVerify: maybe}]\n": "contexts.insecureSkipVerify: want true or false, not a string",
		"contexts: [{name: x\n":                              "yaml: line 1: did not find expected ',' or '}'",
	} {
		bad := h.write("bad.yaml", text)
		check(t, h.run("get", "procs", "--config", bad), 2, "", "error: config file "+bad+": "+want+" (fix the file or pass --config)\n")
	}
}

func TestVersion(t *testing.T) {
	h := newHarness(t)
	old := version.Version
	version.Version = "v1.2.3-test" // as make build's -ldflags -X sets it
	t.Cleanup(func() { version.Version = old })
	r := h.run("version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Client Version: v1.2.3-test (commit ") || !strings.Contains(r.stdout, "Server Version: v0.0.0-fake (commit fake, go1.26, linux/amd64)\n") {
		t.Errorf("version: %+v", r)
	}
	r = h.run("version", "--client", "--server", "http://127.0.0.1:1")
	if r.code != 0 || strings.Contains(r.stdout, "Server") {
		t.Errorf("version --client: %+v", r)
	}
}

func TestCompletion(t *testing.T) {
	h := newHarness(t)
	for _, sh := range []string{"bash", "zsh", "fish"} {
		r := h.run("completion", sh)
		if r.code != 0 || !strings.Contains(r.stdout, "procctl") || len(r.stdout) < 500 {
			t.Errorf("completion %s: exit %d, %d bytes", sh, r.code, len(r.stdout))
		}
	}
	check(t, h.run("completion", "tcsh"), 2, "", `error: unknown shell "tcsh": procctl completes bash, zsh and fish`+"\n")
	// Dynamic completion of proc names.
	h.srv.Put(fakeProc("alpha", v1.PhaseRunning, nil))
	r := h.run("__complete", "logs", "")
	if !strings.Contains(r.stdout, "alpha\n") {
		t.Errorf("name completion: %+v", r)
	}
}

func TestInterrupted(t *testing.T) {
	h := newHarness(t)
	h.srv.Put(fakeProc("p", v1.PhaseRunning, nil))
	ctx, cancel := context.WithCancel(context.Background())
	_, errb, done := h.start(ctx, "wait", "p", "--timeout=0")
	eventually(t, "the watch", func() bool { return h.srv.Watches() == 1 })
	cancel()
	if code := <-done; code != 130 || errb.String() != "error: interrupted\n" {
		t.Errorf("exit %d, %q", code, errb.String())
	}
}
