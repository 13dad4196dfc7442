package fakecontrol_test

// Benchmarks of the agent link against raw baselines, measured in the same
// run so that the ratios mean something on any machine:
//
//   - ProcResultRequest round trips through this fake server, which decodes
//     every result as a server must, against a raw gorilla/websocket echo
//     of frames of the same sizes (the agent's own round trip, with the
//     target ≥ 0.7×, is agent/link's BenchmarkProcResultRoundTrip);
//   - start → final result of /bin/true over the link against ForkExec plus
//     a pidfd wait, through this server, its decoding included (the
//     agent's own overhead, with the target p50 ≤ 300 µs, is agent/link's
//     BenchmarkStartTrue);
//   - a 64 MiB ProcFdData: its time, and the agent's peak RSS growth
//     (VmHWM) in copies of the data (target ≤ 1 extra copy), with the agent
//     as a separate, non-race binary.
//
// Run with: go test -run '^$' -bench . ./test/fakecontrol/

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/websocket"
	"github.com/vmihailenco/msgpack/v5"

	"procstar.dev/procstar/agent"
	"procstar.dev/procstar/internal/benchpairs"
	"procstar.dev/procstar/internal/rawspawn"
	"procstar.dev/procstar/test/fakecontrol"
)

// inProcAgent runs agent.Run against srv until stop is called.
func inProcAgent(b *testing.B, srv *fakecontrol.Server, connID string) (stop func()) {
	b.Helper()
	sigs := make(chan os.Signal, 1)
	done := make(chan struct{})
	// No resource backend: these benchmarks measure the link against a raw
	// parent; the cgroup backend's own cost per proc is runtime's
	// BenchmarkSpawnCgroup.
	cfg := agent.Config{Agent: true, ConnID: connID, Signals: sigs,
		Link:      agent.LinkConfig{URL: srv.URL(), ConnectIntervalStart: 50 * time.Millisecond},
		Resources: agent.ResourceConfig{Backend: agent.BackendNone},
		Stdout:    os.Stdout, Stderr: os.Stderr}
	go func() {
		agent.Run(logr.NewContext(context.Background(), logr.Discard()), cfg)
		close(done)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := srv.WaitConn(ctx, connID); err != nil {
		b.Fatal(err)
	}
	return func() {
		sigs <- syscall.SIGQUIT
		<-done
	}
}

func mustStart(b *testing.B, ctx context.Context, srv *fakecontrol.Server, id string, argv ...string) *fakecontrol.Process {
	b.Helper()
	av := make([]any, len(argv))
	for i, a := range argv {
		av[i] = a
	}
	ps, err := srv.StartRaw(ctx, "default", map[string]any{id: map[string]any{"argv": av}})
	if err != nil {
		b.Fatal(err)
	}
	return ps[0]
}

// BenchmarkResultRoundTrip compares ProcResultRequest → ProcResult through
// this fake server, which decodes each result into maps and routes it to
// the waiting Process, with a raw WebSocket echo of the same frame sizes.
// The server's work is in link-µs/op; the agent's alone is agent/link's
// BenchmarkProcResultRoundTrip.
func BenchmarkResultRoundTrip(b *testing.B) {
	srv, err := fakecontrol.New(fakecontrol.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	stop := inProcAgent(b, srv, "bench-rt")
	defer stop()
	ctx := context.Background()
	p := mustStart(b, ctx, srv, "rt", "/bin/true")
	res, err := p.WaitState(ctx, "terminated")
	if err != nil {
		b.Fatal(err)
	}
	req, _ := msgpack.Marshal(map[string]any{"type": "ProcResultRequest", "proc_id": "rt"})
	resp, _ := msgpack.Marshal(map[string]any{"type": "ProcResult", "proc_id": "rt", "res": res})

	ws := dialEcho(b, resp)
	defer ws.Close()
	// Blocks of each, alternating, so that load changes hit both alike.
	const block = 100
	var link, raw time.Duration
	for b.Loop() {
		t0 := time.Now()
		for range block {
			if err := p.RequestResult(); err != nil {
				b.Fatal(err)
			}
			if _, err := p.NextResult(ctx); err != nil {
				b.Fatal(err)
			}
		}
		t1 := time.Now()
		rawEcho(b, ws, req, block)
		link += t1.Sub(t0)
		raw += time.Since(t1)
	}
	if err := p.Delete(ctx); err != nil {
		b.Fatal(err)
	}
	n := float64(b.N * block)
	b.ReportMetric(link.Seconds()/n*1e6, "link-µs/op")
	b.ReportMetric(raw.Seconds()/n*1e6, "raw-µs/op")
	b.ReportMetric(raw.Seconds()/link.Seconds(), "link/raw-rate")
	b.ReportMetric(float64(len(resp)), "result-bytes")
}

// dialEcho starts a gorilla/websocket server on loopback that answers
// every frame with resp, and dials it.
func dialEcho(b *testing.B, resp []byte) *websocket.Conn {
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				return
			}
			if err := ws.WriteMessage(websocket.BinaryMessage, resp); err != nil {
				return
			}
		}
	}))
	b.Cleanup(hs.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	return ws
}

