package wire

import (
	"encoding/binary"
	"fmt"
	"math"
	"unicode/utf8"
)

// This file is a strict MessagePack reader over one frame held in memory.
// It reads in place (strings are copied out, bin is sliced), checks every
// length against the bytes left before allocating, limits nesting, and
// never panics. vmihailenco/msgpack's Decoder is not used for input
// because it converts between types (nil into 0, bin into string, floats
// into ints) where procstar's serde rejects them, and because it reads big
// bin values in growing chunks, copying 64 MiB of output several times.

// maxDepth bounds the nesting of arrays and maps in a frame.
const maxDepth = 256

// mpKind is the class of a msgpack value.
type mpKind int

const (
	kindNil mpKind = iota
	kindBool
	kindInt // any int or uint format, fixints included
	kindFloat
	kindStr
	kindBin
	kindArray
	kindMap
	kindExt
	kindInvalid // 0xc1, never used
)

func (k mpKind) String() string {
	switch k {
	case kindNil:
		return "nil"
	case kindBool:
		return "boolean"
	case kindInt:
		return "integer"
	case kindFloat:
		return "float"
	case kindStr:
		return "string"
	case kindBin:
		return "bin"
	case kindArray:
		return "array"
	case kindMap:
		return "map"
	case kindExt:
		return "ext"
	}
	return "invalid byte"
}

func kindOf(c byte) mpKind {
	switch {
	case c <= 0x7f || c >= 0xe0:
		return kindInt
	case c >= 0x80 && c <= 0x8f:
		return kindMap
	case c >= 0x90 && c <= 0x9f:
		return kindArray
	case c >= 0xa0 && c <= 0xbf:
		return kindStr
	}
	switch c {
	case 0xc0:
		return kindNil
	case 0xc2, 0xc3:
		return kindBool
	case 0xc4, 0xc5, 0xc6:
		return kindBin
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return kindExt
	case 0xca, 0xcb:
		return kindFloat
	case 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3:
		return kindInt
	case 0xd9, 0xda, 0xdb:
		return kindStr
	case 0xdc, 0xdd:
		return kindArray
	case 0xde, 0xdf:
		return kindMap
	}
	return kindInvalid
}

// reader reads msgpack values from b starting at off.
type reader struct {
	b     []byte
	off   int
	depth int
}

func (r *reader) errf(format string, args ...any) error {
	return fmt.Errorf("%w: at byte %d: %s", ErrBadMessage, r.off, fmt.Sprintf(format, args...))
}

func (r *reader) left() int { return len(r.b) - r.off }

// peek returns the kind of the next value.
func (r *reader) peek() (mpKind, error) {
	if r.off >= len(r.b) {
		return kindInvalid, r.errf("unexpected end of data")
	}
	return kindOf(r.b[r.off]), nil
}

// take returns the next n bytes.
func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > r.left() {
		return nil, r.errf("unexpected end of data (need %d bytes, have %d)", n, r.left())
	}
	b := r.b[r.off : r.off+n]
	r.off += n
	return b, nil
}

func (r *reader) code() (byte, error) {
	b, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// uintN reads a big-endian unsigned integer of n bytes.
func (r *reader) uintN(n int) (uint64, error) {
	b, err := r.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return uint64(b[0]), nil
	case 2:
		return uint64(binary.BigEndian.Uint16(b)), nil
	case 4:
		return uint64(binary.BigEndian.Uint32(b)), nil
	}
	return binary.BigEndian.Uint64(b), nil
}

// length reads a length of n bytes and checks that at least min×length
// bytes follow.
func (r *reader) length(n, min int) (int, error) {
	v, err := r.uintN(n)
	if err != nil {
		return 0, err
	}
	if v > uint64(r.left()) || (min > 1 && v > uint64(r.left()/min)) {
		return 0, r.errf("length %d exceeds the data left", v)
	}
	return int(v), nil
}

func (r *reader) typeErr(want string) error {
	k, err := r.peek()
	if err != nil {
		return err
	}
	return r.errf("invalid type: %s, expected %s", k, want)
}

// isNil consumes a nil and reports whether there was one.
func (r *reader) isNil() bool {
	if r.off < len(r.b) && r.b[r.off] == 0xc0 {
		r.off++
		return true
	}
	return false
}

