package restapi

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
)

// unixServer serves h on a unix socket in a temp dir and returns its path.
func unixServer(t *testing.T, h http.Handler) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

// passResult is a response read off a unix connection with the files that
// came with it.
type passResult struct {
	resp  *http.Response
	body  string
	files []*os.File
}

// getPassFd sends a GET with extra headers over a new unix connection and
// reads the whole response with recvmsg, keeping any passed files.
func getPassFd(t *testing.T, sock, path string, headers ...string) passResult {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	uc := conn.(*net.UnixConn)
	req := "GET " + path + " HTTP/1.1\r\nHost: procstar\r\nConnection: close\r\n"
	for _, h := range headers {
		req += h + "\r\n"
	}
	if _, err := io.WriteString(uc, req+"\r\n"); err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	var res passResult
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(4*8))
	for {
		n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
		raw.Write(buf[:n])
		if oobn > 0 {
			msgs, perr := syscall.ParseSocketControlMessage(oob[:oobn])
			if perr != nil {
				t.Fatal(perr)
			}
			for i := range msgs {
				fds, err := syscall.ParseUnixRights(&msgs[i])
				if err != nil {
					t.Fatal(err)
				}
				for _, fd := range fds {
					f := os.NewFile(uintptr(fd), "passed")
					t.Cleanup(func() { f.Close() })
					res.files = append(res.files, f)
				}
			}
		}
		if err == io.EOF || n == 0 {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(&raw), nil)
	if err != nil {
		t.Fatalf("reading the response: %v\n%s", err, raw.String())
	}
	b, _ := io.ReadAll(resp.Body)
	res.resp, res.body = resp, string(b)
	return res
}

// TestLogPassFd: over a unix socket, a plain log request that asks for it
// gets the capture file itself, with the window in headers; every other
// request gets the body as usual.
func TestLogPassFd(t *testing.T) {
	out := pattern(3*logChunk + 777)
	f := tempFileOf(t, out)
	fb := logFixture("", false)
	fb.procs["p"].file = map[int]*os.File{1: f}
	fb.procs["p"].fileLen = map[int]int64{1: int64(len(out))}
	h := NewHandler(fakeFiler{fakeAt{fb}}, Options{PollInterval: 5 * time.Millisecond})
	sock := unixServer(t, h)
	pass := v1.HeaderPassFd + ": 1"

	t.Run("passed", func(t *testing.T) {
		for _, tt := range []struct {
			query    string
			from, to int
		}{
			{"", 0, len(out)},
			{"?start=100&stop=5000", 100, 5000},
			{"?start=" + strconv.Itoa(len(out)), len(out), len(out)},
		} {
			r := getPassFd(t, sock, logPath+tt.query, pass)
			if r.resp.StatusCode != 200 || r.resp.Header.Get(v1.HeaderPassFd) != "1" || len(r.files) != 1 || r.body != "" {
				t.Fatalf("%s: %d %v, %d files, body %d bytes", tt.query, r.resp.StatusCode, r.resp.Header, len(r.files), len(r.body))
			}
			off, _ := strconv.Atoi(r.resp.Header.Get(v1.HeaderOutputOffset))
			n, _ := strconv.Atoi(r.resp.Header.Get(v1.HeaderOutputLength))
			if off != tt.from || n != tt.to-tt.from {
				t.Fatalf("%s: window %d+%d, want %d+%d", tt.query, off, n, tt.from, tt.to-tt.from)
			}
			got := make([]byte, n)
			if _, err := r.files[0].ReadAt(got, int64(off)); err != nil && n > 0 {
				t.Fatal(err)
			}
			if string(got) != out[tt.from:tt.to] {
				t.Fatalf("%s: the passed file's window differs", tt.query)
			}
			// Read-only: the reader cannot change the capture.
			if _, err := r.files[0].WriteAt([]byte("x"), 0); err == nil {
				t.Fatal("the passed file is writable")
			}
			if ct := r.resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
		}
	})

	t.Run("not passed", func(t *testing.T) {
		for _, tt := range []struct {
			name    string
			path    string
			headers []string
			body    string
			code    int
		}{
			{"not asked", logPath, nil, out, 200},
			{"range", logPath, []string{pass, "Range: bytes=10-19"}, out[10:20], 206},
			{"follow", logPath + "?follow=true", []string{pass}, out, 200},
			{"memory capture", logPath + "?fd=stderr", []string{pass}, "\x00\xff", 200},
			{"unknown proc", procsPath + "/nope/log", []string{pass}, "", 404},
		} {
			r := getPassFd(t, sock, tt.path, tt.headers...)
			if r.resp.StatusCode != tt.code || len(r.files) != 0 || r.resp.Header.Get(v1.HeaderPassFd) != "" {
				t.Fatalf("%s: %d, %d files, headers %v", tt.name, r.resp.StatusCode, len(r.files), r.resp.Header)
			}
			if tt.code/100 == 2 && r.body != tt.body {
				t.Fatalf("%s: body of %d bytes, want %d", tt.name, len(r.body), len(tt.body))
			}
		}
	})

	t.Run("tcp", func(t *testing.T) {
		srv := testServerFor(t, fakeFiler{fakeAt{fb}}, Options{})
		r := do(t, srv, "GET", logPath, "", pass)
		if r.code != 200 || r.body != out || r.header.Get(v1.HeaderPassFd) != "" {
			t.Fatalf("over TCP: %d, %d bytes, %v", r.code, len(r.body), r.header)
		}
	})

	t.Run("auth", func(t *testing.T) {
		sock := unixServer(t, NewHandler(fakeFiler{fakeAt{fb}}, Options{Token: []byte("sekrit")}))
		if r := getPassFd(t, sock, logPath, pass); r.resp.StatusCode != 401 || len(r.files) != 0 {
			t.Fatalf("no token: %d, %d files", r.resp.StatusCode, len(r.files))
		}
		if r := getPassFd(t, sock, logPath, pass, "Authorization: Bearer sekrit"); r.resp.StatusCode != 200 || len(r.files) != 1 {
			t.Fatalf("token: %d, %d files", r.resp.StatusCode, len(r.files))
		}
	})
}
