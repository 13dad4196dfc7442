package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/wire"
)

// Defaults of Config, procstar 0.7.5's where it has one.
const (
	DefaultPort                 = 59789
	DefaultConnectIntervalStart = time.Second
	DefaultConnectIntervalMult  = 2.0
	DefaultConnectIntervalMax   = 60 * time.Second
	DefaultReadTimeout          = 60 * time.Second
	DefaultPingInterval         = 20 * time.Second
	DefaultRegisterTimeout      = 10 * time.Second
	DefaultStatusInterval       = 5 * time.Second
	DefaultWriteTimeout         = 60 * time.Second
	DefaultMaxQueueBytes        = 256 << 20
	DefaultOutputChunk          = 1 << 20
)

// ErrConfig marks a configuration the link cannot run with.
var ErrConfig = errors.New("bad agent link configuration")

// ErrConnectFailed is returned by Run when ConnectCountMax consecutive
// connection attempts have failed.
var ErrConnectFailed = errors.New("websocket connection failed")

// Backend is what the link needs of the proc table. *controller.Controller
// satisfies it; its errors carry the classes of internal/errdefs.
type Backend interface {
	Create(ctx context.Context, procs []v1.Proc) ([]v1.Proc, error)
	Get(ctx context.Context, name string) (v1.Proc, error)
	List(ctx context.Context, selector v1.Selector) (v1.ProcList, error)
	Watch(ctx context.Context, selector v1.Selector, fields v1.FieldSelector, resourceVersion string) (<-chan v1.WatchEvent, error)
	Delete(ctx context.Context, name string, opts v1.DeleteOptions) (v1.Proc, error)
	Signal(ctx context.Context, name string, sig int, group bool) error
	Result(ctx context.Context, name string) (wire.ProcRes, error)
	ReadOutput(ctx context.Context, name string, fd int, start int64, stop *int64) ([]byte, error)
	OutputInfo(ctx context.Context, name string, fd int) (v1.OutputInfo, error)
}

// ShutdownSource gives the agent's shutdown state by its wire name
// ("active", "idling" or "done") and a channel closed at its next change.
type ShutdownSource interface {
	ShutdownState() (state string, changed <-chan struct{})
}

// Shutdown states by wire name.
const (
	StateActive = "active"
	StateIdling = "idling"
	StateDone   = "done"
)

// Config configures a link. Zero durations mean the Default* values.
type Config struct {
	// Host and Port make the URL wss://HOST:PORT/ (an IPv6 literal is
	// bracketed). Port 0 is DefaultPort.
	Host string
	Port int
	// URL, when set, replaces Host and Port: ws://… or wss://…. Plain ws
	// is for loopback tests.
	URL string

	// Conn and Proc are Register's conn and proc.
	Conn wire.ConnInfo
	Proc wire.ProcInfo
	// Token is Register's access_token.
	Token string
	// Labels go in Register when the server accepts the labels extension.
	Labels map[string]string
	// Resources says how the agent controls its procs' resources. It goes
	// in Register when the server accepts the resources extension; nil
	// sends no resources key even then.
	Resources *wire.AgentResources
	// Extensions are offered to the server; nil offers all we know.
	Extensions []wire.Extension

	// RootCertFile is a PEM file added to the system roots
	// (PROCSTAR_AGENT_CERT).
	RootCertFile string
	// ClientCertFile and ClientKeyFile are an optional client certificate.
	ClientCertFile, ClientKeyFile string
	// TLSConfig, when set, is used as is (tests); the fields above are
	// then ignored.
	TLSConfig *tls.Config

	// ConnectIntervalStart, ConnectIntervalMult and ConnectIntervalMax
	// shape the back-off between failed attempts.
	ConnectIntervalStart time.Duration
	ConnectIntervalMult  float64
	ConnectIntervalMax   time.Duration
	// ConnectCountMax is how many consecutive failed attempts Run allows
	// before it returns ErrConnectFailed; 0 is no limit.
	ConnectCountMax int
	// ReadTimeout drops a connection on which no frame arrived for so long.
	ReadTimeout time.Duration
	// PingInterval is the time between pings.
	PingInterval time.Duration
	// RegisterTimeout bounds dial plus Register plus Registered.
	RegisterTimeout time.Duration
	// WriteTimeout bounds each frame's write, plus the time a large frame
	// takes at 256 KiB/s.
	WriteTimeout time.Duration
	// StatusInterval is the push-status and push-output period.
	StatusInterval time.Duration
	// MaxQueueBytes bounds the encoded frames waiting to be written.
	MaxQueueBytes int
	// OutputChunk bounds each pushed ProcFdData's data.
	OutputChunk int

	// Shutdown gives the agent's shutdown state; nil is always active.
	Shutdown ShutdownSource
	// After, if set, replaces time.After for back-off waits (tests).
	After func(d time.Duration) <-chan time.Time
	// Jitter, if set, maps a back-off interval to the wait (tests); the
	// default waits a uniformly random 80–120% of it.
	Jitter func(d time.Duration) time.Duration
}

