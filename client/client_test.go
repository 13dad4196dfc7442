package client_test

import (
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/client"
	"procstar.dev/procstar/client/clienttest"
	"procstar.dev/procstar/internal/errdefs"
)

func proc(name string, labels map[string]string, argv ...string) *v1.Proc {
	return &v1.Proc{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProc},
		Metadata: v1.ObjectMeta{Name: name, Labels: labels},
		Spec:     v1.ProcSpec{Argv: argv},
	}
}

func newClient(t *testing.T, s *clienttest.Server) *client.Client {
	t.Helper()
	c, err := client.New(client.Config{Server: s.URL, Token: s.Token, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestNewConfig(t *testing.T) {
	for _, tc := range []struct {
		server string
		ok     bool
	}{
		{"http://127.0.0.1:3000", true},
		{"https://example.com", true},
		{"unix:/run/procstar.sock", true},
		{"unix:", false},
		{"", false},
		{"ftp://x", false},
		{"127.0.0.1:3000", false},
		{"http://", false},
	} {
		_, err := client.New(client.Config{Server: tc.server})
		if (err == nil) != tc.ok {
			t.Errorf("New(%q) = %v, want ok %v", tc.server, err, tc.ok)
		}
		if err != nil && !errors.Is(err, client.ErrBadConfig) {
			t.Errorf("New(%q) error %v does not match ErrBadConfig", tc.server, err)
		}
	}
	if _, err := client.New(client.Config{Server: "https://x", CAFile: "/nonexistent"}); !errors.Is(err, client.ErrBadConfig) {
		t.Errorf("missing CA file: %v", err)
	}
}

func TestCRUD(t *testing.T) {
	s := clienttest.New()
	defer s.Close()
	c := newClient(t, s)

	p, err := c.Create(ctx(t), proc("a", map[string]string{"team": "x"}, "/bin/true"))
	if err != nil || p.Metadata.Name != "a" || p.Metadata.CreationTimestamp == nil {
		t.Fatalf("Create = %+v, %v", p, err)
	}
	if _, err := c.Create(ctx(t), proc("a", nil, "/bin/true")); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatalf("second Create: %v, want AlreadyExists", err)
	}
	var ae *client.APIError
	if _, err := c.Create(ctx(t), proc("a", nil, "/bin/true")); !errors.As(err, &ae) || ae.Code != 409 || ae.Reason != v1.StatusReasonAlreadyExists || ae.Message != `proc "a" already exists` {
		t.Fatalf("APIError = %+v", ae)
	}

	for _, tc := range []struct {
		p     *v1.Proc
		force bool
		want  v1.ApplyResult
		class error
	}{
		{proc("b", nil, "/bin/true"), false, v1.ApplyCreated, nil},
		{proc("b", nil, "/bin/true"), false, v1.ApplyUnchanged, nil},
		{proc("b", nil, "/bin/false"), false, "", errdefs.ErrConflict},
		{proc("b", nil, "/bin/false"), true, v1.ApplyConfigured, nil},
		{proc("bad/name", nil, "/bin/true"), false, "", errdefs.ErrInvalidArgument},
		{proc("c", nil), false, "", errdefs.ErrInvalidArgument}, // no argv: 422
	} {
		_, res, err := c.Apply(ctx(t), tc.p, tc.force)
		if tc.class != nil {
			if !errors.Is(err, tc.class) {
				t.Errorf("Apply(%s, %v) err = %v, want %v", tc.p.Metadata.Name, tc.p.Spec.Argv, err, tc.class)
			}
			continue
		}
		if err != nil || res != tc.want {
			t.Errorf("Apply(%s, %v, force %v) = %q, %v; want %q", tc.p.Metadata.Name, tc.p.Spec.Argv, tc.force, res, err, tc.want)
		}
	}

	got, err := c.Get(ctx(t), "a")
	if err != nil || got.Spec.Argv[0] != "/bin/true" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	if _, err := c.Get(ctx(t), "nope"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Get(nope) = %v", err)
	}

	l, err := c.List(ctx(t), client.ListOptions{})
	if err != nil || len(l.Items) != 2 || l.Metadata.ResourceVersion == "" {
		t.Fatalf("List = %+v, %v", l, err)
	}
	l, err = c.List(ctx(t), client.ListOptions{LabelSelector: "team=x"})
	if err != nil || len(l.Items) != 1 || l.Items[0].Metadata.Name != "a" {
		t.Fatalf("List(team=x) = %+v, %v", l, err)
	}
	if _, err := c.List(ctx(t), client.ListOptions{LabelSelector: "team in ("}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("List(bad selector) = %v", err)
	}
	l, err = c.List(ctx(t), client.ListOptions{LabelSelector: "team=x", FieldSelector: "metadata.name!=a"})
	if err != nil || len(l.Items) != 0 {
		t.Fatalf("List(team=x, name!=a) = %+v, %v", l, err)
	}
	l, err = c.List(ctx(t), client.ListOptions{FieldSelector: "metadata.name=a"})
	if err != nil || len(l.Items) != 1 || l.Items[0].Metadata.Name != "a" {
		t.Fatalf("List(name=a) = %+v, %v", l, err)
	}
	if _, err := c.List(ctx(t), client.ListOptions{FieldSelector: "spec.exe=x"}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("List(bad field selector) = %v", err)
	}

	grace := 2.5
	d, err := c.Delete(ctx(t), "a", v1.DeleteOptions{GracePeriodSeconds: &grace, Force: true})
	if err != nil || d.Metadata.DeletionTimestamp == nil {
		t.Fatalf("Delete = %+v, %v", d, err)
	}
	if dc := s.Deletes(); len(dc) != 1 || dc[0].GracePeriodSeconds != "2.5" || !dc[0].Force {
		t.Fatalf("server saw %+v", dc)
	}
	if _, err := c.Delete(ctx(t), "a", v1.DeleteOptions{}); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("Delete again = %v", err)
	}
}

func TestSignal(t *testing.T) {
	s := clienttest.New()
	defer s.Close()
	c := newClient(t, s)
	s.Put(proc("a", nil, "/bin/sleep", "9"))
	for _, tc := range []struct {
		sig   string
		group bool
		want  string
		class error
	}{
		{"TERM", false, "SIGTERM", nil},
		{"9", true, "SIGKILL", nil},
		{"sigrtmin+1", false, "SIGRTMIN+1", nil},
		{"BOGUS", false, "", errdefs.ErrInvalidArgument},
	} {
		n := len(s.Signals())
		err := c.Signal(ctx(t), "a", tc.sig, tc.group)
		if tc.class != nil {
			if !errors.Is(err, tc.class) {
				t.Errorf("Signal(%s) = %v, want %v", tc.sig, err, tc.class)
			}
			continue
		}
		got := s.Signals()
		if err != nil || len(got) != n+1 || got[n].Signal != tc.want || got[n].Group != tc.group {
			t.Errorf("Signal(%s) = %v; server saw %+v", tc.sig, err, got)
		}
	}
	if err := c.Signal(ctx(t), "nope", "TERM", false); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("Signal(nope) = %v", err)
	}
}

