package v1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// tokenJSONValue reads one JSON value from dec into a tree, rejecting duplicate
// object keys (which encoding/json would silently resolve to the last).
func tokenJSONValue(dec *json.Decoder, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, &FieldError{Field: path, Detail: fmt.Sprintf("nested more than %d deep", maxDepth)}
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string)
			if _, dup := obj[k]; dup {
				return nil, &FieldError{Field: child(path, k), Detail: "duplicate key"}
			}
			v, err := tokenJSONValue(dec, child(path, k), depth+1)
			if err != nil {
				return nil, err
			}
			obj[k] = v
		}
		_, err := dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for dec.More() {
			v, err := tokenJSONValue(dec, index(path, len(arr)), depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ']'
		return arr, err
	}
	return tok, nil
}

// tokenTree is what parseDocuments did before validJSONTree: the tree
// read token by token with a json.Decoder.
func tokenTree(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	return tokenJSONValue(dec, "", 0)
}

var treeCases = []string{
	`{}`, `[]`, `[null, {}]`, `{"a":1,"b":[1,2.5e3,-0.1,true,false,null],"c":{"d":"x"}}`,
	` { "a" : "b" , "c" : [ ] , "d" : { } } `,
	`{"a":1,"a":2}`, `{"a":{"b":[{"c":1,"c":1}]}}`, `[{"x":[0,{"y":1,"y":2}]}]`,
	`{"s":"\u00e9\n\t\"\\\/","t":"\ud800","u":"cafÃ©","v":"bad ÿ utf8"}`,
	`{"\u0061":1,"a":2}`, `{"esc\"key":{"k":1,"k":2}}`,
	strings.Repeat("[", 1000) + strings.Repeat("]", 1000),
	strings.Repeat("[", 1001) + strings.Repeat("]", 1001),
	strings.Repeat("[", 1002) + "1" + strings.Repeat("]", 1002),
	`{"a":` + strings.Repeat(`{"b":`, 1000) + `1` + strings.Repeat("}", 1001),
	`{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p","labels":{"iter":"0"}},"spec":{"argv":["/bin/true"]}}`,
	`{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p"},"spec":{"argv":["x"],"env":{"inherit":["A"],"vars":{"B":null,"C":"\u0063"}},"fds":[{"fd":1,"capture":{"mode":"memory"}},{"fd":"stderr","dup":{"fd":"1"}}],"timeout":{"seconds":1.50,"signal":15},"resources":{"limits":{"memory":1e3}}},"status":{}}`,
	`{"apiVersion":"procstar.dev/v1","kind":"ProcList","items":[{"metadata":{"name":"a"},"spec":{"argv":["x"]}},{"kind":"Nope"}]}`,
	`{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p"},"spec":{"argv":["x"],"timeout":{"seconds":1e400}}}`,
	`{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p"},"spec":{"argv":["x"],"umask":23}}`,
}

func checkSameTree(t *testing.T, in []byte) {
	t.Helper()
	in = bytes.TrimSpace(in)
	if len(in) == 0 || (in[0] != '{' && in[0] != '[') || !json.Valid(in) {
		return
	}
	want, wantErr := tokenTree(in)
	got, gotErr := validJSONTree(in)
	if fmt.Sprint(wantErr) != fmt.Sprint(gotErr) || reflect.TypeOf(wantErr) != reflect.TypeOf(gotErr) {
		t.Fatalf("%q: error %v, want %v", in, gotErr, wantErr)
	}
	if wantErr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: tree %#v, want %#v", in, got, want)
	}
	// Decoding a single object from its text gives what decoding the
	// tree marshalled again gives.
	if _, ok := got.(map[string]any); ok && gotErr == nil {
		fromText, textProblems := decodeObject(got, in)
		fromTree, treeProblems := decodeObject(got, nil)
		if fmt.Sprint(textProblems) != fmt.Sprint(treeProblems) || !reflect.DeepEqual(fromText, fromTree) {
			t.Fatalf("%q: from text %#v, %v; from tree %#v, %v", in, fromText, textProblems, fromTree, treeProblems)
		}
	}
}

func TestValidJSONTreeMatchesTokens(t *testing.T) {
	for _, c := range treeCases {
		checkSameTree(t, []byte(c))
	}
}

func FuzzValidJSONTree(f *testing.F) {
	for _, c := range treeCases {
		f.Add([]byte(c))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkSameTree(t, in) })
}
