package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/restapi"
)

// logBackend serves one proc's stdout, from a file unless memory is set.
// Only the methods the log route calls are implemented.
type logBackend struct {
	restapi.Backend // nil: anything else panics
	path            string
	data            string
	memory          bool
}

func (b *logBackend) Get(_ context.Context, name string) (v1.Proc, error) {
	if name != "p" {
		return v1.Proc{}, errors.New("no such proc")
	}
	return v1.Proc{
		Metadata: v1.ObjectMeta{Name: "p"},
		Spec:     v1.ProcSpec{Fds: []v1.FdSpec{{Fd: v1.Stdout, Capture: &v1.CaptureFd{Mode: v1.CaptureTempfile, Encoding: v1.EncodingUTF8}}}},
		Status:   v1.ProcStatus{Fds: map[string]v1.FdStatus{"stdout": {Length: int64(len(b.data))}}},
	}, nil
}

func (b *logBackend) OutputInfo(context.Context, string, int) (v1.OutputInfo, error) {
	return v1.OutputInfo{Length: int64(len(b.data)), Complete: true}, nil
}

func (b *logBackend) ReadOutput(_ context.Context, _ string, _ int, start int64, stop *int64) ([]byte, error) {
	end := int64(len(b.data))
	if stop != nil {
		end = min(end, *stop)
	}
	return []byte(b.data[start:end]), nil
}

func (b *logBackend) OutputFile(context.Context, string, int) (*os.File, error) {
	if b.memory {
		return nil, errors.New("a memory capture")
	}
	return os.Open(b.path)
}

// TestLogsPassedFile: from a unix: server, Logs without Follow reads a
// file-backed capture from the file the server passes; memory captures
// and followed logs come as a body. Either way the bytes are the window
// asked for.
func TestLogsPassedFile(t *testing.T) {
	var sb strings.Builder
	for i := 0; sb.Len() < 300<<10; i++ {
		sb.WriteString(strings.Repeat("x", i%17) + "\n")
	}
	data := sb.String()
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, memory := range []bool{false, true} {
		b := &logBackend{path: path, data: data, memory: memory}
		sock := filepath.Join(t.TempDir(), "api.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: restapi.NewHandler(b, restapi.Options{PollInterval: 5 * time.Millisecond})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		c, err := New(Config{Server: "unix:" + sock})
		if err != nil {
			t.Fatal(err)
		}
		for _, tt := range []struct {
			opts     LogOptions
			from, to int
		}{
			{LogOptions{}, 0, len(data)},
			{LogOptions{Start: 1000, Stop: 200 << 10}, 1000, 200 << 10},
			{LogOptions{TailBytes: 4096}, len(data) - 4096, len(data)},
			{LogOptions{Follow: true}, 0, len(data)},
		} {
			rc, err := c.Logs(context.Background(), "p", tt.opts)
			if err != nil {
				t.Fatalf("memory=%v %+v: %v", memory, tt.opts, err)
			}
			_, passed := rc.(*streamBody).rc.(*fileWindow)
			if want := !memory && !tt.opts.Follow; passed != want {
				t.Errorf("memory=%v %+v: file passed: %v, want %v", memory, tt.opts, passed, want)
			}
			// Through WriteTo into a file, as procctl's io.Copy to stdout.
			dst, err := os.Create(filepath.Join(dir, "copy"))
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(dst, rc)
			rc.Close()
			dst.Close()
			got, _ := os.ReadFile(dst.Name())
			if err != nil || n != int64(tt.to-tt.from) || string(got) != data[tt.from:tt.to] {
				t.Fatalf("memory=%v %+v: copied %d bytes (%v), want bytes %d-%d", memory, tt.opts, n, err, tt.from, tt.to)
			}
		}
		if _, err := c.Logs(context.Background(), "nope", LogOptions{}); err == nil {
			t.Error("an unknown proc gave no error")
		}
	}
}

// TestLogsPassedFileMissing: a server that says it passed a file and
// passed none, or a bad window, gives ErrBadResponse, not a silent empty
// log.
func TestLogsPassedFileMissing(t *testing.T) {
	for name, headers := range map[string]string{
		"no file":    v1.HeaderPassFd + ": 1\r\n" + v1.HeaderOutputOffset + ": 0\r\n" + v1.HeaderOutputLength + ": 5\r\n",
		"bad window": v1.HeaderPassFd + ": 1\r\n" + v1.HeaderOutputOffset + ": -1\r\n" + v1.HeaderOutputLength + ": x\r\n",
	} {
		sock := filepath.Join(t.TempDir(), "api.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			if err != nil {
				return
			}
			defer conn.Close()
			io.WriteString(conn, "HTTP/1.1 200 OK\r\n"+headers+"Content-Length: 0\r\nConnection: close\r\n\r\n")
		})}
		go srv.Serve(l)
		t.Cleanup(func() { srv.Close() })
		c, err := New(Config{Server: "unix:" + sock})
		if err != nil {
			t.Fatal(err)
		}
		rc, err := c.Logs(context.Background(), "p", LogOptions{})
		if err == nil {
			rc.Close()
		}
		if !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v, want ErrBadResponse", name, err)
		}
	}
}
