package v1

// Headers of the v1 REST API beyond plain HTTP.
const (
	// HeaderPassFd, set to "1" on a GET of a proc's log over a unix
	// socket, asks the server to pass the capture file itself (an open,
	// read-only file, as SCM_RIGHTS ancillary data on the response's
	// bytes) instead of copying its bytes into the body. On the response
	// it says the server did: the body is empty, and HeaderOutputOffset
	// and HeaderOutputLength give the window of the file that answers the
	// request. A server that cannot (a memory capture, a network socket)
	// ignores the request header and sends the body.
	HeaderPassFd = "Procstar-Pass-Fd"
	// HeaderOutputOffset is the first byte of the passed file's window.
	HeaderOutputOffset = "Procstar-Output-Offset"
	// HeaderOutputLength is the length of the passed file's window.
	HeaderOutputLength = "Procstar-Output-Length"
)
