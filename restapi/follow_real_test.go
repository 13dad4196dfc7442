package restapi_test

// Followed logs of real processes, through the real controller and HTTP
// handler: a follow is pinned to the run it started on.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/controller"
	"procstar.dev/procstar/controller/controllertest"
	"procstar.dev/procstar/restapi"
)

// The controller pins followed logs.
var _ restapi.OutputPinner = (*controller.Controller)(nil)

const procsURL = "/apis/procstar.dev/v1/procs"

// realNode is a runtime, controller and HTTP API on a loopback server.
type realNode struct {
	t   *testing.T
	url string
	hc  *http.Client
}

func newRealNode(t *testing.T) *realNode {
	t.Helper()
	ctl := controllertest.New(t, controller.Options{})
	// The default poll interval, as the agent serves.
	srv := httptest.NewServer(restapi.NewHandler(ctl, restapi.Options{}))
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(func() {
		ctl.SignalAll(int(syscall.SIGKILL))
		wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := ctl.WaitAllExited(wctx); err != nil {
			t.Errorf("procs still running at cleanup: %v", err)
		}
		wcancel()
		tr.CloseIdleConnections()
		srv.Close()
	})
	return &realNode{t: t, url: srv.URL, hc: &http.Client{Transport: tr}}
}

// procJSON is a proc running sh -c script, its stdout captured as mode.
func procJSON(name, script string, mode v1.CaptureMode) string {
	b, _ := json.Marshal(v1.Proc{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProc},
		Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ProcSpec{
			Argv: []string{"/bin/sh", "-c", script},
			Fds: []v1.FdSpec{
				{Fd: v1.Stdin, Null: &v1.NullFd{}},
				{Fd: v1.Stdout, Capture: &v1.CaptureFd{Mode: mode, Encoding: v1.EncodingUTF8}},
				{Fd: v1.Stderr, Null: &v1.NullFd{}},
			},
		},
	})
	return string(b)
}

// do sends a request and returns the status code and body.
func (n *realNode) do(method, path, body string) (int, string) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(n.t.Context(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.url+path, strings.NewReader(body))
	if err != nil {
		n.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := n.hc.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return resp.StatusCode, string(b)
}

func (n *realNode) must(method, path, body string, code int) {
	n.t.Helper()
	if got, b := n.do(method, path, body); got != code {
		n.t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, code)
	}
}

// follow starts following name's stdout and reads its first line.
func (n *realNode) follow(name, first string) (*bufio.Reader, func()) {
	n.t.Helper()
	ctx, cancel := context.WithTimeout(n.t.Context(), 20*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+procsURL+"/"+name+"/log?follow=true", nil)
	resp, err := n.hc.Do(req)
	if err != nil {
		cancel()
		n.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		n.t.Fatalf("follow %s: %d %s", name, resp.StatusCode, b)
	}
	br := bufio.NewReader(resp.Body)
	if line, err := br.ReadString('\n'); err != nil || line != first {
		resp.Body.Close()
		cancel()
		n.t.Fatalf("follow %s: first line %q, %v; want %q", name, line, err, first)
	}
	return br, func() { resp.Body.Close(); cancel() }
}

