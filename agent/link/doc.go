// Package link is the agent's WebSocket client of a control plane: it
// dials out, registers, answers the server's requests and pushes what
// changes, speaking procstar 0.7.5's agent protocol (reference §4) so that
// any server that drives procstar agents (Apsis's Python one included)
// drives this agent unchanged.
//
// A connection is a pair of pumps (STYLE point 13): one reader goroutine
// that reads every frame and handles the server's requests in order, and
// one writer goroutine that owns every write and the ping ticker. A third
// goroutine per connection, the pusher, follows the proc table's watch and
// the agent's shutdown state and turns their changes into pushes. Reader
// and pusher hand encoded frames to the writer through one bounded send
// queue.
//
// Behaviour worth knowing, where procstar 0.7.5 leaves room or has bugs:
//
//   - A text frame is logged and ignored (procstar drops the connection).
//   - A frame that fails to decode is answered with RequestError when it is
//     a map with a "type" key (msg is the raw map, err the decode error);
//     anything else is logged. procstar answers nothing.
//   - A refused ProcStartRequest gets RequestError with the one error
//     procstar would report first, in its words and order of checks (proc
//     IDs in use, fds, pipes, shutdown state). What procstar does not check
//     but we do (NUL bytes, an empty argv, fd ranges, ...) is reported
//     as "proc ID: FIELD: DETAIL", again only the first problem.
//   - ProcSignalRequest with signal 0 is kill(pid, 0): no reply while the
//     process exists, "no process" once it has been reaped.
//   - ProcFdDataRequest ranges are clamped to the captured bytes, never a
//     panic; the reply's stop is start plus the length of the data sent.
//   - The link dials the server directly, as procstar does; proxy
//     environment variables are ignored.
//   - The send queue is bounded in bytes. The reader waits for room (so a
//     slow server slows down its own requests); a push that finds the queue
//     full drops the connection instead, because the pusher must never
//     block nor grow without bound. The agent then reconnects, and the
//     server reconciles from Register.proc_ids with ProcResultRequests, as
//     it does after any disconnect.
//   - Extensions (push-status, push-output, labels, resources; see
//     wire.Extension) are offered in the Procstar-Extensions handshake
//     header and used only when the server's response lists them. With
//     push-output, each new connection pushes every capture from offset
//     0, so a server that lost the connection still gets all the bytes
//     without polling.
//   - A proc's first ProcResult is its result read when the pusher sees it
//     created; if the process ended just then, it may already say
//     terminated, and the final ProcResult (sent once the output has
//     drained) repeats it with the drained lengths.
//   - After pushing ShutDown{done} the link sends a Close frame and does not
//     reconnect (procstar drops the socket without one).
//
// This package holds no proc state of its own and must not reach into the
// runtime: everything goes through the small Backend interface, which
// *controller.Controller satisfies. It must not import package agent; the
// agent's shutdown state comes through the ShutdownSource interface.
package link
