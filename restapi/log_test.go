package restapi

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/klauspost/compress/zstd"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
)

// pattern returns n bytes that differ from offset to offset.
func pattern(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%08d\n", i)
	}
	return b.String()[:n]
}

func logFixture(stdout string, running bool) *fakeBackend {
	fb := newFake()
	fb.add("p", nil, stdout, "\x00\xff", running)
	return fb
}

const logPath = procsPath + "/p/log"

func TestLogRanges(t *testing.T) {
	out := pattern(100)
	tests := []struct {
		name      string
		query     string
		headers   []string
		code      int
		body      string
		ctype     string
		crange    string
		statusMsg string
	}{
		{"whole", "", nil, 200, out, "text/plain; charset=utf-8", "", ""},
		{"explicit stdout", "?fd=stdout", nil, 200, out, "text/plain; charset=utf-8", "", ""},
		{"fd number", "?fd=1", nil, 200, out, "text/plain; charset=utf-8", "", ""},
		{"stderr binary", "?fd=stderr", nil, 200, "\x00\xff", "application/octet-stream", "", ""},
		{"start", "?start=90", nil, 200, out[90:], "", "", ""},
		{"start stop", "?start=10&stop=20", nil, 200, out[10:20], "", "", ""},
		{"stop past end", "?start=95&stop=1000", nil, 200, out[95:], "", "", ""},
		{"start at end", "?start=100", nil, 200, "", "", "", ""},
		{"empty window", "?start=5&stop=5", nil, 200, "", "", "", ""},
		{"start past end", "?start=101", nil, 416, "", "", "", "past the end"},
		{"stop before start", "?start=10&stop=5", nil, 400, "", "", "", "before start"},
		{"negative start", "?start=-1", nil, 400, "", "", "", "start="},
		{"junk stop", "?stop=x", nil, 400, "", "", "", "stop="},
		{"bad follow", "?follow=sometimes", nil, 400, "", "", "", "follow="},
		{"bad fd", "?fd=stdsomething", nil, 400, "", "", "", "bad fd"},
		{"negative fd", "?fd=-1", nil, 400, "", "", "", "bad fd"},
		{"fd not in spec", "?fd=7", nil, 400, "", "", "", "has no fd 7"},
		{"fd not captured", "?fd=stdin", nil, 400, "", "", "", "not captured (it is null)"},
		// Range, relative to the window.
		{"range", "", []string{"Range: bytes=0-9"}, 206, out[:10], "", "bytes 0-9/100", ""},
		{"range open", "", []string{"Range: bytes=95-"}, 206, out[95:], "", "bytes 95-99/100", ""},
		{"range suffix", "", []string{"Range: bytes=-3"}, 206, out[97:], "", "bytes 97-99/100", ""},
		{"range suffix longer", "", []string{"Range: bytes=-300"}, 206, out, "", "bytes 0-99/100", ""},
		{"range clipped", "", []string{"Range: bytes=98-200"}, 206, out[98:], "", "bytes 98-99/100", ""},
		{"range single byte", "", []string{"Range: bytes=7-7"}, 206, out[7:8], "", "bytes 7-7/100", ""},
		{"range in window", "?start=10&stop=30", []string{"Range: bytes=0-4"}, 206, out[10:15], "", "bytes 0-4/20", ""},
		{"range past end", "", []string{"Range: bytes=100-"}, 416, "", "", "bytes */100", "not satisfiable"},
		{"range zero suffix", "", []string{"Range: bytes=-0"}, 416, "", "", "bytes */100", "not satisfiable"},
		{"range on empty window", "?start=100", []string{"Range: bytes=0-"}, 416, "", "", "bytes */0", "not satisfiable"},
		{"range several ignored", "", []string{"Range: bytes=0-1,5-6"}, 200, out, "", "", ""},
		{"range other unit ignored", "", []string{"Range: lines=0-1"}, 200, out, "", "", ""},
		{"range malformed ignored", "", []string{"Range: bytes=x-y"}, 200, out, "", "", ""},
		{"range reversed ignored", "", []string{"Range: bytes=9-2"}, 200, out, "", "", ""},
		{"range not compressed", "", []string{"Range: bytes=0-9", "Accept-Encoding: gzip, zstd"}, 206, out[:10], "", "bytes 0-9/100", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := testServer(t, logFixture(out, false), Options{})
			r := do(t, srv, "GET", logPath+tt.query, "", tt.headers...)
			if r.code != tt.code {
				t.Fatalf("code %d, want %d: %s", r.code, tt.code, r.body)
			}
			if tt.crange != "" || r.code == 206 {
				if got := r.header.Get("Content-Range"); got != tt.crange {
					t.Errorf("Content-Range %q, want %q", got, tt.crange)
				}
			}
			if tt.statusMsg != "" {
				s := decodeStatus(t, r)
				if !strings.Contains(s.Message, tt.statusMsg) {
					t.Errorf("message %q does not contain %q", s.Message, tt.statusMsg)
				}
				if r.code == 416 && s.Reason != v1.StatusReasonRangeNotSatisfiable {
					t.Errorf("reason %q", s.Reason)
				}
				return
			}
			if r.body != tt.body {
				t.Errorf("body %q, want %q", r.body, tt.body)
			}
			if tt.ctype != "" && r.header.Get("Content-Type") != tt.ctype {
				t.Errorf("Content-Type %q, want %q", r.header.Get("Content-Type"), tt.ctype)
			}
			if ce := r.header.Get("Content-Encoding"); ce != "" {
				t.Errorf("Content-Encoding %q without Accept-Encoding or with a range", ce)
			}
			if cl := r.header.Get("Content-Length"); cl != strconv.Itoa(len(tt.body)) {
				t.Errorf("Content-Length %q, want %d", cl, len(tt.body))
			}
		})
	}
}

