package link

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/gorilla/websocket"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/wire"
)

// Connection errors.
var (
	// errDone ends a session after ShutDown{done} was sent.
	errDone = errors.New("agent done")
	// errQueueFull ends a session whose send queue overflowed.
	errQueueFull = errors.New("send queue full")
	// ErrRegister marks a failed registration.
	ErrRegister = errors.New("registration failed")
)

// maxIncoming bounds one incoming message, as tungstenite's default does
// for procstar.
const maxIncoming = 64 << 20

// session is one registered connection.
type session struct {
	l   *Link
	log logr.Logger
	ws  *websocket.Conn
	ext map[wire.Extension]bool
	q   *sendQueue
	// resultMu makes reading a proc's result and sending it one step,
	// for the reader's replies and the pusher's pushes alike (and the
	// pusher's ProcDelete), so results go out in the order they were
	// read: the server never sees a proc running after its final result,
	// as procstar, which handles both in one loop, guarantees.
	resultMu sync.Mutex
	// wmu serializes data frames: the writer holds it from taking a frame
	// off the queue until it is written, and send and push hold it to
	// write straight through when nothing is queued. So frames go out in
	// queue order. Control frames (ping, pong, close) need no lock.
	wmu sync.Mutex

	// pongs carries ping payloads from the reader to the writer.
	pongs chan []byte
	// snapshot is the proc table as Register described it, and state and
	// changed the shutdown state it carried.
	snapshot v1.ProcList
	state    string
	changed  <-chan struct{}

	cancel context.CancelCauseFunc
}

// Dial opens the WebSocket to cfg's server, offering cfg's extensions,
// and returns it with the extensions the server accepted. It does not
// register.
func Dial(ctx context.Context, cfg Config) (*websocket.Conn, []wire.Extension, error) {
	cfg.setDefaults()
	u, err := cfg.ServerURL()
	if err != nil {
		return nil, nil, err
	}
	tlsCfg, err := cfg.tlsConfig()
	if err != nil {
		return nil, nil, err
	}
	d := newDialer(cfg, tlsCfg)
	hdr := http.Header{}
	if len(cfg.Extensions) > 0 {
		names := make([]string, len(cfg.Extensions))
		for i, e := range cfg.Extensions {
			names[i] = string(e)
		}
		hdr.Set(wire.ExtensionsHeader, strings.Join(names, ", "))
	}
	ws, resp, err := d.DialContext(ctx, u, hdr)
	if err != nil {
		if resp != nil {
			return nil, nil, fmt.Errorf("dial %s: %w (HTTP %s)", u, err, resp.Status)
		}
		return nil, nil, fmt.Errorf("dial %s: %w", u, err)
	}
	var accepted []wire.Extension
	for _, v := range resp.Header.Values(wire.ExtensionsHeader) {
		for name := range strings.SplitSeq(v, ",") {
			e := wire.Extension(strings.TrimSpace(name))
			if slices.Contains(cfg.Extensions, e) && !slices.Contains(accepted, e) {
				accepted = append(accepted, e)
			}
		}
	}
	return ws, accepted, nil
}

// newDialer returns the dialer for cfg. It connects directly, as procstar
// does (reference §4.1): HTTP_PROXY, HTTPS_PROXY and the like are ignored.
func newDialer(cfg Config, tlsCfg *tls.Config) *websocket.Dialer {
	return &websocket.Dialer{
		Proxy:            nil,
		TLSClientConfig:  tlsCfg,
		HandshakeTimeout: cfg.RegisterTimeout,
		NetDialContext:   (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
	}
}

// connect dials, registers and returns a session ready to run.
func (l *Link) connect(ctx context.Context) (*session, error) {
	ctx, cancel := context.WithTimeout(ctx, l.cfg.RegisterTimeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	list, err := l.b.List(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("listing procs: %w", err)
	}
	state, changed := l.cfg.Shutdown.ShutdownState()

	ws, accepted, err := Dial(ctx, l.cfg)
	if err != nil {
		return nil, err
	}
	s := &session{
		l:        l,
		log:      l.log,
		ws:       ws,
		ext:      map[wire.Extension]bool{},
		q:        newSendQueue(l.cfg.MaxQueueBytes),
		pongs:    make(chan []byte, 1),
		snapshot: list,
		state:    state,
		changed:  changed,
	}
	for _, e := range accepted {
		s.ext[e] = true
	}
	// The handshake blocks on deadlines only; closing the socket makes it
	// give up as soon as ctx ends.
	stop := context.AfterFunc(ctx, func() { _ = ws.Close() })
	err = s.register(deadline)
	if !stop() || err != nil {
		_ = ws.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, err
	}
	return s, nil
}

// register sends Register and waits for Registered, until deadline.
func (s *session) register(deadline time.Time) error {
	cfg := &s.l.cfg
	ids := make([]string, 0, len(s.snapshot.Items))
	for i := range s.snapshot.Items {
		ids = append(ids, s.snapshot.Items[i].Metadata.Name)
	}
	slices.Sort(ids)
	reg := wire.Register{
		Conn:          cfg.Conn,
		Proc:          cfg.Proc,
		ProcIDs:       ids,
		AccessToken:   cfg.Token,
		ShutdownState: s.state,
	}
	if s.ext[wire.ExtLabels] {
		reg.Labels = cfg.Labels
	}
	if s.ext[wire.ExtResources] {
		reg.Resources = cfg.Resources
	}
	frame, err := wire.EncodeMessage(reg)
	if err != nil {
		return fmt.Errorf("%w: encoding Register: %w", ErrRegister, err)
	}
	_ = s.ws.SetWriteDeadline(deadline)
	if err := s.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		return fmt.Errorf("%w: sending Register: %w", ErrRegister, err)
	}
	_ = s.ws.SetReadDeadline(deadline)
	typ, data, err := s.ws.ReadMessage()
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fmt.Errorf("%w: registration took too long", ErrRegister)
		}
		return fmt.Errorf("%w: waiting for Registered: %w", ErrRegister, err)
	}
	if typ != websocket.BinaryMessage {
		return fmt.Errorf("%w: expected Registered, got a non-binary frame", ErrRegister)
	}
	m, err := wire.DecodeMessage(data)
	if err != nil {
		return fmt.Errorf("%w: decoding Registered: %w", ErrRegister, err)
	}
	if _, ok := deref(m).(wire.Registered); !ok {
		return fmt.Errorf("%w: expected Registered, got %s", ErrRegister, m.MessageType())
	}
	return nil
}

