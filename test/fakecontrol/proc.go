package fakecontrol

import (
	"context"
	"errors"
	"fmt"

	"procstar.dev/procstar/wire"
)

// UpdateKind says what a Process update is.
type UpdateKind int

// Update kinds, one per message the Python server routes to a process.
const (
	// UpdateResult is a ProcResult: Res holds the result map.
	UpdateResult UpdateKind = iota + 1
	// UpdateFdData is a ProcFdData: FdData holds it.
	UpdateFdData
	// UpdateDelete is a ProcDelete: the process is gone from the agent.
	UpdateDelete
	// UpdateUnknown is a ProcUnknown, or a proc the server had on a
	// connection whose Register did not list it.
	UpdateUnknown
	// UpdateRequestError is a RequestError routed to this process.
	UpdateRequestError
	// UpdateConnectionTimeout: the process's connection did not come back
	// within the reconnect timeout.
	UpdateConnectionTimeout
)

func (k UpdateKind) String() string {
	switch k {
	case UpdateResult:
		return "ProcResult"
	case UpdateFdData:
		return "ProcFdData"
	case UpdateDelete:
		return "ProcDelete"
	case UpdateUnknown:
		return "ProcUnknown"
	case UpdateRequestError:
		return "RequestError"
	case UpdateConnectionTimeout:
		return "ConnectionTimeout"
	}
	return fmt.Sprintf("UpdateKind(%d)", int(k))
}

// Update is one item of a Process's update stream.
type Update struct {
	Kind UpdateKind
	// ConnID is the connection the message came on ("" for a timeout).
	ConnID string
	// Res is the result map of an UpdateResult, as the agent sent it.
	Res map[string]any
	// FdData is the message of an UpdateFdData.
	FdData *wire.ProcFdData
	// Err is the error of an UpdateRequestError.
	Err *AgentError
}

// State is Res["state"], or "" when this is not a result.
func (u Update) State() string {
	s, _ := u.Res["state"].(string)
	return s
}

// AgentError is a RequestError from the agent: the request it echoed and
// its error string. It is the error Python's AgentMessageError carries.
type AgentError struct {
	Msg map[string]any
	Err string
}

func (e *AgentError) Error() string {
	return fmt.Sprintf("agent error on %v: %s", e.Msg["type"], e.Err)
}

// Errors of a process's update stream and of requests.
var (
	// ErrProcessUnknown: the agent does not know the process.
	ErrProcessUnknown = errors.New("process unknown")
	// ErrConnectionTimeout: the agent did not reconnect in time.
	ErrConnectionTimeout = errors.New("connection timeout")
	// ErrDeleted: the process was deleted; its stream has ended.
	ErrDeleted = errors.New("process deleted")
	// ErrNotOpen: the connection has no open socket.
	ErrNotOpen = errors.New("connection not open")
	// ErrNoOpenConnection: no open, active connection in the group.
	ErrNoOpenConnection = errors.New("no open connection in group")
	// ErrProcessExists: a start for a proc ID the server already has.
	ErrProcessExists = errors.New("process already exists")
	// ErrFirstUpdateNotResult: the agent's first message for a started
	// process was not a ProcResult.
	ErrFirstUpdateNotResult = errors.New("first update after start is not a ProcResult")
)

// Error turns an update that ends or fails a stream into the error Python's
// update iterator raises; nil for results and fd data.
func (u Update) Error() error {
	switch u.Kind {
	case UpdateDelete:
		return ErrDeleted
	case UpdateUnknown:
		return ErrProcessUnknown
	case UpdateRequestError:
		return u.Err
	case UpdateConnectionTimeout:
		return ErrConnectionTimeout
	}
	return nil
}

// Process is the server's record of one proc on an agent, with its update
// stream. It outlives its entry in the server's table, so a test can read
// the updates that removed it.
type Process struct {
	srv     *Server
	id      string
	connID  string // guarded by srv.mu
	updates queue[Update]
	first   map[string]any // set once by a start, before it returns
}

// First is the ProcResult that answered the start, or nil when the
// process was not started by this server's Start.
func (p *Process) First() map[string]any { return p.first }

// ID is the proc ID.
func (p *Process) ID() string { return p.id }

