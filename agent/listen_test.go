package agent

import (
	"errors"
	"os"
	"path/filepath"
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
	if _, err := c.listen(); !errors.Is(err, errServeConfig) {
		t.Errorf("second listen on a live socket: %v", err)
	}
	ln.Close()
	os.WriteFile(path, nil, 0o600) // a stale file left behind
	ln, err = c.listen()
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	defer ln.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, %v", fi.Mode(), err)
	}
}

func TestListenTLSNeedsBothFiles(t *testing.T) {
	c := ServeConfig{Addr: "127.0.0.1:0", TLSCert: "/x"}
	if _, err := c.listen(); !errors.Is(err, errServeConfig) {
		t.Errorf("cert without key: %v", err)
	}
}