func TestLogs(t *testing.T) {
	s := clienttest.New()
	defer s.Close()
	c := newClient(t, s)
	s.Put(proc("a", nil, "/bin/echo"))
	s.AppendLog("a", "stdout", []byte("hello world\n"))
	s.AppendLog("a", "stderr", []byte("oops\n"))
	s.Finish("a", 0)

	for _, tc := range []struct {
		opts  client.LogOptions
		want  string
		class error
	}{
		{client.LogOptions{}, "hello world\n", nil},
		{client.LogOptions{Fd: "2"}, "oops\n", nil},
		{client.LogOptions{Fd: "stderr", Start: 2}, "ps\n", nil},
		{client.LogOptions{Start: 6, Stop: 11}, "world", nil},
		{client.LogOptions{TailBytes: 6}, "world\n", nil},
		{client.LogOptions{TailBytes: 600}, "hello world\n", nil},
		{client.LogOptions{Follow: true}, "hello world\n", nil},
		{client.LogOptions{Fd: "7"}, "", errdefs.ErrInvalidArgument},
		{client.LogOptions{Fd: "bogus"}, "", errdefs.ErrInvalidArgument},
		{client.LogOptions{Start: -1}, "", errdefs.ErrInvalidArgument},
		{client.LogOptions{Start: 5, Stop: 2}, "", errdefs.ErrInvalidArgument},
		{client.LogOptions{Start: 100}, "", errdefs.ErrInvalidArgument},
	} {
		rc, err := c.Logs(ctx(t), "a", tc.opts)
		if tc.class != nil {
			if !errors.Is(err, tc.class) {
				t.Errorf("Logs(%+v) = %v, want %v", tc.opts, err, tc.class)
			}
			if rc != nil {
				rc.Close()
			}
			continue
		}
		if err != nil {
			t.Errorf("Logs(%+v): %v", tc.opts, err)
			continue
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != tc.want {
			t.Errorf("Logs(%+v) = %q, %v; want %q", tc.opts, b, err, tc.want)
		}
	}
}

func TestLogsFollowStreams(t *testing.T) {
	s := clienttest.New()
	defer s.Close()
	c := newClient(t, s)
	s.Put(proc("a", nil, "/bin/echo"))
	s.Start("a", 42)
	s.AppendLog("a", "stdout", []byte("one\n"))
	rc, err := c.Logs(ctx(t), "a", client.LogOptions{Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	buf := make([]byte, 4)
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "one\n" {
		t.Fatalf("first read %q, %v", buf, err)
	}
	s.AppendLog("a", "stdout", []byte("two\n"))
	if _, err := io.ReadFull(rc, buf); err != nil || string(buf) != "two\n" {
		t.Fatalf("second read %q, %v", buf, err)
	}
	s.Finish("a", 0)
	rest, err := io.ReadAll(rc)
	if err != nil || len(rest) != 0 {
		t.Fatalf("after finish: %q, %v", rest, err)
	}
}

// TestLogsGzip checks that gzip is asked for and decoded, and that a
// plain answer is passed through.
func TestLogsGzip(t *testing.T) {
	for _, gz := range []bool{true, false} {
		var sawAccept string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawAccept = r.Header.Get("Accept-Encoding")
			if gz {
				// The fake's log handler compresses; reuse it.
				fake := clienttest.New()
				defer fake.Close()
				fake.Put(proc("a", nil, "/bin/echo"))
				fake.AppendLog("a", "stdout", []byte(strings.Repeat("z", 10000)))
				fake.Config.Handler.ServeHTTP(w, r)
				return
			}
			io.WriteString(w, strings.Repeat("z", 10000))
		}))
		c, _ := client.New(client.Config{Server: srv.URL})
		rc, err := c.Logs(ctx(t), "a", client.LogOptions{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		srv.Close()
		if err != nil || string(b) != strings.Repeat("z", 10000) {
			t.Errorf("gzip %v: got %d bytes, %v", gz, len(b), err)
		}
		if sawAccept != "gzip" {
			t.Errorf("Accept-Encoding = %q", sawAccept)
		}
	}
}

func TestWatch(t *testing.T) {
	s := clienttest.New()
	defer s.Close()
	c := newClient(t, s)
	s.Put(proc("a", map[string]string{"k": "v"}, "/bin/true"))
	l, err := c.List(ctx(t), client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := c.Watch(ctx(t), client.ListOptions{LabelSelector: "k=v"}, l.Metadata.ResourceVersion)
	if err != nil {
		t.Fatal(err)
	}
	s.Put(proc("other", nil, "/bin/true")) // filtered out
	s.Start("a", 7)
	s.Remove("a")
	var got []string
	for ev := range w.Events() {
		got = append(got, string(ev.Type)+" "+ev.Object.Metadata.Name+" "+string(ev.Object.Status.Phase))
		if len(got) == 2 {
			w.Stop()
		}
	}
	if err := w.Err(); err != nil {
		t.Errorf("Err after Stop = %v", err)
	}
	want := []string{"MODIFIED a Running", "DELETED a Running"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events %q, want %q", got, want)
	}
	w.Stop() // twice is fine

	// From resourceVersion 0: replay everything.
	w, err = c.Watch(ctx(t), client.ListOptions{}, "0")
	if err != nil {
		t.Fatal(err)
	}
	ev := <-w.Events()
	if ev.Type != v1.Added || ev.Object.Metadata.Name != "a" {
		t.Errorf("replay first event %s %s", ev.Type, ev.Object.Metadata.Name)
	}
	w.Stop()

	if _, err := c.Watch(ctx(t), client.ListOptions{LabelSelector: "a in ("}, ""); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("bad selector: %v", err)
	}
}

// TestWatchStream checks the decoding of hand-written streams: ERROR
// events, garbage and a clean end.
func TestWatchStream(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		events int
		class  error
		bad    bool
	}{
		{"clean end", `{"type":"ADDED","object":{"metadata":{"name":"a"},"spec":{"argv":["x"]}}}` + "\n\n", 1, nil, false},
		{"gone", `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}}` + "\n", 0, errdefs.ErrGone, false},
		{"garbage", "{nope\n", 0, nil, true},
		{"unknown type", `{"type":"WEIRD","object":{}}` + "\n", 0, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Query().Get("watch") != "true" {
					t.Errorf("no watch=true in %s", r.URL)
				}
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, _ := client.New(client.Config{Server: srv.URL})
			w, err := c.Watch(ctx(t), client.ListOptions{}, "")
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for range w.Events() {
				n++
			}
			err = w.Err()
			if n != tc.events {
				t.Errorf("%d events, want %d", n, tc.events)
			}
			switch {
			case tc.class != nil && !errors.Is(err, tc.class):
				t.Errorf("Err = %v, want %v", err, tc.class)
			case tc.bad && !errors.Is(err, client.ErrBadResponse):
				t.Errorf("Err = %v, want ErrBadResponse", err)
			case tc.class == nil && !tc.bad && err != nil:
				t.Errorf("Err = %v, want nil", err)
			}
		})
	}
}

