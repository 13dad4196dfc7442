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
// file (nobody listening) is replaced; a live one is an error.
func (c *ServeConfig) listen() (net.Listener, error) {
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return nil, fmt.Errorf("%w: give both --tls-cert and --tls-key, or neither", errServeConfig)
	}
	network, addr := c.address()
	if network == "unix" {
		if conn, err := net.Dial("unix", addr); err == nil {
			conn.Close()
			return nil, fmt.Errorf("%w: %s: another process is listening there", errServeConfig, addr)
		}
		if err := os.Remove(addr); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket: %w", err)
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
