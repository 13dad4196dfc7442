// Package e2e_test runs the built binaries end to end: procstar's one-shot
// mode, exit codes, result JSON and shutdown signals, and procstar --serve
// driven by procctl and by procstar's own HTTP routes.
package e2e_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var procstarBin, procctlBin string

func TestMain(m *testing.M) {
	if os.Getenv(execBlockedEnv) != "" {
		execBlocked()
	}
	dir, err := os.MkdirTemp("", "procstar-e2e-")
	if err != nil {
		panic(err)
	}
	// The binaries are built with -race. Their race reports make them exit
	// 66, which every test notices; the race runtime's default one-second
	// sleep at exit only slows the suite.
	os.Setenv("GORACE", "atexit_sleep_ms=0")
	procstarBin = filepath.Join(dir, "procstar")
	procctlBin = filepath.Join(dir, "procctl")
	build := exec.Command("go", "build", "-race", "-o", dir+"/", "procstar.dev/procstar/cmd/procstar", "procstar.dev/procstar/cmd/procctl")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		panic("go build: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type runResult struct {
	code           int
	stdout, stderr string
}

// procstar runs the binary with args and stdin, bounded in time.
func procstar(t *testing.T, stdin string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(procstarBin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return runResult{code, out.String(), errb.String()}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("procstar %v did not finish; stderr: %s", args, errb.String())
	}
	return runResult{}
}

func decodeResults(t *testing.T, s string) map[string]map[string]any {
	t.Helper()
	var res map[string]map[string]any
	if err := json.Unmarshal([]byte(s), &res); err != nil {
		t.Fatalf("results are not JSON: %v\n%s", err, s)
	}
	return res
}

func TestHelloSample(t *testing.T) {
	r := procstar(t, "", "--log-level", "info", "--print", "../../config/samples/hello.yaml")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "started processes from specs") {
		t.Errorf("stderr lacks the start line: %s", r.stderr)
	}
	if !strings.HasSuffix(r.stdout, "}\n") {
		t.Errorf("--print output should end with a newline: %q", r.stdout)
	}
	res := decodeResults(t, r.stdout)
	hello, ok := res["hello"]
	if !ok {
		t.Fatalf("no result for hello: %v", res)
	}
	if hello["state"] != "terminated" {
		t.Errorf("state = %v", hello["state"])
	}
	status := hello["status"].(map[string]any)
	if status["exit_code"] != float64(0) {
		t.Errorf("exit_code = %v", status["exit_code"])
	}
	stdout := hello["fds"].(map[string]any)["stdout"].(map[string]any)
	if stdout["type"] != "text" || !strings.Contains(stdout["text"].(string), "hello") {
		t.Errorf("stdout = %v", stdout)
	}
}

