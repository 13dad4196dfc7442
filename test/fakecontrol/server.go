package fakecontrol

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/websocket"

	"procstar.dev/procstar/wire"
)

// Defaults of the Python server.
const (
	DefaultRegisterTimeout = 60 * time.Second
	DefaultPingInterval    = 20 * time.Second
	writeTimeout           = 30 * time.Second
)

// Options configure a Server. The zero value is a plain procstar server on
// 127.0.0.1 with an empty token, no TLS and no reconnect timeout.
type Options struct {
	// Addr is where to listen; "" is 127.0.0.1 on a free port.
	Addr string
	// Token is the access token agents must send ("" accepts "").
	Token string
	// TLS serves wss:// with a self-signed certificate for 127.0.0.1,
	// ::1 and localhost; CertFile names its PEM for PROCSTAR_AGENT_CERT.
	TLS bool
	// ReconnectTimeout, when positive, is how long a connection may stay
	// closed before it is dropped and its processes get
	// UpdateConnectionTimeout. Zero means never.
	ReconnectTimeout time.Duration
	// AcceptExtensions are the extensions the server accepts when an
	// agent offers them. None by default: a plain procstar server.
	AcceptExtensions []wire.Extension
	// RegisterTimeout is how long to wait for Register (60 s).
	RegisterTimeout time.Duration
	// PingInterval is how often the server pings each agent (20 s); a
	// negative value disables pings. A ping without a pong within
	// PongTimeout (20 s, as Python's websockets) closes the connection.
	PingInterval, PongTimeout time.Duration
	// Logger receives the server's logs; the zero value discards them.
	Logger logr.Logger
}

// EventKind says what happened to a connection.
type EventKind int

// Event kinds. The Python server publishes add, remove and shut-down; the
// others are for tests.
const (
	EventAdd       EventKind = iota + 1 // a new conn_id registered
	EventReconnect                      // a known conn_id registered again
	EventClose                          // the connection's socket closed
	EventRemove                         // the connection was dropped for good
	EventShutDown                       // the agent reported a shutdown state
	EventDenied                         // a Register with a wrong token
	EventRejected                       // a reconnect with another group
	EventViolation                      // a protocol violation (Err says which)
)

func (k EventKind) String() string {
	return [...]string{"?", "add", "reconnect", "close", "remove", "shutdown", "denied", "rejected", "violation"}[min(int(k), 8)]
}

// Event is one connection event.
type Event struct {
	Kind   EventKind
	ConnID string
	// State is the shutdown state, for add, reconnect and shutdown.
	State string
	Err   error
	Time  time.Time
}

// Conn is a snapshot of one connection the server tracks.
type Conn struct {
	ConnID, GroupID string
	// Register is the latest Register received on it.
	Register       wire.Register
	ShutdownState  string
	Open           bool
	NumConnections int
	// Extensions are those accepted on the current or last socket.
	Extensions []wire.Extension
	RemoteAddr string
	// Pings is how many pings the agent has sent on the current socket.
	Pings int64
}

// Message is an agent message the server did not route to a process:
// a RequestError without a known proc, a ProcSignalRequest "no process"
// error, fd data for an unknown proc, and the like.
type Message struct {
	ConnID string
	Type   string
	Fields map[string]any
}

// Server is the fake control plane.
type Server struct {
	opts     Options
	log      logr.Logger
	tlsConf  *tls.Config
	certPEM  []byte
	dir      string
	certFile string
	accept   map[wire.Extension]bool
	stalled  atomic.Bool
	wg       sync.WaitGroup // sessions, pumps and the HTTP server

	mu         sync.Mutex // guards every field below
	addr       string     // host:port, fixed by the first listen
	ln         net.Listener
	hs         *http.Server
	listening  bool
	closed     bool
	sessions   map[*session]struct{}
	conns      map[string]*connection
	procs      map[string]*Process
	subs       map[*Subscription]struct{}
	violations []error
	changed    chan struct{} // closed and replaced on every change of conns
}

// connection is the server's record of one conn_id; it outlives sockets.
type connection struct {
	id, group string
	// Guarded by Server.mu:
	reg    wire.Register
	state  string
	sess   *session
	num    int
	exts   []wire.Extension
	remote string
	timer  *time.Timer
	// Own locks:
	lists queue[[]string]
	inbox queue[Message]
}

