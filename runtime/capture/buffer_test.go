package capture

import (
	"bytes"
	"errors"
	"io"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

// checkBuffer compares b, after data was written to it, against a model of
// what limit must retain, at every offset and several read sizes.
func checkBuffer(t *testing.T, b *Buffer, limit *v1.CaptureLimit, data []byte) {
	t.Helper()
	n := int64(len(data))
	retainedHead, tailStart := n, n // everything retained
	if limit != nil {
		head, tail := max(limit.Head, 0), max(limit.Tail, 0)
		retainedHead = min(head, n)
		tailStart = max(retainedHead, n-tail)
	}
	want := append(append([]byte{}, data[:retainedHead]...), data[tailStart:]...)
	if got := b.Bytes(); !bytes.Equal(got, want) {
		t.Fatalf("Bytes = %q, want %q", got, want)
	}
	if b.Len() != n {
		t.Fatalf("Len = %d, want %d", b.Len(), n)
	}
	if d := b.Dropped(); d != tailStart-retainedHead {
		t.Fatalf("Dropped = %d, want %d", d, tailStart-retainedHead)
	}
	for _, size := range []int{1, 3, 16, len(data) + 1} {
		p := make([]byte, size)
		for off := int64(0); off <= n+1; off++ {
			m, err := b.ReadAt(p, off)
			// Expected: bytes from off until the end, a dropped range or
			// size, whichever comes first.
			var wantErr error
			end := min(off+int64(size), n)
			switch {
			case off >= n:
				end, wantErr = off, io.EOF
			case off >= retainedHead && off < tailStart:
				end, wantErr = off, ErrDropped
			case off < retainedHead && end > retainedHead && retainedHead < tailStart:
				end, wantErr = retainedHead, ErrDropped
			case off+int64(size) > n:
				wantErr = io.EOF
			}
			if m != int(end-off) || !errors.Is(err, wantErr) && !(err == nil && wantErr == nil) {
				t.Fatalf("ReadAt(%d, %d) = %d, %v; want %d, %v", size, off, m, err, end-off, wantErr)
			}
			if m > 0 && !bytes.Equal(p[:m], data[off:off+int64(m)]) {
				t.Fatalf("ReadAt(%d, %d) = %q, want %q", size, off, p[:m], data[off:off+int64(m)])
			}
		}
	}
	if _, err := b.ReadAt(make([]byte, 1), -1); !errors.Is(err, ErrNegativeOffset) {
		t.Fatalf("ReadAt at -1: %v, want ErrNegativeOffset", err)
	}
}

func TestBuffer(t *testing.T) {
	data := make([]byte, 300)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	limits := map[string]*v1.CaptureLimit{
		"unlimited":  nil,
		"discard":    {},
		"head":       {Head: 10},
		"tail":       {Tail: 10},
		"both":       {Head: 7, Tail: 11},
		"bothLarge":  {Head: 200, Tail: 200},
		"negative":   {Head: -5, Tail: -5},
		"hugeTail":   {Tail: 1 << 60},
		"exactFit":   {Head: 100, Tail: 200},
		"tailOnlyEq": {Tail: 300},
	}
	writeSizes := []int{1, 5, 64, 299, 300}
	for name, limit := range limits {
		for _, ws := range writeSizes {
			for _, n := range []int{0, 1, 9, 10, 17, 18, 150, 300} {
				t.Run(name, func(t *testing.T) {
					b := NewBuffer(limit)
					for off := 0; off < n; off += ws {
						b.Write(data[off:min(off+ws, n)])
					}
					checkBuffer(t, b, limit, data[:n])
				})
			}
		}
	}
}

func TestBufferChunksGrow(t *testing.T) {
	b := NewBuffer(nil)
	data := patternBytes(3, 5<<20+123)
	for off := 0; off < len(data); off += 100_000 {
		b.Write(data[off:min(off+100_000, len(data))])
	}
	if got := b.Bytes(); !bytes.Equal(got, data) {
		t.Fatal("Bytes differs from what was written")
	}
	for i, c := range b.chunks {
		if cap(c) > maxChunk || (i < len(b.chunks)-1 && len(c) != cap(c)) {
			t.Fatalf("chunk %d: len %d cap %d", i, len(c), cap(c))
		}
	}
	p := make([]byte, 3<<20)
	for _, off := range []int64{0, 4095, 4096, 12287, 1 << 20, 2<<20 + 5} {
		m, err := b.ReadAt(p, off)
		if err != nil || !bytes.Equal(p[:m], data[off:off+int64(m)]) || m != len(p) {
			t.Fatalf("ReadAt(%d) = %d, %v", off, m, err)
		}
	}
}

func FuzzBuffer(f *testing.F) {
	f.Add([]byte("hello, world"), int64(3), int64(4), uint8(5))
	f.Add(make([]byte, 100), int64(0), int64(0), uint8(1))
	f.Add([]byte("abc"), int64(-1), int64(10), uint8(2))
	f.Add(make([]byte, 70), int64(50), int64(0), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, head, tail int64, ws uint8) {
		if len(data) > 512 {
			data = data[:512]
		}
		var limit *v1.CaptureLimit
		if head != 0 || tail != 0 || ws%2 == 1 {
			limit = &v1.CaptureLimit{Head: head, Tail: tail}
		}
		step := int(ws)%37 + 1
		b := NewBuffer(limit)
		for off := 0; off < len(data); off += step {
			b.Write(data[off:min(off+step, len(data))])
		}
		checkBuffer(t, b, limit, data)
	})
}
