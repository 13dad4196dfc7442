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
// the link on loopback; compare with BenchmarkRawEchoRoundTrip, a raw
// gorilla/websocket echo of a frame of the same size.
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
	size := 0
	for b.Loop() {
		c.sendRaw(b, websocket.BinaryMessage, req)
		_, data, err := c.ws.ReadMessage() // as the raw echo's client does
		if err != nil {
			b.Fatal(err)
		}
		size = len(data)
	}
	b.ReportMetric(float64(size), "frame-bytes")
}

func BenchmarkRawEchoRoundTrip(b *testing.B) {
	const size = 900 // about a ProcResult frame; see frame-bytes above
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	defer srv.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+strings.TrimPrefix(srv.URL, "http://")+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	req := make([]byte, 32)
	for b.Loop() {
		if err := ws.WriteMessage(websocket.BinaryMessage, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}