func TestWatchContextCancel(t *testing.T) {
	s := clienttest.New()
	defer s.Close()
	c := newClient(t, s)
	cx, cancel := context.WithCancel(context.Background())
	w, err := c.Watch(cx, client.ListOptions{}, "")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	for range w.Events() {
	}
	if !errors.Is(w.Err(), context.Canceled) {
		t.Errorf("Err = %v, want context.Canceled", w.Err())
	}
}

func TestVersionHealthz(t *testing.T) {
	s := clienttest.New()
	defer s.Close()
	c := newClient(t, s)
	v, err := c.Version(ctx(t))
	if err != nil || v.Version != "v0.0.0-fake" || v.Platform != "linux/amd64" {
		t.Fatalf("Version = %+v, %v", v, err)
	}
	if err := c.Healthz(ctx(t)); err != nil {
		t.Fatal(err)
	}
}

// TestErrorDecoding checks every shape of error body and the class each
// code or reason maps to.
func TestErrorDecoding(t *testing.T) {
	const procstar404 = `{"errors":{"detail":null,"status":"404 Not Found"}}`
	for _, tc := range []struct {
		name   string
		code   int
		ctype  string
		body   string
		class  error
		reason v1.StatusReason
		msg    string
		notAPI bool
	}{
		{"status 404", 404, "", `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"proc \"x\" not found","reason":"NotFound","code":404}`, errdefs.ErrNotFound, v1.StatusReasonNotFound, `proc "x" not found`, false},
		{"status without reason", 404, "", `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"gone","code":404}`, errdefs.ErrNotFound, v1.StatusReasonNotFound, "gone", false},
		{"status conflict", 409, "", `{"status":"Failure","message":"spec changed","reason":"Conflict","code":409}`, errdefs.ErrConflict, v1.StatusReasonConflict, "spec changed", false},
		{"status exists", 409, "", `{"message":"exists","reason":"AlreadyExists","code":409}`, errdefs.ErrAlreadyExists, v1.StatusReasonAlreadyExists, "exists", false},
		{"status invalid", 422, "", `{"message":"spec.argv: required","reason":"Invalid","code":422}`, errdefs.ErrInvalidArgument, v1.StatusReasonInvalid, "spec.argv: required", false},
		{"status expired", 410, "", `{"message":"old","reason":"Expired","code":410}`, errdefs.ErrGone, v1.StatusReasonGone, "old", false},
		{"status unavailable", 503, "", `{"message":"shutting down","reason":"ServiceUnavailable","code":503}`, errdefs.ErrUnavailable, v1.StatusReasonServiceUnavailable, "shutting down", false},
		{"newlines in message", 400, "", `{"message":"a\nb","reason":"BadRequest","code":400}`, errdefs.ErrInvalidArgument, v1.StatusReasonBadRequest, "a b", false},
		// Answers that are not the v1 API's: only 401, 403 and 503 keep a
		// class, and no raw JSON or HTML becomes the message.
		{"plain 401", 401, "text/plain", "unauthorized\n", errdefs.ErrUnauthorized, "", "unauthorized", true},
		{"empty 403", 403, "", "", errdefs.ErrUnauthorized, "", "403 Forbidden", true},
		{"plain 503", 503, "text/plain; charset=utf-8", "not ready: starting\n", errdefs.ErrUnavailable, "", "not ready: starting", true},
		{"procstar body", 400, "application/json", `{"errors":{"status":"400","detail":"process running: x"}}`, nil, "", "process running: x", true},
		{"procstar 404", 404, "application/json", procstar404, nil, "", "404 Not Found", true},
		{"html 404", 404, "text/html", "<!DOCTYPE HTML>\n<html><body>Not Found</body></html>", nil, "", "404 Not Found", true},
		{"multi-line text", 500, "text/plain", "boom\nstack\ntrace", nil, "", "boom", true},
		{"bad JSON 404", 404, "application/json", `{"message":`, nil, "", "404 Not Found", true},
		{"other JSON 404", 404, "application/json", `{"message":"no such page"}`, nil, "", "404 Not Found", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.ctype != "" {
					w.Header().Set("Content-Type", tc.ctype)
				}
				w.WriteHeader(tc.code)
				io.WriteString(w, tc.body)
			}))
			defer srv.Close()
			c, _ := client.New(client.Config{Server: srv.URL + "/prefix"})
			_, err := c.Get(ctx(t), "x")
			var ae *client.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err %v is not an *APIError", err)
			}
			if ae.Code != tc.code || ae.Reason != tc.reason || ae.Message != tc.msg || ae.NotAPI != tc.notAPI {
				t.Errorf("APIError = %+v, want code %d reason %q message %q notAPI %v", ae, tc.code, tc.reason, tc.msg, tc.notAPI)
			}
			if ae.Method != "GET" || ae.Path != "/prefix"+client.ProcsPath+"/x" {
				t.Errorf("request %s %s", ae.Method, ae.Path)
			}
			if tc.class != nil && !errors.Is(err, tc.class) {
				t.Errorf("%v does not match %v", err, tc.class)
			}
			if tc.class == nil && ae.Class() != nil {
				t.Errorf("Class = %v, want none", ae.Class())
			}
			if errors.Is(err, client.ErrNotAPI) != tc.notAPI {
				t.Errorf("errors.Is(ErrNotAPI) = %v", !tc.notAPI)
			}
			if tc.notAPI && errors.Is(err, errdefs.ErrNotFound) {
				t.Error("an answer that is not the API's matches ErrNotFound")
			}
		})
	}
}