func TestProcstarJSONFromStdinAndOutputFile(t *testing.T) {
	spec := `{"specs": {
	  "a": {"argv": ["/bin/sh", "-c", "printf 'out\\200x'; exit 42"],
	        "fds": [["stdout", {"capture": {"mode": "memory", "encoding": "utf-8"}}]]},
	  "b": {"argv": ["/bin/sh", "-c", "kill -TERM $$"],
	        "fds": [["stdout", {"capture": {}}]]}
	}}`
	out := filepath.Join(t.TempDir(), "results.json")
	r := procstar(t, spec, "--output", out, "-")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("--output alone should print nothing, got %q", r.stdout)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.HasSuffix(data, []byte("\n")) {
		t.Error("--output file should have no trailing newline")
	}
	res := decodeResults(t, string(data))
	a := res["a"]
	if got := a["status"].(map[string]any)["exit_code"]; got != float64(42) {
		t.Errorf("a exit_code = %v", got)
	}
	if got := a["fds"].(map[string]any)["stdout"].(map[string]any)["text"]; got != "out\ufffdx" {
		t.Errorf("a stdout text = %q", got)
	}
	b := res["b"]["status"].(map[string]any)
	if b["signal"] != "SIGTERM" || b["signum"] != float64(15) || b["exit_code"] != nil {
		t.Errorf("b status = %v", b)
	}
	if d := res["b"]["fds"].(map[string]any)["stdout"].(map[string]any); d["type"] != "data" || d["encoding"] != "base64" {
		t.Errorf("b stdout = %v", d)
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: t}\nspec: {argv: [/bin/true]}\n")
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no mode", []string{good}, 65, "Specify at least one of"},
		// A file that does not parse, or holds no procs, is a load
		// failure (2); a procstar spec that procstar would refuse at
		// start-up is a start failure (65), with procstar's error.
		{"empty file", []string{"--print", write("empty.yaml", "# nothing\n")}, 2, "failed to load"},
		{"bad fd name", []string{"--print", write("badfd.json", `{"specs": {"x": {"argv": ["/bin/true"], "fds": [["stdpot", "close"]]}}}`)}, 65, "failed to start processes: bad fd: stdpot"},
		{"missing file", []string{"--print", filepath.Join(dir, "nope.yaml")}, 2, "failed to load"},
		{"unknown field", []string{"--print", write("unknown.yaml", "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: t}\nspec: {argv: [/bin/true], bogus: 1}\n")}, 2, "bogus"},
		{"empty argv no exe", []string{"--print", write("empty.json", `{"specs": {"x": {"argv": []}}}`)}, 65, "argv"},
		{"NUL in argv", []string{"--print", write("nul.json", `{"specs": {"x": {"argv": ["/bin/echo", "a\u0000b"]}}}`)}, 65, "argv"},
		{"NUL in env", []string{"--print", write("nulenv.json", `{"specs": {"x": {"argv": ["/bin/true"], "env": {"vars": {"A": "x\u0000y"}}}}}`)}, 65, "env"},
		{"huge fd", []string{"--print", write("hugefd.json", `{"specs": {"x": {"argv": ["/bin/true"], "fds": [["99999999999999999999", "close"]]}}}`)}, 65, "fd"},
		{"huge mode", []string{"--print", write("hugemode.json", `{"specs": {"x": {"argv": ["/bin/true"], "fds": [["stdout", {"file": {"path": "/dev/null", "mode": 1e30}}]]}}}`)}, 2, "mode"},
		{"bad log level", []string{"--log-level", "loud", "--print", good}, 2, "log-level"},
		{"unknown flag", []string{"--frobnicate", good}, 2, "frobnicate"},
		// Agent labels follow the rules of proc labels, so that a
		// selector can name them.
		{"label without value", []string{"--label", "zone", "--print", good}, 2, "want key=value"},
		{"bad label key", []string{"--label", "-zone=a", "--print", good}, 2, "--label \"-zone=a\": key must begin and end"},
		{"bad label value", []string{"--label", "zone=a b", "--print", good}, 2, "value must consist of"},
		{"unwritable output", []string{"--output", filepath.Join(dir, "no/such/dir/out.json"), good}, 72, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := procstar(t, "", c.args...)
			if r.code != c.code {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, c.code, r.stderr)
			}
			if !strings.Contains(r.stderr, c.stderr) {
				t.Errorf("stderr %q lacks %q", r.stderr, c.stderr)
			}
			if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") {
				t.Errorf("stderr shows a crash: %s", r.stderr)
			}
		})
	}
}

