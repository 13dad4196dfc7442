package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// agentProc is a running procstar --serve.
type agentProc struct {
	cmd    *exec.Cmd
	addr   string // host:port
	stderr *syncBuffer
	done   chan error
}

var servingRE = regexp.MustCompile(`serving HTTP API\s+\{"addr": "([^"]+)"`)

// startAgent starts procstar --serve on a free loopback port with extra
// flags and waits until it listens. It is stopped at the end of the test.
func startAgent(t *testing.T, extra ...string) *agentProc {
	t.Helper()
	return startAgentArgs(t, append([]string{"--serve", "--serve-addr", "127.0.0.1:0", "--log-level", "info", "--delete-grace", "100ms"}, extra...)...)
}

// startAgentArgs is startAgent with all of procstar's arguments given.
func startAgentArgs(t *testing.T, args ...string) *agentProc {
	t.Helper()
	a := &agentProc{cmd: exec.Command(procstarBin, args...), stderr: &syncBuffer{}, done: make(chan error, 1)}
	a.cmd.Stderr = a.stderr
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { a.done <- a.cmd.Wait() }()
	t.Cleanup(func() {
		_ = a.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-a.done:
		case <-time.After(20 * time.Second):
			_ = a.cmd.Process.Kill()
			<-a.done
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m := servingRE.FindStringSubmatch(a.stderr.String()); m != nil {
			a.addr = m[1]
			return a
		}
		select {
		case err := <-a.done:
			a.done <- err
			t.Fatalf("procstar --serve exited: %v\n%s", err, a.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("procstar --serve never listened:\n%s", a.stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// procctl runs the procctl binary against server and returns its exit code
// and output.
func procctl(t *testing.T, server string, stdin string, args ...string) runResult {
	t.Helper()
	cmd := exec.Command(procctlBin, append([]string{"--server", server}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir())
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := runCtx(ctx, cmd)
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("procctl %v: %v", args, err)
	}
	return runResult{code, out.String(), errb.String()}
}

func runCtx(ctx context.Context, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		return ctx.Err()
	}
}

func mustOK(t *testing.T, r runResult, wantOut string) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, wantOut) {
		t.Fatalf("stdout %q lacks %q", r.stdout, wantOut)
	}
}

const helloYAML = `apiVersion: procstar.dev/v1
kind: Proc
metadata: {name: NAME}
spec:
  argv: [/bin/sh, -c, "SCRIPT"]
  fds:
    - {fd: stdout, capture: {mode: memory, encoding: utf-8}}
    - {fd: stderr, dup: {fd: 1}}
`

func procYAML(name, script string) string {
	return strings.NewReplacer("NAME", name, "SCRIPT", script).Replace(helloYAML)
}

func TestServeProcctlLifecycle(t *testing.T) {
	a := startAgent(t)
	server := "http://" + a.addr

	mustOK(t, procctl(t, server, "", "apply", "-f", "../../config/samples/hello.yaml"), "proc/hello created")
	mustOK(t, procctl(t, server, "", "apply", "-f", "../../config/samples/hello.yaml"), "proc/hello unchanged")
	mustOK(t, procctl(t, server, "", "wait", "hello", "--for=terminal", "--timeout", "30s"), "")
	mustOK(t, procctl(t, server, "", "logs", "hello"), "hello from procstar\n")
	get := procctl(t, server, "", "get", "procs")
	mustOK(t, get, "hello")
	if !strings.Contains(get.stdout, "Succeeded") || !strings.HasPrefix(get.stdout, "NAME") {
		t.Errorf("get procs:\n%s", get.stdout)
	}

	// A changed spec is refused with a message that says what to do.
	changed := strings.Replace(mustRead(t, "../../config/samples/hello.yaml"), "hello from procstar", "changed", 1)
	r := procctl(t, server, changed, "apply", "-f", "-")
	if r.code == 0 || !strings.Contains(r.stderr, "immutable") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
		t.Fatalf("changed spec: exit %d, stderr %q", r.code, r.stderr)
	}
	mustOK(t, procctl(t, server, changed, "apply", "--force", "-f", "-"), "proc/hello configured")
	mustOK(t, procctl(t, server, "", "wait", "hello", "--for=terminal"), "")
	mustOK(t, procctl(t, server, "", "logs", "hello"), "changed\n")

	mustOK(t, procctl(t, server, "", "delete", "proc", "hello"), "proc/hello deleted")
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := procctl(t, server, "", "get", "procs", "hello")
		if r.code != 0 && strings.Contains(r.stderr, "not found") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("hello never went away: %+v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// TestServeLogsFollow follows a proc's output while it is written and
// checks it byte for byte.
func TestServeLogsFollow(t *testing.T) {
	a := startAgent(t)
	server := "http://" + a.addr
	script := `for i in $(seq 1 40); do seq $((i*1000)) $((i*1000+999)); sleep 0.01; done`
	var want strings.Builder
	for i := 1; i <= 40; i++ {
		for n := i * 1000; n <= i*1000+999; n++ {
			want.WriteString(strconv.Itoa(n) + "\n")
		}
	}
	mustOK(t, procctl(t, server, procYAML("counter", script), "apply", "-f", "-"), "proc/counter created")
	r := procctl(t, server, "", "logs", "-f", "counter")
	if r.code != 0 {
		t.Fatalf("logs -f: exit %d, stderr %s", r.code, r.stderr)
	}
	if r.stdout != want.String() {
		t.Fatalf("logs -f gave %d bytes, want %d", len(r.stdout), want.Len())
	}
	if r.stderr != "" {
		t.Errorf("logs -f in a pipe should be quiet, stderr: %q", r.stderr)
	}
}

func TestServeKillWaitFails(t *testing.T) {
	a := startAgent(t)
	server := "http://" + a.addr
	mustOK(t, procctl(t, server, procYAML("sleeper", "exec sleep 600"), "apply", "-f", "-"), "created")
	mustOK(t, procctl(t, server, "", "wait", "sleeper", "--for=phase=Running"), "")
	mustOK(t, procctl(t, server, "", "kill", "sleeper", "-s", "SIGTERM"), "")
	r := procctl(t, server, "", "wait", "sleeper", "--for=terminal", "--timeout", "30s")
	if r.code == 0 {
		t.Fatalf("wait --for=terminal on a killed proc exited 0: %+v", r)
	}
	r = procctl(t, server, "", "get", "procs", "sleeper", "-o", "jsonpath={.status.phase} {.status.signal}")
	mustOK(t, r, "Failed SIGTERM")
}

// TestServeWatchFieldSelectorResumed does what procctl get -w does, list
// and then watch from the list's resourceVersion, with a field selector: a
// proc that leaves the selection must come as DELETED, though the watch
// never saw it enter.
func TestServeWatchFieldSelectorResumed(t *testing.T) {
	a := startAgent(t)
	server := "http://" + a.addr
	const procs = "/apis/procstar.dev/v1/procs"
	mustOK(t, procctl(t, server, procYAML("sleeper", "exec sleep 600"), "apply", "-f", "-"), "created")
	mustOK(t, procctl(t, server, "", "wait", "sleeper", "--for=phase=Running"), "")

	resp, err := http.Get(server + procs + "?fieldSelector=status.phase%3DRunning")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Metadata struct{ ResourceVersion string }
		Items    []struct{ Metadata struct{ Name string } }
	}
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || len(list.Items) != 1 || list.Items[0].Metadata.Name != "sleeper" {
		t.Fatalf("list: %+v, %v", list, err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", server+procs+"?watch=true&fieldSelector=status.phase%3DRunning&resourceVersion="+list.Metadata.ResourceVersion, nil)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// procctl does the same; --output-watch-events shows the DELETED.
	lines := procctlLines(t, server, "get", "procs", "-w", "--output-watch-events", "-o", "name", "--field-selector", "status.phase=Running")
	if l := nextLine(t, lines); l != "ADDED proc/sleeper" {
		t.Fatalf("procctl get -w printed %q first, want the listed sleeper", l)
	}
	mustOK(t, procctl(t, server, "", "kill", "sleeper"), "")
	dec := json.NewDecoder(resp.Body)
	for {
		var ev struct {
			Type   string
			Object struct {
				Metadata struct{ Name string }
				Status   struct{ Phase string }
			}
		}
		if err := dec.Decode(&ev); err != nil {
			t.Fatalf("watch ended without sleeper leaving Running: %v", err)
		}
		if ev.Object.Metadata.Name != "sleeper" || ev.Object.Status.Phase != "Running" {
			t.Fatalf("got %s %s %s; the selection is phase Running", ev.Type, ev.Object.Metadata.Name, ev.Object.Status.Phase)
		}
		if ev.Type == "DELETED" {
			break
		}
	}
	for l := nextLine(t, lines); l != "DELETED proc/sleeper"; l = nextLine(t, lines) {
		if l != "MODIFIED proc/sleeper" {
			t.Fatalf("procctl get -w printed %q after the kill, want sleeper changing, then leaving the selection", l)
		}
	}
}

// procctlLines starts a procctl that runs until the test ends (a watch) and
// returns its stdout lines.
func procctlLines(t *testing.T, server string, args ...string) <-chan string {
	t.Helper()
	cmd := exec.Command(procctlBin, append([]string{"--server", server}, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+t.TempDir(), "HOME="+t.TempDir())
	var errb bytes.Buffer
	cmd.Stderr = &errb
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("procctl %v stderr: %s", args, errb.String())
		}
	})
	return lines
}

// nextLine returns the next line, or fails the test after 30 s or at EOF.
func nextLine(t *testing.T, lines <-chan string) string {
	t.Helper()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatal("procctl exited")
		}
		return l
	case <-time.After(30 * time.Second):
		t.Fatal("no line from procctl after 30 s")
	}
	return ""
}

// TestServeProcstarRoutes drives procstar's own HTTP routes, as Apsis-style
// clients do.
func TestServeProcstarRoutes(t *testing.T) {
	a := startAgent(t)
	base := "http://" + a.addr
	spec := `{"specs": {"p1": {"argv": ["/bin/sh", "-c", "echo out; exec sleep 600"], "fds": [["stdout", {"capture": {"mode": "tempfile", "encoding": "utf-8", "attached": false}}]]}}}`
	resp := do(t, "POST", base+"/procs", "application/json; charset=utf-8", spec)
	if resp.code != 200 || resp.body != `{"data":{}}` {
		t.Fatalf("POST /procs: %d %s", resp.code, resp.body)
	}
	resp = do(t, "DELETE", base+"/procs/p1", "", "")
	if resp.code != 400 || !strings.Contains(resp.body, `"process running: p1"`) {
		t.Fatalf("DELETE running: %d %s", resp.code, resp.body)
	}
	var out string
	for deadline := time.Now().Add(20 * time.Second); out != "out\n"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output never arrived: %q", out)
		}
		out = do(t, "GET", base+"/procs/p1/output/stdout/data", "", "").body
	}
	resp = do(t, "POST", base+"/procs/p1/signals/SIGKILL", "", "")
	if resp.code != 200 {
		t.Fatalf("signal: %d %s", resp.code, resp.body)
	}
	var res struct {
		Data struct {
			Procs map[string]struct {
				State  string
				Status struct{ Signal string }
				Fds    map[string]map[string]any
			}
		}
	}
	for deadline := time.Now().Add(20 * time.Second); res.Data.Procs["p1"].State != "terminated"; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("p1 never terminated: %+v", res)
		}
		body := do(t, "GET", base+"/procs/p1", "", "").body
		if err := json.Unmarshal([]byte(body), &res); err != nil {
			t.Fatal(err)
		}
	}
	p1 := res.Data.Procs["p1"]
	if p1.Status.Signal != "SIGKILL" || p1.Fds["stdout"]["type"] != "detached" || p1.Fds["stdout"]["length"] != float64(4) {
		t.Fatalf("p1 result: %+v", p1)
	}
	if resp := do(t, "DELETE", base+"/procs/p1", "", ""); resp.code != 200 {
		t.Fatalf("DELETE: %d %s", resp.code, resp.body)
	}
	if resp := do(t, "GET", base+"/procs/p1", "", ""); resp.code != 404 || resp.body != `{"errors":{"detail":null,"status":"404 Not Found"}}` {
		t.Fatalf("GET deleted: %d %s", resp.code, resp.body)
	}
	metrics := do(t, "GET", base+"/metrics", "", "")
	for _, want := range []string{"procstar_starts_total 1", `procstar_exits_total{reason="Signaled"} 1`, "procstar_spawn_latency_seconds_count 1", "procstar_capture_bytes_total 4"} {
		if !strings.Contains(metrics.body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	var info struct {
		ShutdownState string `json:"shutdownState"`
		GroupID       string `json:"groupId"`
		Pid           int    `json:"pid"`
	}
	if err := json.Unmarshal([]byte(do(t, "GET", base+"/agent", "", "").body), &info); err != nil || info.ShutdownState != "active" || info.GroupID != "default" || info.Pid != a.cmd.Process.Pid {
		t.Errorf("GET /agent: %+v, %v", info, err)
	}
}

type httpResult struct {
	code int
	body string
}

func do(t *testing.T, method, url, contentType, body string) httpResult {
	return doAuth(t, http.DefaultClient, method, url, contentType, body, "")
}

func doAuth(t *testing.T, c *http.Client, method, url, contentType, body, token string) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return httpResult{resp.StatusCode, string(data)}
}

