package fakecontrol_test

// Benchmarks of the agent link against raw baselines, measured in the same
// run so that the ratios mean something on any machine:
//
//   - ProcResultRequest round trips over the link against a raw
//     gorilla/websocket echo of frames of the same sizes (target ≥ 0.7×);
//   - start → final result of /bin/true over the link against ForkExec plus
//     a pidfd wait (target: p50 overhead ≤ 300 µs);
//   - a 64 MiB ProcFdData: its time, and the agent's peak RSS growth
//     (VmHWM) in copies of the data (target ≤ 1 extra copy), with the agent
//     as a separate, non-race binary.
//
// Run with: go test -run '^$' -bench . -benchtime 1x ./test/fakecontrol/

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
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

// BenchmarkResultRoundTrip compares ProcResultRequest → ProcResult over
// the link with a raw WebSocket echo of the same frame sizes.
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

	// testing.Benchmark cannot nest in a benchmark, so both sides are
	// timed by hand over the same number of round trips.
	const n = 3000
	t0 := time.Now()
	for range n {
		if err := p.RequestResult(); err != nil {
			b.Fatal(err)
		}
		if _, err := p.NextResult(ctx); err != nil {
			b.Fatal(err)
		}
	}
	link := time.Since(t0) / n
	if err := p.Delete(ctx); err != nil {
		b.Fatal(err)
	}
	raw := rawEcho(b, req, resp, n)
	b.ReportMetric(float64(link.Nanoseconds())/1e3, "link-µs/op")
	b.ReportMetric(float64(raw.Nanoseconds())/1e3, "raw-µs/op")
	b.ReportMetric(float64(raw)/float64(link), "link/raw-rate")
	b.ReportMetric(float64(len(resp)), "result-bytes")
}

// rawEcho times n round trips of a client that sends req and a server
// that answers each frame with resp, over gorilla/websocket on loopback.
func rawEcho(b *testing.B, req, resp []byte, n int) time.Duration {
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
	defer hs.Close()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer ws.Close()
	t0 := time.Now()
	for range n {
		if err := ws.WriteMessage(websocket.BinaryMessage, req); err != nil {
			b.Fatal(err)
		}
		if _, _, err := ws.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(t0) / time.Duration(n)
}

// BenchmarkStartTrue compares start → final result of /bin/true over the
// link with ForkExec and a pidfd wait, and reports the p50 overhead.
func BenchmarkStartTrue(b *testing.B) {
	srv, err := fakecontrol.New(fakecontrol.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	stop := inProcAgent(b, srv, "bench-start")
	defer stop()
	ctx := context.Background()
	const n = 200
	var linkT, rawT []time.Duration
	// Alternate the two, so that load changes on the machine hit both.
	for i := range n {
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
		if err := rawspawn.Run("/bin/true", nil); err != nil {
			b.Fatal(err)
		}
		rawT = append(rawT, time.Since(t0))
	}
	lp, rp := p50(linkT), p50(rawT)
	b.ReportMetric(float64(lp.Microseconds()), "link-p50-µs")
	b.ReportMetric(float64(rp.Microseconds()), "raw-p50-µs")
	b.ReportMetric(float64((lp - rp).Microseconds()), "overhead-p50-µs")
}

func p50(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
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

// vmHWM reads a process's peak resident set size in bytes.
func vmHWM(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM for pid %d", pid)
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
	before, err := vmHWM(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		d, err := p.FdData(ctx, "stdout", 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Data) != size {
			b.Fatalf("%d bytes", len(d.Data))
		}
	}
	b.StopTimer()
	after, err := vmHWM(cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before)/size, "rss-copies")
	b.ReportMetric(float64(after>>20), "agent-VmHWM-MiB")
	b.SetBytes(size)
}