// extNames returns the accepted extensions, sorted.
func (s *session) extNames() []string {
	out := make([]string, 0, len(s.ext))
	for e := range s.ext {
		out = append(out, string(e))
	}
	slices.Sort(out)
	return out
}

// run runs the pumps and the pusher until the connection ends, and
// returns why: errDone after ShutDown{done}, else the error that ended it.
func (s *session) run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	s.cancel = cancel
	defer cancel(nil)
	var wg sync.WaitGroup
	wg.Go(func() { s.writer(ctx) })
	wg.Go(func() { s.reader(ctx) })
	wg.Go(func() { newPusher(s).run(ctx) })
	<-ctx.Done()
	_ = s.ws.Close() // unblocks the reader
	wg.Wait()
	return context.Cause(ctx)
}

// writer is the only goroutine that writes to the connection. It pings
// at once and every PingInterval, answers pings, and writes queued frames
// in order. After the queue's last frame once finish was called, it sends
// a Close frame and ends the session with errDone.
func (s *session) writer(ctx context.Context) {
	cfg := &s.l.cfg
	ticker := time.NewTicker(cfg.PingInterval)
	defer ticker.Stop()
	ping := func() bool {
		if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(cfg.WriteTimeout)); err != nil {
			s.cancel(fmt.Errorf("sending ping: %w", err))
			return false
		}
		return true
	}
	if !ping() {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if !ping() {
				return
			}
		case p := <-s.pongs:
			if err := s.ws.WriteControl(websocket.PongMessage, p, time.Now().Add(cfg.WriteTimeout)); err != nil {
				s.cancel(fmt.Errorf("sending pong: %w", err))
				return
			}
		case <-s.q.ready:
			for {
				s.wmu.Lock()
				frame, finished, ok := s.q.pop()
				if !ok {
					s.wmu.Unlock()
					if finished {
						msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "agent done")
						_ = s.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
						s.cancel(errDone)
						return
					}
					break
				}
				err := s.writeFrame(frame)
				s.wmu.Unlock()
				if err != nil {
					return
				}
			}
		}
	}
}

// reader reads every frame, handling requests in order, until the
// connection fails or ReadTimeout passes without a frame of any kind.
func (s *session) reader(ctx context.Context) {
	timeout := s.l.cfg.ReadTimeout
	extend := func() { _ = s.ws.SetReadDeadline(time.Now().Add(timeout)) }
	s.ws.SetReadLimit(maxIncoming)
	s.ws.SetPongHandler(func(string) error {
		extend()
		return nil
	})
	s.ws.SetPingHandler(func(p string) error {
		extend()
		select {
		case s.pongs <- []byte(p):
		default: // a pong is already due; one answers both
		}
		return nil
	})
	for {
		extend()
		typ, data, err := s.ws.ReadMessage()
		if err != nil {
			if ctx.Err() == nil {
				s.cancel(fmt.Errorf("reading: %w", err))
			}
			return
		}
		if typ != websocket.BinaryMessage {
			s.log.Info("ignoring a non-binary frame from the server", "frameType", typ, "length", len(data))
			continue
		}
		s.handle(ctx, data)
		if ctx.Err() != nil {
			return
		}
	}
}

// writeFrame writes one data frame; the caller holds wmu. A failure ends
// the session.
func (s *session) writeFrame(frame []byte) error {
	_ = s.ws.SetWriteDeadline(time.Now().Add(writeTimeout(s.l.cfg.WriteTimeout, len(frame))))
	if err := s.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
		s.cancel(fmt.Errorf("sending: %w", err))
		return err
	}
	return nil
}

