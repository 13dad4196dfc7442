package link

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"
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
