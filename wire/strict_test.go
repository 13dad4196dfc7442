package wire

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// refSplit splits a JSON object with encoding/json's tokenizer, as the
// strict decoder did before it had a splitter of its own.
func refSplit(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		out = append(out, member{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return out, nil
}

var splitSeeds = []string{
	`{}`,
	` { } `,
	`{"a":1}`,
	`{"a" : "x,}]", "b":[1,{"c":"]"}], "d":{"e":[]}, "f":null, "g":true, "h":-1.5e3}`,
	`{"esc":"q\"uote\\\\"}`,
	`{"k\"ey":1}`,
	`{"ü":"ß","\u00fc":2}`,
	`{"a":1,}`,
	`{"a":1 "b":2}`,
	`{"a" 1}`,
	`{"a":}`,
	`{"a":[1,2}`,
	`{"a":"unterminated}`,
	`{"a":1}x`,
	`{"a":tru}`,
	`{"a":[1,,2]}`,
	`{"a` + "\x01" + `":1}`,
	`{"a":1,"a":2}`,
	"{\"\xff\":1}",
	`[1]`,
}

// TestSplitMembers: on every valid object the fast split is encoding/json's;
// on invalid input it never accepts bad punctuation of the object itself.
func TestSplitMembers(t *testing.T) {
	for _, s := range splitSeeds {
		checkSplit(t, []byte(s))
	}
}

func FuzzSplitMembers(f *testing.F) {
	for _, s := range splitSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkSplit)
}

func checkSplit(t *testing.T, raw []byte) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return
	}
	want, refErr := refSplit(raw)
	got, err := splitMembers(raw, nil, "p")
	if (err == nil) != (refErr == nil) && json.Valid(raw) {
		t.Fatalf("%q: split error %v, encoding/json's %v", raw, err, refErr)
	}
	if err == nil && refErr == nil && !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Fatalf("%q: split %q, encoding/json's %q", raw, got, want)
	}
	fast, ok := splitObject(raw, nil)
	if !ok {
		return
	}
	// The fast path checks the object's punctuation and leaves each value
	// to its decoder: with valid values, the whole must be valid.
	allValid := true
	for _, m := range fast {
		allValid = allValid && json.Valid(m.val)
	}
	if allValid && !json.Valid(raw) {
		t.Fatalf("%q: fast split accepted invalid JSON as %q", raw, fast)
	}
	if json.Valid(raw) && !reflect.DeepEqual(normalize(fast), normalize(want)) {
		t.Fatalf("%q: fast split %q, encoding/json's %q", raw, fast, want)
	}
}

func normalize(ms []member) []member {
	if len(ms) == 0 {
		return nil
	}
	out := make([]member, len(ms))
	for i, m := range ms {
		out[i] = member{m.key, json.RawMessage(bytes.TrimSpace(m.val))}
	}
	return out
}

// TestAppendJSONString: the fast quoting decodes as Marshal's does.
func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "plain", "/usr/bin/env", "ü ß ✓ 🎉", "q\"uote", `back\slash`,
		"tab\there", "nl\n", "\x00", "bad \xff utf-8", "\xc3", "<&>", "\u2028\u2029"} {
		var got, want string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		q, _ := Marshal(s)
		if err := json.Unmarshal(q, &want); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%q: decodes as %q, Marshal's as %q", s, got, want)
		}
	}
}