// New starts a server listening per opts.
func New(opts Options) (*Server, error) {
	if opts.RegisterTimeout <= 0 {
		opts.RegisterTimeout = DefaultRegisterTimeout
	}
	if opts.PingInterval == 0 {
		opts.PingInterval = DefaultPingInterval
	}
	if opts.PongTimeout <= 0 {
		opts.PongTimeout = DefaultPingInterval
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		accept:   map[wire.Extension]bool{},
		addr:     opts.Addr,
		sessions: map[*session]struct{}{},
		conns:    map[string]*connection{},
		procs:    map[string]*Process{},
		subs:     map[*Subscription]struct{}{},
		changed:  make(chan struct{}),
	}
	if s.log.GetSink() == nil {
		s.log = logr.Discard()
	}
	for _, e := range opts.AcceptExtensions {
		s.accept[e] = true
	}
	if opts.TLS {
		cert, pemBytes, err := selfSigned()
		if err != nil {
			return nil, err
		}
		dir, err := os.MkdirTemp("", "fakecontrol-")
		if err != nil {
			return nil, fmt.Errorf("cert dir: %w", err)
		}
		s.dir, s.certPEM = dir, pemBytes
		s.certFile = filepath.Join(dir, "ca.pem")
		if err := os.WriteFile(s.certFile, pemBytes, 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("write cert: %w", err)
		}
		s.tlsConf = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if err := s.Listen(); err != nil {
		if s.dir != "" {
			os.RemoveAll(s.dir)
		}
		return nil, err
	}
	return s, nil
}

// Listen listens again after Stop, on the same address and port.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errors.New("fakecontrol: server closed")
	}
	if s.listening {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.addr, err)
	}
	s.addr = ln.Addr().String()
	if s.tlsConf != nil {
		ln = tls.NewListener(ln, s.tlsConf)
	}
	hs := &http.Server{Handler: http.HandlerFunc(s.serveWS), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.New(io.Discard, "", 0)} // failed TLS handshakes are expected in tests
	s.ln, s.hs, s.listening = ln, hs, true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = hs.Serve(ln)
	}()
	return nil
}

// Stop closes the listener and every socket, as a server going down
// would, and waits for its goroutines. The connection and process tables
// are kept, so an agent that reconnects after Listen is reconciled.
func (s *Server) Stop() {
	s.mu.Lock()
	hs := s.hs
	s.hs, s.ln, s.listening = nil, nil, false
	sessions := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		sessions = append(sessions, sess)
	}
	s.mu.Unlock()
	if hs != nil {
		_ = hs.Close()
	}
	for _, sess := range sessions {
		sess.close(websocket.CloseGoingAway, "server stopping")
	}
	s.wg.Wait()
}

// Restart is Stop then Listen on the same port.
func (s *Server) Restart() error {
	s.Stop()
	return s.Listen()
}

// Close stops the server for good and removes its certificate.
func (s *Server) Close() {
	s.Stop()
	s.mu.Lock()
	s.closed = true
	for _, c := range s.conns {
		if c.timer != nil {
			c.timer.Stop()
		}
	}
	s.mu.Unlock()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// Addr is host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Host is the listening host.
func (s *Server) Host() string {
	h, _, _ := net.SplitHostPort(s.Addr())
	return h
}

// Port is the listening port.
func (s *Server) Port() int {
	_, p, _ := net.SplitHostPort(s.Addr())
	n, _ := strconv.Atoi(p)
	return n
}

// URL is ws://HOST:PORT/, or wss:// with TLS.
func (s *Server) URL() string {
	scheme := "ws"
	if s.tlsConf != nil {
		scheme = "wss"
	}
	return scheme + "://" + s.Addr() + "/"
}

// CertFile is the PEM file of the self-signed certificate ("" without
// TLS), for PROCSTAR_AGENT_CERT.
func (s *Server) CertFile() string { return s.certFile }

// CertPEM is the self-signed certificate in PEM (nil without TLS).
func (s *Server) CertPEM() []byte { return s.certPEM }

// SetStalled makes the server stop (true) or resume (false) answering and
// sending pings, so that an agent's read timeout fires. Messages are still
// sent if a test sends them.
func (s *Server) SetStalled(on bool) { s.stalled.Store(on) }

// Violations are the protocol violations seen so far, closing or not.
func (s *Server) Violations() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.violations...)
}

// Conns lists the connections the server tracks, sorted by conn ID.
func (s *Server) Conns() []Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conn, 0, len(s.conns))
	for _, c := range s.conns {
		out = append(out, c.snapshot())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ConnID < out[j].ConnID })
	return out
}

// Conn returns the connection with that ID.
func (s *Server) Conn(connID string) (Conn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[connID]
	if !ok {
		return Conn{}, false
	}
	return c.snapshot(), true
}

func (c *connection) snapshot() Conn {
	snap := Conn{
		ConnID: c.id, GroupID: c.group, Register: c.reg, ShutdownState: c.state,
		Open: c.sess != nil, NumConnections: c.num,
		Extensions: append([]wire.Extension(nil), c.exts...), RemoteAddr: c.remote,
	}
	if c.sess != nil {
		snap.Pings = c.sess.pings.Load()
	}
	return snap
}