// TestSchemeMismatch: http:// to a TLS server, and https:// to a plain
// one, are connection errors that say so, not an API answer.
func TestSchemeMismatch(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "{}") })
	tlsSrv := httptest.NewTLSServer(h)
	defer tlsSrv.Close()
	plain := httptest.NewServer(h)
	defer plain.Close()

	c, _ := client.New(client.Config{Server: strings.Replace(tlsSrv.URL, "https://", "http://", 1)})
	_, err := c.Get(ctx(t), "x")
	var ce *client.ConnError
	if !errors.As(err, &ce) || !errors.Is(err, client.ErrServerWantsTLS) || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Errorf("http:// to a TLS server: %v", err)
	}
	c, _ = client.New(client.Config{Server: strings.Replace(plain.URL, "http://", "https://", 1), InsecureSkipVerify: true})
	_, err = c.Get(ctx(t), "x")
	if !errors.As(err, &ce) || !errors.Is(err, http.ErrSchemeMismatch) {
		t.Errorf("https:// to a plain server: %v", err)
	}
}

// TestCreateBatch creates procs joined by a pipe with one request, all or
// nothing.
func TestCreateBatch(t *testing.T) {
	s := clienttest.New()
	defer s.Close()
	c := newClient(t, s)
	w := proc("w", nil, "/bin/echo", "hi")
	w.Spec.Fds = []v1.FdSpec{{Fd: v1.Stdout, PipeWrite: &v1.PipeWriteFd{}}}
	r := proc("r", nil, "/usr/bin/wc", "-c")
	r.Spec.Fds = []v1.FdSpec{{Fd: v1.Stdin, PipeRead: &v1.PipeReadFd{ProcID: "w", Fd: v1.Stdout}}}
	got, err := c.CreateBatch(ctx(t), []v1.Proc{*w, *r})
	if err != nil || len(got) != 2 || got[0].Metadata.Name != "w" || got[1].Metadata.Name != "r" || got[0].Metadata.UID == "" {
		t.Fatalf("CreateBatch = %+v, %v", got, err)
	}
	if cr := s.Creates(); len(cr) != 1 || strings.Join(cr[0], ",") != "w,r" {
		t.Errorf("server saw creates %v", cr)
	}
	// Again: both exist, none is created.
	s.Remove("r")
	if _, err := c.CreateBatch(ctx(t), []v1.Proc{*w, *r}); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("batch with an existing proc: %v", err)
	}
	if s.Proc("r") != nil {
		t.Error("a failed batch created a proc")
	}
	if _, err := c.CreateBatch(ctx(t), []v1.Proc{*r}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("unmatched pipe: %v", err)
	}
	if _, err := c.CreateBatch(ctx(t), nil); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty batch: %v", err)
	}
}

