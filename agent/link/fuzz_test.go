package link

import (
	"context"
	"errors"
	"testing"

	"github.com/go-logr/logr"
	"github.com/vmihailenco/msgpack/v5"

	"procstar.dev/procstar/wire"
)

// FuzzHandle feeds frames to a session's request handler: whatever comes
// in, the agent must not panic, and every frame that is a map with a
// "type" gets exactly one reply.
func FuzzHandle(f *testing.F) {
	seed := func(m map[string]any) []byte {
		b, _ := msgpack.Marshal(m)
		return b
	}
	f.Add([]byte{})
	f.Add([]byte{0xc1})
	f.Add([]byte{0x93, 1, 2, 3})
	f.Add(seed(map[string]any{"type": "ProcidListRequest"}))
	f.Add(seed(map[string]any{"type": "ProcResultRequest", "proc_id": "x"}))
	f.Add(seed(map[string]any{"type": "ProcFdDataRequest", "proc_id": "x", "fd": "stdout", "start": -1, "stop": nil}))
	f.Add(seed(map[string]any{"type": "ProcSignalRequest", "proc_id": "x", "signum": 1 << 40}))
	f.Add(seed(map[string]any{"type": "ProcDeleteRequest", "proc_id": 7}))
	f.Add(seed(map[string]any{"type": "Registered", "extra": []any{1, "a", nil}}))
	f.Add(seed(map[string]any{"type": "ProcStartRequest", "specs": map[string]any{"a": "not a spec"}}))
	f.Add(seed(map[string]any{"type": 12}))
	ctl := newController(f)
	l, err := New(Config{Host: "h"}, ctl)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		s := &session{l: l, log: logr.Discard(), q: newSendQueue(1 << 20), cancel: cancel}
		// With no connection, holding wmu keeps every reply in the queue
		// (no write-through), where the test reads them.
		s.wmu.Lock()
		defer s.wmu.Unlock()
		s.handle(ctx, data)
		var replies int
		for {
			frame, _, ok := s.q.pop()
			if !ok {
				break
			}
			replies++
			if _, err := wire.DecodeMessage(frame); err != nil {
				t.Errorf("reply does not decode: %v", err)
			}
		}
		// (msgpack.Unmarshal would trust a huge map length and run out
		// of memory; wire's decoder is the judge of what is typed.)
		_, err := wire.DecodeMessage(data)
		var de *wire.DecodeError
		typed := err == nil || errors.As(err, &de)
		if replies > 1 || (!typed && replies > 0) {
			t.Errorf("%d replies (typed %v)", replies, typed)
		}
	})
}
