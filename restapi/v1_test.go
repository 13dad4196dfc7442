package restapi

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/wire"
)

const procsPath = "/apis/procstar.dev/v1/procs"

func v1Fixture() *fakeBackend {
	fb := newFake()
	fb.add("web-1", map[string]string{"app": "web", "tier": "front"}, "hello\n", "", true)
	fb.add("web-2", map[string]string{"app": "web"}, "", "", false)
	fb.add("db-1", map[string]string{"app": "db"}, "", "", false)
	return fb
}

// decodeStatus parses a Status body and checks its shape.
func decodeStatus(t *testing.T, r response) v1.Status {
	t.Helper()
	var s v1.Status
	if err := json.Unmarshal([]byte(r.body), &s); err != nil {
		t.Fatalf("body %q is not a Status: %v", r.body, err)
	}
	if s.Kind != "Status" || s.APIVersion != "v1" || s.Code != r.code || s.Message == "" || strings.Contains(s.Message, "\n") {
		t.Errorf("bad Status %+v for code %d", s, r.code)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Status Content-Type %q", ct)
	}
	return s
}

func names(t *testing.T, body string) []string {
	t.Helper()
	var l v1.ProcList
	if err := json.Unmarshal([]byte(body), &l); err != nil {
		t.Fatalf("not a ProcList: %v: %s", err, body)
	}
	if l.Kind != v1.KindProcList || l.APIVersion != v1.APIVersion {
		t.Errorf("list kind %q apiVersion %q", l.Kind, l.APIVersion)
	}
	var out []string
	for _, p := range l.Items {
		out = append(out, p.Metadata.Name)
	}
	return out
}

func TestV1List(t *testing.T) {
	tests := []struct {
		query string
		want  string
	}{
		{"", "db-1,web-1,web-2"},
		{"?labelSelector=app%3Dweb", "web-1,web-2"},
		{"?labelSelector=app%3Dweb,tier", "web-1"},
		{"?labelSelector=app+notin+(web)", "db-1"},
		{"?labelSelector=!tier", "db-1,web-2"},
		{"?labelSelector=app%3Dnone", ""},
		{"?watch=false", "db-1,web-1,web-2"},
		{"?fieldSelector=status.phase%3DRunning", "web-1"},
		{"?fieldSelector=status.phase!%3DRunning", "db-1,web-2"},
		{"?fieldSelector=metadata.name%3D%3Dweb-2", "web-2"},
		{"?labelSelector=app%3Dweb&fieldSelector=status.phase%3DSucceeded", "web-2"},
		{"?fieldSelector=status.phase%3DFailed", ""},
	}
	fb := v1Fixture()
	srv := testServer(t, fb, Options{})
	for _, tt := range tests {
		r := do(t, srv, "GET", procsPath+tt.query, "")
		if r.code != 200 {
			t.Fatalf("%s: %d %s", tt.query, r.code, r.body)
		}
		if got := strings.Join(names(t, r.body), ","); got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.query, got, tt.want)
		}
	}
}