func TestLogUnknownProc(t *testing.T) {
	srv := testServer(t, logFixture("x", false), Options{})
	r := do(t, srv, "GET", procsPath+"/nope/log", "")
	if r.code != 404 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	decodeStatus(t, r)
}

// TestLogChunked checks that a large output is read in bounded chunks,
// both on the v1 route and procstar's output route.
func TestLogChunked(t *testing.T) {
	out := pattern(3*logChunk + 12345)
	for _, readerAt := range []bool{false, true} {
		for _, path := range []string{logPath, "/procs/p/output/stdout/data", logPath + "?follow=true"} {
			fb := logFixture(out, false)
			var b Backend = fb
			if readerAt {
				b = fakeAt{fb}
			}
			srv := testServerFor(t, b, Options{})
			r := do(t, srv, "GET", path, "")
			if r.code != 200 || r.body != out {
				t.Fatalf("%s (readerAt %v): %d, %d bytes, want %d", path, readerAt, r.code, len(r.body), len(out))
			}
			fb.mu.Lock()
			reads := fb.outputReads
			fb.mu.Unlock()
			if reads != 4 {
				t.Errorf("%s (readerAt %v): %d reads, want 4 chunks", path, readerAt, reads)
			}
		}
	}
}

// TestLogSendFile: with a backend that can open a file-backed capture, by
// name or through a pinned run, the plain fixed-length routes send all but
// the first chunk straight from the file; a compressed or followed body
// still goes by chunks.
func TestLogSendFile(t *testing.T) {
	out := pattern(3*logChunk + 12345)
	f := tempFileOf(t, out)
	tests := []struct {
		path    string
		headers []string
		body    string
		files   int // files taken
		reads   int // chunk reads
	}{
		{logPath, nil, out, 1, 1},
		{"/procs/p/output/stdout/data", nil, out, 1, 1},
		{logPath + "?start=5&stop=" + strconv.Itoa(2*logChunk+7), nil, out[5 : 2*logChunk+7], 1, 1},
		{logPath, []string{"Range: bytes=100-" + strconv.Itoa(logChunk+200)}, out[100 : logChunk+201], 1, 1},
		{logPath + "?start=10&stop=20", nil, out[10:20], 0, 1},
		{logPath, []string{"Accept-Encoding: gzip"}, out, 0, 4},
		{logPath + "?follow=true", nil, out, 0, 4},
	}
	// Each backend returns how often it has given out the file and read a
	// chunk so far.
	backends := map[string]func() (Backend, func() (files, reads int)){
		"by name": func() (Backend, func() (int, int)) {
			fb := logFixture("", false)
			fb.procs["p"].file = map[int]*os.File{1: f}
			fb.procs["p"].fileLen = map[int]int64{1: int64(len(out))}
			return fakeFiler{fakeAt{fb}}, func() (int, int) {
				fb.mu.Lock()
				defer fb.mu.Unlock()
				return fb.filesOpened, fb.outputReads
			}
		},
		"pinned": func() (Backend, func() (int, int)) {
			p := filePinner{fakeBackend: logFixture("", false), f: f, reads: new(atomic.Int32), files: new(atomic.Int32)}
			return p, func() (int, int) { return int(p.files.Load()), int(p.reads.Load()) }
		},
	}
	for name, newBackend := range backends {
		for _, tt := range tests {
			backend, counts := newBackend()
			srv := testServerFor(t, backend, Options{})
			r := do(t, srv, "GET", tt.path, "", tt.headers...)
			body := r.body
			if ce := r.header.Get("Content-Encoding"); ce != "" {
				b, err := io.ReadAll(decodeBody(t, ce, strings.NewReader(body)))
				if err != nil {
					t.Fatal(err)
				}
				body = string(b)
			}
			if r.code/100 != 2 || body != tt.body {
				t.Fatalf("%s: %s %v: %d, %d bytes, want %d", name, tt.path, tt.headers, r.code, len(body), len(tt.body))
			}
			if files, reads := counts(); files != tt.files || reads != tt.reads {
				t.Errorf("%s: %s %v: %d files taken and %d chunks read, want %d and %d", name, tt.path, tt.headers, files, reads, tt.files, tt.reads)
			}
		}
	}
}