// TestPreviewApply: the dry run's comparison says what the apply would.
func TestPreviewApply(t *testing.T) {
	desired := proc("p", map[string]string{"a": "b"}, "/bin/true")
	live := desired.DeepCopy()
	live.SetDefaults() // the server keeps specs with defaults filled in
	for _, tc := range []struct {
		name   string
		live   *v1.Proc
		force  bool
		want   v1.ApplyResult
		errHas string
	}{
		{"absent", nil, false, v1.ApplyCreated, ""},
		{"same", live, false, v1.ApplyUnchanged, ""},
		{"labels", func() *v1.Proc { p := live.DeepCopy(); p.Metadata.Labels = nil; return p }(), false, v1.ApplyConfigured, ""},
		{"changed", func() *v1.Proc { p := live.DeepCopy(); p.Spec.Argv = []string{"/bin/false"}; return p }(), false, "", "immutable"},
		{"changed force", func() *v1.Proc { p := live.DeepCopy(); p.Spec.Argv = []string{"/bin/false"}; return p }(), true, v1.ApplyConfigured, ""},
		{"deleting", func() *v1.Proc {
			p := live.DeepCopy()
			now := time.Now()
			p.Metadata.DeletionTimestamp = &now
			return p
		}(), false, "", "being deleted"},
	} {
		got, err := client.PreviewApply(tc.live, desired, tc.force)
		if got != tc.want || (tc.errHas == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.errHas) || !errors.Is(err, errdefs.ErrConflict))) {
			t.Errorf("%s: PreviewApply = %q, %v", tc.name, got, err)
		}
	}
}