// TestServeAuthAndTLS serves HTTPS with a certificate from a CA the test
// makes, requiring a token.
func TestServeAuthAndTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeTestPKI(t, dir)
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, "--tls-cert", certFile, "--tls-key", keyFile, "--auth-token-file", tokenFile)
	server := "https://" + a.addr

	r := procctl(t, server, "", "--ca-file", caFile, "get", "procs")
	if r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "unauthorized") && !strings.Contains(r.stderr, "token") {
		t.Fatalf("no token: exit %d, stderr %q", r.code, r.stderr)
	}
	r = procctl(t, server, "", "--ca-file", caFile, "--token", "wrong", "get", "procs")
	if r.code == 0 {
		t.Fatalf("wrong token accepted: %+v", r)
	}
	r = procctl(t, server, "", "--ca-file", caFile, "--token", "s3cret-token", "get", "procs")
	if r.code != 0 {
		t.Fatalf("right token: exit %d, stderr %q", r.code, r.stderr)
	}
	// Without the CA the certificate is not trusted.
	r = procctl(t, server, "", "--token", "s3cret-token", "get", "procs")
	if r.code == 0 {
		t.Fatalf("untrusted certificate accepted: %+v", r)
	}
	// procstar's routes need the token too; /healthz does not.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM([]byte(mustRead(t, caFile)))
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig(pool)}}
	if r := doAuth(t, c, "GET", server+"/procs", "", "", ""); r.code != 401 {
		t.Errorf("GET /procs without token: %d", r.code)
	}
	if r := doAuth(t, c, "GET", server+"/procs", "", "", "s3cret-token"); r.code != 200 {
		t.Errorf("GET /procs with token: %d %s", r.code, r.body)
	}
	if r := doAuth(t, c, "GET", server+"/healthz", "", "", ""); r.code != 200 {
		t.Errorf("GET /healthz: %d", r.code)
	}
}