func TestV1Errors(t *testing.T) {
	yamlProc := "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: new}\nspec: {argv: [/bin/true]}\n"
	jsonProc := `{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"new"},"spec":{"argv":["/bin/true"]}}` // 102 bytes
	tests := []struct {
		name, method, path, body string
		headers                  []string
		code                     int
		reason                   v1.StatusReason
		msg                      string
	}{
		{"bad selector", "GET", procsPath + "?labelSelector=a%3D%3D%3Db", "", nil, 400, v1.StatusReasonBadRequest, "bad label selector"},
		{"bad field selector", "GET", procsPath + "?fieldSelector=spec.exe%3Dx", "", nil, 400, v1.StatusReasonBadRequest, "field label not supported: spec.exe"},
		{"bad watch field selector", "GET", procsPath + "?watch=true&fieldSelector=status.phase", "", nil, 400, v1.StatusReasonBadRequest, "bad field selector"},
		{"bad watch", "GET", procsPath + "?watch=maybe", "", nil, 400, v1.StatusReasonBadRequest, "watch="},
		{"bad query", "GET", procsPath + "?a=%zz", "", nil, 400, v1.StatusReasonBadRequest, "bad query string"},
		{"watch bad rv", "GET", procsPath + "?watch=true&resourceVersion=x", "", nil, 400, v1.StatusReasonBadRequest, "resourceVersion"},
		{"get unknown", "GET", procsPath + "/nope", "", nil, 404, v1.StatusReasonNotFound, "proc nope not found"},
		{"unknown sub", "GET", procsPath + "/web-1/nope", "", nil, 404, v1.StatusReasonNotFound, "no such route"},
		{"unknown api", "GET", "/apis/other/v1/things", "", nil, 404, v1.StatusReasonNotFound, "/apis/procstar.dev/v1/procs"},
		{"collection PUT", "PUT", procsPath, "", nil, 405, v1.StatusReasonMethodNotAllowed, "method not allowed"},
		{"object POST", "POST", procsPath + "/web-1", "", nil, 405, v1.StatusReasonMethodNotAllowed, "method not allowed"},
		{"log POST", "POST", procsPath + "/web-1/log", "", nil, 405, v1.StatusReasonMethodNotAllowed, "method not allowed"},
		{"signal GET", "GET", procsPath + "/web-1/signal", "", nil, 405, v1.StatusReasonMethodNotAllowed, "method not allowed"},
		// create
		{"create exists", "POST", procsPath, `{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"web-1"},"spec":{"argv":["/bin/true"]}}`,
			[]string{"Content-Type: application/json"}, 409, v1.StatusReasonAlreadyExists, "already exists"},
		{"create malformed json", "POST", procsPath, `{"apiVersion":`, []string{"Content-Type: application/json"}, 400, v1.StatusReasonBadRequest, ""},
		{"create malformed yaml", "POST", procsPath, "a: [b\n", []string{"Content-Type: application/yaml"}, 400, v1.StatusReasonBadRequest, ""},
		// JSON with trailing data is refused, not cut short.
		{"create json trailing braces", "POST", procsPath, jsonProc + "}}}", []string{"Content-Type: application/json"}, 400, v1.StatusReasonBadRequest, "line 1, column 103: data after the JSON object"},
		{"create json trailing garbage", "POST", procsPath, jsonProc + " garbage here", []string{"Content-Type: application/json"}, 400, v1.StatusReasonBadRequest, "data after the JSON object"},
		{"create json two objects", "POST", procsPath, jsonProc + ` {"x":1}`, []string{"Content-Type: application/json"}, 400, v1.StatusReasonBadRequest, "data after the JSON object"},
		{"create json as yaml", "POST", procsPath, jsonProc + "\n" + jsonProc, []string{"Content-Type: application/yaml"}, 400, v1.StatusReasonBadRequest, "line 2, column 1: data after the JSON object"},
		{"apply json trailing", "PUT", procsPath + "/new", jsonProc + "]", []string{"Content-Type: application/json"}, 400, v1.StatusReasonBadRequest, "data after the JSON object"},
		{"create unknown field", "POST", procsPath, strings.Replace(yamlProc, "argv:", "bogus: 1, argv:", 1),
			[]string{"Content-Type: application/yaml"}, 400, v1.StatusReasonBadRequest, "bogus"},
		{"create wrong kind", "POST", procsPath, strings.Replace(yamlProc, "kind: Proc", "kind: Pod", 1), nil, 400, v1.StatusReasonBadRequest, "kind"},
		{"create two", "POST", procsPath, yamlProc + "---\n" + strings.Replace(yamlProc, "new", "new2", 1), nil, 400, v1.StatusReasonBadRequest, "exactly one"},
		{"create empty", "POST", procsPath, "", []string{"Content-Type: application/json"}, 400, v1.StatusReasonBadRequest, "empty body"},
		{"create invalid", "POST", procsPath, strings.Replace(yamlProc, "[/bin/true]", "[]", 1), nil, 422, v1.StatusReasonInvalid, "spec.argv"},
		{"create text/plain", "POST", procsPath, yamlProc, []string{"Content-Type: text/plain"}, 415, reasonUnsupportedMediaType, "application/yaml"},
		{"create bad content type", "POST", procsPath, yamlProc, []string{"Content-Type: ;;"}, 415, reasonUnsupportedMediaType, "does not parse"},
		// apply
		{"apply name mismatch", "PUT", procsPath + "/other", yamlProc, nil, 400, v1.StatusReasonBadRequest, "does not match"},
		{"apply changed", "PUT", procsPath + "/web-1", strings.Replace(yamlProc, "new", "web-1", 1), nil, 409, v1.StatusReasonConflict, "immutable"},
		{"apply bad force", "PUT", procsPath + "/new?force=yes", yamlProc, nil, 400, v1.StatusReasonBadRequest, "force="},
		// delete
		{"delete unknown", "DELETE", procsPath + "/nope", "", nil, 404, v1.StatusReasonNotFound, "not found"},
		{"delete bad grace", "DELETE", procsPath + "/web-1?gracePeriodSeconds=-1", "", nil, 400, v1.StatusReasonBadRequest, "gracePeriodSeconds"},
		{"delete nan grace", "DELETE", procsPath + "/web-1?gracePeriodSeconds=NaN", "", nil, 400, v1.StatusReasonBadRequest, "gracePeriodSeconds"},
		{"delete bad force", "DELETE", procsPath + "/web-1?force=2", "", nil, 400, v1.StatusReasonBadRequest, "force="},
		// signal
		{"signal unknown proc", "POST", procsPath + "/nope/signal", `{"signal":"SIGTERM"}`, nil, 404, v1.StatusReasonNotFound, "not found"},
		{"signal no body", "POST", procsPath + "/web-1/signal", "", nil, 400, v1.StatusReasonBadRequest, "bad signal request"},
		{"signal malformed", "POST", procsPath + "/web-1/signal", `{"signal":`, nil, 400, v1.StatusReasonBadRequest, "bad signal request"},
		{"signal unknown field", "POST", procsPath + "/web-1/signal", `{"signal":"TERM","pid":1}`, nil, 400, v1.StatusReasonBadRequest, "unknown field"},
		{"signal missing", "POST", procsPath + "/web-1/signal", `{"group":true}`, nil, 400, v1.StatusReasonBadRequest, "required"},
		{"signal bad name", "POST", procsPath + "/web-1/signal", `{"signal":"SIGNOPE"}`, nil, 400, v1.StatusReasonBadRequest, "bad signal"},
		{"signal bad number", "POST", procsPath + "/web-1/signal", `{"signal":99}`, nil, 400, v1.StatusReasonBadRequest, "bad signal"},
		{"signal trailing", "POST", procsPath + "/web-1/signal", `{"signal":9} {}`, nil, 400, v1.StatusReasonBadRequest, "after the JSON"},
		{"signal yaml", "POST", procsPath + "/web-1/signal", `{"signal":9}`, []string{"Content-Type: application/yaml"}, 415, reasonUnsupportedMediaType, "application/json"},
		{"signal exited", "POST", procsPath + "/web-2/signal", `{"signal":9}`, nil, 409, v1.StatusReasonConflict, "no process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testServer(t, v1Fixture(), Options{})
			r := do(t, srv, tt.method, tt.path, tt.body, tt.headers...)
			if r.code != tt.code {
				t.Fatalf("code %d, want %d: %s", r.code, tt.code, r.body)
			}
			s := decodeStatus(t, r)
			if s.Reason != tt.reason || s.Status != "Failure" {
				t.Errorf("reason %q status %q, want %q", s.Reason, s.Status, tt.reason)
			}
			if !strings.Contains(s.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", s.Message, tt.msg)
			}
		})
	}
}