// rawEcho makes n round trips of req over ws.
func rawEcho(b *testing.B, ws *websocket.Conn, req []byte, n int) {
	for range n {
		if err := ws.WriteMessage(websocket.BinaryMessage, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartTrue compares start → final result of /bin/true over the
// link with ForkExec and a pidfd wait, one of each per iteration, and
// reports the p50 overhead: the median of each iteration's link time less
// its raw time. The pairs are taken back to back, so a change of load on
// the machine hits both halves of a pair; the difference of the two
// medians, which ignores the pairing, is reported too (p50-diff-µs).
// The link time includes this server's work: encoding the start, decoding
// both results into maps with its strict checks, and handing each to the
// waiting Process. agent/link's BenchmarkStartTrue measures the agent's
// overhead alone, with a bare peer.
func BenchmarkStartTrue(b *testing.B) {
	srv, err := fakecontrol.New(fakecontrol.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	stop := inProcAgent(b, srv, "bench-start")
	defer stop()
	ctx := context.Background()
	// The raw child gets the environment the agent's procs inherit.
	env := os.Environ()
	var linkT, rawT []time.Duration
	// Alternate the two, so that load changes on the machine hit both.
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		p := mustStart(b, ctx, srv, fmt.Sprint("t", i), "/bin/true")
		if _, err := p.WaitState(ctx, "terminated"); err != nil {
			b.Fatal(err)
		}
		linkT = append(linkT, time.Since(t0))
		if err := p.Delete(ctx); err != nil {
			b.Fatal(err)
		}
		t0 = time.Now()
		if err := rawspawn.Run("/bin/true", env); err != nil {
			b.Fatal(err)
		}
		rawT = append(rawT, time.Since(t0))
	}
	benchpairs.ReportOverhead(b, "link", linkT, rawT)
}

var (
	buildOnce sync.Once
	agentBin  string
	buildErr  error
)

// buildAgent builds procstar without -race, for honest RSS numbers.
func buildAgent(b *testing.B) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fakecontrol-bench-")
		if err != nil {
			buildErr = err
			return
		}
		agentBin = filepath.Join(dir, "procstar")
		out, err := exec.Command("go", "build", "-o", agentBin, "procstar.dev/procstar/cmd/procstar").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return agentBin
}

// procStatusBytes reads a "kB" field of /proc/PID/status, in bytes.
func procStatusBytes(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no %s for pid %d", field, pid)
}

// BenchmarkFdData64MiB times one 64 MiB ProcFdData from a procstar binary
// and reports the agent's peak RSS growth in copies of the data.
func BenchmarkFdData64MiB(b *testing.B) {
	const size = 64 << 20
	bin := buildAgent(b)
	srv, err := fakecontrol.New(fakecontrol.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	cmd := exec.Command(bin, "--agent", "--agent-url", srv.URL(), "--conn-id", "bench-fd", "--connect-interval-start", "0.05")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		_ = cmd.Wait()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := srv.WaitConn(ctx, "bench-fd"); err != nil {
		b.Fatal(err)
	}
	spec := map[string]any{"argv": []any{"/bin/sh", "-c", fmt.Sprintf("head -c %d /dev/zero", size)},
		"fds": []any{[]any{"stdout", map[string]any{"capture": map[string]any{"mode": "tempfile", "encoding": nil, "attached": false}}}}}
	ps, err := srv.StartRaw(ctx, "default", map[string]any{"big": spec})
	if err != nil {
		b.Fatal(err)
	}
	p := ps[0]
	if _, err := p.WaitState(ctx, "terminated"); err != nil {
		b.Fatal(err)
	}
	pid := cmd.Process.Pid
	var worst, peak int64
	for b.Loop() {
		// Each request's own peak: reset VmHWM to the current RSS first,
		// so memory an earlier answer left for the GC does not count.
		b.StopTimer()
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			b.Fatalf("resetting the agent's VmHWM: %v", err)
		}
		before, err := procStatusBytes(pid, "VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		// Each request gets its own minute: -benchtime may ask for many.
		rctx, rcancel := context.WithTimeout(context.Background(), time.Minute)
		d, err := p.FdData(rctx, "stdout", 0, nil)
		rcancel()
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Data) != size {
			b.Fatalf("%d bytes", len(d.Data))
		}
		b.StopTimer()
		after, err := procStatusBytes(pid, "VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		worst, peak = max(worst, after-before), max(peak, after)
		b.StartTimer()
	}
	b.ReportMetric(float64(worst)/size, "rss-copies")
	b.ReportMetric(float64(peak>>20), "agent-VmHWM-MiB")
	b.SetBytes(size)
}
