package capture

import (
	"io"
	"sort"

	v1 "procstar.dev/procstar/api/v1"
)

// Chunk sizes of an unlimited Buffer: the first chunk is small so that the
// many procs with little output stay cheap; each next chunk doubles, up to
// maxChunk, so growth never copies what was already stored.
const (
	minChunk = 4 << 10
	maxChunk = 1 << 20
)

// Buffer retains a byte stream in memory under a capture limit. Without a
// limit it keeps everything in a list of chunks (appending never copies old
// data). With a limit {Head, Tail} it keeps the first Head bytes and a ring
// of the last Tail bytes, and counts the bytes it drops between them; the
// limit {0, 0} keeps nothing and only counts.
//
// Memory grows with the output actually written, never with the limit: a
// large Tail does not allocate until that much output arrived.
//
// A Buffer is not safe for concurrent use; memory captures guard theirs
// with a mutex. The zero Buffer is an unlimited empty buffer.
type Buffer struct {
	limited bool
	headMax int64
	tailMax int64
	length  int64 // every byte ever written

	// Unlimited: chunks[i] holds stream bytes from starts[i]. Every chunk
	// but the last is full (len == cap).
	chunks [][]byte
	starts []int64

	// Limited: head holds stream bytes [0, len(head)). ring holds the last
	// len(ring) bytes of the stream in the order ring[ringPos:] then
	// ring[:ringPos]; ringPos stays 0 until len(ring) == tailMax.
	head    []byte
	ring    []byte
	ringPos int
}

// NewBuffer returns an empty Buffer for limit; nil means unlimited.
// Negative head or tail counts are taken as zero.
func NewBuffer(limit *v1.CaptureLimit) *Buffer {
	b := &Buffer{}
	if limit != nil {
		b.limited = true
		b.headMax = max(limit.Head, 0)
		b.tailMax = max(limit.Tail, 0)
	}
	return b
}

// Len is the number of bytes written, retained or not.
func (b *Buffer) Len() int64 { return b.length }

// Dropped is the number of bytes the limit discarded: the stream range
// [Len()-Dropped()-tail, Len()-tail) where tail is what the ring holds.
func (b *Buffer) Dropped() int64 {
	if !b.limited {
		return 0
	}
	return b.length - int64(len(b.head)) - int64(len(b.ring))
}

// Write appends p to the stream. It never fails.
func (b *Buffer) Write(p []byte) (int, error) {
	n := len(p)
	b.length += int64(n)
	if !b.limited {
		b.writeChunks(p)
		return n, nil
	}
	if room := b.headMax - int64(len(b.head)); room > 0 {
		k := int(min(room, int64(len(p))))
		b.head = append(b.head, p[:k]...)
		p = p[k:]
	}
	if len(p) == 0 || b.tailMax == 0 {
		return n, nil
	}
	if int64(len(p)) >= b.tailMax {
		// Only the last tailMax bytes of p survive.
		if int64(cap(b.ring)) >= b.tailMax {
			b.ring = b.ring[:b.tailMax]
		} else {
			b.ring = make([]byte, b.tailMax)
		}
		copy(b.ring, p[int64(len(p))-b.tailMax:])
		b.ringPos = 0
		return n, nil
	}
	if room := b.tailMax - int64(len(b.ring)); room > 0 {
		k := int(min(room, int64(len(p))))
		b.ring = append(b.ring, p[:k]...)
		p = p[k:]
	}
	for len(p) > 0 {
		k := copy(b.ring[b.ringPos:], p)
		p = p[k:]
		b.ringPos += k
		if b.ringPos == len(b.ring) {
			b.ringPos = 0
		}
	}
	return n, nil
}

func (b *Buffer) writeChunks(p []byte) {
	for len(p) > 0 {
		last := len(b.chunks) - 1
		if last < 0 || len(b.chunks[last]) == cap(b.chunks[last]) {
			size := minChunk
			if last >= 0 {
				size = min(2*cap(b.chunks[last]), maxChunk)
			}
			b.starts = append(b.starts, b.length-int64(len(p)))
			b.chunks = append(b.chunks, make([]byte, 0, size))
			last++
		}
		c := b.chunks[last]
		k := min(cap(c)-len(c), len(p))
		b.chunks[last] = append(c, p[:k]...)
		p = p[k:]
	}
}

// ReadAt copies retained stream bytes from offset off into p, like
// io.ReaderAt: it returns io.EOF when it reached the end of what was
// written, and ErrDropped when it reached a range the limit dropped.
func (b *Buffer) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, ErrNegativeOffset
	}
	if off >= b.length {
		if len(p) == 0 && off == b.length {
			return 0, nil
		}
		return 0, io.EOF
	}
	var n int
	if !b.limited {
		n = b.readChunks(p, off)
	} else {
		var err error
		n, err = b.readLimited(p, off)
		if err != nil {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (b *Buffer) readChunks(p []byte, off int64) int {
	i := sort.Search(len(b.starts), func(i int) bool { return b.starts[i] > off }) - 1
	n := 0
	for ; i < len(b.chunks) && n < len(p); i++ {
		k := copy(p[n:], b.chunks[i][off-b.starts[i]:])
		n += k
		off += int64(k)
	}
	return n
}

func (b *Buffer) readLimited(p []byte, off int64) (int, error) {
	n := 0
	if off < int64(len(b.head)) {
		n = copy(p, b.head[off:])
		off += int64(n)
		if n == len(p) {
			return n, nil
		}
	}
	tailStart := b.length - int64(len(b.ring))
	if off < tailStart {
		return n, ErrDropped
	}
	i := off - tailStart // logical index into the ring
	first := b.ring[b.ringPos:]
	if i < int64(len(first)) {
		k := copy(p[n:], first[i:])
		n += k
		i += int64(k)
	}
	if n < len(p) {
		n += copy(p[n:], b.ring[i-int64(len(first)):b.ringPos])
	}
	return n, nil
}

// Bytes returns a copy of every retained byte: for a limited buffer, the
// head followed by the tail.
func (b *Buffer) Bytes() []byte {
	var out []byte
	if !b.limited {
		out = make([]byte, 0, b.length)
		for _, c := range b.chunks {
			out = append(out, c...)
		}
		return out
	}
	out = make([]byte, 0, len(b.head)+len(b.ring))
	out = append(out, b.head...)
	out = append(out, b.ring[b.ringPos:]...)
	return append(out, b.ring[:b.ringPos]...)
}