func TestV1CreateGetApplyDeleteSignal(t *testing.T) {
	fb := v1Fixture()
	srv := testServer(t, fb, Options{})
	yamlProc := "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: new, labels: {app: x}}\nspec: {argv: [/bin/true]}\n"

	// Create from YAML (and JSON with a charset parameter).
	r := do(t, srv, "POST", procsPath, yamlProc, "Content-Type: application/yaml")
	if r.code != 201 {
		t.Fatalf("create: %d %s", r.code, r.body)
	}
	var p v1.Proc
	if err := json.Unmarshal([]byte(r.body), &p); err != nil || p.Metadata.Name != "new" || p.Metadata.UID != "uid-new" {
		t.Fatalf("created %+v %v", p, err)
	}
	if p.Spec.CloseOtherFds == nil || p.APIVersion != v1.APIVersion {
		t.Errorf("defaults were not set: %+v", p)
	}
	js := `{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"new-j"},"spec":{"argv":["/bin/true"]}}`
	if r := do(t, srv, "POST", procsPath+"/", js, "Content-Type: application/json; charset=utf-8"); r.code != 201 {
		t.Fatalf("create json: %d %s", r.code, r.body)
	}

	// Get
	r = do(t, srv, "GET", procsPath+"/new", "")
	if r.code != 200 || !strings.Contains(r.body, `"name":"new"`) || r.header.Get("Content-Type") != "application/json" {
		t.Fatalf("get: %d %s", r.code, r.body)
	}

	// Apply: created, unchanged, conflict (in TestV1Errors), forced.
	applyCases := []struct {
		path, body string
		code       int
		result     v1.ApplyResult
	}{
		{"/applied", strings.Replace(yamlProc, "name: new", "name: applied", 1), 201, v1.ApplyCreated},
		{"/applied", strings.Replace(yamlProc, "name: new", "name: applied", 1), 200, v1.ApplyUnchanged},
		{"/applied", strings.Replace(yamlProc, "name: new, ", "", 1), 200, v1.ApplyUnchanged}, // name from the URL
		{"/applied?force=true", strings.Replace(strings.Replace(yamlProc, "name: new", "name: applied", 1), "/bin/true", "/bin/false", 1), 200, v1.ApplyConfigured},
	}
	for _, c := range applyCases {
		r := do(t, srv, "PUT", procsPath+c.path, c.body)
		if r.code != c.code || r.header.Get(applyHeader) != string(c.result) {
			t.Errorf("apply %s: %d %q, want %d %q: %s", c.path, r.code, r.header.Get(applyHeader), c.code, c.result, r.body)
		}
	}

	// Delete with options.
	r = do(t, srv, "DELETE", procsPath+"/new?gracePeriodSeconds=2.5&force=true", "")
	if r.code != 200 || !strings.Contains(r.body, `"name":"new"`) {
		t.Fatalf("delete: %d %s", r.code, r.body)
	}
	if o := fb.deletes[len(fb.deletes)-1]; !o.Force || o.GracePeriodSeconds == nil || *o.GracePeriodSeconds != 2.5 || o.RefuseRunning {
		t.Errorf("delete options %+v", o)
	}
	if r := do(t, srv, "GET", procsPath+"/new", ""); r.code != 404 {
		t.Errorf("deleted proc still there")
	}

	// Signal by name, number and to the group.
	for _, body := range []string{`{"signal":"SIGTERM"}`, `{"signal":"hup","group":true}`, `{"signal":9}`} {
		r := do(t, srv, "POST", procsPath+"/web-1/signal", body, "Content-Type: application/json")
		if r.code != 200 {
			t.Fatalf("signal %s: %d %s", body, r.code, r.body)
		}
		var s v1.Status
		if err := json.Unmarshal([]byte(r.body), &s); err != nil || s.Status != "Success" {
			t.Errorf("signal reply %s", r.body)
		}
	}
	want := []signalCall{{"web-1", 15, false}, {"web-1", 1, true}, {"web-1", 9, false}}
	if len(fb.signals) != 3 || fb.signals[0] != want[0] || fb.signals[1] != want[1] || fb.signals[2] != want[2] {
		t.Errorf("signals %v, want %v", fb.signals, want)
	}
}

