package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// ErrBadSpec is wrapped by every error DecodeSpecs and the spec types'
// UnmarshalJSON return for input procstar would reject.
var ErrBadSpec = errors.New("bad procstar spec")

// specErr is an error at a JSON path in a spec document.
func specErr(path, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if path != "" {
		msg = path + ": " + msg
	}
	return fmt.Errorf("%w: %s", ErrBadSpec, msg)
}

// checkDocument rejects what serde_json rejects but encoding/json lets
// through: invalid UTF-8 (Go would substitute U+FFFD) and unpaired UTF-16
// surrogate escapes such as "\ud800" (Go would substitute U+FFFD), and
// anything that is not one valid JSON value.
func checkDocument(data []byte) error {
	if !utf8.Valid(data) {
		return specErr("", "invalid UTF-8")
	}
	if !json.Valid(data) {
		// Let encoding/json produce the syntax error message.
		var v any
		err := json.Unmarshal(data, &v)
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return specErr("", "%v", err)
	}
	// In valid JSON a backslash occurs only inside strings.
	for i := 0; i < len(data); i++ {
		if data[i] != '\\' {
			continue
		}
		if i+1 >= len(data) {
			break
		}
		if data[i+1] != 'u' {
			i++ // skip the escaped character, e.g. the second \ of \\
			continue
		}
		u, ok := hex4(data, i+2)
		if !ok {
			return specErr("", "bad \\u escape")
		}
		switch {
		case u >= 0xdc00 && u <= 0xdfff:
			return specErr("", "lone trailing surrogate in hex escape")
		case u >= 0xd800 && u <= 0xdbff:
			if i+11 < len(data) && data[i+6] == '\\' && data[i+7] == 'u' {
				if l, ok := hex4(data, i+8); ok && l >= 0xdc00 && l <= 0xdfff {
					i += 11
					continue
				}
			}
			return specErr("", "lone leading surrogate in hex escape")
		}
		i += 5
	}
	return nil
}

func hex4(data []byte, at int) (uint16, bool) {
	if at+4 > len(data) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(data[at:at+4]), 16, 16)
	return uint16(v), err == nil
}

func isNull(raw []byte) bool {
	return bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// jsonKind names the JSON type of raw for error messages, in serde's words.
func jsonKind(raw []byte) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case 'n':
		return "null"
	case 't', 'f':
		return "boolean"
	case '"':
		return "string"
	case '[':
		return "sequence"
	case '{':
		return "map"
	}
	return "number"
}

// decodeObject walks the JSON object raw, calling field for each key in
// order. Keys are matched case-sensitively by the callee; field returns
// false for an unknown key. Duplicate keys are rejected, as serde's derived
// struct deserializers do.
func decodeObject(raw []byte, path string, fields []string, field func(key string, val json.RawMessage) error) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return specErr(path, "invalid type: %s, expected a map", jsonKind(raw))
	}
	var buf [8]member
	members, err := splitMembers(raw, buf[:0], path)
	if err != nil {
		return err
	}
	var seen uint64 // bit i: fields[i] seen (structs here have < 64 fields)
	for _, m := range members {
		i := indexOf(fields, m.key)
		if i < 0 {
			return specErr(path, "unknown field %q, expected one of %s", m.key, quoteList(fields))
		}
		if seen&(1<<i) != 0 {
			return specErr(path, "duplicate field %q", m.key)
		}
		seen |= 1 << i
		if err := field(m.key, m.val); err != nil {
			return err
		}
	}
	return nil
}

// decodeMap walks a JSON object used as a map (not a struct): any key, and
// a later duplicate replaces an earlier one, as serde's BTreeMap does.
func decodeMap(raw []byte, path string, entry func(key string, val json.RawMessage) error) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return specErr(path, "invalid type: %s, expected a map", jsonKind(raw))
	}
	var buf [8]member
	members, err := splitMembers(raw, buf[:0], path)
	if err != nil {
		return err
	}
	for _, m := range members {
		if err := entry(m.key, m.val); err != nil {
			return err
		}
	}
	return nil
}

// member is one key and raw value of a JSON object.
type member struct {
	key string
	val json.RawMessage
}

// splitMembers appends the members of the JSON object raw to out, in
// order. It finds where each value ends without decoding it; the callers
// decode every value themselves, with parsers that check it. For what it
// cannot split (not an object, a syntax error, a key with escapes), it
// lets encoding/json split raw instead, which also words the error.
func splitMembers(raw []byte, out []member, path string) ([]member, error) {
	if ms, ok := splitObject(raw, out); ok {
		return ms, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, specErr(path, "%v", err)
	}
	out = out[:0]
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, specErr(path, "%v", err)
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, specErr(path, "%v", err)
		}
		out = append(out, member{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, specErr(path, "%v", err)
	}
	return out, nil
}

