package client

import (
	"bufio"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

// FuzzDecodeError: any error body gives a one-line *APIError, never a
// panic.
func FuzzDecodeError(f *testing.F) {
	f.Add(404, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"proc \"x\" not found","reason":"NotFound","code":404}`)
	f.Add(400, `{"errors":{"status":"400","detail":"process running: x"}}`)
	f.Add(500, "line one\nline two")
	f.Add(409, `{"message":null,"reason":7}`)
	f.Add(0, "")
	f.Fuzz(func(t *testing.T, code int, body string) {
		resp := &http.Response{StatusCode: code}
		err := error(decodeErrorBody(resp, []byte(body)))
		var ae *APIError
		if !errors.As(err, &ae) {
			t.Fatalf("not an *APIError: %v", err)
		}
		if strings.ContainsAny(ae.Message, "\n\r") || ae.Message == "" {
			t.Fatalf("message %q is not one non-empty line", ae.Message)
		}
		_ = ae.Class()
	})
}

// FuzzReadWatch: any stream ends with events and an error, never a panic
// or a hang.
func FuzzReadWatch(f *testing.F) {
	f.Add(`{"type":"ADDED","object":{"metadata":{"name":"a"},"spec":{"argv":["x"]}}}` + "\n")
	f.Add(`{"type":"ERROR","object":{"message":"too old","reason":"Expired","code":410}}` + "\n")
	f.Add(`{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}` + "\n\n\r\n")
	f.Add(`{"type":"DELETED","object":{"status":"Failure"}}`)
	f.Add("{")
	f.Fuzz(func(t *testing.T, stream string) {
		c := &Client{server: "fuzz"}
		out := make(chan v1.WatchEvent)
		done := make(chan error, 1)
		go func() {
			done <- c.readWatch(context.Background(), bufio.NewReader(strings.NewReader(stream)), out)
			close(out)
		}()
		for range out {
		}
		<-done
	})
}
