package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sync"

	v1 "procstar.dev/procstar/api/v1"
)

// maxWatchLine bounds one line of a watch stream.
const maxWatchLine = 64 << 20

// Watcher is a running watch. Read events from Events until it is closed,
// then call Err.
type Watcher struct {
	events chan v1.WatchEvent
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards err and stopped
	err     error
	stopped bool
}

// Events returns the stream of events. It is closed when the server ends
// the stream, an error happens, or Stop is called.
func (w *Watcher) Events() <-chan v1.WatchEvent { return w.events }

// Err returns why the stream ended: nil when the server closed it cleanly
// or Stop was called, an *APIError for an ERROR event (errdefs.ErrGone for
// a resourceVersion too old), the context's error, or a *ConnError. It is
// meaningful once Events is closed.
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Stop ends the watch and waits until Events is closed. It is safe to
// call more than once.
func (w *Watcher) Stop() {
	w.mu.Lock()
	w.stopped = true
	w.mu.Unlock()
	w.cancel()
	<-w.done
}

// Watch streams changes to the procs that opts select, starting after
// resourceVersion rv (empty: the server's choice, usually now). With a
// field selector, a proc that comes to match arrives as ADDED and one
// that stops matching as DELETED. Errors before the stream starts
// (unreachable server, 401, bad selector) are returned at once; later ones
// come from Watcher.Err.
func (c *Client) Watch(ctx context.Context, opts ListOptions, rv string) (*Watcher, error) {
	q := url.Values{}
	q.Set("watch", "true")
	opts.addTo(q)
	if rv != "" {
		q.Set("resourceVersion", rv)
	}
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	resp, reqCancel, err := c.do(ctx, request{method: http.MethodGet, path: ProcsPath, query: q, stream: true, accept: opts.accept()})
	if err != nil {
		cancel()
		return nil, err
	}
	w := &Watcher{events: make(chan v1.WatchEvent), cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(w.events)
		defer reqCancel()
		defer resp.Body.Close()
		err := c.readWatch(ctx, bufio.NewReader(resp.Body), w.events)
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case w.stopped:
			w.err = nil
		case err != nil && parent.Err() != nil:
			w.err = parent.Err()
		default:
			w.err = err
		}
	}()
	return w, nil
}

// rawEvent is a watch line before its object's type is known.
type rawEvent struct {
	Type   v1.WatchEventType `json:"type"`
	Object json.RawMessage   `json:"object"`
}

func (c *Client) readWatch(ctx context.Context, r *bufio.Reader, out chan<- v1.WatchEvent) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxWatchLine)
	for sc.Scan() {
		line := sc.Bytes()
		if len(trimSpace(line)) == 0 {
			continue
		}
		var raw rawEvent
		if err := json.Unmarshal(line, &raw); err != nil {
			return fmt.Errorf("%w: watch line: %w", ErrBadResponse, err)
		}
		ev := v1.WatchEvent{Type: raw.Type}
		switch raw.Type {
		case v1.WatchError:
			var st v1.Status
			if err := json.Unmarshal(raw.Object, &st); err != nil {
				return fmt.Errorf("%w: watch ERROR event: %w", ErrBadResponse, err)
			}
			e := &APIError{Code: st.Code, Reason: st.Reason, Message: oneLine(st.Message)}
			if e.Reason == "" {
				e.Reason = reasonForCode(st.Code)
			}
			return e
		case v1.Added, v1.Modified, v1.Deleted, v1.Bookmark:
			if err := json.Unmarshal(raw.Object, &ev.Object); err != nil {
				return fmt.Errorf("%w: watch %s event: %w", ErrBadResponse, raw.Type, err)
			}
		default:
			return fmt.Errorf("%w: watch event type %q", ErrBadResponse, raw.Type)
		}
		select {
		case out <- ev:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := sc.Err(); err != nil {
		return c.readErr(ctx, err)
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