func TestV1BodyLimit(t *testing.T) {
	srv := testServer(t, v1Fixture(), Options{MaxBodyBytes: 1000})
	big := "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: big}\nspec: {argv: [" + strings.Repeat("a", 2000) + "]}\n"
	for _, c := range []struct{ method, path string }{{"POST", procsPath}, {"PUT", procsPath + "/big"}, {"POST", procsPath + "/web-1/signal"}} {
		r := do(t, srv, c.method, c.path, big)
		if r.code != 413 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, r.code, r.body)
		}
		if s := decodeStatus(t, r); s.Reason != v1.StatusReasonRequestTooLarge {
			t.Errorf("reason %q", s.Reason)
		}
	}
	if r := do(t, srv, "GET", procsPath, ""); r.code != 200 {
		t.Errorf("server down after 413")
	}
}

// watchLines opens a watch and returns a function that reads one event.
func openWatch(t *testing.T, url string) (*http.Response, func() v1.WatchEvent) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	sc := bufio.NewScanner(resp.Body)
	next := func() v1.WatchEvent {
		t.Helper()
		if !sc.Scan() {
			t.Fatalf("watch ended: %v", sc.Err())
		}
		var ev v1.WatchEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("bad event %q: %v", sc.Text(), err)
		}
		return ev
	}
	return resp, next
}