// filePinner pins a file-backed capture: the pin reads chunks from the
// file and offers the file itself for sendfile, counting both.
type filePinner struct {
	*fakeBackend
	f            *os.File
	reads, files *atomic.Int32
}

func (p filePinner) PinOutput(context.Context, string, int) (PinnedOutput, error) {
	return filePin(p), nil
}

type filePin filePinner

func (p filePin) Info() (v1.OutputInfo, error) {
	fi, err := p.f.Stat()
	if err != nil {
		return v1.OutputInfo{}, err
	}
	return v1.OutputInfo{Length: fi.Size(), Complete: true, Encoding: v1.EncodingUTF8}, nil
}
func (p filePin) ReadAt(b []byte, off int64) (int, error) {
	p.reads.Add(1)
	return p.f.ReadAt(b, off)
}
func (p filePin) File() (*os.File, error) {
	p.files.Add(1)
	return p.f, nil
}
func (filePin) Done() <-chan struct{} { return closedCh }
func (filePin) Close() error          { return nil }

// tempFileOf returns an open temp file holding data.
func tempFileOf(t *testing.T, data string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(data); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// decoders of Content-Encoding.
func decodeBody(t *testing.T, enc string, r io.Reader) io.Reader {
	t.Helper()
	switch enc {
	case "":
		return r
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case "zstd":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	t.Fatalf("unexpected Content-Encoding %q", enc)
	return nil
}

func TestLogCompression(t *testing.T) {
	out := pattern(300000)
	tests := []struct {
		accept string
		want   string
	}{
		{"gzip", "gzip"},
		{"zstd", "zstd"},
		{"gzip, zstd", "zstd"},
		{"gzip;q=1.0, zstd;q=0.5", "gzip"},
		{"zstd;q=0, gzip", "gzip"},
		{"gzip;q=0, zstd;q=0", ""},
		{"*", "zstd"},
		{"*;q=0", ""},
		{"br", ""},
		{"identity", ""},
		{"x-gzip", "gzip"},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			srv := testServer(t, logFixture(out, false), Options{})
			req, _ := http.NewRequest("GET", srv.URL+logPath, nil)
			req.Header.Set("Accept-Encoding", tt.accept)
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			enc := resp.Header.Get("Content-Encoding")
			if enc != tt.want {
				t.Fatalf("Content-Encoding %q, want %q", enc, tt.want)
			}
			if resp.Header.Get("Vary") != "Accept-Encoding" {
				t.Error("no Vary: Accept-Encoding")
			}
			got, err := io.ReadAll(decodeBody(t, enc, resp.Body))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != out {
				t.Errorf("decoded %d bytes, want %d (equal: %v)", len(got), len(out), bytes.Equal(got, []byte(out)))
			}
		})
	}
}