func TestNoSpecsPrintsEmptyObject(t *testing.T) {
	r := procstar(t, "", "--print")
	if r.code != 0 || r.stdout != "{}\n" {
		t.Fatalf("exit %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
}

func TestRestrictExe(t *testing.T) {
	spec := `{"specs": {"x": {"argv": ["/bin/echo", "hi"]}}}`
	r := procstar(t, spec, "--restrict-exe", "/bin/true", "--print", "-")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	x := decodeResults(t, r.stdout)["x"]
	errs, _ := x["errors"].([]any)
	if x["state"] != "error" || len(errs) != 1 || errs[0] != "restricted executable: /bin/true" {
		t.Fatalf("result = %v", x)
	}
}

// TestSigtermStopsProcs checks §7.2: SIGTERM ends running procs, and in
// --exit mode their results are still printed and procstar exits 0.
func TestSigtermStopsProcs(t *testing.T) {
	spec := `{"specs": {"s": {"argv": ["/bin/sleep", "600"]}}}`
	cmd := exec.Command(procstarBin, "--log-level", "info", "--print", "-")
	cmd.Stdin = strings.NewReader(spec)
	var out bytes.Buffer
	var errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(errb.String(), "started processes from specs") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("never started; stderr: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("procstar: %v; stderr: %s", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("SIGTERM did not end procstar; stderr: %s", errb.String())
	}
	s := decodeResults(t, out.String())["s"]
	if sig := s["status"].(map[string]any)["signal"]; sig != "SIGTERM" {
		t.Fatalf("signal = %v", sig)
	}
}

// syncBuffer is a bytes.Buffer that a test may read while a process writes.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestBinaryOutputRoundTripsThroughBase64 captures every byte value and
// gets it back from the base64 "data" of procstar's result.
func TestBinaryOutputRoundTripsThroughBase64(t *testing.T) {
	var format strings.Builder
	want := make([]byte, 256)
	for i := range 256 {
		fmt.Fprintf(&format, "\\%03o", i)
		want[i] = byte(i)
	}
	spec, err := json.Marshal(map[string]any{"specs": map[string]any{"bin": map[string]any{
		"argv": []string{"/usr/bin/printf", format.String()},
		"fds":  [][]any{{"stdout", map[string]any{"capture": map[string]any{"mode": "memory"}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	r := procstar(t, string(spec), "--print", "-")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	out := decodeResults(t, r.stdout)["bin"]["fds"].(map[string]any)["stdout"].(map[string]any)
	if out["type"] != "data" || out["encoding"] != "base64" {
		t.Fatalf("stdout result %v", out)
	}
	got, err := base64.StdEncoding.DecodeString(out["data"].(string))
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("decoded %d bytes (%v), want the 256 byte values in order", len(got), err)
	}
}

// execBlockedEnv makes this test binary a helper that runs its arguments
// with SIGUSR2 blocked and its fd 3 (see execBlocked).
const execBlockedEnv = "E2E_EXEC_BLOCKED"

// execBlocked blocks SIGUSR2 in its thread and execs os.Args[1:] with fd 3,
// which this binary's initialisation (package runtime's, through agent)
// made close-on-exec.
func execBlocked() {
	goruntime.LockOSThread()
	var set unix.Sigset_t
	set.Val[0] = 1 << (unix.SIGUSR2 - 1)
	err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil)
	if err == nil {
		_, err = unix.FcntlInt(3, unix.F_SETFD, 0)
	}
	if err == nil {
		var env []string
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, execBlockedEnv+"=") {
				env = append(env, kv)
			}
		}
		err = unix.Exec(os.Args[1], os.Args[1:], env)
	}
	fmt.Fprintln(os.Stderr, "exec with SIGUSR2 blocked:", err)
	os.Exit(127)
}

// TestBlockedSignalsReexec: procstar started with a signal blocked
// re-executes itself without it, keeping the fds it was started with, and
// then spawns without the trampoline; its child starts with nothing
// blocked.
func TestBlockedSignalsReexec(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "spec.json")
	if err := os.WriteFile(spec, []byte(`{"specs": {"x": {"argv": ["/bin/grep", "^SigBlk", "/proc/self/status"], "fds": [["stdout", {"dup": {"fd": 3}}]]}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(os.Args[0], procstarBin, "--exit", "--log-level", "info", spec)
	cmd.Env = append(os.Environ(), execBlockedEnv+"=1")
	cmd.ExtraFiles = []*os.File{out} // fd 3
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	if b, _ := os.ReadFile(out.Name()); string(b) != "SigBlk:\t0000000000000000\n" {
		t.Errorf("the child's fd 3 got %q", b)
	}
	if strings.Contains(stderr.String(), "trampoline") {
		t.Errorf("the agent still uses the trampoline:\n%s", stderr.String())
	}
}

// TestProcstarSpecInheritsFds: as procstar's, the child of a procstar
// spec inherits the fds the agent was started with that it does not list
// ("procstar spec.json 3>file"), and a v1 spec's does not by default.
func TestProcstarSpecInheritsFds(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, spec, want string
	}{
		{"procstar", `{"specs": {"x": {"argv": ["/bin/sh", "-c", "echo hi >&3"]}}}`, "hi\n"},
		{"v1", "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: x}\nspec: {argv: [/bin/sh, -c, 'echo hi >&3']}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := filepath.Join(dir, tc.name+".spec")
			if err := os.WriteFile(spec, []byte(tc.spec), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := os.Create(filepath.Join(dir, tc.name+".out"))
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd := exec.Command(procstarBin, "--exit", spec)
			cmd.ExtraFiles = []*os.File{out} // fd 3
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%v: %s", err, b)
			}
			if b, _ := os.ReadFile(out.Name()); string(b) != tc.want {
				t.Fatalf("fd 3 got %q, want %q", b, tc.want)
			}
		})
	}
}
