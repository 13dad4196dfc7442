package agent

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ServeConfig says where and how the HTTP API listens.
type ServeConfig struct {
	// Port is procstar's --serve-port: 127.0.0.1:Port.
	Port int
	// Addr, when set, overrides Port: "HOST:PORT" or "unix:/path".
	Addr string
	// TLSCert and TLSKey are PEM files; both or neither.
	TLSCert, TLSKey string
	// AuthTokenFile holds the bearer token clients must send.
	AuthTokenFile string
	// InsecureNoAuth allows a non-loopback address without a token.
	InsecureNoAuth bool
	// InsecureNoTLS allows a non-loopback address without TLS.
	InsecureNoTLS bool
}

// errServeConfig marks a bad serve configuration.
var errServeConfig = errors.New("bad serve configuration")

// address returns the network and address to listen on.
func (c *ServeConfig) address() (network, addr string) {
	if path, ok := strings.CutPrefix(c.Addr, "unix:"); ok {
		return "unix", path
	}
	if c.Addr != "" {
		return "tcp", c.Addr
	}
	return "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port))
}

// loopbackOnly reports whether the listener can only be reached from this
// host: a unix socket, or a TCP address whose host is a loopback address
// or "localhost".
func (c *ServeConfig) loopbackOnly() bool {
	network, addr := c.address()
	if network == "unix" {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkTLS refuses a listener that is not loopback-only without TLS,
// unless InsecureNoTLS: its bearer token, specs and output would cross
// the network in clear.
func (c *ServeConfig) checkTLS() error {
	if c.TLSCert != "" || c.loopbackOnly() || c.InsecureNoTLS {
		return nil
	}
	_, addr := c.address()
	return fmt.Errorf("%w: refusing to serve %s over plain HTTP, where tokens, specs and output cross the network in clear; give --tls-cert and --tls-key, or --insecure-no-tls to allow it", errServeConfig, addr)
}

// token reads the bearer token, or returns nil when none is configured. A
// non-loopback listener without a token is refused unless InsecureNoAuth.
func (c *ServeConfig) token() ([]byte, error) {
	if c.AuthTokenFile == "" {
		if !c.loopbackOnly() && !c.InsecureNoAuth {
			_, addr := c.address()
			return nil, fmt.Errorf("%w: refusing to serve %s without auth; give --auth-token-file, or --insecure-no-auth to allow it", errServeConfig, addr)
		}
		return nil, nil
	}
	data, err := os.ReadFile(c.AuthTokenFile)
	if err != nil {
		return nil, fmt.Errorf("%w: reading --auth-token-file: %v", errServeConfig, err)
	}
	tok := bytes.TrimSpace(data)
	if len(tok) == 0 {
		return nil, fmt.Errorf("%w: --auth-token-file %s is empty", errServeConfig, c.AuthTokenFile)
	}
	return tok, nil
}

// listen opens the listener, with TLS when configured. A stale unix socket
// (nobody listening) is replaced; a live one, or a file of any other type
// at the path, is an error (see removeStaleSocket).
func (c *ServeConfig) listen() (net.Listener, error) {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, fmt.Errorf("%w: give both --tls-cert and --tls-key, or neither", errServeConfig)
	}
	network, addr := c.address()
	if network == "unix" {
		if err := removeStaleSocket(addr); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	if network == "unix" {
		// Only the agent's user may connect; file permissions are the auth.
		if err := os.Chmod(addr, 0o600); err != nil {
			ln.Close()
			return nil, err
		}
	}
	if c.TLSCert == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("%w: loading TLS key pair: %v", errServeConfig, err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// removeStaleSocket clears path for a new unix socket. Nothing there is
// fine, and a socket that refuses connections (its listener is gone) is
// removed. Anything else is an error naming path, and is left alone: a
// socket another process listens on, a socket whose state cannot be told,
// and any file that is not a socket (a regular file, a directory, a
// symlink, which is not followed).
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: unix socket path %s: %v", errServeConfig, path, err)
	}
	if fi.Mode().Type() != os.ModeSocket {
		return fmt.Errorf("%w: unix socket path %s is %s, not a socket; remove it or serve elsewhere", errServeConfig, path, fileKind(fi.Mode()))
	}
	conn, err := net.DialTimeout("unix", path, staleDialTimeout)
	if err == nil {
		conn.Close()
		return fmt.Errorf("%w: %s: another process is listening there", errServeConfig, path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("%w: cannot tell whether socket %s is in use, so it is left alone: %v", errServeConfig, path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: removing stale socket %s: %v", errServeConfig, path, err)
	}
	return nil
}

// staleDialTimeout bounds the dial that tells a live unix socket from a
// stale one.
const staleDialTimeout = 2 * time.Second

// fileKind names the type of a file for an error message.
func fileKind(m os.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case os.ModeDir:
		return "a directory"
	case os.ModeSymlink:
		return "a symlink"
	case os.ModeNamedPipe:
		return "a named pipe"
	case os.ModeDevice, os.ModeDevice | os.ModeCharDevice:
		return "a device"
	}
	return "a special file"
}
