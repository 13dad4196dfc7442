package link

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Link is the agent's connection to a control plane, kept up by Run.
type Link struct {
	cfg Config
	url string
	b   Backend
	log logr.Logger

	mu     sync.Mutex // guards status
	status Status
}

// Status describes the link for GET /agent.
type Status struct {
	// Connected is true while a registered connection is up.
	Connected bool `json:"connected"`
	// URL is the server URL dialled.
	URL string `json:"url"`
	// ConnID is the conn_id registered with.
	ConnID string `json:"connId"`
	// GroupID is the group_id registered with.
	GroupID string `json:"groupId"`
	// Extensions are the extensions the server accepted on the current
	// (or last) connection.
	Extensions []string `json:"extensions"`
	// Attempts counts connection attempts since start.
	Attempts int `json:"attempts"`
	// Failures counts consecutive failed attempts.
	Failures int `json:"failures"`
	// Connections counts successful registrations since start.
	Connections int `json:"connections"`
	// ConnectedSince is when the current connection registered.
	ConnectedSince *time.Time `json:"connectedSince,omitempty"`
	// LastError is why the last attempt failed or the last connection
	// ended.
	LastError string `json:"lastError,omitempty"`
}

// New checks cfg and returns a Link over b. The logger travels in ctx of
// Run.
func New(cfg Config, b Backend) (*Link, error) {
	cfg.setDefaults()
	u, err := cfg.ServerURL()
	if err != nil {
		return nil, err
	}
	if cfg.TLSConfig == nil {
		// Fail now, not on every attempt, on unreadable certificates.
		if _, err := cfg.tlsConfig(); err != nil {
			return nil, err
		}
	}
	if b == nil {
		return nil, fmt.Errorf("%w: no backend", ErrConfig)
	}
	l := &Link{cfg: cfg, url: u, b: b}
	l.status = Status{URL: u, ConnID: cfg.Conn.ConnID, GroupID: cfg.Conn.GroupID, Extensions: []string{}}
	return l, nil
}

// Run runs the link with cfg over b until the agent is done or ctx ends;
// see Link.Run.
func Run(ctx context.Context, cfg Config, b Backend) error {
	l, err := New(cfg, b)
	if err != nil {
		return err
	}
	return l.Run(ctx)
}

// Status returns a snapshot of the link's state.
func (l *Link) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.status
	s.Extensions = append([]string{}, s.Extensions...)
	if s.ConnectedSince != nil {
		t := *s.ConnectedSince
		s.ConnectedSince = &t
	}
	return s
}

func (l *Link) update(f func(s *Status)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(&l.status)
}

// Run connects, serves the connection until it drops, and connects again,
// until the agent's shutdown state is done (after pushing ShutDown{done}
// on a live connection) or ctx ends; both return nil. A dropped connection
// is re-dialled at once; failed attempts back off from
// ConnectIntervalStart by ConnectIntervalMult up to ConnectIntervalMax,
// with jitter, and reset after a successful registration. After
// ConnectCountMax consecutive failures Run returns an error wrapping
// ErrConnectFailed.
func (l *Link) Run(ctx context.Context) error {
	l.log = logr.FromContextOrDiscard(ctx).WithValues("conn", l.cfg.Conn.ConnID, "group", l.cfg.Conn.GroupID)
	interval := l.cfg.ConnectIntervalStart
	failures := 0
	for {
		if st, _ := l.cfg.Shutdown.ShutdownState(); st == StateDone || ctx.Err() != nil {
			return nil
		}
		l.update(func(s *Status) { s.Attempts++ })
		s, err := l.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			failures++
			l.update(func(s *Status) { s.Failures = failures; s.LastError = err.Error() })
			if l.cfg.ConnectCountMax > 0 && failures >= l.cfg.ConnectCountMax {
				return fmt.Errorf("%w: %w", ErrConnectFailed, err)
			}
			wait := l.jitter(interval)
			l.log.Info("agent connection attempt failed", "error", err.Error(), "failures", failures, "retryIn", wait.String())
			if !l.sleep(ctx, wait) {
				return nil
			}
			interval = min(time.Duration(float64(interval)*l.cfg.ConnectIntervalMult), l.cfg.ConnectIntervalMax)
			continue
		}
		failures = 0
		interval = l.cfg.ConnectIntervalStart
		now := time.Now()
		l.update(func(st *Status) {
			st.Connected = true
			st.Failures = 0
			st.Connections++
			st.ConnectedSince = &now
			st.Extensions = s.extNames()
		})
		l.log.V(1).Info("agent connected", "url", l.url, "extensions", s.extNames())
		err = s.run(ctx)
		l.update(func(st *Status) {
			st.Connected = false
			st.ConnectedSince = nil
			if err != nil && !errors.Is(err, errDone) {
				st.LastError = err.Error()
			}
		})
		if errors.Is(err, errDone) {
			l.log.V(1).Info("agent done; link closed")
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		l.log.Info("agent connection lost; reconnecting", "error", errString(err))
	}
}

// jitter returns the wait for a back-off interval d.
func (l *Link) jitter(d time.Duration) time.Duration {
	if l.cfg.Jitter != nil {
		return l.cfg.Jitter(d)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// sleep waits d; it returns false if ctx ended or the agent became done.
func (l *Link) sleep(ctx context.Context, d time.Duration) bool {
	timer := l.cfg.After(d)
	for {
		st, changed := l.cfg.Shutdown.ShutdownState()
		if st == StateDone {
			return false
		}
		select {
		case <-timer:
			return true
		case <-ctx.Done():
			return false
		case <-changed:
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
