package restapi

// This file is the one place where errors become HTTP status codes, and
// where error bodies are written in both shapes: procstar's
// {"errors":{…}} and the v1 API's Status.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"unicode/utf8"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/wire"
)

// Errors of the HTTP layer itself, classed like the backend's.
var (
	// errMethodNotAllowed: a known path with another method.
	errMethodNotAllowed = errors.New("method not allowed")
	// errNoRoute: an unknown path.
	errNoRoute = errors.New("no such route")
	// errRange: a Range (or start) that the output cannot satisfy.
	errRange = errors.New("range not satisfiable")
	// errMediaType: a request body of a type the route does not read.
	errMediaType = errors.New("unsupported media type")
	// errNotAcceptable: an Accept header that names only views (as=…)
	// that are not served.
	errNotAcceptable = errors.New("not acceptable")
	// errInternal: a bug (a recovered panic, an encoding failure).
	errInternal = errors.New("internal error")
)

// Kubernetes' reasons for 415 and 406.
const (
	reasonUnsupportedMediaType v1.StatusReason = "UnsupportedMediaType"
	reasonNotAcceptable        v1.StatusReason = "NotAcceptable"
)

// httpStatus maps an error to its HTTP code and Status reason. It is the
// only place that does. procstar selects procstar 0.7.5's mapping, where
// every failure that is not "not found" (or an HTTP-level one: 401, 405,
// 413) is a 400 carrying the error's message.
func httpStatus(err error, procstar bool) (int, v1.StatusReason) {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, v1.StatusReasonRequestTooLarge
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized, v1.StatusReasonUnauthorized
	case errors.Is(err, errMethodNotAllowed):
		return http.StatusMethodNotAllowed, v1.StatusReasonMethodNotAllowed
	case errors.Is(err, errdefs.ErrNotFound), errors.Is(err, errNoRoute):
		return http.StatusNotFound, v1.StatusReasonNotFound
	case errors.Is(err, errInternal):
		return http.StatusInternalServerError, v1.StatusReasonInternalError
	case procstar:
		return http.StatusBadRequest, v1.StatusReasonBadRequest
	case errors.Is(err, v1.ErrInvalid):
		// A spec that decoded but does not validate, as Kubernetes does.
		return http.StatusUnprocessableEntity, v1.StatusReasonInvalid
	case errors.Is(err, errdefs.ErrInvalidArgument), errors.Is(err, v1.ErrDecode),
		errors.Is(err, v1.ErrBadSelector), errors.Is(err, v1.ErrBadFieldSelector), errors.Is(err, wire.ErrBadSpec):
		return http.StatusBadRequest, v1.StatusReasonBadRequest
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType, reasonUnsupportedMediaType
	case errors.Is(err, errNotAcceptable):
		return http.StatusNotAcceptable, reasonNotAcceptable
	case errors.Is(err, errRange):
		return http.StatusRequestedRangeNotSatisfiable, v1.StatusReasonRangeNotSatisfiable
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return http.StatusConflict, v1.StatusReasonAlreadyExists
	case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrFailedPrecondition):
		return http.StatusConflict, v1.StatusReasonConflict
	case errors.Is(err, errdefs.ErrGone):
		return http.StatusGone, v1.StatusReasonGone
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable, v1.StatusReasonServiceUnavailable
	}
	return http.StatusInternalServerError, v1.StatusReasonInternalError
}

// statusLine is "<code> <reason phrase>" as hyper (the http crate) writes
// it, which is where procstar's "status" strings come from. The phrases
// differ from Go's for a few codes.
func statusLine(code int) string {
	text := http.StatusText(code)
	switch code {
	case http.StatusRequestEntityTooLarge:
		text = "Payload Too Large"
	case http.StatusRequestedRangeNotSatisfiable:
		text = "Range Not Satisfiable"
	case http.StatusRequestURITooLong:
		text = "URI Too Long"
	}
	return strconv.Itoa(code) + " " + text
}

