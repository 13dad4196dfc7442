package agent

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"":                 true, // --serve-port: 127.0.0.1
		"127.0.0.1:3000":   true,
		"127.8.9.10:1":     true,
		"[::1]:3000":       true,
		"localhost:80":     true,
		"unix:/tmp/x.sock": true,
		"0.0.0.0:3000":     false,
		":3000":            false,
		"[::]:3000":        false,
		"10.1.2.3:3000":    false,
		"example.org:80":   false,
		"garbage":          false,
	} {
		c := ServeConfig{Port: 3000, Addr: addr}
		if got := c.loopbackOnly(); got != want {
			t.Errorf("loopbackOnly(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestTLSRule(t *testing.T) {
	for _, tc := range []struct {
		c  ServeConfig
		ok bool
	}{
		{ServeConfig{Port: 3000}, true},
		{ServeConfig{Addr: "unix:/run/procstar.sock"}, true},
		{ServeConfig{Addr: "[::1]:3000"}, true},
		{ServeConfig{Addr: "0.0.0.0:3000"}, false},
		{ServeConfig{Addr: "0.0.0.0:3000", AuthTokenFile: "token"}, false},
		{ServeConfig{Addr: "0.0.0.0:3000", TLSCert: "c.pem", TLSKey: "k.pem"}, true},
		{ServeConfig{Addr: "10.1.2.3:3000", InsecureNoTLS: true}, true},
	} {
		err := tc.c.checkTLS()
		if tc.ok != (err == nil) || err != nil && (!errors.Is(err, errServeConfig) || !strings.Contains(err.Error(), "--insecure-no-tls")) {
			t.Errorf("%+v: %v", tc.c, err)
		}
	}
}

func TestTokenRules(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	os.WriteFile(good, []byte("  s3cret\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)

	c := ServeConfig{Addr: "0.0.0.0:3000"}
	if _, err := c.token(); !errors.Is(err, errServeConfig) {
		t.Errorf("public address without token: %v", err)
	}
	c.InsecureNoAuth = true
	if tok, err := c.token(); err != nil || tok != nil {
		t.Errorf("--insecure-no-auth: %q, %v", tok, err)
	}
	c = ServeConfig{Addr: "0.0.0.0:3000", AuthTokenFile: good}
	if tok, err := c.token(); err != nil || string(tok) != "s3cret" {
		t.Errorf("token file: %q, %v", tok, err)
	}
	c.AuthTokenFile = empty
	if _, err := c.token(); !errors.Is(err, errServeConfig) {
		t.Errorf("empty token file: %v", err)
	}
	c = ServeConfig{Port: 3000}
	if tok, err := c.token(); err != nil || tok != nil {
		t.Errorf("loopback without token: %q, %v", tok, err)
	}
}

func TestListenUnixReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	c := ServeConfig{Addr: "unix:" + path}
	ln, err := c.listen()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.listen(); !errors.Is(err, errServeConfig) || !strings.Contains(err.Error(), "another process is listening there") {
		t.Errorf("second listen on a live socket: %v", err)
	}
	// A socket whose listener is gone without removing it: stale.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if fi, err := os.Lstat(path); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("no stale socket left behind: %v, %v", fi, err)
	}
	ln, err = c.listen()
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer ln.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, %v", fi.Mode(), err)
	}
	if conn, err := net.Dial("unix", path); err != nil {
		t.Errorf("dialing the new socket: %v", err)
	} else {
		conn.Close()
	}
}

// TestListenUnixLeavesOtherFiles checks that listening on a unix path never
// removes what is there unless it is a stale socket: a regular file, a
// directory, a symlink or another listener's socket is an error naming the
// path, and is left as it was.
func TestListenUnixLeavesOtherFiles(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "data")
	if err := os.WriteFile(regular, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	directory := filepath.Join(dir, "dir")
	if err := os.Mkdir(directory, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(regular, link); err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(dir, "live.sock")
	other, err := net.Listen("unix", live)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	for _, tc := range []struct{ path, want string }{
		{regular, "is a regular file, not a socket"},
		{directory, "is a directory, not a socket"},
		{link, "is a symlink, not a socket"},
		{live, "another process is listening there"},
	} {
		before, err := os.Lstat(tc.path)
		if err != nil {
			t.Fatal(err)
		}
		c := ServeConfig{Addr: "unix:" + tc.path}
		ln, err := c.listen()
		if err == nil {
			ln.Close()
			t.Errorf("%s: listened", tc.path)
			continue
		}
		if !errors.Is(err, errServeConfig) || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q, want one line naming the path and %q", tc.path, err, tc.want)
		}
		after, err := os.Lstat(tc.path)
		if err != nil || !os.SameFile(before, after) || after.Mode() != before.Mode() {
			t.Errorf("%s: changed: %v, %v", tc.path, after, err)
		}
	}
	if b, err := os.ReadFile(regular); err != nil || string(b) != "precious" {
		t.Errorf("regular file now %q, %v", b, err)
	}
	if conn, err := net.Dial("unix", live); err != nil {
		t.Errorf("the other listener's socket no longer answers: %v", err)
	} else {
		conn.Close()
	}
}

func TestListenTLSNeedsBothFiles(t *testing.T) {
	c := ServeConfig{Addr: "127.0.0.1:0", TLSCert: "/x"}
	if _, err := c.listen(); !errors.Is(err, errServeConfig) {
		t.Errorf("cert without key: %v", err)
	}
}