func (c *Config) setDefaults() {
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.ConnectIntervalStart <= 0 {
		c.ConnectIntervalStart = DefaultConnectIntervalStart
	}
	if c.ConnectIntervalMult <= 0 {
		c.ConnectIntervalMult = DefaultConnectIntervalMult
	}
	if c.ConnectIntervalMax <= 0 {
		c.ConnectIntervalMax = DefaultConnectIntervalMax
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.RegisterTimeout <= 0 {
		c.RegisterTimeout = DefaultRegisterTimeout
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = DefaultWriteTimeout
	}
	if c.StatusInterval <= 0 {
		c.StatusInterval = DefaultStatusInterval
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = DefaultMaxQueueBytes
	}
	if c.OutputChunk <= 0 {
		c.OutputChunk = DefaultOutputChunk
	}
	if c.Extensions == nil {
		c.Extensions = []wire.Extension{wire.ExtPushStatus, wire.ExtPushOutput, wire.ExtLabels, wire.ExtResources}
	}
	if c.Shutdown == nil {
		c.Shutdown = alwaysActive{}
	}
	if c.After == nil {
		c.After = time.After
	}
}

// alwaysActive is the ShutdownSource of a link without one.
type alwaysActive struct{}

func (alwaysActive) ShutdownState() (string, <-chan struct{}) { return StateActive, nil }

// ServerURL returns the URL the link dials: c.URL if set, else
// wss://HOST:PORT/.
func (c *Config) ServerURL() (string, error) {
	if c.URL != "" {
		u, err := url.Parse(c.URL)
		if err != nil {
			return "", fmt.Errorf("%w: agent URL %q: %v", ErrConfig, c.URL, err)
		}
		if u.Scheme != "ws" && u.Scheme != "wss" {
			return "", fmt.Errorf("%w: agent URL %q: scheme must be ws or wss", ErrConfig, c.URL)
		}
		if u.Host == "" {
			return "", fmt.Errorf("%w: agent URL %q has no host", ErrConfig, c.URL)
		}
		if u.Path == "" {
			u.Path = "/"
		}
		return u.String(), nil
	}
	if c.Host == "" {
		return "", fmt.Errorf("%w: no agent server hostname", ErrConfig)
	}
	port := c.Port
	if port == 0 {
		port = DefaultPort
	}
	if port < 1 || port > 65535 {
		return "", fmt.Errorf("%w: agent port %d is not a port number (1-65535)", ErrConfig, port)
	}
	return "wss://" + net.JoinHostPort(c.Host, strconv.Itoa(port)) + "/", nil
}

// tlsConfig builds the client TLS configuration: the system roots plus
// RootCertFile, host names verified, and the client certificate if any.
func (c *Config) tlsConfig() (*tls.Config, error) {
	if c.TLSConfig != nil {
		return c.TLSConfig.Clone(), nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if c.RootCertFile != "" {
		pem, err := os.ReadFile(c.RootCertFile)
		if err != nil {
			return nil, fmt.Errorf("%w: reading agent server certificate: %v", ErrConfig, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: no PEM certificate in %s", ErrConfig, c.RootCertFile)
		}
	}
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		return nil, fmt.Errorf("%w: --agent-cert and --agent-key go together", ErrConfig)
	}
	if c.ClientCertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.ClientCertFile, c.ClientKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%w: client certificate: %v", ErrConfig, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
