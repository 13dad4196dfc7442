package link

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/wire"
)

// handle decodes one binary frame from the server and answers it.
func (s *session) handle(ctx context.Context, data []byte) {
	m, err := wire.DecodeMessage(data)
	if err != nil {
		var de *wire.DecodeError
		if errors.As(err, &de) && de.Raw != nil {
			s.log.Info("cannot decode a message from the server", "type", de.Type, "error", err.Error())
			msg := de.Err
			if msg == nil {
				msg = err
			}
			s.send(ctx, wire.RequestError{Msg: de.Raw, Err: msg.Error()})
			return
		}
		s.log.Info("ignoring an undecodable frame from the server", "error", err.Error(), "length", len(data))
		return
	}
	switch req := deref(m).(type) {
	case wire.ProcStartRequest:
		s.start(ctx, m, req)
	case wire.ProcidListRequest:
		s.procidList(ctx)
	case wire.ProcResultRequest:
		s.result(ctx, req)
	case wire.ProcSignalRequest:
		s.signal(ctx, m, req)
	case wire.ProcFdDataRequest:
		s.fdData(ctx, m, req)
	case wire.ProcDeleteRequest:
		s.delete(ctx, m, req)
	default:
		// Registered after the handshake, or a message only agents send.
		s.log.Info("unexpected message from the server", "type", m.MessageType())
		s.requestError(ctx, m, "unexpected")
	}
}

// requestError answers req with RequestError{msg: req, err: text}.
func (s *session) requestError(ctx context.Context, req wire.Message, text string) {
	s.send(ctx, wire.RequestError{Msg: wire.EchoRequest(req), Err: text})
}

// start starts a batch: all or nothing. There is no direct reply on
// success; the pusher announces each proc with a ProcResult. A batch
// procstar would refuse is refused with procstar's error, the first it
// would report, in its order: wire.PrepareStart's checks (proc IDs in
// use, fds), then a shutdown state other than active. Only then does the
// controller check what procstar does not (see wire.StartErrorText).
func (s *session) start(ctx context.Context, m wire.Message, req wire.ProcStartRequest) {
	procs, err := wire.PrepareStart(req.Specs, func(id string) (bool, error) {
		_, err := s.l.b.Get(ctx, id)
		return errdefs.Found(err)
	})
	if err != nil {
		s.requestError(ctx, m, err.Error())
		return
	}
	if st, _ := s.l.cfg.Shutdown.ShutdownState(); st != StateActive {
		s.requestError(ctx, m, "agent shutting down: "+st)
		return
	}
	if len(procs) == 0 {
		return
	}
	for i := range procs {
		procs[i].SetDefaults()
	}
	if _, err := s.l.b.Create(ctx, procs); err != nil {
		s.log.V(1).Info("start request failed", "error", err.Error(), "count", len(procs))
		s.requestError(ctx, m, wire.StartErrorText(err, procs))
		return
	}
	s.log.V(1).Info("started processes", "count", len(procs))
}

func (s *session) procidList(ctx context.Context) {
	list, err := s.l.b.List(ctx, nil)
	if err != nil {
		s.requestError(ctx, wire.ProcidListRequest{}, err.Error())
		return
	}
	ids := make([]string, 0, len(list.Items))
	for i := range list.Items {
		ids = append(ids, list.Items[i].Metadata.Name)
	}
	slices.Sort(ids)
	s.send(ctx, wire.ProcidList{ProcIDs: ids})
}

// result answers with the proc's current result. It reads and sends
// under resultMu, as the pusher does, so a reply never goes out after a
// newer result the pusher read later.
func (s *session) result(ctx context.Context, req wire.ProcResultRequest) {
	s.resultMu.Lock()
	defer s.resultMu.Unlock()
	res, err := s.l.b.Result(ctx, req.ProcID)
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		s.send(ctx, wire.ProcUnknown{ProcID: req.ProcID})
	case err != nil:
		s.requestError(ctx, req, err.Error())
	default:
		s.send(ctx, wire.ProcResult{ProcID: req.ProcID, Res: res})
	}
}

// signal signals the proc's process (not its group, as procstar does).
func (s *session) signal(ctx context.Context, m wire.Message, req wire.ProcSignalRequest) {
	err := s.l.b.Signal(ctx, req.ProcID, req.Signum, false)
	switch {
	case err == nil:
	case errors.Is(err, errdefs.ErrNotFound):
		s.send(ctx, wire.ProcUnknown{ProcID: req.ProcID})
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		// The process has been reaped: procstar's ESRCH.
		s.requestError(ctx, m, "no process")
	default:
		s.requestError(ctx, m, err.Error())
	}
}

// delete deletes a proc that is not running; the pusher sends ProcDelete.
func (s *session) delete(ctx context.Context, m wire.Message, req wire.ProcDeleteRequest) {
	_, err := s.l.b.Delete(ctx, req.ProcID, v1.DeleteOptions{RefuseRunning: true})
	switch {
	case err == nil:
	case errors.Is(err, errdefs.ErrNotFound):
		s.send(ctx, wire.ProcUnknown{ProcID: req.ProcID})
	case errors.Is(err, errdefs.ErrFailedPrecondition):
		s.requestError(ctx, m, "process running: "+req.ProcID)
	default:
		s.requestError(ctx, m, err.Error())
	}
}

