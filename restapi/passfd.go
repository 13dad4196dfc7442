package restapi

// This file passes a capture file itself to a log reader on the agent's
// unix socket: the reader then reads at file speed, with no copy through
// the agent and the socket.

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	v1 "procstar.dev/procstar/api/v1"
)

// overUnix reports whether the request came over a plain unix socket, the
// only transport that can carry an open file.
func overUnix(r *http.Request) bool {
	a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	return ok && a.Network() == "unix" && r.TLS == nil
}

// passFd answers a log request that asked for it (v1.HeaderPassFd) with
// the capture file: an empty 200 response whose bytes carry an open,
// read-only file description of it (SCM_RIGHTS) and whose headers give
// the window [from, end) that answers the request. It reports false,
// having written nothing, when it cannot: the request did not come over a
// unix socket, or the capture is not file-backed.
func (h *handler) passFd(q *request, name string, fd int, from, end int64) bool {
	if !overUnix(q.r) {
		return false
	}
	filer, ok := h.b.(OutputFiler)
	if !ok {
		return false
	}
	f, err := filer.OutputFile(q.r.Context(), name, fd)
	if err != nil {
		return false
	}
	defer f.Close()
	conn, _, err := http.NewResponseController(q.w).Hijack()
	if err != nil {
		return false // nothing written: the body goes the usual way
	}
	defer conn.Close()
	var b strings.Builder
	b.WriteString("HTTP/1.1 200 OK\r\n")
	fmt.Fprintf(&b, "Content-Type: %s\r\n", q.w.Header().Get("Content-Type"))
	fmt.Fprintf(&b, "%s: 1\r\n%s: %d\r\n%s: %d\r\n", v1.HeaderPassFd, v1.HeaderOutputOffset, from, v1.HeaderOutputLength, end-from)
	b.WriteString("Content-Length: 0\r\nConnection: close\r\n\r\n")
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		// A listener that wraps its unix connections: no ancillary data.
		h.log.Error(fmt.Errorf("connection %T is not a *net.UnixConn", conn), "cannot pass a capture file", "proc", name, "fd", fd)
		_, _ = conn.Write([]byte("HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
		return true
	}
	if _, _, err := uc.WriteMsgUnix([]byte(b.String()), syscall.UnixRights(int(f.Fd())), nil); err != nil && !isClientGone(q.r.Context(), err) {
		h.log.Error(err, "passing a capture file failed", "proc", name, "fd", fd)
	}
	return true
}
