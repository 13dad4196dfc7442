package fakecontrol

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"procstar.dev/procstar/wire"
)

// session is one WebSocket: a reader (the handler goroutine) and a writer
// pump that owns every data write and the ping ticker.
type session struct {
	srv    *Server
	ws     *websocket.Conn
	remote string
	exts   []wire.Extension
	out    chan outFrame
	// wmu serializes data frames: the pump holds it while it writes a
	// frame, send while it writes one through. queued counts frames in
	// out not yet written; both change only under wmu.
	wmu    sync.Mutex
	queued int
	done   chan struct{} // closed by close
	once   sync.Once
	conn   *connection // guarded by srv.mu; set on registration

	lastPing, lastPong atomic.Int64 // unix nanoseconds
	pings              atomic.Int64 // pings received from the agent
}

type outFrame struct {
	typ  int
	data []byte
	// written, if set, is closed once the frame is written (or failed).
	written chan struct{}
}

// send writes f at once when nothing is queued or being written, as the
// Python server's inline await does; otherwise it queues f for the pump,
// which keeps the order.
func (sess *session) send(f outFrame) error {
	select {
	case <-sess.done:
		return ErrNotOpen
	default:
	}
	sess.wmu.Lock()
	if sess.queued == 0 {
		err := sess.write(f)
		sess.wmu.Unlock()
		if err != nil {
			return ErrNotOpen
		}
		return nil
	}
	sess.queued++
	sess.wmu.Unlock()
	select {
	case sess.out <- f:
		return nil
	case <-sess.done:
		return ErrNotOpen
	}
}

// write writes one data frame; the caller holds wmu. A failure closes the
// session.
func (sess *session) write(f outFrame) error {
	_ = sess.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := sess.ws.WriteMessage(f.typ, f.data)
	if f.written != nil {
		close(f.written)
	}
	if err != nil {
		sess.srv.log.V(1).Info("write failed", "error", err.Error())
		sess.close(websocket.CloseInternalServerErr, "write failed")
	}
	return err
}

// close sends a close frame (best effort) and closes the socket.
func (sess *session) close(code int, reason string) {
	sess.once.Do(func() {
		_ = sess.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		_ = sess.ws.Close()
		close(sess.done)
	})
}

func (sess *session) writePump() {
	defer sess.srv.wg.Done()
	opts := sess.srv.opts
	var tick <-chan time.Time
	if opts.PingInterval > 0 {
		t := time.NewTicker(opts.PingInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-sess.done:
			return
		case f := <-sess.out:
			sess.wmu.Lock()
			err := sess.write(f)
			sess.queued--
			sess.wmu.Unlock()
			if err != nil {
				return
			}
		case now := <-tick:
			if sess.srv.stalled.Load() {
				sess.lastPing.Store(0)
				continue
			}
			if p := sess.lastPing.Load(); p != 0 && sess.lastPong.Load() < p && now.UnixNano()-p > int64(opts.PongTimeout) {
				sess.srv.log.Info("keepalive ping timeout")
				sess.close(websocket.CloseInternalServerErr, "keepalive ping timeout")
				return
			}
			if sess.lastPing.Load() == 0 || sess.lastPong.Load() >= sess.lastPing.Load() {
				sess.lastPing.Store(now.UnixNano())
				if err := sess.ws.WriteControl(websocket.PingMessage, nil, now.Add(writeTimeout)); err != nil {
					sess.close(websocket.CloseInternalServerErr, "ping failed")
					return
				}
			}
		}
	}
}