func TestServeRefusesPublicAddressWithoutToken(t *testing.T) {
	r := procstar(t, "", "--serve", "--serve-addr", "0.0.0.0:0")
	if r.code != 1 || !strings.Contains(r.stderr, "--auth-token-file") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestServeSigtermWithClients checks reference §7.2 on a serving agent:
// SIGTERM ends the proc, refuses new work, lets a client collect the
// result and delete it, and then procstar exits 0.
func TestServeSigtermWithClients(t *testing.T) {
	a := startAgent(t)
	base := "http://" + a.addr
	if r := do(t, "POST", base+"/procs", "application/json", `{"specs": {"s": {"argv": ["/bin/sleep", "600"]}}}`); r.code != 200 {
		t.Fatalf("POST: %d %s", r.code, r.body)
	}
	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New work is refused while the agent drains.
	var r httpResult
	// A name per attempt: one accepted before the SIGTERM took effect
	// must not make the next a duplicate.
	for i, deadline := 0, time.Now().Add(20*time.Second); ; i++ {
		time.Sleep(20 * time.Millisecond)
		r = do(t, "POST", base+"/procs", "application/json", fmt.Sprintf(`{"specs": {"late-%d": {"argv": ["/bin/true"]}}}`, i))
		if r.code == 400 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new work still accepted: %d %s", r.code, r.body)
		}
	}
	if !strings.Contains(r.body, "agent shutting down") {
		t.Errorf("refusal: %s", r.body)
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if r := do(t, "DELETE", base+"/procs/s", "", ""); r.code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("never could delete the stopped proc")
		}
	}
	select {
	case err := <-a.done:
		a.done <- err
		if err != nil {
			t.Fatalf("procstar exited with %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("procstar did not exit after its table emptied")
	}
}

// writeTestPKI writes a CA and a server certificate for 127.0.0.1.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "procstar test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srv := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srv, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}

// TestServePortZero: --serve-port 0, as procstar's u16 allows, serves on
// a free port, which the log names.
func TestServePortZero(t *testing.T) {
	a := startAgentArgs(t, "--serve", "--serve-port", "0", "--log-level", "info", "--delete-grace", "100ms")
	if strings.HasSuffix(a.addr, ":0") || strings.HasSuffix(a.addr, ":3000") {
		t.Fatalf("address %s", a.addr)
	}
	if r := do(t, "GET", "http://"+a.addr+"/healthz", "", ""); r.code != 200 {
		t.Fatalf("healthz: %d %s", r.code, r.body)
	}
}