func TestV1Watch(t *testing.T) {
	fb := v1Fixture() // resourceVersions 1 (web-1), 2 (web-2), 3 (db-1)
	srv := testServer(t, fb, Options{})

	// From now: the current procs as ADDED, then live changes, filtered.
	resp, next := openWatch(t, srv.URL+procsPath+"?watch=true&labelSelector=app%3Dweb")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("watch: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{"web-1", "web-2"} {
		if ev := next(); ev.Type != v1.Added || ev.Object.Metadata.Name != want {
			t.Errorf("got %s %s, want ADDED %s", ev.Type, ev.Object.Metadata.Name, want)
		}
	}
	fb.add("db-2", map[string]string{"app": "db"}, "", "", true)   // rv 4, filtered out
	fb.add("web-3", map[string]string{"app": "web"}, "", "", true) // rv 5
	fb.finish("web-3")                                             // rv 6
	if ev := next(); ev.Type != v1.Added || ev.Object.Metadata.Name != "web-3" || ev.Object.Metadata.ResourceVersion != "5" {
		t.Errorf("got %s %s rv %s", ev.Type, ev.Object.Metadata.Name, ev.Object.Metadata.ResourceVersion)
	}
	if ev := next(); ev.Type != v1.Modified || ev.Object.Metadata.ResourceVersion != "6" {
		t.Errorf("got %s rv %s", ev.Type, ev.Object.Metadata.ResourceVersion)
	}
	if r := do(t, srv, "DELETE", procsPath+"/web-2", ""); r.code != 200 {
		t.Fatal(r.body)
	}
	if ev := next(); ev.Type != v1.Deleted || ev.Object.Metadata.Name != "web-2" {
		t.Errorf("got %s %s", ev.Type, ev.Object.Metadata.Name)
	}

	// Resume after rv 4: replay 5, 6, 7 (all of them, unfiltered).
	_, next2 := openWatch(t, srv.URL+procsPath+"?watch=1&resourceVersion=4")
	for _, want := range []string{"5", "6", "7"} {
		if ev := next2(); ev.Object.Metadata.ResourceVersion != want {
			t.Errorf("resume: rv %s, want %s", ev.Object.Metadata.ResourceVersion, want)
		}
	}

	// Gone: a resourceVersion older than the history.
	fb.compact(5)
	r := do(t, srv, "GET", procsPath+"?watch=true&resourceVersion=3", "")
	if r.code != 410 {
		t.Fatalf("gone: %d %s", r.code, r.body)
	}
	if s := decodeStatus(t, r); s.Reason != v1.StatusReasonGone || !strings.Contains(s.Message, "too old") {
		t.Errorf("gone status %+v", s)
	}
}

// TestV1WatchFieldSelector: the watch hands both selectors to the backend,
// which streams only what they select. (How a proc entering or leaving the
// selection shows, ADDED or DELETED, is the controller's:
// controller.TestWatchSelectionTransitions.)
func TestV1WatchFieldSelector(t *testing.T) {
	fb := v1Fixture() // web-1 Running; web-2 and db-1 Succeeded
	srv := testServer(t, fb, Options{})
	_, done := openWatch(t, srv.URL+procsPath+"?watch=true&fieldSelector=status.phase%3DSucceeded")
	_, running := openWatch(t, srv.URL+procsPath+"?watch=true&fieldSelector=status.phase%3DRunning&labelSelector=app%3Dweb")
	for _, want := range []string{"db-1", "web-2"} {
		if ev := done(); ev.Type != v1.Added || ev.Object.Metadata.Name != want {
			t.Errorf("done: got %s %s, want ADDED %s", ev.Type, ev.Object.Metadata.Name, want)
		}
	}
	if ev := running(); ev.Type != v1.Added || ev.Object.Metadata.Name != "web-1" {
		t.Errorf("running: got %s %s, want ADDED web-1", ev.Type, ev.Object.Metadata.Name)
	}
	fb.add("db-2", map[string]string{"app": "db"}, "", "", true)   // rv 4: neither
	fb.add("web-3", map[string]string{"app": "web"}, "", "", true) // rv 5: running
	fb.finish("web-3")                                             // rv 6: done
	if ev := running(); ev.Object.Metadata.Name != "web-3" || ev.Object.Metadata.ResourceVersion != "5" {
		t.Errorf("running: got %s %s rv %s, want web-3 at 5", ev.Type, ev.Object.Metadata.Name, ev.Object.Metadata.ResourceVersion)
	}
	if ev := done(); ev.Object.Metadata.Name != "web-3" || ev.Object.Metadata.ResourceVersion != "6" {
		t.Errorf("done: got %s %s rv %s, want web-3 at 6", ev.Type, ev.Object.Metadata.Name, ev.Object.Metadata.ResourceVersion)
	}
}