// splitObject is splitMembers' fast path, for an object whose keys are
// plain text (plainString), which encoding/json would return as they are.
// It checks the object's own punctuation; ok is false where it finds
// anything else.
func splitObject(raw []byte, out []member) (_ []member, ok bool) {
	i := skipSpace(raw, 1)
	if i < len(raw) && raw[i] == '}' {
		return out, skipSpace(raw, i+1) == len(raw)
	}
	for {
		if i >= len(raw) || raw[i] != '"' {
			return out, false
		}
		end := stringEnd(raw, i)
		if end < 0 {
			return out, false
		}
		key := string(raw[i+1 : end-1])
		if !plainString(key) {
			return out, false
		}
		i = skipSpace(raw, end)
		if i >= len(raw) || raw[i] != ':' {
			return out, false
		}
		i = skipSpace(raw, i+1)
		end = valueEnd(raw, i)
		if end < 0 {
			return out, false
		}
		out = append(out, member{key, raw[i:end:end]})
		i = skipSpace(raw, end)
		if i >= len(raw) {
			return out, false
		}
		switch raw[i] {
		case ',':
			i = skipSpace(raw, i+1)
		case '}':
			return out, skipSpace(raw, i+1) == len(raw)
		default:
			return out, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string that starts at b[i]
// (a '"'), or -1 if it does not end.
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// valueEnd returns the index just past the value that starts at b[i], or
// -1 if there is none: a string, an object or array (by bracket depth,
// outside strings), or a number or literal (up to the next delimiter).
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				end := stringEnd(b, i)
				if end < 0 {
					return -1
				}
				i = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	case ',', '}', ']', ':':
		return -1
	}
	start := i
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			if i == start {
				return -1
			}
			return i
		}
		i++
	}
	return -1 // a value inside an object is always followed by more
}

// decodeArray splits a JSON array into its elements.
func decodeArray(raw []byte, path string) ([]json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '[' {
		return nil, specErr(path, "invalid type: %s, expected a sequence", jsonKind(raw))
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, specErr(path, "%v", err)
	}
	return elems, nil
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

func quoteList(list []string) string {
	var b bytes.Buffer
	for i, s := range list {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(s))
	}
	return b.String()
}

// decodeString decodes a JSON string; null is an error.
func decodeString(raw []byte, path string) (string, error) {
	if jsonKind(raw) != "string" {
		return "", specErr(path, "invalid type: %s, expected a string", jsonKind(raw))
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", specErr(path, "%v", err)
	}
	return s, nil
}

// decodeOptString decodes a JSON string or null.
func decodeOptString(raw []byte, path string) (*string, error) {
	if isNull(raw) {
		return nil, nil
	}
	s, err := decodeString(raw, path)
	if err != nil {
		return nil, err
	}
	return &s, nil
}

func decodeBool(raw []byte, path string) (bool, error) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, specErr(path, "invalid type: %s, expected a boolean", jsonKind(raw))
}

func decodeOptBool(raw []byte, path string) (*bool, error) {
	if isNull(raw) {
		return nil, nil
	}
	b, err := decodeBool(raw, path)
	if err != nil {
		return nil, err
	}
	return &b, nil
}

// decodeInt decodes a JSON integer (no fraction or exponent, as serde's
// integer types require) into the range [lo, hi].
func decodeInt(raw []byte, path string, lo, hi int64) (int64, error) {
	if jsonKind(raw) != "number" {
		return 0, specErr(path, "invalid type: %s, expected an integer", jsonKind(raw))
	}
	s := string(bytes.TrimSpace(raw))
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, specErr(path, "invalid value: %s, expected an integer in [%d, %d]", s, lo, hi)
	}
	return v, nil
}

// decodeOptUint64 decodes a non-negative JSON integer that fits u64, or
// null.
func decodeOptUint64(raw []byte, path string) (*uint64, error) {
	if isNull(raw) {
		return nil, nil
	}
	if jsonKind(raw) != "number" {
		return nil, specErr(path, "invalid type: %s, expected u64", jsonKind(raw))
	}
	s := string(bytes.TrimSpace(raw))
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return nil, specErr(path, "invalid value: %s, expected u64", s)
	}
	return &v, nil
}

func decodeStrings(raw []byte, path string) ([]string, error) {
	elems, err := decodeArray(raw, path)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if out[i], err = decodeString(e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}