// TestLogFollow follows a running proc's output, byte for byte, through
// appends and completion, with each encoding; each piece must arrive
// before the proc completes (flushed per chunk).
func TestLogFollow(t *testing.T) {
	big := pattern(2*logChunk + 777)
	for _, accept := range []string{"identity", "gzip", "zstd", "identity/readerAt", "zstd/readerAt"} {
		t.Run(accept, func(t *testing.T) {
			fb := logFixture("first\n", true)
			var backend Backend = fb
			accept, readerAt := strings.CutSuffix(accept, "/readerAt")
			if readerAt {
				backend = fakeAt{fb}
			}
			srv := testServerFor(t, backend, Options{})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+logPath+"?follow=true&start=2", nil)
			req.Header.Set("Accept-Encoding", accept)
			req.Header.Set("Range", "bytes=0-0") // ignored with follow
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 || resp.Header.Get("Content-Length") != "" {
				t.Fatalf("status %d, Content-Length %q", resp.StatusCode, resp.Header.Get("Content-Length"))
			}
			body := decodeBody(t, resp.Header.Get("Content-Encoding"), resp.Body)
			expect := func(want string) {
				t.Helper()
				got := make([]byte, len(want))
				if _, err := io.ReadFull(body, got); err != nil {
					t.Fatalf("reading %d bytes: %v", len(want), err)
				}
				if string(got) != want {
					t.Fatalf("got %q, want %q", trunc(got), trunc([]byte(want)))
				}
			}
			expect("rst\n")
			fb.appendOutput("p", 1, "second\n")
			expect("second\n")
			fb.appendOutput("p", 1, big)
			expect(big)
			fb.appendOutput("p", 1, "last")
			fb.finish("p")
			expect("last")
			rest, err := io.ReadAll(body)
			if err != nil || len(rest) != 0 {
				t.Errorf("after completion: %q, %v", rest, err)
			}
		})
	}
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

func TestLogFollowStopAndWait(t *testing.T) {
	fb := logFixture("0123456789", true)
	srv := testServer(t, fb, Options{})
	// A stop inside the existing output ends the stream though the proc
	// still runs.
	r := do(t, srv, "GET", logPath+"?follow=true&start=2&stop=5", "")
	if r.code != 200 || r.body != "234" {
		t.Errorf("follow with stop: %d %q", r.code, r.body)
	}
	// A start past the end waits for output to get there.
	done := make(chan response, 1)
	go func() { done <- do(t, srv, "GET", logPath+"?follow=true&start=12", "") }()
	time.Sleep(20 * time.Millisecond)
	fb.appendOutput("p", 1, "abcd")
	fb.finish("p")
	select {
	case r := <-done:
		if r.code != 200 || r.body != "cd" {
			t.Errorf("follow from past the end: %d %q", r.code, r.body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after completion")
	}
	// A complete proc's follow is just its output.
	if r := do(t, srv, "GET", logPath+"?follow=true", ""); r.body != "0123456789abcd" {
		t.Errorf("follow of a complete proc: %q", r.body)
	}
}

func TestLogFollowClientGoes(t *testing.T) {
	fb := logFixture("x", true)
	srv := testServer(t, fb, Options{})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+logPath+"?follow=true", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(resp.Body, b); err != nil || b[0] != 'x' {
		t.Fatalf("%q %v", b, err)
	}
	cancel()
	resp.Body.Close()
	// The handler notices within a poll or two; srv.Close (cleanup) then
	// returns, and goleak (TestMain) checks nothing is left.
	time.Sleep(30 * time.Millisecond)
}

func TestParseRange(t *testing.T) {
	tests := []struct {
		h       string
		size    int64
		a, b    int64
		ok, err bool
	}{
		{"bytes=0-9", 100, 0, 10, true, false},
		{"bytes= 0 - 9 ", 100, 0, 10, true, false},
		{"bytes=10-", 100, 10, 100, true, false},
		{"bytes=-10", 100, 90, 100, true, false},
		{"bytes=99-99", 100, 99, 100, true, false},
		{"bytes=100-", 100, 0, 0, false, true},
		{"bytes=-5", 0, 0, 0, false, true},
		{"bytes=-", 100, 0, 0, false, false},
		{"bytes=5", 100, 0, 0, false, false},
		{"bytes=a-", 100, 0, 0, false, false},
		{"bytes=1-a", 100, 0, 0, false, false},
		{"bytes=-a", 100, 0, 0, false, false},
		{"bytes=-1-2", 100, 0, 0, false, false},
		{"bytes=0-1,2-3", 100, 0, 0, false, false},
		{"bits=0-1", 100, 0, 0, false, false},
		{"bytes=0-99999999999999999999", 100, 0, 0, false, false},
	}
	for _, tt := range tests {
		a, b, ok, err := parseRange(tt.h, tt.size)
		if ok != tt.ok || (err != nil) != tt.err || (ok && (a != tt.a || b != tt.b)) {
			t.Errorf("parseRange(%q, %d) = %d, %d, %v, %v", tt.h, tt.size, a, b, ok, err)
		}
	}
}

// FuzzParseRange: a satisfiable range lies within the representation and
// is not empty; an unsatisfiable one is errRange, and anything else is
// ignored.
func FuzzParseRange(f *testing.F) {
	for _, h := range []string{"bytes=0-9", "bytes=-10", "bytes=10-", "bytes= 5 - 1", "bytes=0-1,2-3", "bytes=-0", "bytes=9223372036854775807-"} {
		f.Add(h, int64(100))
		f.Add(h, int64(0))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			return
		}
		a, b, ok, err := parseRange(h, size)
		switch {
		case err != nil && (ok || !errors.Is(err, errRange)):
			t.Fatalf("parseRange(%q, %d): ok %v with %v", h, size, ok, err)
		case ok && !(0 <= a && a < b && b <= size):
			t.Fatalf("parseRange(%q, %d) = [%d, %d)", h, size, a, b)
		}
	})
}

