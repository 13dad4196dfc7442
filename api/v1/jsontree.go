package v1

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// This file builds the JSON-shaped tree of an input that json.Valid has
// accepted, in one pass over the bytes. It gives exactly what reading the
// input token by token with a json.Decoder (UseNumber) gives — the same
// values and the same first error (a duplicate key, or nesting deeper than
// maxDepth, each naming its field) — at a fraction of the cost: the
// Decoder's token API allocates and re-scans for every token, and field
// paths are built here only for an error.

// treeParser reads one valid JSON value.
type treeParser struct {
	data []byte
	pos  int
	// path is the field path to the value being read, as steps: a key, or
	// an index when isIndex.
	path []pathStep
}

type pathStep struct {
	key     string
	index   int
	isIndex bool
}

// pathString renders the current path as child and index do.
func (p *treeParser) pathString() string {
	s := ""
	for _, st := range p.path {
		if st.isIndex {
			s = index(s, st.index)
		} else {
			s = child(s, st.key)
		}
	}
	return s
}

// validJSONTree returns the tree of data, which must be valid JSON
// (json.Valid) holding one value.
func validJSONTree(data []byte) (any, error) {
	p := &treeParser{data: data}
	return p.value(0)
}

func (p *treeParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *treeParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, &FieldError{Field: p.pathString(), Detail: fmt.Sprintf("nested more than %d deep", maxDepth)}
	}
	p.skipSpace()
	switch c := p.data[p.pos]; c {
	case '{':
		p.pos++
		obj := map[string]any{}
		for {
			p.skipSpace()
			if p.data[p.pos] == '}' {
				p.pos++
				return obj, nil
			}
			if p.data[p.pos] == ',' {
				p.pos++
				p.skipSpace()
			}
			k, err := p.str()
			if err != nil {
				return nil, err
			}
			p.skipSpace()
			p.pos++ // ':'
			p.path = append(p.path, pathStep{key: k})
			if _, dup := obj[k]; dup {
				return nil, &FieldError{Field: p.pathString(), Detail: "duplicate key"}
			}
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			p.path = p.path[:len(p.path)-1]
			obj[k] = v
		}
	case '[':
		p.pos++
		arr := []any{}
		for {
			p.skipSpace()
			if p.data[p.pos] == ']' {
				p.pos++
				return arr, nil
			}
			if p.data[p.pos] == ',' {
				p.pos++
			}
			p.path = append(p.path, pathStep{index: len(arr), isIndex: true})
			v, err := p.value(depth + 1)
			if err != nil {
				return nil, err
			}
			p.path = p.path[:len(p.path)-1]
			arr = append(arr, v)
		}
	case '"':
		return p.str()
	case 't':
		p.pos += len("true")
		return true, nil
	case 'f':
		p.pos += len("false")
		return false, nil
	case 'n':
		p.pos += len("null")
		return nil, nil
	}
	start := p.pos
	for p.pos < len(p.data) && isNumberByte(p.data[p.pos]) {
		p.pos++
	}
	return json.Number(p.data[start:p.pos]), nil
}

// str reads a string; p.pos is at its opening quote.
func (p *treeParser) str() (string, error) {
	start := p.pos
	p.pos++
	escaped := false
	for {
		c := p.data[p.pos]
		if c == '"' {
			break
		}
		if c == '\\' {
			escaped = true
			p.pos++
		}
		p.pos++
	}
	p.pos++
	raw := p.data[start:p.pos]
	body := raw[1 : len(raw)-1]
	if !escaped && utf8.Valid(body) {
		return string(body), nil
	}
	// Escapes or invalid UTF-8: encoding/json's own unquoting, so that
	// both come out exactly as the Decoder gives them.
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}