// int reads an integer of any msgpack int format. Values above
// math.MaxInt64 are returned with big set.
func (r *reader) int() (v int64, u uint64, big bool, err error) {
	if k, err := r.peek(); err != nil || k != kindInt {
		if err == nil {
			err = r.typeErr("integer")
		}
		return 0, 0, false, err
	}
	c, _ := r.code()
	switch {
	case c <= 0x7f:
		return int64(c), 0, false, nil
	case c >= 0xe0:
		return int64(int8(c)), 0, false, nil
	}
	switch c {
	case 0xcc, 0xcd, 0xce, 0xcf:
		x, err := r.uintN(1 << (c - 0xcc))
		if err != nil {
			return 0, 0, false, err
		}
		if x > math.MaxInt64 {
			return 0, x, true, nil
		}
		return int64(x), 0, false, nil
	}
	// 0xd0..0xd3
	n := 1 << (c - 0xd0)
	x, err := r.uintN(n)
	if err != nil {
		return 0, 0, false, err
	}
	switch n {
	case 1:
		return int64(int8(x)), 0, false, nil
	case 2:
		return int64(int16(x)), 0, false, nil
	case 4:
		return int64(int32(x)), 0, false, nil
	}
	return int64(x), 0, false, nil
}

// intIn reads an integer in [lo, hi].
func (r *reader) intIn(lo, hi int64) (int64, error) {
	at := r.off
	v, u, big, err := r.int()
	if err != nil {
		return 0, err
	}
	if big || v < lo || v > hi {
		r.off = at
		if big {
			return 0, r.errf("integer %d out of range [%d, %d]", u, lo, hi)
		}
		return 0, r.errf("integer %d out of range [%d, %d]", v, lo, hi)
	}
	return v, nil
}

// uintIn reads a non-negative integer no greater than hi.
func (r *reader) uintIn(hi uint64) (uint64, error) {
	at := r.off
	v, u, big, err := r.int()
	if err != nil {
		return 0, err
	}
	if !big {
		if v < 0 {
			r.off = at
			return 0, r.errf("integer %d out of range [0, %d]", v, hi)
		}
		u = uint64(v)
	}
	if u > hi {
		r.off = at
		return 0, r.errf("integer %d out of range [0, %d]", u, hi)
	}
	return u, nil
}

// float reads a float32, float64 or any integer as a float64.
func (r *reader) float() (float64, error) {
	k, err := r.peek()
	if err != nil {
		return 0, err
	}
	switch k {
	case kindInt:
		v, u, big, err := r.int()
		if big {
			return float64(u), err
		}
		return float64(v), err
	case kindFloat:
		c, _ := r.code()
		if c == 0xca {
			x, err := r.uintN(4)
			return float64(math.Float32frombits(uint32(x))), err
		}
		x, err := r.uintN(8)
		return math.Float64frombits(x), err
	}
	return 0, r.typeErr("float")
}

func (r *reader) bool() (bool, error) {
	if k, err := r.peek(); err != nil || k != kindBool {
		if err == nil {
			err = r.typeErr("boolean")
		}
		return false, err
	}
	c, _ := r.code()
	return c == 0xc3, nil
}

// strBytes reads a str value in place and checks it is valid UTF-8, as
// serde's String and Python's msgpack (raw=False) require.
func (r *reader) strBytes() ([]byte, error) {
	if k, err := r.peek(); err != nil || k != kindStr {
		if err == nil {
			err = r.typeErr("string")
		}
		return nil, err
	}
	at := r.off
	c, _ := r.code()
	var n int
	var err error
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	default:
		n, err = r.length(1<<(c-0xd9), 1)
	}
	if err != nil {
		return nil, err
	}
	b, err := r.take(n)
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		r.off = at
		return nil, r.errf("invalid UTF-8 in string")
	}
	return b, nil
}

func (r *reader) str() (string, error) {
	b, err := r.strBytes()
	return string(b), err
}