// writeProcstarError writes procstar's error body for err. A 404 and a
// 405 carry a null detail, as procstar's do; a 500 hides internals.
func writeProcstarError(w http.ResponseWriter, err error) {
	code, _ := httpStatus(err, true)
	var detail *string
	switch code {
	case http.StatusNotFound, http.StatusMethodNotAllowed:
	case http.StatusInternalServerError:
		s := "internal error"
		detail = &s
	default:
		s := err.Error()
		detail = &s
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="procstar"`)
	}
	body := procstarObject{"errors": procstarObject{"status": statusLine(code), "detail": detail}}
	writeProcstarJSON(w, code, body)
}

// procstarObject is a JSON object written the way serde_json writes a
// json!() value: keys sorted.
type procstarObject map[string]any

// writeProcstarJSON writes v as procstar does: compact JSON from a
// serde_json Value, which (without serde_json's preserve_order feature,
// which procstar does not enable) sorts the keys of every object, structs
// included, because json!() converts them with to_value.
func writeProcstarJSON(w http.ResponseWriter, code int, v any) {
	b, err := procstarJSON(v)
	if err != nil {
		code = http.StatusInternalServerError
		b = []byte(`{"errors":{"detail":"internal error","status":"500 Internal Server Error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// procstarJSON encodes v with wire.Marshal (so floats and times come out as
// Rust writes them) and then rewrites it with sorted keys and serde_json's
// string escaping.
func procstarJSON(v any) ([]byte, error) {
	raw, err := wire.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(raw))
	return appendSorted(out, tree), nil
}

// appendSorted appends a decoded JSON tree with object keys in byte order.
func appendSorted(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, "null"...)
	case bool:
		return strconv.AppendBool(b, v)
	case json.Number:
		return append(b, v...)
	case string:
		return appendSerdeString(b, v)
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSorted(b, e)
		}
		return append(b, ']')
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendSerdeString(b, k)
			b = append(b, ':')
			b = appendSorted(b, v[k])
		}
		return append(b, '}')
	}
	// Unreachable for a tree from encoding/json.
	return append(b, "null"...)
}

// appendSerdeString quotes s as serde_json does: only '"', '\\' and control
// characters are escaped; \b \t \n \f \r have short forms and other
// controls are \u00xx in lower-case hex.
func appendSerdeString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			if c < utf8.RuneSelf {
				b = append(b, c)
				i++
				continue
			}
			r, size := utf8.DecodeRuneInString(s[i:])
			b = utf8.AppendRune(b, r) // invalid bytes become U+FFFD
			i += size
			continue
		}
		switch c {
		case '"':
			b = append(b, '\\', '"')
		case '\\':
			b = append(b, '\\', '\\')
		case '\b':
			b = append(b, '\\', 'b')
		case '\t':
			b = append(b, '\\', 't')
		case '\n':
			b = append(b, '\\', 'n')
		case '\f':
			b = append(b, '\\', 'f')
		case '\r':
			b = append(b, '\\', 'r')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
	}
	return append(b, '"')
}

// writeStatus writes the v1 API's Status body for err.
func writeStatus(w http.ResponseWriter, err error) {
	code, reason := httpStatus(err, false)
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = "internal error"
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="procstar"`)
	}
	writeJSON(w, code, v1.Status{
		TypeMeta: v1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   "Failure",
		Message:  msg,
		Reason:   reason,
		Code:     code,
	})
}

// writeJSON writes v as compact JSON with a newline, for the v1 API.
func writeJSON(w http.ResponseWriter, code int, v any) {
	writeJSONAs(w, code, "application/json", v)
}

// writeJSONAs is writeJSON with another Content-Type.
func writeJSONAs(w http.ResponseWriter, code int, contentType string, v any) {
	// json.Encoder writes what json.Marshal returns and the newline, into
	// a pooled buffer rather than a new slice grown for the newline.
	buf := jsonBufPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer putJSONBuf(buf)
	var b []byte
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		code = http.StatusInternalServerError
		b = fmt.Appendf(nil, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"internal error","reason":%q,"code":500}`,
			v1.StatusReasonInternalError)
		b = append(b, '\n')
	} else {
		b = buf.Bytes()
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// jsonBufPool holds writeJSON's buffers.
var jsonBufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// putJSONBuf returns buf to the pool unless it has grown large (a big
// list), which is left to the garbage collector.
func putJSONBuf(buf *bytes.Buffer) {
	if buf.Cap() <= 64<<10 {
		jsonBufPool.Put(buf)
	}
}