// minWriteRate is the slowest link a frame's write allows for, beyond
// WriteTimeout: a 64 MiB ProcFdData at 256 KiB/s takes 256 s. A fixed
// bound would fail a large frame on a slow link every time, and the
// server would ask again after the reconnect.
const minWriteRate = 256 << 10 // bytes per second

// writeTimeout bounds the write of a frame of n bytes.
func writeTimeout(base time.Duration, n int) time.Duration {
	return base + time.Duration(n)*time.Second/minWriteRate
}

// writeThrough writes frame at once, on the caller's goroutine, when
// nothing is queued and no other frame is being written: the common case
// of a request and its reply, which then costs no hand-off to the writer.
// It reports false, writing nothing, otherwise.
func (s *session) writeThrough(frame []byte) bool {
	if !s.wmu.TryLock() {
		return false
	}
	defer s.wmu.Unlock()
	if !s.q.idle() {
		return false
	}
	_ = s.writeFrame(frame)
	return true
}

// send writes m, or queues it for the writer, waiting for room (the
// reader's replies).
func (s *session) send(ctx context.Context, m wire.Message) {
	frame, err := wire.EncodeMessage(m)
	if err != nil {
		s.log.Error(err, "cannot encode message", "type", m.MessageType())
		return
	}
	if s.writeThrough(frame) {
		return
	}
	if err := s.q.pushWait(ctx, frame); err != nil && ctx.Err() == nil {
		s.cancel(err)
	}
}

// push writes m, or queues it for the writer without waiting (the
// pusher's messages); a full queue ends the session.
func (s *session) push(m wire.Message) bool {
	frame, err := wire.EncodeMessage(m)
	if err != nil {
		s.log.Error(err, "cannot encode message", "type", m.MessageType())
		return true
	}
	if s.writeThrough(frame) {
		return true
	}
	if err := s.q.push(frame); err != nil {
		s.cancel(err)
		return false
	}
	return true
}

// deref returns the value a pointer message points to, so that callers
// can switch on value types whichever DecodeMessage returns.
func deref(m wire.Message) wire.Message {
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer && !v.IsNil() {
		if e, ok := v.Elem().Interface().(wire.Message); ok {
			return e
		}
	}
	return m
}

// sendQueue holds encoded frames for the writer, bounded in bytes.
type sendQueue struct {
	max int
	// ready has a token while frames (or the finish) wait.
	ready chan struct{}

	mu       sync.Mutex // guards frames, bytes, finished, room and waiting
	frames   [][]byte
	bytes    int
	finished bool
	// room is closed, and replaced, when frames are taken while waiting
	// says pushWait waits on it.
	room    chan struct{}
	waiting bool
}

func newSendQueue(max int) *sendQueue {
	return &sendQueue{max: max, ready: make(chan struct{}, 1), room: make(chan struct{})}
}

func (q *sendQueue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// push adds frame unless that would take the queue past max bytes; an
// empty queue takes any frame. After finish, frames are dropped.
func (q *sendQueue) push(frame []byte) error {
	q.mu.Lock()
	if q.finished {
		q.mu.Unlock()
		return nil
	}
	if q.bytes > 0 && q.bytes+len(frame) > q.max {
		q.mu.Unlock()
		return fmt.Errorf("%w: %d bytes queued", errQueueFull, q.bytes)
	}
	q.frames = append(q.frames, frame)
	q.bytes += len(frame)
	q.mu.Unlock()
	q.signal()
	return nil
}

// pushWait adds frame once fewer than max/2 bytes are queued, leaving the
// other half to push.
func (q *sendQueue) pushWait(ctx context.Context, frame []byte) error {
	for {
		q.mu.Lock()
		if q.finished {
			q.mu.Unlock()
			return nil
		}
		if q.bytes == 0 || q.bytes+len(frame) <= q.max/2 {
			q.frames = append(q.frames, frame)
			q.bytes += len(frame)
			q.mu.Unlock()
			q.signal()
			return nil
		}
		room := q.room
		q.waiting = true
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// idle reports whether no frame waits and finish has not been called.
func (q *sendQueue) idle() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames) == 0 && !q.finished
}

// queued returns how many bytes wait.
func (q *sendQueue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// finish makes the writer end the session once the queue is empty.
func (q *sendQueue) finish() {
	q.mu.Lock()
	q.finished = true
	q.mu.Unlock()
	q.signal()
}

// pop takes the next frame. ok is false when none waits; finished then
// says whether finish was called.
func (q *sendQueue) pop() (frame []byte, finished, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return nil, q.finished, false
	}
	frame = q.frames[0]
	q.frames[0] = nil
	q.frames = q.frames[1:]
	q.bytes -= len(frame)
	if q.waiting {
		close(q.room)
		q.room = make(chan struct{})
		q.waiting = false
	}
	return frame, false, true
}