func TestLogHead(t *testing.T) {
	srv := testServer(t, logFixture(pattern(100), false), Options{})
	for _, accept := range []string{"", "Accept-Encoding: zstd"} {
		r := do(t, srv, "HEAD", logPath, "", accept)
		if r.code != 200 || r.body != "" {
			t.Errorf("HEAD (%q): %d %q", accept, r.code, r.body)
		}
		if accept == "" && r.header.Get("Content-Length") != "100" {
			t.Errorf("HEAD Content-Length %q", r.header.Get("Content-Length"))
		}
	}
	if r := do(t, srv, "HEAD", "/procs/p/output/stdout/data", ""); r.code != 200 || r.header.Get("Content-Length") != "100" {
		t.Errorf("procstar HEAD: %d %q", r.code, r.header.Get("Content-Length"))
	}
}

// gonePinner pins runs whose capture holds 10 bytes of which only the
// first 4 can still be read (the rest released), as when a memory
// capture is freed by a delete before the follower has read it all.
type gonePinner struct{ *fakeBackend }

func (gonePinner) PinOutput(context.Context, string, int) (PinnedOutput, error) {
	return gonePin{}, nil
}

type gonePin struct{}

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (gonePin) Info() (v1.OutputInfo, error) {
	return v1.OutputInfo{Length: 10, Complete: true, Encoding: v1.EncodingUTF8}, nil
}
func (gonePin) ReadAt(p []byte, off int64) (int, error) {
	if off < 4 {
		return copy(p, "abcd"[off:]), nil
	}
	return 0, errdefs.New(errdefs.ErrGone, "proc released")
}
func (gonePin) Done() <-chan struct{} { return closedCh }
func (gonePin) Close() error          { return nil }

// TestLogFollowBreaksWhenOutputIsGone: once the 200 is sent, output that
// cannot be read any more breaks the stream (and is logged) rather than
// ending it as if it were whole, with each encoding; with a backend that
// cannot pin, so does the proc being deleted before the follow has seen
// its output complete.
func TestLogFollowBreaksWhenOutputIsGone(t *testing.T) {
	for _, accept := range []string{"identity", "gzip", "zstd", "identity/unpinned", "gzip/unpinned"} {
		t.Run(accept, func(t *testing.T) {
			var logged []string
			var mu sync.Mutex
			log := logr.New(recordSink{mu: &mu, msgs: &logged})
			fb := logFixture("abcd", true)
			var backend Backend = gonePinner{fb}
			accept, unpinned := strings.CutSuffix(accept, "/unpinned")
			if unpinned {
				backend = fb
			}
			srv := testServerFor(t, backend, Options{Logger: log})
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+logPath+"?follow=true", nil)
			req.Header.Set("Accept-Encoding", accept)
			tr := &http.Transport{DisableCompression: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			body := decodeBody(t, resp.Header.Get("Content-Encoding"), resp.Body)
			got := make([]byte, 4)
			if _, err := io.ReadFull(body, got); err != nil || string(got) != "abcd" {
				t.Fatalf("first bytes %q, %v", got, err)
			}
			if unpinned {
				if _, err := fb.Delete(ctx, "p", v1.DeleteOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			rest, err := io.ReadAll(body)
			if err == nil {
				t.Fatalf("the stream ended cleanly after %q", rest)
			}
			if len(rest) != 0 {
				t.Errorf("more bytes: %q", rest)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(logged) != 1 || logged[0] != "following output failed; aborting the response" {
				t.Errorf("logged %q", logged)
			}
		})
	}
}
