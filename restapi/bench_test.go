package restapi

import (
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// benchLogBytes is the output size of BenchmarkLogThroughput: 1 GiB, or
// PROCSTAR_BENCH_LOG_BYTES.
func benchLogBytes(b *testing.B) int64 {
	if s := os.Getenv("PROCSTAR_BENCH_LOG_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("PROCSTAR_BENCH_LOG_BYTES=%q", s)
		}
		return n
	}
	return 1 << 30
}

// writeBenchFile writes n bytes of a repeating pattern to a file.
func writeBenchFile(b *testing.B, n int64) *os.File {
	path := filepath.Join(b.TempDir(), "out")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	block := []byte(pattern(logChunk))
	for left := n; left > 0; {
		k := min(left, int64(len(block)))
		if _, err := f.Write(block[:k]); err != nil {
			b.Fatal(err)
		}
		left -= k
	}
	return f
}

// rawRead reads the file with ReadAt in logChunk pieces, the baseline.
func rawRead(b *testing.B, f *os.File, n int64) {
	buf := make([]byte, logChunk)
	var got int64
	for got < n {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), n-got)], got)
		got += int64(k)
		if err != nil && err != io.EOF {
			b.Fatal(err)
		}
		if k == 0 {
			b.Fatal("short file")
		}
	}
}

// BenchmarkLogThroughput serves the whole output of a file-backed capture
// through GET …/log over loopback HTTP and compares it with reading the
// file directly, in the same run. The "ratio" metric is HTTP throughput
// over raw throughput (target ≥ 0.8).
//
// The "ReadOutput" case uses only the Backend interface, which allocates a
// slice per 1 MiB chunk; "ReadOutputAt" uses the OutputReaderAt extension;
// "SendFile" the OutputFiler one, which sends the file with sendfile(2).
// "ratio-vs-tcp" compares with the same bytes sent over a bare loopback
// TCP connection, which is the ceiling for any HTTP server.
func BenchmarkLogThroughput(b *testing.B) {
	n := benchLogBytes(b)
	f := writeBenchFile(b, n)
	fb := newFake()
	fb.add("p", nil, "", "", false)
	fb.procs["p"].file = map[int]*os.File{1: f}
	fb.procs["p"].fileLen = map[int]int64{1: n}
	b.Run("ReadOutput", func(b *testing.B) { benchLog(b, fb, f, n) })
	b.Run("ReadOutputAt", func(b *testing.B) { benchLog(b, fakeAt{fb}, f, n) })
	b.Run("SendFile", func(b *testing.B) { benchLog(b, fakeFiler{fakeAt{fb}}, f, n) })
}

func benchLog(b *testing.B, backend Backend, f *os.File, n int64) {
	srv := testServerFor(b, backend, Options{})
	tr := &http.Transport{DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	rawRead(b, f, n) // warm the page cache

	tcpIn, tcpOut := tcpPair(b)
	var rawTime, httpTime, tcpTime time.Duration
	buf := make([]byte, logChunk)
	b.SetBytes(n)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		rawRead(b, f, n)
		t1 := time.Now()
		resp, err := client.Get(srv.URL + procsPath + "/p/log")
		if err != nil {
			b.Fatal(err)
		}
		got, err := io.CopyBuffer(discard{}, resp.Body, buf)
		resp.Body.Close()
		if err != nil || got != n {
			b.Fatalf("got %d bytes, want %d: %v", got, n, err)
		}
		t2 := time.Now()
		tcpCopy(b, f, n, tcpIn, tcpOut, buf)
		t3 := time.Now()
		rawTime += t1.Sub(t0)
		httpTime += t2.Sub(t1)
		tcpTime += t3.Sub(t2)
	}
	b.StopTimer()
	mb := float64(n) * float64(b.N) / (1 << 20)
	b.ReportMetric(mb/rawTime.Seconds(), "raw-MiB/s")
	b.ReportMetric(mb/httpTime.Seconds(), "http-MiB/s")
	b.ReportMetric(mb/tcpTime.Seconds(), "tcp-MiB/s")
	b.ReportMetric(rawTime.Seconds()/httpTime.Seconds(), "ratio")
	b.ReportMetric(tcpTime.Seconds()/httpTime.Seconds(), "ratio-vs-tcp")
}

// discard is io.Discard without ReadFrom, so that io.CopyBuffer reads in
// big pieces, as a client that cares about throughput does.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(b *testing.B) (in, out net.Conn) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	out, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	in, ok := <-accepted
	if !ok {
		b.Fatal("accept failed")
	}
	b.Cleanup(func() { in.Close(); out.Close() })
	return in, out
}

// tcpCopy is the second baseline: the file read with ReadAt and written
// to a loopback TCP connection, read at the other end, without HTTP.
func tcpCopy(b *testing.B, f *os.File, n int64, in, out net.Conn, rbuf []byte) {
	done := make(chan error, 1)
	go func() {
		wbuf := make([]byte, logChunk)
		var off int64
		for off < n {
			k, err := f.ReadAt(wbuf[:min(int64(len(wbuf)), n-off)], off)
			if k == 0 && err != nil {
				done <- err
				return
			}
			if _, err := out.Write(wbuf[:k]); err != nil {
				done <- err
				return
			}
			off += int64(k)
		}
		done <- nil
	}()
	var got int64
	for got < n {
		k, err := in.Read(rbuf[:min(int64(len(rbuf)), n-got)])
		got += int64(k)
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
