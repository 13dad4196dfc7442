package fakecontrol

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// packed returns MessagePack encodings of every kind and width of value.
func packed(t testing.TB) [][]byte {
	t.Helper()
	big := map[string]any{}
	for i := range 70000 {
		big[strings.Repeat("k", i%7)+string(rune('a'+i%26))+string(rune(i))] = i
	}
	vals := []any{
		nil, true, false, 0, 1, -1, 127, 128, -33, 255, 256, 65535, 65536, -70000,
		1 << 40, -1 << 40, uint64(1) << 63, float32(1.5), 2.25,
		"", strings.Repeat("s", 31), strings.Repeat("s", 32), strings.Repeat("s", 256), strings.Repeat("s", 70000),
		[]byte{}, []byte("bin"), bytes.Repeat([]byte{1}, 300), bytes.Repeat([]byte{1}, 70000),
		[]any{}, make([]any, 15), make([]any, 16), make([]any, 70000),
		map[string]any{"a": 1}, big,
		[]any{[]any{[]any{map[string]any{"deep": []any{1, "x", nil}}}}},
		time.Unix(1, 2).UTC(), // ext -1, as fixext 8
	}
	var out [][]byte
	for _, v := range vals {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestCheckValueAcceptsMessagePack(t *testing.T) {
	for _, b := range packed(t) {
		rest, err := checkValue(b, 0)
		if err != nil || len(rest) != 0 {
			t.Errorf("% x…: rest %d bytes, %v", b[:min(len(b), 8)], len(rest), err)
		}
		// One byte short is always an error.
		if _, err := checkValue(b[:len(b)-1], 0); err == nil {
			t.Errorf("% x… without its last byte: accepted", b[:min(len(b), 8)])
		}
	}
}

func TestDecodeMapRejectsHostileFrames(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, maxDepth+1), 0xc0)
	for _, tc := range []struct {
		name  string
		frame []byte
		want  string
	}{
		// A map whose value claims 2^32-1 elements: msgpack alone would
		// allocate 64 GiB before finding the frame is 8 bytes long.
		{"huge array", []byte{0x81, 0xa1, 'a', 0xdd, 0xff, 0xff, 0xff, 0xff}, "unexpected end"},
		{"huge map", []byte{0x81, 0xa1, 'a', 0xdf, 0xff, 0xff, 0xff, 0xff}, "unexpected end"},
		{"huge str", []byte{0x81, 0xa1, 'a', 0xdb, 0xff, 0xff, 0xff, 0xff}, "unexpected end"},
		{"deep", append([]byte{0x81, 0xa1, 'a'}, deep...), "nested deeper"},
		{"reserved", []byte{0x81, 0xa1, 'a', 0xc1}, "reserved code 0xc1"},
		{"trailing", []byte{0x80, 0xc0}, "1 bytes after the message"},
	} {
		_, err := decodeMap(tc.frame)
		if !errors.Is(err, ErrProtocol) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a protocol error with %q", tc.name, err, tc.want)
		}
	}
	// maxDepth containers (the map and maxDepth-1 arrays) are fine.
	ok := append([]byte{0x81, 0xa1, 'a'}, deep[2:]...)
	if _, err := decodeMap(ok); err != nil {
		t.Errorf("%d containers deep: %v", maxDepth, err)
	}
}

// FuzzCheckValue: on whatever checkValue accepts, msgpack never runs out
// of bytes (it may still refuse what it cannot build, such as a map with
// integer keys), and when it decodes it uses the same bytes.
func FuzzCheckValue(f *testing.F) {
	for _, b := range packed(f) {
		if len(b) < 4096 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rest, err := checkValue(b, 0)
		if err != nil {
			return
		}
		r := bytes.NewReader(b)
		_, err = msgpack.NewDecoder(r).DecodeInterface()
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			t.Fatalf("checkValue accepted % x, which msgpack finds short: %v", b, err)
		case err == nil && r.Len() != len(rest):
			t.Fatalf("% x: checkValue left %d bytes, msgpack %d", b, len(rest), r.Len())
		}
	})
}
