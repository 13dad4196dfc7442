package restapi

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
)

// Golden pieces of procstar bodies (keys sorted, as serde_json writes a
// json!() value).
const (
	resRunning = `{"cgroup_accounting":null,"errors":[],"fds":{},"pid":4242,"proc_stat":null,"proc_statm":null,"rusage":null,"state":"running","status":null,"times":{"elapsed":1.5,"now":"2026-01-02T03:04:06.500+00:00","start":"2026-01-02T03:04:05+00:00","stop":null}}`
	resDone    = `{"cgroup_accounting":null,"errors":[],"fds":{},"pid":4242,"proc_stat":null,"proc_statm":null,"rusage":null,"state":"terminated","status":{"core_dump":false,"exit_code":0,"signal":null,"signum":null,"status":0},"times":{"elapsed":1.5,"now":"2026-01-02T03:04:06.500+00:00","start":"2026-01-02T03:04:05+00:00","stop":"2026-01-02T03:04:06.500+00:00"}}`
	okEmpty    = `{"data":{}}`
	err404     = `{"errors":{"detail":null,"status":"404 Not Found"}}`
	err405     = `{"errors":{"detail":null,"status":"405 Method Not Allowed"}}`
)

func err400(detail string) string {
	return `{"errors":{"detail":"` + detail + `","status":"400 Bad Request"}}`
}

// procstarFixture is p1 (running), p2 (terminated) and "a b" and "a/b"
// (terminated, odd IDs).
func procstarFixture() *fakeBackend {
	fb := newFake()
	fb.add("p1", nil, "hello\n", "\x00\x01", true)
	fb.add("p2", nil, "", "", false)
	fb.add("a b", nil, "sp", "", false)
	fb.add("a/b", nil, "sl", "", false)
	return fb
}

const goodSpecs = `{"specs":{"n1":{"argv":["/bin/true"]},"n2":{"argv":["/bin/echo","x"],"fds":[["stdout",{"capture":{"mode":"memory","encoding":"utf-8"}}]]}}}`