// WaitFor waits until pred holds for connection connID (which may not
// exist yet: pred then gets ok false) and returns its snapshot.
func (s *Server) WaitFor(ctx context.Context, connID string, pred func(c Conn, ok bool) bool) (Conn, error) {
	for {
		s.mu.Lock()
		var snap Conn
		c, ok := s.conns[connID]
		if ok {
			snap = c.snapshot()
		}
		ch := s.changed
		s.mu.Unlock()
		if pred(snap, ok) {
			return snap, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return snap, fmt.Errorf("waiting for conn %s: %w", connID, ctx.Err())
		}
	}
}

// WaitConn waits until connection connID is open.
func (s *Server) WaitConn(ctx context.Context, connID string) (Conn, error) {
	return s.WaitFor(ctx, connID, func(c Conn, ok bool) bool { return ok && c.Open })
}

// WaitAnyConn waits until some connection is open and returns it.
func (s *Server) WaitAnyConn(ctx context.Context) (Conn, error) {
	for {
		s.mu.Lock()
		ch := s.changed
		var ids []string
		for id, c := range s.conns {
			if c.sess != nil {
				ids = append(ids, id)
			}
		}
		var snap Conn
		if len(ids) > 0 {
			sort.Strings(ids)
			snap = s.conns[ids[0]].snapshot()
		}
		s.mu.Unlock()
		if len(ids) > 0 {
			return snap, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return Conn{}, fmt.Errorf("waiting for a connection: %w", ctx.Err())
		}
	}
}

// Disconnect closes connection connID's socket, as the server would on an
// error; the connection record stays for a reconnect.
func (s *Server) Disconnect(connID string) error {
	s.mu.Lock()
	var sess *session
	if c, ok := s.conns[connID]; ok {
		sess = c.sess
	}
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("conn %s: %w", connID, ErrNotOpen)
	}
	sess.close(websocket.CloseNormalClosure, "closed by test")
	return nil
}

// Send sends a message of type typ with fields to connection connID.
func (s *Server) Send(connID, typ string, fields map[string]any) error {
	b, err := encodeMessage(typ, fields)
	if err != nil {
		return err
	}
	return s.SendFrame(connID, websocket.BinaryMessage, b)
}

// SendFrame sends one raw frame (websocket.BinaryMessage or TextMessage)
// to connection connID, for malformed-message tests.
func (s *Server) SendFrame(connID string, frameType int, data []byte) error {
	s.mu.Lock()
	var sess *session
	if c, ok := s.conns[connID]; ok {
		sess = c.sess
	}
	s.mu.Unlock()
	if sess == nil {
		return fmt.Errorf("conn %s: %w", connID, ErrNotOpen)
	}
	if err := sess.send(outFrame{typ: frameType, data: data}); err != nil {
		return fmt.Errorf("conn %s: %w", connID, err)
	}
	return nil
}

// NextMessage returns the next unrouted message from connection connID.
func (s *Server) NextMessage(ctx context.Context, connID string) (Message, error) {
	c, err := s.connection(connID)
	if err != nil {
		return Message{}, err
	}
	return c.inbox.next(ctx)
}

// ProcidList sends ProcidListRequest to connID and waits for the answer.
func (s *Server) ProcidList(ctx context.Context, connID string) ([]string, error) {
	c, err := s.connection(connID)
	if err != nil {
		return nil, err
	}
	if err := s.Send(connID, "ProcidListRequest", nil); err != nil {
		return nil, err
	}
	return c.lists.next(ctx)
}

func (s *Server) connection(connID string) (*connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[connID]
	if !ok {
		return nil, fmt.Errorf("conn %s: %w", connID, ErrNotOpen)
	}
	return c, nil
}

// Process returns the process with that ID, if the server has it.
func (s *Server) Process(procID string) (*Process, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.procs[procID]
	return p, ok
}

// ProcIDs lists the processes the server has, sorted.
func (s *Server) ProcIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.procs))
	for id := range s.procs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// procLocked returns the process procID, creating it on connID when adopt
// is set. s.mu must be held.
func (s *Server) procLocked(procID, connID string, adopt bool) *Process {
	p, ok := s.procs[procID]
	if !ok && adopt {
		p = &Process{srv: s, id: procID, connID: connID}
		s.procs[procID] = p
	}
	return p
}

// Start starts one proc in group as Python's Server.start does: it picks
// an open, active connection of the group at random (waiting for one
// until ctx ends), sends ProcStartRequest, and waits for the first update,
// which must be a ProcResult; Process.First returns it.
func (s *Server) Start(ctx context.Context, group, procID string, spec wire.ProcSpec) (*Process, error) {
	m, err := SpecMap(spec)
	if err != nil {
		return nil, err
	}
	ps, err := s.StartRaw(ctx, group, map[string]any{procID: m})
	if len(ps) == 0 {
		return nil, err
	}
	return ps[0], err
}

