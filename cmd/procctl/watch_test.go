package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/client"
)

// scriptedWatchServer serves a list at resourceVersion 5 and, for each
// watch, the stream scripted for the resourceVersion asked; each stream
// ends after its lines, as a server that restarts would.
func scriptedWatchServer(t *testing.T, streams map[string][]string) (*httptest.Server, func() []string) {
	var mu sync.Mutex // guards asked
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != client.ProcsPath {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		if q.Get("watch") != "true" {
			p := fakeProc("p", v1.PhasePending, nil)
			json.NewEncoder(w).Encode(v1.ProcList{Metadata: v1.ListMeta{ResourceVersion: "5"}, Items: []v1.Proc{*p}})
			return
		}
		rv := q.Get("resourceVersion")
		mu.Lock()
		asked = append(asked, rv)
		mu.Unlock()
		for _, line := range streams[rv] {
			fmt.Fprintln(w, line)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), asked...)
	}
}

func event(typ v1.WatchEventType, phase v1.ProcPhase, rv string) string {
	p := fakeProc("p", phase, nil)
	p.Metadata.ResourceVersion = rv
	b, _ := json.Marshal(v1.WatchEvent{Type: typ, Object: *p})
	return string(b)
}

// TestWatchResumes checks that a watch the server ends is resumed from
// the last resourceVersion seen, and that BOOKMARKs move it too.
func TestWatchResumes(t *testing.T) {
	srv, asked := scriptedWatchServer(t, map[string][]string{
		"5": {event(v1.Modified, v1.PhaseRunning, "6")},
		"6": {`{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"8"},"spec":{}}}`},
		"8": {event(v1.Modified, v1.PhaseSucceeded, "9")},
	})
	h := newHarness(t)
	h.vars["PROCSTAR_SERVER"] = srv.URL
	check(t, h.run("wait", "p"), 0, "proc/p condition met\n", "")
	if got := strings.Join(asked(), ","); got != "5,6,8" {
		t.Errorf("watches from %s, want 5,6,8", got)
	}
}

func TestWatchExpired(t *testing.T) {
	srv, _ := scriptedWatchServer(t, map[string][]string{
		"5": {`{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}}`},
	})
	h := newHarness(t)
	h.vars["PROCSTAR_SERVER"] = srv.URL
	check(t, h.run("wait", "p"), 1, "", "error: the watch fell too far behind the server (resourceVersion 5 expired); run the command again\n")
	check(t, h.run("get", "procs", "-w", "-o", "name"), 1, "proc/p\n", "error: the watch fell too far behind the server (resourceVersion 5 expired); run the command again\n")
}

// TestGetWatchEvents checks --output-watch-events: the listed proc comes
// as ADDED, and each change with its event type, DELETED included.
func TestGetWatchEvents(t *testing.T) {
	expired := `{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}}`
	srv, _ := scriptedWatchServer(t, map[string][]string{
		"5": {event(v1.Modified, v1.PhaseRunning, "6"), event(v1.Deleted, v1.PhaseRunning, "7"), expired},
	})
	h := newHarness(t)
	h.vars["PROCSTAR_SERVER"] = srv.URL
	const stop = "error: the watch fell too far behind the server (resourceVersion 7 expired); run the command again\n"
	check(t, h.run("get", "procs", "-w", "--output-watch-events", "-o", "name"), 1,
		"ADDED proc/p\nMODIFIED proc/p\nDELETED proc/p\n", stop)

	r := h.run("get", "procs", "-w", "--output-watch-events")
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		f := strings.Fields(line)
		got = append(got, strings.Join(f[:3], " "))
	}
	if want := "EVENT NAME PHASE,ADDED p Pending,MODIFIED p Running,DELETED p Running"; strings.Join(got, ",") != want || r.code != 1 || r.stderr != stop {
		t.Errorf("table: code %d, rows %q, stderr %q; want rows %q", r.code, got, r.stderr, want)
	}

	check(t, h.run("get", "procs", "--output-watch-events"), 2, "",
		"error: --output-watch-events shows a watch's events: add -w\n")
}