func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	var accepted []wire.Extension
	for _, e := range parseExtensions(r.Header.Values(wire.ExtensionsHeader)) {
		if s.accept[e] {
			accepted = append(accepted, e)
		}
	}
	var hdr http.Header
	if len(accepted) > 0 {
		names := make([]string, len(accepted))
		for i, e := range accepted {
			names[i] = string(e)
		}
		hdr = http.Header{wire.ExtensionsHeader: {strings.Join(names, ", ")}}
	}
	up := websocket.Upgrader{
		ReadBufferSize:  64 << 10,
		WriteBufferSize: 64 << 10,
		CheckOrigin:     func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(w, r, hdr)
	if err != nil {
		return // Upgrade has answered with an HTTP error
	}
	sess := &session{srv: s, ws: ws, remote: r.RemoteAddr, exts: accepted,
		out: make(chan outFrame, 1024), done: make(chan struct{})}
	s.mu.Lock()
	if !s.listening {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.sessions[sess] = struct{}{}
	s.wg.Add(2) // this handler and the write pump
	s.mu.Unlock()
	defer s.endSession(sess)
	ws.SetPingHandler(func(data string) error {
		sess.pings.Add(1)
		if s.stalled.Load() {
			return nil
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	ws.SetPongHandler(func(string) error {
		sess.lastPong.Store(time.Now().UnixNano())
		return nil
	})
	go sess.writePump()

	c := s.register(sess)
	if c == nil {
		return
	}
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			s.log.V(1).Info("connection closed", "conn", c.id, "error", err.Error())
			return
		}
		if mt != websocket.BinaryMessage {
			s.violation(c.id, fmt.Errorf("%w: text frame", ErrProtocol))
			sess.close(websocket.CloseUnsupportedData, "text frame")
			return
		}
		typ, m, err := decodeAgentMessage(data)
		if err != nil {
			s.violation(c.id, err)
			sess.close(websocket.CloseInternalServerErr, "protocol error")
			return
		}
		s.dispatch(c, typ, m)
	}
}

// register runs the handshake: Register within RegisterTimeout, the token,
// Registered, the connection table and reconciliation. It returns nil when
// the socket is to be closed.
func (s *Server) register(sess *session) *connection {
	ws := sess.ws
	_ = ws.SetReadDeadline(time.Now().Add(s.opts.RegisterTimeout))
	mt, data, err := ws.ReadMessage()
	if err != nil {
		s.log.Info("no Register", "error", err.Error())
		return nil
	}
	_ = ws.SetReadDeadline(time.Time{})
	if mt != websocket.BinaryMessage {
		s.violation("", fmt.Errorf("%w: text frame", ErrProtocol))
		return nil
	}
	typ, m, err := decodeAgentMessage(data)
	if err == nil && typ != "Register" {
		err = fmt.Errorf("%w: first message is %s, not Register", ErrProtocol, typ)
	}
	if err != nil {
		s.violation("", err)
		return nil
	}
	reg := registerFrom(m)
	id := reg.Conn.ConnID
	if reg.AccessToken != s.opts.Token {
		s.log.Info("permission denied", "conn", id)
		s.mu.Lock()
		s.publishLocked(Event{Kind: EventDenied, ConnID: id, Err: ErrPermissionDenied})
		s.mu.Unlock()
		sess.close(websocket.CloseNormalClosure, "permission denied")
		return nil
	}
	if reg.Labels != nil && !hasExt(sess.exts, wire.ExtLabels) {
		s.violation(id, fmt.Errorf("%w: Register has labels, but the labels extension was not accepted", ErrProtocol))
	}
	if reg.Resources != nil && !hasExt(sess.exts, wire.ExtResources) {
		s.violation(id, fmt.Errorf("%w: Register has resources, but the resources extension was not accepted", ErrProtocol))
	}
	b, _ := encodeMessage("Registered", nil)
	registered := outFrame{typ: websocket.BinaryMessage, data: b, written: make(chan struct{})}
	if err := sess.send(registered); err != nil {
		return nil
	}

	s.mu.Lock()
	c, known := s.conns[id]
	var old *session
	if known {
		if c.group != reg.Conn.GroupID {
			err := fmt.Errorf("conn %s: %w: %s to %s", id, ErrGroupChanged, c.group, reg.Conn.GroupID)
			s.publishLocked(Event{Kind: EventRejected, ConnID: id, Err: err})
			s.mu.Unlock()
			s.log.Error(err, "reconnect rejected", "conn", id)
			// Registered has gone out first, as in the Python server.
			select {
			case <-registered.written:
			case <-sess.done:
			}
			return nil
		}
		if c.timer != nil {
			c.timer.Stop()
			c.timer = nil
		}
		old = c.sess
	} else {
		c = &connection{id: id, group: reg.Conn.GroupID}
		s.conns[id] = c
	}
	c.num++
	c.sess, c.reg, c.state, c.exts, c.remote = sess, reg, reg.ShutdownState, sess.exts, sess.remote
	sess.conn = c
	kind := EventAdd
	if known {
		kind = EventReconnect
	}
	s.publishLocked(Event{Kind: kind, ConnID: id, State: c.state})
	// Reconciliation.
	var shared []string
	var unknown []*Process
	if reg.ProcIDs != nil {
		listed := make(map[string]bool, len(reg.ProcIDs))
		for _, pid := range reg.ProcIDs {
			listed[pid] = true
			if p, ok := s.procs[pid]; ok {
				p.connID = id
				shared = append(shared, pid)
			} else {
				s.procs[pid] = &Process{srv: s, id: pid, connID: id}
			}
		}
		for pid, p := range s.procs {
			if p.connID == id && !listed[pid] {
				delete(s.procs, pid)
				unknown = append(unknown, p)
			}
		}
	}
	s.bumpLocked()
	s.mu.Unlock()
	if old != nil {
		old.close(websocket.CloseNormalClosure, "reconnected")
	}
	s.log.V(1).Info("registered", "conn", id, "group", c.group, "procs", len(reg.ProcIDs))
	for _, p := range unknown {
		p.updates.push(Update{Kind: UpdateUnknown, ConnID: id})
	}
	for _, pid := range shared {
		b, _ := encodeMessage("ProcResultRequest", map[string]any{"proc_id": pid})
		if err := sess.send(outFrame{typ: websocket.BinaryMessage, data: b}); err != nil {
			break
		}
	}
	return c
}

func hasExt(exts []wire.Extension, e wire.Extension) bool {
	for _, x := range exts {
		if x == e {
			return true
		}
	}
	return false
}

// endSession runs when a socket's reader ends: the connection stays for a
// reconnect, with a timer if ReconnectTimeout is set, unless the agent said
// it is done.
func (s *Server) endSession(sess *session) {
	sess.close(websocket.CloseNormalClosure, "")
	s.mu.Lock()
	delete(s.sessions, sess)
	if c := sess.conn; c != nil && c.sess == sess {
		c.sess = nil
		s.publishLocked(Event{Kind: EventClose, ConnID: c.id, State: c.state})
		switch {
		case c.state == StateDone:
			delete(s.conns, c.id)
			s.publishLocked(Event{Kind: EventRemove, ConnID: c.id, State: c.state})
		case s.opts.ReconnectTimeout > 0 && !s.closed:
			c.timer = time.AfterFunc(s.opts.ReconnectTimeout, func() { s.expire(c) })
		}
		s.bumpLocked()
	}
	s.mu.Unlock()
	s.wg.Done()
}

// expire drops a connection that did not come back in time.
func (s *Server) expire(c *connection) {
	s.mu.Lock()
	if s.conns[c.id] != c || c.sess != nil || s.closed {
		s.mu.Unlock()
		return
	}
	delete(s.conns, c.id)
	var procs []*Process
	for _, p := range s.procs {
		if p.connID == c.id {
			procs = append(procs, p)
		}
	}
	s.publishLocked(Event{Kind: EventRemove, ConnID: c.id, State: c.state})
	s.bumpLocked()
	s.mu.Unlock()
	s.log.Info("reconnect timeout", "conn", c.id, "procs", len(procs))
	for _, p := range procs {
		p.updates.push(Update{Kind: UpdateConnectionTimeout})
	}
}

// dispatch routes one checked agent message, as Processes.on_message does.
func (s *Server) dispatch(c *connection, typ string, m map[string]any) {
	unrouted := func() { c.inbox.push(Message{ConnID: c.id, Type: typ, Fields: m}) }
	procID, _ := m["proc_id"].(string)
	switch typ {
	case "ProcResult":
		s.mu.Lock()
		p := s.procLocked(procID, c.id, true)
		s.mu.Unlock()
		p.updates.push(Update{Kind: UpdateResult, ConnID: c.id, Res: m["res"].(map[string]any)})
	case "ProcFdData":
		p, ok := s.Process(procID)
		if !ok {
			unrouted()
			return
		}
		d := &wire.ProcFdData{ProcID: procID, Fd: m["fd"].(string), Start: asInt(m["start"]),
			Stop: asInt(m["stop"]), Encoding: asStrPtr(m["encoding"]), Data: m["data"].([]byte)}
		p.updates.push(Update{Kind: UpdateFdData, ConnID: c.id, FdData: d})
	case "ProcDelete", "ProcUnknown":
		s.mu.Lock()
		p, ok := s.procs[procID]
		delete(s.procs, procID)
		s.mu.Unlock()
		if !ok {
			unrouted()
			return
		}
		k := UpdateDelete
		if typ == "ProcUnknown" {
			k = UpdateUnknown
		}
		p.updates.push(Update{Kind: k, ConnID: c.id})
	case "ProcidList":
		ids := asStrings(m["proc_ids"])
		s.mu.Lock()
		for _, id := range ids {
			s.procLocked(id, c.id, true)
		}
		s.mu.Unlock()
		c.lists.push(ids)
	case "RequestError":
		s.routeError(c, m)
	case "ShutDown":
		st := m["shutdown_state"].(string)
		s.mu.Lock()
		c.state = st
		s.publishLocked(Event{Kind: EventShutDown, ConnID: c.id, State: st})
		s.bumpLocked()
		s.mu.Unlock()
		s.log.V(1).Info("agent shut down state", "conn", c.id, "state", st)
	case "Register":
		s.violation(c.id, fmt.Errorf("%w: Register after registration", ErrProtocol))
	}
}

func (s *Server) routeError(c *connection, m map[string]any) {
	msg := m["msg"].(map[string]any)
	ae := &AgentError{Msg: msg, Err: m["err"].(string)}
	unrouted := func() { c.inbox.push(Message{ConnID: c.id, Type: "RequestError", Fields: m}) }
	t, ok := msg["type"].(string)
	if !ok {
		s.violation(c.id, fmt.Errorf("%w: RequestError.msg has no type", ErrProtocol))
	}
	if t == "ProcSignalRequest" && ae.Err == "no process" {
		unrouted() // the Python server only logs it
		return
	}
	var ids []string
	if id, ok := msg["proc_id"].(string); ok {
		ids = []string{id}
	} else if specs, ok := msg["specs"].(map[string]any); ok {
		for id := range specs {
			ids = append(ids, id)
		}
	}
	routed := false
	for _, id := range ids {
		if p, ok := s.Process(id); ok {
			p.updates.push(Update{Kind: UpdateRequestError, ConnID: c.id, Err: ae})
			routed = true
		}
	}
	if !routed {
		unrouted()
	}
}