// StartRaw starts a batch of procs with specs given as plain maps (see
// SpecMap and JSONMap) in one ProcStartRequest. It returns the processes
// sorted by ID and the first error: ErrFirstUpdateNotResult, or the
// AgentError of a RequestError. Processes are created even when the start
// fails, as in the Python server.
func (s *Server) StartRaw(ctx context.Context, group string, specs map[string]any) ([]*Process, error) {
	ids := make([]string, 0, len(specs))
	for id := range specs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var procs []*Process
	for attempt := 0; ; attempt++ {
		connID, err := s.choose(ctx, group)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		for _, id := range ids {
			if _, ok := s.procs[id]; ok {
				s.mu.Unlock()
				return nil, fmt.Errorf("proc %s: %w", id, ErrProcessExists)
			}
		}
		procs = procs[:0]
		for _, id := range ids {
			p := &Process{srv: s, id: id, connID: connID}
			s.procs[id] = p
			procs = append(procs, p)
		}
		s.mu.Unlock()
		err = s.Send(connID, "ProcStartRequest", map[string]any{"specs": specs})
		if err == nil {
			break
		}
		s.mu.Lock()
		for _, p := range procs {
			if s.procs[p.id] == p {
				delete(s.procs, p.id)
			}
		}
		s.mu.Unlock()
		if !errors.Is(err, ErrNotOpen) || attempt > 0 {
			return nil, err
		}
	}
	var first error
	for _, p := range procs {
		u, err := p.Next(ctx)
		if err != nil {
			return procs, fmt.Errorf("proc %s: waiting for the first update: %w", p.id, err)
		}
		switch {
		case u.Kind == UpdateResult:
			p.first = u.Res
		case first != nil:
		case u.Kind == UpdateRequestError:
			first = fmt.Errorf("start %s: %w", p.id, u.Err)
		default:
			first = fmt.Errorf("proc %s: got %v: %w", p.id, u.Kind, ErrFirstUpdateNotResult)
		}
	}
	return procs, first
}

// choose picks uniformly at random among the group's open, active
// connections, waiting for a connection event until ctx ends.
func (s *Server) choose(ctx context.Context, group string) (string, error) {
	for {
		s.mu.Lock()
		var ids []string
		for id, c := range s.conns {
			if c.group == group && c.sess != nil && c.state == StateActive {
				ids = append(ids, id)
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if len(ids) > 0 {
			sort.Strings(ids)
			return ids[rand.IntN(len(ids))], nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return "", fmt.Errorf("%w %q: %w", ErrNoOpenConnection, group, ctx.Err())
		}
	}
}

// bumpLocked wakes everyone waiting for a change. s.mu must be held.
func (s *Server) bumpLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// publishLocked sends an event to every subscriber. s.mu must be held.
func (s *Server) publishLocked(e Event) {
	e.Time = time.Now()
	for sub := range s.subs {
		sub.q.push(e)
	}
}

func (s *Server) violation(connID string, err error) {
	s.log.Info("protocol violation", "conn", connID, "error", err.Error())
	s.mu.Lock()
	defer s.mu.Unlock()
	s.violations = append(s.violations, fmt.Errorf("conn %q: %w", connID, err))
	s.publishLocked(Event{Kind: EventViolation, ConnID: connID, Err: err})
}

// Subscription receives connection events from the moment it was made.
type Subscription struct {
	srv *Server
	q   queue[Event]
}

// Subscribe starts a subscription to connection events.
func (s *Server) Subscribe() *Subscription {
	sub := &Subscription{srv: s}
	s.mu.Lock()
	s.subs[sub] = struct{}{}
	s.mu.Unlock()
	return sub
}

// Next returns the next event.
func (sub *Subscription) Next(ctx context.Context) (Event, error) { return sub.q.next(ctx) }

// Wait returns the next event of kind k, skipping others.
func (sub *Subscription) Wait(ctx context.Context, k EventKind) (Event, error) {
	for {
		e, err := sub.q.next(ctx)
		if err != nil {
			return e, fmt.Errorf("waiting for a %v event: %w", k, err)
		}
		if e.Kind == k {
			return e, nil
		}
	}
}

// Close ends the subscription.
func (sub *Subscription) Close() {
	sub.srv.mu.Lock()
	delete(sub.srv.subs, sub)
	sub.srv.mu.Unlock()
}

func parseExtensions(values []string) []wire.Extension {
	var out []wire.Extension
	for _, v := range values {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, wire.Extension(e))
			}
		}
	}
	return out
}