// TestFollowDeletedAfterExit deletes procs right after they exit, as v1's
// graceful delete and procstar's DELETE of an exited proc do: the
// follower must still get every byte the run wrote, and a clean end,
// whatever the capture (a memory one is held by the follower).
func TestFollowDeletedAfterExit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 80 processes")
	}
	n := newRealNode(t)
	const rounds = 20
	graceful := "trap 'echo TERMINATED-TAIL; exit 0' TERM; echo started; sleep 100 & wait"
	exiting := "echo started; sleep 0.1; echo EXITED-TAIL"
	for _, tc := range []struct {
		name   string
		mode   v1.CaptureMode
		script string
		tail   string
	}{
		{"v1 delete/tempfile", v1.CaptureTempfile, graceful, "TERMINATED-TAIL\n"},
		{"procstar delete/tempfile", v1.CaptureTempfile, exiting, "EXITED-TAIL\n"},
		{"v1 delete/memory", v1.CaptureMemory, graceful, "TERMINATED-TAIL\n"},
		{"procstar delete/memory", v1.CaptureMemory, exiting, "EXITED-TAIL\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.t = t
			for i := range rounds {
				name := fmt.Sprintf("tail-%d-%s", i, tc.mode)
				if strings.HasPrefix(tc.name, "procstar") {
					name = "p" + name
				}
				n.must("POST", procsURL, procJSON(name, tc.script, tc.mode), 201)
				body, stop := n.follow(name, "started\n")
				if strings.HasPrefix(tc.name, "v1") {
					n.must("DELETE", procsURL+"/"+name, "", 200)
				} else {
					// procstar refuses while the proc runs: delete it the
					// moment it has exited.
					deadline := time.Now().Add(10 * time.Second)
					for {
						code, b := n.do("DELETE", "/procs/"+name, "")
						if code == 200 {
							break
						}
						if code != 400 || !strings.Contains(b, "process running") || time.Now().After(deadline) {
							t.Fatalf("DELETE /procs/%s: %d %s", name, code, b)
						}
						time.Sleep(time.Millisecond)
					}
				}
				rest, err := io.ReadAll(body)
				stop()
				if err != nil || string(rest) != tc.tail {
					t.Fatalf("round %d: the rest of the stream was %q, %v; want %q and a clean end", i, rest, err, tc.tail)
				}
			}
		})
	}
}

// TestFollowReplaced replaces a followed proc by a new one under the same
// name: the follow must end with the old run's output and never deliver
// a byte of the new proc's.
func TestFollowReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 20 processes")
	}
	n := newRealNode(t)
	oldScript := "trap 'exit 0' TERM; echo old; sleep 100 & wait"
	newScript := "i=0; while [ $i -lt 300 ]; do echo new-$i; i=$((i+1)); done; sleep 100"
	for _, how := range []string{"force apply", "delete and create"} {
		t.Run(how, func(t *testing.T) {
			n.t = t
			for i := range 5 {
				name := fmt.Sprintf("swap-%d-%d", len(how), i)
				n.must("POST", procsURL, procJSON(name, oldScript, v1.CaptureTempfile), 201)
				body, stop := n.follow(name, "old\n")
				if how == "force apply" {
					n.must("PUT", procsURL+"/"+name+"?force=true", procJSON(name, newScript, v1.CaptureTempfile), 200)
				} else {
					n.must("DELETE", procsURL+"/"+name, "", 200)
					deadline := time.Now().Add(10 * time.Second)
					for {
						code, b := n.do("POST", procsURL, procJSON(name, newScript, v1.CaptureTempfile))
						if code == 201 {
							break
						}
						if code != 409 || time.Now().After(deadline) {
							t.Fatalf("re-creating %s: %d %s", name, code, b)
						}
						time.Sleep(time.Millisecond)
					}
				}
				// Let the new proc write well past the follower's offset.
				waitOutput(t, n, name, "new-299\n")
				rest, err := io.ReadAll(body)
				stop()
				if err != nil || len(rest) != 0 {
					t.Fatalf("round %d: after the old output: %q, %v; want a clean end", i, trunc(rest), err)
				}
				n.must("DELETE", procsURL+"/"+name+"?force=true", "", 200)
			}
		})
	}
}