func TestV1WatchEndsWhenClientGoes(t *testing.T) {
	fb := v1Fixture()
	srv := testServer(t, fb, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+procsPath+"?watch=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	// The fake's watcher goroutine removes itself when the handler's
	// context ends.
	deadline := time.Now().Add(5 * time.Second)
	for {
		fb.mu.Lock()
		n := len(fb.watchers)
		fb.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watch still registered after the client left")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMiscEndpoints(t *testing.T) {
	fb := v1Fixture()
	ready := errors.New("controller not synced\nyet")
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("procstar_procs 3\n")) })
	srv := testServer(t, fb, Options{
		Version:   VersionInfo{Version: "1.2.3", GitCommit: "abc", GoVersion: "go1.26", Platform: "linux/amd64"},
		Metrics:   metrics,
		AgentInfo: func() any { return map[string]string{"connId": "c1"} },
		Ready:     func() error { return ready },
	})
	tests := []struct {
		method, path string
		code         int
		body         string
	}{
		{"GET", "/healthz", 200, "ok\n"},
		{"HEAD", "/healthz", 200, ""},
		{"POST", "/healthz", 405, ""},
		{"GET", "/readyz", 503, "not ready: controller not synced; yet\n"},
		{"GET", "/version", 200, `{"version":"1.2.3","gitCommit":"abc","goVersion":"go1.26","platform":"linux/amd64"}` + "\n"},
		{"GET", "/metrics", 200, "procstar_procs 3\n"},
		{"GET", "/agent", 200, `{"connId":"c1"}` + "\n"},
		{"DELETE", "/agent", 405, ""},
	}
	for _, tt := range tests {
		r := do(t, srv, tt.method, tt.path, "")
		if r.code != tt.code || (tt.body != "" && r.body != tt.body) {
			t.Errorf("%s %s: %d %q, want %d %q", tt.method, tt.path, r.code, r.body, tt.code, tt.body)
		}
	}
	ready = nil
	if r := do(t, srv, "GET", "/readyz", ""); r.code != 200 || r.body != "ok\n" {
		t.Errorf("readyz: %d %q", r.code, r.body)
	}

	// Without Metrics and AgentInfo: 404 Status.
	srv2 := testServer(t, fb, Options{})
	for _, p := range []string{"/metrics", "/agent"} {
		r := do(t, srv2, "GET", p, "")
		if r.code != 404 {
			t.Errorf("%s: %d", p, r.code)
		}
		decodeStatus(t, r)
	}
	if r := do(t, srv2, "GET", "/readyz", ""); r.code != 200 {
		t.Errorf("readyz without Ready: %d", r.code)
	}
}

