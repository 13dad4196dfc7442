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
// As in BenchmarkProcResultRoundTrip, the server is a bare peer: it sends
// a start request encoded beforehand and reads each answer only as far as
// its type, proc ID and state. A server's own decoding is not the agent's
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
	var linkT, rawT []time.Duration
	for i := 0; b.Loop(); i++ {
		id := fmt.Sprint("t", i)
		start, _ := msgpack.Marshal(msg{"type": "ProcStartRequest", "specs": msg{id: msg{"argv": []string{"/bin/true"}}}})
		del, _ := msgpack.Marshal(msg{"type": "ProcDeleteRequest", "proc_id": id})
		t0 := time.Now()
		c.sendRaw(b, websocket.BinaryMessage, start)
		await("ProcResult", id, "terminated")
		linkT = append(linkT, time.Since(t0))
		c.sendRaw(b, websocket.BinaryMessage, del)
		await("ProcDelete", id, "")

		t0 = time.Now()
		if err := rawspawn.Run("/bin/true", env); err != nil {
			b.Fatal(err)
		}
		rawT = append(rawT, time.Since(t0))
	}
	benchpairs.ReportOverhead(b, "link", linkT, rawT)
}