// waitOutput waits until name's stdout holds want.
func waitOutput(t *testing.T, n *realNode, name, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, b := n.do("GET", procsURL+"/"+name+"/log", "")
		if code == 200 && strings.Contains(b, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("output of %s never held %q: %d %q", name, want, code, trunc([]byte(b)))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// trunc shortens b for a message.
func trunc(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// TestPlainReadReplaced replaces a proc while a plain (not followed) read
// of its output is part way through: the response must still be exactly
// the old run's bytes, through both output routes and with either
// capture, as a plain read pins the run it started on. The output is
// larger than the loopback socket buffers, so the server is still
// sending when the proc is replaced.
func TestPlainReadReplaced(t *testing.T) {
	if testing.Short() {
		t.Skip("captures 96 MiB")
	}
	n := newRealNode(t)
	const size = 24 << 20
	oldScript := fmt.Sprintf("head -c %d /dev/zero", size)
	newScript := fmt.Sprintf("yes x | head -c %d", size)
	for _, mode := range []v1.CaptureMode{v1.CaptureTempfile, v1.CaptureMemory} {
		for _, route := range []string{"v1", "procstar"} {
			t.Run(string(mode)+"/"+route, func(t *testing.T) {
				n.t = t
				name := "plain-" + string(mode) + "-" + route
				path := procsURL + "/" + name + "/log"
				if route == "procstar" {
					path = "/procs/" + name + "/output/stdout/data"
				}
				n.must("POST", procsURL, procJSON(name, oldScript, mode), 201)
				waitSucceeded(t, n, name)
				ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
				defer cancel()
				req, _ := http.NewRequestWithContext(ctx, "GET", n.url+path, nil)
				resp, err := n.hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 || resp.ContentLength != size {
					t.Fatalf("GET %s: %d, length %d", path, resp.StatusCode, resp.ContentLength)
				}
				head := make([]byte, 1<<20)
				if _, err := io.ReadFull(resp.Body, head); err != nil {
					t.Fatal(err)
				}
				n.must("DELETE", procsURL+"/"+name, "", 200)
				for deadline := time.Now().Add(10 * time.Second); ; {
					code, b := n.do("POST", procsURL, procJSON(name, newScript, mode))
					if code == 201 {
						break
					}
					if code != 409 || time.Now().After(deadline) {
						t.Fatalf("re-creating %s: %d %s", name, code, b)
					}
					time.Sleep(time.Millisecond)
				}
				waitSucceeded(t, n, name)
				rest, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("reading the rest: %v", err)
				}
				body := append(head, rest...)
				if len(body) != size {
					t.Fatalf("read %d bytes, want %d", len(body), size)
				}
				if i := bytes.IndexFunc(body, func(r rune) bool { return r != 0 }); i >= 0 {
					t.Fatalf("byte %d is %q: the response spliced in the new run's output", i, body[i])
				}
				n.must("DELETE", procsURL+"/"+name+"?force=true", "", 200)
			})
		}
	}
}

// waitSucceeded waits until name's phase is Succeeded.
func waitSucceeded(t *testing.T, n *realNode, name string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, b := n.do("GET", procsURL+"/"+name, "")
		var p v1.Proc
		if code == 200 && json.Unmarshal([]byte(b), &p) == nil && p.Status.Phase == v1.PhaseSucceeded {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not succeed: %d %s", name, code, trunc([]byte(b)))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestPlainReadRanges reads windows and ranges of a real capture larger
// than one read chunk, through the pinned run (from the capture file with
// sendfile, or from memory), and checks each against the whole.
func TestPlainReadRanges(t *testing.T) {
	n := newRealNode(t)
	var want bytes.Buffer
	for i := 1; i <= 400000; i++ {
		fmt.Fprintln(&want, i)
	}
	for _, mode := range []v1.CaptureMode{v1.CaptureTempfile, v1.CaptureMemory} {
		t.Run(string(mode), func(t *testing.T) {
			n.t = t
			name := "ranges-" + string(mode)
			n.must("POST", procsURL, procJSON(name, "seq 1 400000", mode), 201)
			waitSucceeded(t, n, name)
			all := want.Bytes()
			size := int64(len(all))
			for _, tc := range []struct {
				query, rng string
				from, to   int64 // the bytes of all expected
			}{
				{"", "", 0, size},
				{"?start=7", "", 7, size},
				{"?start=1048570&stop=2097200", "", 1048570, 2097200},
				{"", "bytes=5-1500000", 5, 1500001},
				{"?start=100", "bytes=-10", size - 10, size},
				{"?start=" + fmt.Sprint(size), "", size, size},
			} {
				req, _ := http.NewRequestWithContext(t.Context(), "GET", n.url+procsURL+"/"+name+"/log"+tc.query, nil)
				if tc.rng != "" {
					req.Header.Set("Range", tc.rng)
				}
				resp, err := n.hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil || resp.StatusCode/100 != 2 {
					t.Fatalf("%s %s: %d, %v", tc.query, tc.rng, resp.StatusCode, err)
				}
				if !bytes.Equal(got, all[tc.from:tc.to]) {
					t.Errorf("%s %s: %d bytes, want bytes %d-%d (%d)", tc.query, tc.rng, len(got), tc.from, tc.to, tc.to-tc.from)
				}
			}
			n.must("DELETE", procsURL+"/"+name, "", 200)
		})
	}
}