func TestProcstarRoutesGolden(t *testing.T) {
	tests := []struct {
		name        string
		method      string
		path        string
		body        string
		headers     []string
		wantCode    int
		wantCT      string
		wantBody    string
		wantContain string // instead of wantBody
	}{
		// GET /procs
		{"list", "GET", "/procs", "", nil, 200, "application/json",
			`{"data":{"procs":{"a b":` + resDone + `,"a/b":` + resDone + `,"p1":` + resRunning + `,"p2":` + resDone + `}}}`, ""},
		// GET /procs/:id
		{"get", "GET", "/procs/p1", "", nil, 200, "application/json", `{"data":{"procs":{"p1":` + resRunning + `}}}`, ""},
		{"get terminated", "GET", "/procs/p2", "", nil, 200, "application/json", `{"data":{"procs":{"p2":` + resDone + `}}}`, ""},
		{"get unknown", "GET", "/procs/nope", "", nil, 404, "application/json", err404, ""},
		{"get space id", "GET", "/procs/a%20b", "", nil, 200, "application/json", `{"data":{"procs":{"a b":` + resDone + `}}}`, ""},
		{"get slash id", "GET", "/procs/a%2Fb", "", nil, 200, "application/json", `{"data":{"procs":{"a/b":` + resDone + `}}}`, ""},
		// DELETE /procs/:id
		{"delete running", "DELETE", "/procs/p1", "", nil, 400, "application/json", err400("process running: p1"), ""},
		{"delete", "DELETE", "/procs/p2", "", nil, 200, "application/json", okEmpty, ""},
		{"delete unknown", "DELETE", "/procs/nope", "", nil, 404, "application/json", err404, ""},
		// POST /procs/:id/signals/:signum
		{"signal name", "POST", "/procs/p1/signals/SIGTERM", "", nil, 200, "application/json", okEmpty, ""},
		{"signal number", "POST", "/procs/p1/signals/15", "", nil, 200, "application/json", okEmpty, ""},
		{"signal lower", "POST", "/procs/p1/signals/sigterm", "", nil, 400, "application/json", err400("unknwon signum"), ""},
		{"signal short", "POST", "/procs/p1/signals/TERM", "", nil, 400, "application/json", err400("unknwon signum"), ""},
		{"signal junk before proc", "POST", "/procs/nope/signals/KILLME", "", nil, 400, "application/json", err400("unknwon signum"), ""},
		{"signal unknown proc", "POST", "/procs/nope/signals/9", "", nil, 404, "application/json", err404, ""},
		{"signal bad number", "POST", "/procs/p1/signals/999", "", nil, 400, "application/json", err400("EINVAL: Invalid argument"), ""},
		{"signal not running", "POST", "/procs/p2/signals/SIGKILL", "", nil, 400, "application/json", err400("no process"), ""},
		{"signal GET", "GET", "/procs/p1/signals/9", "", nil, 405, "application/json", err405, ""},
		// GET /procs/:id/output/:fd/data
		{"output utf8", "GET", "/procs/p1/output/stdout/data", "", nil, 200, "text/plain; charset=utf-8", "hello\n", ""},
		{"output number", "GET", "/procs/p1/output/1/data", "", nil, 200, "text/plain; charset=utf-8", "hello\n", ""},
		{"output base64 capture", "GET", "/procs/p1/output/stderr/data", "", nil, 200, "application/octet-stream", "\x00\x01", ""},
		{"output not captured", "GET", "/procs/p1/output/stdin/data", "", nil, 200, "application/octet-stream", "", ""},
		{"output bad fd", "GET", "/procs/p1/output/stdsomething/data", "", nil, 400, "application/json", err400("bad fd: stdsomething"), ""},
		{"output bad fd before proc", "GET", "/procs/nope/output/x/data", "", nil, 400, "application/json", err400("bad fd: x"), ""},
		{"output no fd", "GET", "/procs/p1/output/7/data", "", nil, 400, "application/json", err400("no fd: 7"), ""},
		{"output unknown proc", "GET", "/procs/nope/output/1/data", "", nil, 404, "application/json", err404, ""},
		{"output POST", "POST", "/procs/p1/output/1/data", "", nil, 405, "application/json", err405, ""},
		// POST /procs
		{"post", "POST", "/procs", goodSpecs, []string{"Content-Type: application/json"}, 200, "application/json", okEmpty, ""},
		{"post charset", "POST", "/procs", goodSpecs, []string{"Content-Type: application/json; charset=utf-8"}, 200, "application/json", okEmpty, ""},
		{"post empty specs", "POST", "/procs", `{"specs":{}}`, []string{"Content-Type: application/json"}, 200, "application/json", okEmpty, ""},
		{"post no content type", "POST", "/procs", goodSpecs, nil, 400, "application/json", err400("body not JSON"), ""},
		{"post yaml", "POST", "/procs", goodSpecs, []string{"Content-Type: application/yaml"}, 400, "application/json", err400("body not JSON"), ""},
		{"post text", "POST", "/procs", goodSpecs, []string{"Content-Type: text/plain"}, 400, "application/json", err400("body not JSON"), ""},
		{"post no body", "POST", "/procs", "", []string{"Content-Type: application/json"}, 400, "application/json", err400("no body"), ""},
		{"post bad json", "POST", "/procs", `{"specs":`, []string{"Content-Type: application/json"}, 400, "application/json", "", `"detail":"parsing body: `},
		{"post unknown field", "POST", "/procs", `{"specs":{"x":{"argv":["a"],"bogus":1}}}`, []string{"Content-Type: application/json"}, 400, "application/json", "", `"detail":"parsing body: `},
		{"post no specs key", "POST", "/procs", `{"procs":{}}`, []string{"Content-Type: application/json"}, 400, "application/json", "", `"detail":"parsing body: `},
		{"post existing", "POST", "/procs", `{"specs":{"p1":{"argv":["/bin/true"]}}}`, []string{"Content-Type: application/json"}, 400, "application/json", err400("duplicate proc id: p1"), ""},
		{"post invalid", "POST", "/procs", `{"specs":{"x":{"argv":[]}}}`, []string{"Content-Type: application/json"}, 400, "application/json", err400("proc x: argv: must not be empty when exe is not set"), ""},
		// procstar's own checks, its first failure in its words.
		{"post bad fd", "POST", "/procs", `{"specs":{"x":{"argv":["/bin/true"],"fds":[["stdpot",{"null":{}}]]}}}`, []string{"Content-Type: application/json"}, 400, "application/json", err400("bad fd: stdpot"), ""},
		{"post duplicate fd", "POST", "/procs", `{"specs":{"x":{"argv":["/bin/true"],"fds":[["stdout",{"null":{}}],["1",{"null":{}}]]}}}`, []string{"Content-Type: application/json"}, 400, "application/json", err400("duplicate fd: 1"), ""},
		{"post unmatched read", "POST", "/procs", `{"specs":{"x":{"argv":["/bin/true"],"fds":[["stdin",{"pipe-read":{"proc_id":"y","fd":"stdout"}}]]}}}`, []string{"Content-Type: application/json"}, 400, "application/json", err400("unmatched read pipe: y stdout"), ""},
		// Methods and paths
		{"procs PUT", "PUT", "/procs", "", nil, 405, "application/json", err405, ""},
		{"proc POST", "POST", "/procs/p1", "", nil, 405, "application/json", err405, ""},
		{"unknown path", "GET", "/nope", "", nil, 404, "application/json", err404, ""},
		{"root", "GET", "/", "", nil, 404, "application/json", err404, ""},
		{"trailing slash", "GET", "/procs/", "", nil, 404, "application/json", err404, ""},
		{"empty id", "GET", "/procs//output/1/data", "", nil, 404, "application/json", err404, ""},
		{"too deep", "GET", "/procs/p1/output/1/data/x", "", nil, 404, "application/json", err404, ""},
		{"wrong sub", "GET", "/procs/p1/outputs/1/data", "", nil, 404, "application/json", err404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := procstarFixture()
			srv := testServer(t, fb, Options{})
			r := do(t, srv, tt.method, tt.path, tt.body, tt.headers...)
			if r.code != tt.wantCode {
				t.Errorf("code %d, want %d; body %s", r.code, tt.wantCode, r.body)
			}
			if ct := r.header.Get("Content-Type"); ct != tt.wantCT {
				t.Errorf("Content-Type %q, want %q", ct, tt.wantCT)
			}
			if tt.wantContain != "" {
				if !strings.Contains(r.body, tt.wantContain) || !strings.HasSuffix(r.body, `","status":"400 Bad Request"}}`) {
					t.Errorf("body %s\ndoes not contain %s", r.body, tt.wantContain)
				}
			} else if r.body != tt.wantBody {
				t.Errorf("body\n got %q\nwant %q", r.body, tt.wantBody)
			}
			if tt.wantCode == 405 && r.header.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
}

func TestProcstarSideEffects(t *testing.T) {
	fb := procstarFixture()
	srv := testServer(t, fb, Options{})
	if r := do(t, srv, "POST", "/procs/p1/signals/SIGUSR1", ""); r.code != 200 {
		t.Fatal(r.body)
	}
	if r := do(t, srv, "POST", "/procs/p1/signals/%2B9", ""); r.code != 200 { // "+9", as Rust's parse::<i32>
		t.Fatal(r.body)
	}
	if got, want := fb.signals, []signalCall{{"p1", 10, false}, {"p1", 9, false}}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("signals %v, want %v", got, want)
	}
	if r := do(t, srv, "DELETE", "/procs/p2", ""); r.code != 200 {
		t.Fatal(r.body)
	}
	if len(fb.deletes) != 1 || !fb.deletes[0].RefuseRunning {
		t.Errorf("delete options %+v, want RefuseRunning", fb.deletes)
	}
	if r := do(t, srv, "GET", "/procs/p2", ""); r.code != 404 {
		t.Errorf("deleted proc still there: %d", r.code)
	}
	r := do(t, srv, "POST", "/procs", goodSpecs, "Content-Type: application/json")
	if r.code != 200 {
		t.Fatal(r.body)
	}
	// The POSTed specs were converted, defaulted and validated.
	p, err := fb.Get(t.Context(), "n2")
	if err != nil {
		t.Fatal(err)
	}
	if c := p.Spec.Fds[0].Capture; c == nil || c.Mode != v1.CaptureMemory || c.Encoding != v1.EncodingUTF8 || p.APIVersion != v1.APIVersion {
		t.Errorf("n2 = %+v", p)
	}
	// A backend failure of another class is still a procstar 400.
	fb.failCreate = errdefs.New(errdefs.ErrUnavailable, "agent is shutting down")
	r = do(t, srv, "POST", "/procs", `{"specs":{"z":{"argv":["/bin/true"]}}}`, "Content-Type: application/json")
	if r.code != 400 || r.body != err400("agent is shutting down") {
		t.Errorf("got %d %s", r.code, r.body)
	}
	fb.failCreate = errors.New("spawn: boom")
	r = do(t, srv, "POST", "/procs", `{"specs":{"z":{"argv":["/bin/true"]}}}`, "Content-Type: application/json")
	if r.code != 400 || r.body != err400("spawn: boom") {
		t.Errorf("got %d %s", r.code, r.body)
	}
}

func TestProcstarBodyLimit(t *testing.T) {
	fb := procstarFixture()
	srv := testServer(t, fb, Options{MaxBodyBytes: 100})
	big := `{"specs":{"x":{"argv":["` + strings.Repeat("a", 200) + `"]}}}`
	r := do(t, srv, "POST", "/procs", big, "Content-Type: application/json")
	want := `{"errors":{"detail":"http: request body too large","status":"413 Payload Too Large"}}`
	if r.code != http.StatusRequestEntityTooLarge || r.body != want {
		t.Errorf("got %d %s", r.code, r.body)
	}
	// The server is still up.
	if r := do(t, srv, "GET", "/procs/p1", ""); r.code != 200 {
		t.Errorf("after 413: %d", r.code)
	}
}

func TestSerdeString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", `"plain"`},
		{"q\"b\\", `"q\"b\\"`},
		{"\b\t\n\f\r", `"\b\t\n\f\r"`},
		{"\x00\x1f\x7f", `"\u0000\u001f` + "\x7f" + `"`},
		{"<&>\u2028é", "\"<&>\u2028é\""},
		{"bad\xff", "\"bad\ufffd\""},
	}
	for _, tt := range tests {
		if got := string(appendSerdeString(nil, tt.in)); got != tt.want {
			t.Errorf("appendSerdeString(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseProcstarSignum(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"SIGTERM", 15, true}, {"SIGKILL", 9, true}, {"9", 9, true}, {"+9", 9, true}, {"-1", -1, true},
		{"0", 0, true}, {"SIGRTMIN+1", 35, true},
		{"TERM", 0, false}, {"sigterm", 0, false}, {"SIGFOO", 0, false}, {"", 0, false}, {"9x", 0, false},
		{"99999999999", 0, false}, {" 9", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseProcstarSignum(tt.in)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("parseProcstarSignum(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