// fdData answers with the captured bytes of [start, stop) in one message.
// The range is clamped to what has been captured.
func (s *session) fdData(ctx context.Context, m wire.Message, req wire.ProcFdDataRequest) {
	fd, err := v1.FdName(req.Fd).Number()
	if err != nil {
		s.requestError(ctx, m, "bad fd: "+req.Fd)
		return
	}
	proc, err := s.l.b.Get(ctx, req.ProcID)
	if errors.Is(err, errdefs.ErrNotFound) {
		s.send(ctx, wire.ProcUnknown{ProcID: req.ProcID})
		return
	}
	if err != nil {
		s.requestError(ctx, m, err.Error())
		return
	}
	spec, ok := findFd(&proc.Spec, fd)
	switch {
	case !ok:
		s.requestError(ctx, m, "no fd: "+strconv.Itoa(fd))
		return
	case spec.Capture == nil:
		s.requestError(ctx, m, "no fd data")
		return
	case req.Start < 0:
		s.requestError(ctx, m, "bad range: start "+strconv.FormatInt(req.Start, 10))
		return
	case req.Stop != nil && *req.Stop < 0:
		s.requestError(ctx, m, "bad range: stop "+strconv.FormatInt(*req.Stop, 10))
		return
	}
	if at, ok := s.l.b.(OutputReaderAt); ok {
		frame, err := s.fdDataFrame(ctx, at, req, fd, encodingOf(spec.Capture))
		switch {
		case errors.Is(err, errdefs.ErrNotFound):
			s.send(ctx, wire.ProcUnknown{ProcID: req.ProcID})
		case err != nil:
			s.requestError(ctx, m, err.Error())
		default:
			if err := s.q.pushWait(ctx, frame); err != nil && ctx.Err() == nil {
				s.cancel(err)
			}
		}
		return
	}
	data, err := s.l.b.ReadOutput(ctx, req.ProcID, fd, req.Start, req.Stop)
	if errors.Is(err, errdefs.ErrNotFound) {
		s.send(ctx, wire.ProcUnknown{ProcID: req.ProcID})
		return
	}
	if err != nil {
		s.requestError(ctx, m, err.Error())
		return
	}
	if data == nil {
		data = []byte{}
	}
	s.send(ctx, wire.ProcFdData{
		ProcID:   req.ProcID,
		Fd:       req.Fd,
		Start:    req.Start,
		Stop:     req.Start + int64(len(data)),
		Encoding: encodingOf(spec.Capture),
		Data:     data,
	})
}

// findFd returns the spec entry of fd number fd.
func findFd(spec *v1.ProcSpec, fd int) (v1.FdSpec, bool) {
	for _, f := range spec.Fds {
		if n, err := f.Fd.Number(); err == nil && n == fd {
			return f, true
		}
	}
	return v1.FdSpec{}, false
}

// encodingOf is ProcFdData.encoding for a capture: "utf-8", else nil
// (procstar's base64 default means raw bytes here).
func encodingOf(c *v1.CaptureFd) *string {
	if c != nil && c.Encoding == v1.EncodingUTF8 {
		s := string(v1.EncodingUTF8)
		return &s
	}
	return nil
}

// OutputReaderAt is an optional extension of Backend (the controller has
// it). With it a ProcFdData reply is read straight into its frame, so a
// 64 MiB reply costs one 64 MiB buffer rather than two.
type OutputReaderAt interface {
	// ReadOutputAt reads bytes of fd's capture at offset off into p and
	// returns how many; fewer than len(p) at the end.
	ReadOutputAt(ctx context.Context, name string, fd int, p []byte, off int64) (int, error)
}

// fdDataFrame encodes the ProcFdData answering req, reading the data
// into the frame itself. The range is clamped to the bytes captured.
func (s *session) fdDataFrame(ctx context.Context, at OutputReaderAt, req wire.ProcFdDataRequest, fd int, enc *string) ([]byte, error) {
	info, err := s.l.b.OutputInfo(ctx, req.ProcID, fd)
	if err != nil {
		return nil, err
	}
	end := info.Length
	if req.Stop != nil {
		end = min(end, *req.Stop)
	}
	n := max(0, end-req.Start)
	if n > maxFdData {
		return nil, fmt.Errorf("%d bytes is more than the %d one message may carry", n, int64(maxFdData))
	}
	m := wire.ProcFdData{ProcID: req.ProcID, Fd: req.Fd, Start: req.Start, Stop: req.Start + n, Encoding: enc}
	head, err := fdDataHead(m, int(n))
	if err != nil {
		return nil, err
	}
	frame := make([]byte, len(head)+int(n))
	copy(frame, head)
	data := frame[len(head):]
	got := 0
	for got < len(data) {
		k, err := at.ReadOutputAt(ctx, req.ProcID, fd, data[got:], req.Start+int64(got))
		got += k
		if errors.Is(err, io.EOF) || (err == nil && k == 0) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if got < len(data) {
		// Fewer bytes than OutputInfo promised: encode what there is.
		m.Stop = req.Start + int64(got)
		m.Data = data[:got]
		return wire.EncodeMessage(m)
	}
	return frame, nil
}

// maxFdData bounds one ProcFdData's data.
const maxFdData = 1 << 30

// fdDataHead encodes ProcFdData m, without its data, as wire.EncodeMessage
// would, up to and including the bin header of n bytes of data.
func fdDataHead(m wire.ProcFdData, n int) ([]byte, error) {
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	str := func(ss ...string) error {
		for _, s := range ss {
			if err := e.EncodeString(s); err != nil {
				return err
			}
		}
		return nil
	}
	err := errors.Join(
		e.EncodeMapLen(7),
		str("type", m.MessageType(), "proc_id", m.ProcID, "fd", m.Fd, "start"),
		e.EncodeInt(m.Start),
		str("stop"),
		e.EncodeInt(m.Stop),
		str("encoding"),
	)
	if err != nil {
		return nil, err
	}
	if m.Encoding == nil {
		err = e.EncodeNil()
	} else {
		err = e.EncodeString(*m.Encoding)
	}
	if err = errors.Join(err, str("data"), e.EncodeBytesLen(n)); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
