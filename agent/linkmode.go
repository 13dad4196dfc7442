package agent

// This file wires --agent: the WebSocket link to a control plane (package
// agent/link) over the controller, and --wait's agent flavour.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"procstar.dev/procstar/agent/link"
	"procstar.dev/procstar/wire"
)

// Environment variables the agent link reads, as procstar does (plus
// PROCSTAR_AGENT_PORT, which procstar ignores).
const (
	EnvAgentHost  = "PROCSTAR_AGENT_HOST"
	EnvAgentPort  = "PROCSTAR_AGENT_PORT"
	EnvAgentToken = "PROCSTAR_AGENT_TOKEN"
	EnvAgentCert  = "PROCSTAR_AGENT_CERT"
)

// DefaultWaitTimeout is how long --wait --agent waits for the first work.
const DefaultWaitTimeout = 600 * time.Second

// LinkConfig configures --agent. Zero values mean procstar's defaults.
type LinkConfig struct {
	// Host is the server's host name; "" reads PROCSTAR_AGENT_HOST.
	Host string
	// Port is the server's port; 0 reads PROCSTAR_AGENT_PORT, else 59789.
	Port int
	// URL, when set, replaces Host and Port: ws://… or wss://….
	URL string
	// TokenFile holds the access token; "" reads PROCSTAR_AGENT_TOKEN.
	TokenFile string
	// CertFile and KeyFile are an optional TLS client certificate.
	CertFile, KeyFile string
	// RootCertFile is an extra trusted root; "" reads PROCSTAR_AGENT_CERT.
	RootCertFile string
	// Labels are the agent's labels (the labels extension).
	Labels map[string]string
	// StatusInterval is the push-status and push-output period (5 s).
	StatusInterval time.Duration
	// ConnectIntervalStart, ConnectIntervalMult, ConnectIntervalMax and
	// ConnectCountMax shape reconnection (1 s, ×2, 60 s, no limit).
	ConnectIntervalStart time.Duration
	ConnectIntervalMult  float64
	ConnectIntervalMax   time.Duration
	ConnectCountMax      int
	// ReadTimeout drops a silent connection (60 s).
	ReadTimeout time.Duration
	// WaitTimeout is how long --wait waits for the first work (600 s).
	WaitTimeout time.Duration
}

// errNoHost is the usage error of --agent without a host.
var errNoHost = errors.New("no agent server hostname; use --agent-host or set PROCSTAR_AGENT_HOST")

// shutdownSource shows the agent's Shutdown to the link by wire name.
type shutdownSource struct{ s *Shutdown }

func (s shutdownSource) ShutdownState() (string, <-chan struct{}) {
	st, ch := s.s.State()
	return st.String(), ch
}

// linkConfig builds the link's configuration from the agent's, reading
// the environment where procstar does.
func (a *agent) linkConfig() (link.Config, error) {
	lc := a.cfg.Link
	cfg := link.Config{
		URL:                  lc.URL,
		Host:                 lc.Host,
		Port:                 lc.Port,
		Labels:               lc.Labels,
		Resources:            &a.resources,
		ClientCertFile:       lc.CertFile,
		ClientKeyFile:        lc.KeyFile,
		RootCertFile:         lc.RootCertFile,
		StatusInterval:       lc.StatusInterval,
		ConnectIntervalStart: lc.ConnectIntervalStart,
		ConnectIntervalMult:  lc.ConnectIntervalMult,
		ConnectIntervalMax:   lc.ConnectIntervalMax,
		ConnectCountMax:      lc.ConnectCountMax,
		ReadTimeout:          lc.ReadTimeout,
		Shutdown:             shutdownSource{a.shutdown},
		Conn:                 a.identity.connInfo(),
		Proc:                 a.identity.procInfo(),
	}
	if cfg.URL == "" {
		if cfg.Host == "" {
			cfg.Host = os.Getenv(EnvAgentHost)
		}
		if cfg.Host == "" {
			return cfg, errNoHost
		}
		if cfg.Port == 0 {
			if env := os.Getenv(EnvAgentPort); env != "" {
				p, err := strconv.Atoi(env)
				if err != nil || p < 1 || p > 65535 {
					return cfg, fmt.Errorf("%w: %s=%q is not a port number (1-65535)", link.ErrConfig, EnvAgentPort, env)
				}
				cfg.Port = p
			}
		}
	}
	if cfg.RootCertFile == "" {
		cfg.RootCertFile = os.Getenv(EnvAgentCert)
	}
	cfg.Token = os.Getenv(EnvAgentToken)
	if lc.TokenFile != "" {
		data, err := os.ReadFile(lc.TokenFile)
		if err != nil {
			return cfg, fmt.Errorf("%w: reading --agent-token-file: %v", link.ErrConfig, err)
		}
		cfg.Token = strings.TrimRight(string(data), "\r\n")
	}
	return cfg, nil
}

// connInfo is Register.conn.
func (id Identity) connInfo() wire.ConnInfo {
	return wire.ConnInfo{ConnID: id.ConnID, GroupID: id.GroupID, RestrictedExe: id.RestrictedExe}
}

// procInfo is Register.proc.
func (id Identity) procInfo() wire.ProcInfo {
	return wire.ProcInfo{Pid: id.Pid, Ppid: id.Ppid, UID: id.UID, EUID: id.EUID, Username: id.Username,
		GID: id.GID, EGID: id.EGID, Groupname: id.Groupname, Hostname: id.Hostname}
}

// startLink starts the link; the returned channel delivers Run's error
// once it has returned. A link that gives up (--connect-count-max) ends
// the agent.
func (a *agent) startLink(ctx context.Context, l *link.Link) <-chan error {
	done := make(chan error, 1)
	go func() {
		err := l.Run(ctx)
		if err != nil {
			a.log.Error(err, "websocket connection failed")
			a.setShutdown(Done)
		}
		done <- err
	}()
	return done
}

// firstWork returns, when the table is empty, a channel that is closed at
// its first change, and nil otherwise. It is taken before the link starts:
// work that arrives, and even ends and is deleted, before waitModeAgent
// runs still ends the wait for work.
func (a *agent) firstWork() <-chan struct{} {
	changed := a.ctl.Changed()
	if a.ctl.Len() != 0 {
		return nil
	}
	return changed
}

// waitModeAgent is --wait with --agent: if the table was empty (firstWork
// is not nil) it waits up to WaitTimeout for the first work, then ends the
// agent once every proc has been deleted, without passing through idling.
func (a *agent) waitModeAgent(ctx context.Context, firstWork <-chan struct{}) {
	if firstWork != nil {
		timeout := a.cfg.Link.WaitTimeout
		timer := time.NewTimer(timeout)
		defer timer.Stop()
	wait:
		for {
			st, stCh := a.shutdown.State()
			if st == Done {
				return
			}
			select {
			case <-firstWork:
				break wait
			case <-stCh:
			case <-timer.C:
				a.log.Info(fmt.Sprintf("agent timeout: no work assigned after %d seconds, shutting down", int64(timeout/time.Second)))
				a.setShutdown(Done)
				return
			case <-ctx.Done():
				return
			}
		}
	}
	a.waitMode(ctx)
}