func TestBadResponseBody(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "<html>not json</html>")
	}))
	defer srv.Close()
	c, _ := client.New(client.Config{Server: srv.URL})
	if _, err := c.List(ctx(t), client.ListOptions{}); !errors.Is(err, client.ErrBadResponse) {
		t.Errorf("List = %v, want ErrBadResponse", err)
	}
}

func TestUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := client.New(client.Config{Server: "http://" + addr})
	_, err = c.List(ctx(t), client.ListOptions{})
	var ce *client.ConnError
	if !errors.As(err, &ce) || !errors.Is(err, syscall.ECONNREFUSED) || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("List = %#v, want a *ConnError for ECONNREFUSED", err)
	}
	if strings.Contains(err.Error(), "Get ") {
		t.Errorf("message repeats the URL: %v", err)
	}
}

// TestTimeout checks that Config.Timeout bounds a whole request, except
// that for Logs it bounds only the wait for the answer to begin: a log
// that takes longer than that to download is not cut off.
func TestTimeout(t *testing.T) {
	const timeout = 250 * time.Millisecond
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fd") == "stderr" || r.URL.Path == client.ProcsPath+"/slow" {
			// The answer begins at once, and its body trickles in over
			// four times the timeout.
			w.WriteHeader(http.StatusOK)
			for i := range 8 {
				fmt.Fprintf(w, "%d", i)
				w.(http.Flusher).Flush()
				time.Sleep(timeout / 2)
			}
			return
		}
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	c, _ := client.New(client.Config{Server: srv.URL, Timeout: timeout})
	if _, err := c.Get(ctx(t), "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get = %v, want DeadlineExceeded", err)
	}
	if _, err := c.Get(ctx(t), "slow"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get of a slow body = %v, want DeadlineExceeded", err)
	}
	if _, err := c.Logs(ctx(t), "x", client.LogOptions{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Logs with no answer = %v, want DeadlineExceeded", err)
	}
	rc, err := c.Logs(ctx(t), "x", client.LogOptions{Fd: "stderr"})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, err := io.ReadAll(rc); string(b) != "01234567" || err != nil {
		t.Errorf("Logs of a slow body = %q, %v; want all of it", b, err)
	}
}

