package wire

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"unicode/utf8"
)

// Marshal encodes v as compact JSON the way serde_json does for the types
// of this package: no HTML escaping of <, > and &, and floats (Float) as
// Rust's ryu writes them. Use it instead of json.Marshal for anything sent
// to a procstar peer; json.Marshal gives equivalent but not byte-identical
// JSON.
func Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// appendJSONString appends s as a JSON string that decodes as Marshal's
// quoting of s would. Plain text (valid UTF-8 without quotes, backslashes
// or control bytes) is copied as it is; anything else goes through
// Marshal.
func appendJSONString(b []byte, s string) []byte {
	if !plainString(s) {
		q, _ := Marshal(s)
		return append(b, q...)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainString reports whether s is valid UTF-8 without quotes,
// backslashes or control bytes: the same text inside JSON quotes.
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			return false
		}
	}
	return utf8.ValidString(s)
}

// Float is an f64 that marshals as serde_json does (Rust's ryu): always
// with a decimal point or exponent ("1.0", "0.25", "1e16", "1.5e-7"), and
// null for NaN and infinities.
type Float float64

// MarshalJSON writes f in ryu's format.
func (f Float) MarshalJSON() ([]byte, error) { return AppendFloat(nil, float64(f)), nil }

// AppendFloat appends v formatted as Rust's ryu crate (and so serde_json)
// formats an f64; NaN and infinities become null, as serde_json writes
// them.
func AppendFloat(b []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return append(b, "null"...)
	}
	if v == 0 {
		if math.Signbit(v) {
			return append(b, "-0.0"...)
		}
		return append(b, "0.0"...)
	}
	// Shortest round-trip digits: "d.ddde±XX".
	var tmp [32]byte
	s := strconv.AppendFloat(tmp[:0], v, 'e', -1, 64)
	if s[0] == '-' {
		b = append(b, '-')
		s = s[1:]
	}
	e := bytes.IndexByte(s, 'e')
	mant, expPart := s[:e], s[e+1:]
	exp, _ := strconv.Atoi(string(expPart))
	var digits []byte
	digits = append(digits, mant[0])
	if len(mant) > 2 {
		digits = append(digits, mant[2:]...)
	}
	length := len(digits)
	// value = digits × 10^k, and the decimal point sits kk digits in.
	k := exp - (length - 1)
	kk := length + k
	switch {
	case k >= 0 && kk <= 16:
		b = append(b, digits...)
		for range k {
			b = append(b, '0')
		}
		b = append(b, ".0"...)
	case kk > 0 && kk <= 16:
		b = append(b, digits[:kk]...)
		b = append(b, '.')
		b = append(b, digits[kk:]...)
	case kk > -5 && kk <= 0:
		b = append(b, "0."...)
		for range -kk {
			b = append(b, '0')
		}
		b = append(b, digits...)
	default:
		b = append(b, digits[0])
		if length > 1 {
			b = append(b, '.')
			b = append(b, digits[1:]...)
		}
		b = append(b, 'e')
		b = strconv.AppendInt(b, int64(kk-1), 10)
	}
	return b
}