func TestAuth(t *testing.T) {
	fb := v1Fixture()
	srv := testServer(t, fb, Options{Token: []byte("s3cret"), Metrics: http.NotFoundHandler()})
	paths := []struct {
		path     string
		procstar bool
	}{
		{"/procs", true}, {"/procs/web-1", true}, {"/nope", true},
		{procsPath, false}, {procsPath + "/web-1", false}, {"/version", false}, {"/metrics", false}, {"/agent", false},
	}
	for _, p := range paths {
		for _, hdr := range []string{"", "Authorization: Bearer wrong", "Authorization: Basic czNjcmV0", "Authorization: Bearer s3cret2", "Authorization: Bearer"} {
			r := do(t, srv, "GET", p.path, "", hdr)
			if r.code != 401 || r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s with %q: %d %s", p.path, hdr, r.code, r.body)
				continue
			}
			if p.procstar {
				if r.body != `{"errors":{"detail":"missing or wrong bearer token: send \"Authorization: Bearer <token>\"","status":"401 Unauthorized"}}` {
					t.Errorf("%s: procstar 401 body %s", p.path, r.body)
				}
			} else if s := decodeStatus(t, r); s.Reason != v1.StatusReasonUnauthorized {
				t.Errorf("%s: reason %s", p.path, s.Reason)
			}
		}
		r := do(t, srv, "GET", p.path, "", "Authorization: Bearer s3cret")
		if r.code == 401 {
			t.Errorf("%s with the right token: 401", p.path)
		}
		r = do(t, srv, "GET", p.path, "", "Authorization: bearer s3cret")
		if r.code == 401 {
			t.Errorf("%s with a lower-case scheme: 401", p.path)
		}
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := do(t, srv, "GET", p, ""); r.code != 200 {
			t.Errorf("%s without a token: %d", p, r.code)
		}
	}
	// An empty (non-nil) token admits nobody, not an empty credential.
	srv2 := testServer(t, fb, Options{Token: []byte{}})
	for _, hdr := range []string{"", "Authorization: Bearer ", "Authorization: Bearer x"} {
		if r := do(t, srv2, "GET", "/procs", "", hdr); r.code != 401 {
			t.Errorf("empty token with %q: %d", hdr, r.code)
		}
	}
}

// panicBackend panics in every method.
type panicBackend struct{ *fakeBackend }

func (panicBackend) Results(context.Context) (map[string]wire.ProcRes, error) { panic("boom") }
func (panicBackend) List(context.Context, v1.Selector) (v1.ProcList, error)   { panic("boom") }

func TestRecoverPanic(t *testing.T) {
	var logged []string
	var mu sync.Mutex
	log := logr.New(recordSink{mu: &mu, msgs: &logged})
	srv := testServer(t, nil, Options{Logger: log})
	srv.Config.Handler = NewHandler(panicBackend{newFake()}, Options{Logger: log})
	r := do(t, srv, "GET", "/procs", "")
	if r.code != 500 || r.body != `{"errors":{"detail":"internal error","status":"500 Internal Server Error"}}` {
		t.Errorf("procstar panic: %d %s", r.code, r.body)
	}
	r = do(t, srv, "GET", procsPath, "")
	if r.code != 500 {
		t.Errorf("v1 panic: %d %s", r.code, r.body)
	}
	if s := decodeStatus(t, r); s.Reason != v1.StatusReasonInternalError {
		t.Errorf("reason %s", s.Reason)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 2 || logged[0] != "handler panicked" {
		t.Errorf("logged %v", logged)
	}
}

// recordSink is a logr.LogSink that records error messages.
type recordSink struct {
	mu   *sync.Mutex // guards *msgs
	msgs *[]string
}

func (recordSink) Init(logr.RuntimeInfo)    {}
func (recordSink) Enabled(int) bool         { return true }
func (recordSink) Info(int, string, ...any) {}
func (s recordSink) Error(_ error, msg string, _ ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*s.msgs = append(*s.msgs, msg)
}
func (s recordSink) WithValues(...any) logr.LogSink { return s }
func (s recordSink) WithName(string) logr.LogSink   { return s }

// TestV1WatchErrorIsStatus: when the backend drops a watcher that fell
// behind (an ERROR event), the stream carries an Expired Status, not a
// Proc, so clients know to list again.
func TestV1WatchErrorIsStatus(t *testing.T) {
	fb := v1Fixture()
	srv := testServer(t, fb, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+procsPath+"?watch=true&labelSelector=app%3Dnone", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		fb.mu.Lock()
		n := len(fb.watchers)
		if n > 0 {
			for ch := range fb.watchers {
				ch <- v1.WatchEvent{Type: v1.WatchError, Object: v1.Proc{Metadata: v1.ObjectMeta{ResourceVersion: "42"}}}
			}
		}
		fb.mu.Unlock()
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("watch never registered")
		}
	}
	line, err := bufio.NewReader(resp.Body).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev struct {
		Type   v1.WatchEventType
		Object v1.Status
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Type != v1.WatchError || ev.Object.Kind != "Status" || ev.Object.Code != 410 || ev.Object.Reason != v1.StatusReasonGone || !strings.Contains(ev.Object.Message, "42") {
		t.Fatalf("error line %s", line)
	}
}
