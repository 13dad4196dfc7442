package link

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"procstar.dev/procstar/internal/benchpairs"
	"procstar.dev/procstar/internal/rawspawn"
)

// BenchmarkProcResultRoundTrip times ProcResultRequest → ProcResult over
// the link on loopback against a raw gorilla/websocket echo of frames of
// the same sizes, in blocks that alternate within the same run, and
// reports the ratio of their rates (target ≥ 0.7). Both clients read the
// answer as bytes and decode nothing.
func BenchmarkProcResultRoundTrip(b *testing.B) {
	srv := newTestServer(b, "")
	ctl := newController(b)
	createProc(b, ctl, "p", "exit 0")
	startAgent(b, srv, ctl, nil)
	c := srv.next(b)
	readOne(b, c) // Register, without starting the harness's reader
	c.send(b, msg{"type": "Registered"})
	_ = c.ws.SetReadDeadline(time.Time{})
	req, _ := msgpack.Marshal(msg{"type": "ProcResultRequest", "proc_id": "p"})
	link := func() int {
		c.sendRaw(b, websocket.BinaryMessage, req)
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		return len(data)
	}
	size := link()

	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		reply := make([]byte, size)
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
			if err := ws.WriteMessage(websocket.BinaryMessage, reply); err != nil {
				return
			}
		}
	}))
	defer echo.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+strings.TrimPrefix(echo.URL, "http://")+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	raw := func() {
		if err := ws.WriteMessage(websocket.BinaryMessage, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}

	const block = 100
	var linkD, rawD time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range block {
			link()
		}
		t1 := time.Now()
		for range block {
			raw()
		}
		linkD += t1.Sub(t0)
		rawD += time.Since(t1)
	}
	n := float64(b.N * block)
	b.ReportMetric(linkD.Seconds()/n*1e6, "link-µs/op")
	b.ReportMetric(rawD.Seconds()/n*1e6, "raw-µs/op")
	b.ReportMetric(rawD.Seconds()/linkD.Seconds(), "ratio")
	b.ReportMetric(float64(size), "frame-bytes")
}

// BenchmarkStartTrue times start → final result of /bin/true over the
// link, against ForkExec and a pidfd wait (rawspawn), one of each per
// iteration, and reports the p50 overhead (target ≤ 300 µs): the median
// of each iteration's link time less its raw time. The pairs are taken
// back to back, so that a change of load on the machine hits both halves
// of a pair; the difference of the two medians, which ignores the
// pairing, is reported too (p50-diff-µs).
//
// It also reports where the overhead goes, as the p50 of each pair's
// difference in three phases, split at the result's start and stop times
// and at the same points of the raw loop: fork-extra-µs up to the fork
// (the request's way in, its decoding, the set-up), run-extra-µs from
// the fork to the reap (the child's run, slowed by the agent's work
// beside it, and the exit's detection), result-extra-µs from the reap to
// the peer's read of the final result.
//
// As in BenchmarkProcResultRoundTrip, the server is a bare peer: it sends
// a start request encoded beforehand and reads each answer only as far as
// its type, proc ID, state and times. A server's own decoding is not the agent's
// overhead; test/fakecontrol's BenchmarkStartTrue measures the same start
// through that strict server, decoding included.
func BenchmarkStartTrue(b *testing.B) {
	srv := newTestServer(b, "")
	startAgent(b, srv, nil, nil)
	c := srv.next(b)
	readOne(b, c) // Register, without starting the harness's reader
	c.send(b, msg{"type": "Registered"})
	_ = c.ws.SetReadDeadline(time.Time{})
	// The agent pings once it has registered; gorilla/websocket answers
	// pings while this reads.
	var ans struct {
		Type   string `msgpack:"type"`
		ProcID string `msgpack:"proc_id"`
		Res    struct {
			State string `msgpack:"state"`
			Times struct {
				Start string `msgpack:"start"`
				Stop  string `msgpack:"stop"`
			} `msgpack:"times"`
		} `msgpack:"res"`
	}
	// await reads answers until one of type typ for id (with state, if
	// state is not "").
	await := func(typ, id, state string) {
		for {
			_, data, err := c.ws.ReadMessage()
			if err != nil {
				b.Fatal(err)
			}
			ans.Type, ans.ProcID, ans.Res.State = "", "", ""
			if err := msgpack.Unmarshal(data, &ans); err != nil {
				b.Fatalf("decoding %q: %v", data, err)
			}
			if ans.Type == "RequestError" {
				b.Fatalf("request error: %q", data)
			}
			if ans.Type == typ && ans.ProcID == id && (state == "" || ans.Res.State == state) {
				return
			}
		}
	}
	env := os.Environ()
	// Each side's time in three phases, split where the result's start
	// and stop times are taken (after the fork and after the reap): the
	// way to the fork, the child's run to its reap, and the way back.
	var linkT, rawT []time.Duration
	var link, raw [3][]time.Duration
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprint("t", i)
		start, _ := msgpack.Marshal(msg{"type": "ProcStartRequest", "specs": msg{id: msg{"argv": []string{"/bin/true"}}}})
		del, _ := msgpack.Marshal(msg{"type": "ProcDeleteRequest", "proc_id": id})
		t0 := time.Now()
		c.sendRaw(b, websocket.BinaryMessage, start)
		await("ProcResult", id, "terminated")
		end := time.Now()
		linkT = append(linkT, end.Sub(t0))
		forked, err1 := time.Parse(time.RFC3339Nano, ans.Res.Times.Start)
		reaped, err2 := time.Parse(time.RFC3339Nano, ans.Res.Times.Stop)
		if err1 != nil || err2 != nil {
			b.Fatalf("result times %+v: %v, %v", ans.Res.Times, err1, err2)
		}
		link[0] = append(link[0], forked.Sub(t0))
		link[1] = append(link[1], reaped.Sub(forked))
		link[2] = append(link[2], end.Sub(reaped))
		c.sendRaw(b, websocket.BinaryMessage, del)
		await("ProcDelete", id, "")

		t0 = time.Now()
		rt, err := rawspawn.Timed("/bin/true", env)
		if err != nil {
			b.Fatal(err)
		}
		end = time.Now()
		rawT = append(rawT, end.Sub(t0))
		raw[0] = append(raw[0], rt.Forked.Sub(t0))
		raw[1] = append(raw[1], rt.Reaped.Sub(rt.Forked))
		raw[2] = append(raw[2], end.Sub(rt.Reaped))
	}
	benchpairs.ReportOverhead(b, "link", linkT, rawT)
	for i, phase := range []string{"fork", "run", "result"} {
		benchpairs.ReportPhase(b, phase, link[i], raw[i])
	}
}
