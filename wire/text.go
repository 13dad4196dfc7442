package wire

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	v1 "procstar.dev/procstar/api/v1"
)

// LossyUTF8 decodes b as UTF-8 exactly as Rust's String::from_utf8_lossy
// does: every maximal invalid subsequence (Unicode's "substitution of
// maximal subparts", chapter 3, U+FFFD policy) becomes one U+FFFD. So
// "\xe2\x82x" gives "\uFFFDx", but "\xed\xa0\x80" (a surrogate) gives three
// U+FFFD and "\xc0\xaf" (overlong) gives two. strings.ToValidUTF8 merges
// runs and is therefore not the same.
func LossyUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	var sb strings.Builder
	sb.Grow(len(b) + 16)
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			sb.WriteByte(c)
			i++
			continue
		}
		if _, size := utf8.DecodeRune(b[i:]); size > 1 {
			sb.Write(b[i : i+size])
			i += size
			continue
		}
		i += maximalSubpart(b[i:])
		sb.WriteRune(utf8.RuneError)
	}
	return sb.String()
}

// maximalSubpart returns the length (1 to 3) of the maximal subpart of an
// ill-formed sequence starting at b[0]: the longest prefix of b that is a
// prefix of some well-formed sequence (Unicode Table 3-7), or 1 if there is
// none. The caller knows b does not start with a whole well-formed sequence.
func maximalSubpart(b []byte) int {
	at := func(i int) byte {
		if i < len(b) {
			return b[i]
		}
		return 0
	}
	cont := func(x byte) bool { return x >= 0x80 && x <= 0xbf }
	c := b[0]
	switch {
	case c >= 0xc2 && c <= 0xdf:
		return 1 // a 2-byte lead whose continuation is bad or missing
	case c >= 0xe0 && c <= 0xef:
		lo, hi := byte(0x80), byte(0xbf)
		if c == 0xe0 {
			lo = 0xa0
		} else if c == 0xed {
			hi = 0x9f
		}
		if x := at(1); x < lo || x > hi {
			return 1
		}
		return 2 // the third byte is bad or missing
	case c >= 0xf0 && c <= 0xf4:
		lo, hi := byte(0x80), byte(0xbf)
		if c == 0xf0 {
			lo = 0x90
		} else if c == 0xf4 {
			hi = 0x8f
		}
		if x := at(1); x < lo || x > hi {
			return 1
		}
		if !cont(at(2)) {
			return 2
		}
		return 3 // the fourth byte is bad or missing
	}
	return 1 // 0x80..0xc1, 0xf5..0xff: never part of a well-formed sequence
}

// EncodeOutput turns captured bytes into result text: lossy UTF-8,
// Base2048, or (for base64 and anything unknown) standard padded base64.
func EncodeOutput(enc v1.Encoding, b []byte) string {
	switch enc {
	case v1.EncodingUTF8:
		return LossyUTF8(b)
	case v1.EncodingBase2048:
		return EncodeBase2048(b)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Base2048 alphabet. It is part of the format and must never change.
//
// Each character of the main alphabet carries 11 bits: the 2048 code points
// U+4E00..U+55FF, the first 2048 CJK Unified Ideographs (assigned since
// Unicode 1.1; all printable, non-combining, not whitespace). Value v is
// the code point 0x4E00+v.
//
// The tail alphabet carries the last 1 to 3 bits when the input's bit count
// leaves 1 to 3 bits over after the last full 11-bit group: the 8 code
// points U+5600..U+5607 (the next CJK Unified Ideographs). Value v is
// 0x5600+v, holding the leftover bits followed by zero padding to 3 bits.
//
// When 4 to 10 bits are left over, they are padded with zero bits to 11
// and written with the main alphabet. Decoding a string of n characters
// yields floor(bits/8) bytes, where bits is 11n, or 11(n-1)+3 when the last
// character is from the tail alphabet; padding bits must be zero, so every
// byte string has exactly one encoding.
const (
	b2048Main = 0x4E00
	b2048Tail = 0x5600
)

// ErrBase2048 is returned by DecodeBase2048 for malformed input.
var ErrBase2048 = errors.New("invalid base2048")

// EncodeBase2048 encodes b with the Base2048 alphabet described above.
func EncodeBase2048(b []byte) string {
	var sb strings.Builder
	sb.Grow((len(b)*8 + 10) / 11 * 3)
	var acc uint32 // pending bits, most significant first
	n := 0         // number of pending bits in acc
	for _, c := range b {
		acc = acc<<8 | uint32(c)
		n += 8
		if n >= 11 {
			n -= 11
			sb.WriteRune(rune(b2048Main + (acc>>n)&0x7ff))
			acc &= 1<<n - 1
		}
	}
	switch {
	case n == 0:
	case n <= 3:
		sb.WriteRune(rune(b2048Tail + acc<<(3-n)))
	default:
		sb.WriteRune(rune(b2048Main + acc<<(11-n)))
	}
	return sb.String()
}

// DecodeBase2048 decodes s as written by EncodeBase2048. Foreign
// characters, a tail character anywhere but last, non-zero padding bits and
// a length no encoder produces are errors wrapping ErrBase2048.
func DecodeBase2048(s string) ([]byte, error) {
	out := make([]byte, 0, len(s)/3*11/8+1)
	var acc uint32
	n := 0
	tail := false
	for i, r := range s {
		last := i+utf8.RuneLen(r) == len(s)
		switch {
		case r >= b2048Main && r < b2048Main+2048:
			acc = acc<<11 | uint32(r-b2048Main)
			n += 11
		case r >= b2048Tail && r < b2048Tail+8:
			if !last {
				return nil, fmt.Errorf("%w: tail character %U at offset %d is not last", ErrBase2048, r, i)
			}
			acc = acc<<3 | uint32(r-b2048Tail)
			n += 3
			tail = true
		default:
			if r == utf8.RuneError {
				return nil, fmt.Errorf("%w: invalid UTF-8 at offset %d", ErrBase2048, i)
			}
			return nil, fmt.Errorf("%w: character %U at offset %d is not in the alphabet", ErrBase2048, r, i)
		}
		for n >= 8 {
			n -= 8
			out = append(out, byte(acc>>n))
			acc &= 1<<n - 1
		}
	}
	// The leftover bits are padding and must be zero. After a main-alphabet
	// last character there are always 0..7 of them, which is what an
	// encoder writes. After a tail character an encoder leaves 0..2.
	if acc != 0 {
		return nil, fmt.Errorf("%w: non-zero padding bits", ErrBase2048)
	}
	if tail && n > 2 {
		return nil, fmt.Errorf("%w: impossible length", ErrBase2048)
	}
	return out, nil
}