// ConnID is the connection the process runs on.
func (p *Process) ConnID() string {
	p.srv.mu.Lock()
	defer p.srv.mu.Unlock()
	return p.connID
}

// Next returns the next update, waiting until ctx ends.
func (p *Process) Next(ctx context.Context) (Update, error) {
	return p.updates.next(ctx)
}

// Pending is the number of updates not yet taken.
func (p *Process) Pending() int { return p.updates.len() }

// NextResult returns the next update, which must be a ProcResult; any
// other update is returned as an error (Update.Error, or a description).
func (p *Process) NextResult(ctx context.Context) (map[string]any, error) {
	u, err := p.Next(ctx)
	if err != nil {
		return nil, err
	}
	if u.Kind != UpdateResult {
		if e := u.Error(); e != nil {
			return nil, fmt.Errorf("proc %s: %w", p.id, e)
		}
		return nil, fmt.Errorf("proc %s: got %v, want a ProcResult", p.id, u.Kind)
	}
	return u.Res, nil
}

// WaitState takes updates until a ProcResult whose state is one of
// states, skipping other results and fd data. A delete, unknown, request
// error or timeout fails it.
func (p *Process) WaitState(ctx context.Context, states ...string) (map[string]any, error) {
	for {
		u, err := p.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("proc %s: waiting for %v: %w", p.id, states, err)
		}
		if e := u.Error(); e != nil {
			return nil, fmt.Errorf("proc %s: waiting for %v: %w", p.id, states, e)
		}
		if u.Kind != UpdateResult {
			continue
		}
		for _, s := range states {
			if u.State() == s {
				return u.Res, nil
			}
		}
	}
}

// send sends a request about this process on its connection.
func (p *Process) send(typ string, fields map[string]any) error {
	return p.srv.Send(p.ConnID(), typ, fields)
}

// RequestResult sends ProcResultRequest; the answer comes as an update.
func (p *Process) RequestResult() error {
	return p.send("ProcResultRequest", map[string]any{"proc_id": p.id})
}

// Signal sends ProcSignalRequest; the agent answers only on failure.
func (p *Process) Signal(signum int) error {
	return p.send("ProcSignalRequest", map[string]any{"proc_id": p.id, "signum": signum})
}

// RequestFdData sends ProcFdDataRequest for [start, stop), or to the end
// when stop is nil.
func (p *Process) RequestFdData(fd string, start int64, stop *int64) error {
	var s any
	if stop != nil {
		s = *stop
	}
	return p.send("ProcFdDataRequest", map[string]any{"proc_id": p.id, "fd": fd, "start": start, "stop": s})
}

// FdData requests fd data and waits for the ProcFdData that answers it
// (same fd and start; its stop may be clamped), skipping results and
// pushed data for other ranges. A RequestError or
// ProcUnknown fails it.
func (p *Process) FdData(ctx context.Context, fd string, start int64, stop *int64) (*wire.ProcFdData, error) {
	if err := p.RequestFdData(fd, start, stop); err != nil {
		return nil, err
	}
	for {
		u, err := p.Next(ctx)
		if err != nil {
			return nil, fmt.Errorf("proc %s: waiting for fd data: %w", p.id, err)
		}
		if e := u.Error(); e != nil {
			return nil, fmt.Errorf("proc %s: fd data: %w", p.id, e)
		}
		if u.Kind == UpdateFdData && u.FdData.Fd == fd && u.FdData.Start == start {
			return u.FdData, nil
		}
	}
}

// RequestDelete sends ProcDeleteRequest.
func (p *Process) RequestDelete() error {
	return p.send("ProcDeleteRequest", map[string]any{"proc_id": p.id})
}

// Delete requests deletion and drains updates until the agent's
// ProcDelete, as Python's Process.delete does.
func (p *Process) Delete(ctx context.Context) error {
	if err := p.RequestDelete(); err != nil {
		return err
	}
	for {
		u, err := p.Next(ctx)
		if err != nil {
			return fmt.Errorf("proc %s: waiting for delete: %w", p.id, err)
		}
		if u.Kind == UpdateDelete {
			return nil
		}
		if e := u.Error(); e != nil {
			return fmt.Errorf("proc %s: delete: %w", p.id, e)
		}
	}
}