// bin reads a bin value in place; the result aliases the frame.
func (r *reader) bin() ([]byte, error) {
	if k, err := r.peek(); err != nil || k != kindBin {
		if err == nil {
			err = r.typeErr("bin")
		}
		return nil, err
	}
	c, _ := r.code()
	n, err := r.length(1<<(c-0xc4), 1)
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

// arrayLen reads an array header.
func (r *reader) arrayLen() (int, error) {
	if k, err := r.peek(); err != nil || k != kindArray {
		if err == nil {
			err = r.typeErr("array")
		}
		return 0, err
	}
	c, _ := r.code()
	if c <= 0x9f {
		n := int(c & 0x0f)
		if n > r.left() {
			return 0, r.errf("length %d exceeds the data left", n)
		}
		return n, nil
	}
	return r.length(2<<(c-0xdc), 1)
}

// mapLen reads a map header.
func (r *reader) mapLen() (int, error) {
	if k, err := r.peek(); err != nil || k != kindMap {
		if err == nil {
			err = r.typeErr("map")
		}
		return 0, err
	}
	c, _ := r.code()
	if c <= 0x8f {
		n := int(c & 0x0f)
		if 2*n > r.left() {
			return 0, r.errf("length %d exceeds the data left", n)
		}
		return n, nil
	}
	return r.length(2<<(c-0xde), 2)
}

func (r *reader) enter() error {
	if r.depth++; r.depth > maxDepth {
		return r.errf("nesting deeper than %d", maxDepth)
	}
	return nil
}

func (r *reader) leave() { r.depth-- }

// skip skips one value.
func (r *reader) skip() error {
	k, err := r.peek()
	if err != nil {
		return err
	}
	switch k {
	case kindNil, kindBool:
		r.off++
		return nil
	case kindInt:
		_, _, _, err := r.int()
		return err
	case kindFloat:
		_, err := r.float()
		return err
	case kindStr:
		_, err := r.strBytes()
		return err
	case kindBin:
		_, err := r.bin()
		return err
	case kindExt:
		_, err := r.ext()
		return err
	case kindArray:
		n, err := r.arrayLen()
		if err != nil {
			return err
		}
		if err := r.enter(); err != nil {
			return err
		}
		defer r.leave()
		for range n {
			if err := r.skip(); err != nil {
				return err
			}
		}
		return nil
	case kindMap:
		n, err := r.mapLen()
		if err != nil {
			return err
		}
		if err := r.enter(); err != nil {
			return err
		}
		defer r.leave()
		for range 2 * n {
			if err := r.skip(); err != nil {
				return err
			}
		}
		return nil
	}
	return r.typeErr("a msgpack value")
}

// ext reads an ext value and returns its payload.
func (r *reader) ext() ([]byte, error) {
	c, err := r.code()
	if err != nil {
		return nil, err
	}
	var n int
	switch c {
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		n = 1 << (c - 0xd4)
	case 0xc7, 0xc8, 0xc9:
		if n, err = r.length(1<<(c-0xc7), 1); err != nil {
			return nil, err
		}
	default:
		r.off--
		return nil, r.typeErr("ext")
	}
	if _, err := r.take(1); err != nil { // the ext type
		return nil, err
	}
	return r.take(n)
}

// any reads any value as a generic Go value: nil, bool, int64 (uint64
// above math.MaxInt64), float64, string, []byte (copied), []any and
// map[string]any. Map keys must be strings. Ext values are rejected.
func (r *reader) any() (any, error) {
	k, err := r.peek()
	if err != nil {
		return nil, err
	}
	switch k {
	case kindNil:
		r.off++
		return nil, nil
	case kindBool:
		return r.bool()
	case kindInt:
		v, u, big, err := r.int()
		if big {
			return u, err
		}
		return v, err
	case kindFloat:
		return r.float()
	case kindStr:
		return r.str()
	case kindBin:
		b, err := r.bin()
		return append([]byte{}, b...), err
	case kindArray:
		n, err := r.arrayLen()
		if err != nil {
			return nil, err
		}
		if err := r.enter(); err != nil {
			return nil, err
		}
		defer r.leave()
		out := make([]any, n)
		for i := range out {
			if out[i], err = r.any(); err != nil {
				return nil, err
			}
		}
		return out, nil
	case kindMap:
		return r.anyMap()
	}
	return nil, r.typeErr("a msgpack value other than ext")
}

// anyMap reads a map with string keys as a map[string]any. A duplicate
// key is an error.
func (r *reader) anyMap() (map[string]any, error) {
	n, err := r.mapLen()
	if err != nil {
		return nil, err
	}
	if err := r.enter(); err != nil {
		return nil, err
	}
	defer r.leave()
	out := make(map[string]any, n)
	for range n {
		at := r.off
		k, err := r.str()
		if err != nil {
			return nil, err
		}
		if _, dup := out[k]; dup {
			r.off = at
			return nil, r.errf("duplicate key %q", k)
		}
		if out[k], err = r.any(); err != nil {
			return nil, err
		}
	}
	return out, nil
}