func TestToken(t *testing.T) {
	s := clienttest.New()
	s.Token = "sekrit"
	defer s.Close()
	for _, tc := range []struct {
		token string
		ok    bool
	}{{"sekrit", true}, {"wrong", false}, {"", false}} {
		c, _ := client.New(client.Config{Server: s.URL, Token: tc.token})
		_, err := c.List(ctx(t), client.ListOptions{})
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, errdefs.ErrUnauthorized) {
			t.Errorf("token %q: %v", tc.token, err)
		}
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fake := clienttest.New()
	defer fake.Close()
	srv := &http.Server{Handler: fake.Config.Handler}
	go srv.Serve(l)
	defer srv.Close()
	fake.Put(proc("a", nil, "/bin/true"))
	c, err := client.New(client.Config{Server: "unix:" + sock})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Get(ctx(t), "a")
	if err != nil || p.Metadata.Name != "a" {
		t.Fatalf("Get over unix socket = %+v, %v", p, err)
	}
	c2, _ := client.New(client.Config{Server: "unix:" + filepath.Join(dir, "missing.sock")})
	if _, err := c2.Get(ctx(t), "a"); !errors.Is(err, syscall.ENOENT) {
		t.Errorf("missing socket: %v", err)
	}
}

func TestTLS(t *testing.T) {
	fake := clienttest.New()
	defer fake.Close()
	srv := httptest.NewTLSServer(fake.Config.Handler)
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  client.Config
		ok   bool
	}{
		{"ca file", client.Config{Server: srv.URL, CAFile: ca}, true},
		{"insecure", client.Config{Server: srv.URL, InsecureSkipVerify: true}, true},
		{"system pool", client.Config{Server: srv.URL}, false},
	} {
		c, err := client.New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.List(ctx(t), client.ListOptions{})
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("%s: %v is not a ConnError", tc.name, err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not pem"), 0o600)
	if _, err := client.New(client.Config{Server: srv.URL, CAFile: bad}); !errors.Is(err, client.ErrBadConfig) {
		t.Errorf("bad CA file: %v", err)
	}
}

// TestMetadataOnly: List and Watch with MetadataOnly ask for Kubernetes'
// metadata views and hand back procs that carry only their metadata.
func TestMetadataOnly(t *testing.T) {
	const (
		listType = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
		oneType  = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
	)
	var accepts []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		accepts = append(accepts, r.Header.Get("Accept"))
		mu.Unlock()
		item := `{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadata","metadata":{"name":"a","labels":{"k":"v"},"resourceVersion":"7"}}`
		if r.URL.Query().Get("watch") == "true" {
			w.Header().Set("Content-Type", oneType)
			fmt.Fprintf(w, `{"type":"ADDED","object":%s}`+"\n", item)
			return
		}
		w.Header().Set("Content-Type", listType)
		fmt.Fprintf(w, `{"apiVersion":"meta.k8s.io/v1","kind":"PartialObjectMetadataList","metadata":{"resourceVersion":"7"},"items":[%s]}`, item)
	}))
	defer srv.Close()
	c, err := client.New(client.Config{Server: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	opts := client.ListOptions{FieldSelector: "status.phase=Succeeded", MetadataOnly: true}
	l, err := c.List(ctx(t), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Items) != 1 || l.Items[0].Metadata.Name != "a" || l.Items[0].Metadata.Labels["k"] != "v" || l.Metadata.ResourceVersion != "7" {
		t.Errorf("list %+v", l)
	}
	w, err := c.Watch(ctx(t), opts, "")
	if err != nil {
		t.Fatal(err)
	}
	ev := <-w.Events()
	w.Stop()
	if ev.Type != v1.Added || ev.Object.Kind != v1.KindPartialObjectMetadata || ev.Object.Metadata.Name != "a" {
		t.Errorf("watch event %+v", ev)
	}
	if _, err := c.List(ctx(t), client.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	// Each view first, then its fallback: a server without views sends
	// whole procs, which decode the same way.
	view := listType + "," + oneType + ",application/json"
	want := []string{view, view, "application/json"}
	if strings.Join(accepts, " | ") != strings.Join(want, " | ") {
		t.Errorf("Accept headers %q, want %q", accepts, want)
	}
}
