package v1

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	yamlv2 "go.yaml.in/yaml/v2"
)

// Decoding errors.
var (
	// ErrDecode is matched (errors.Is) by every error Decode returns.
	ErrDecode = errors.New("decode")
	// ErrUnknownField is matched by a field no type here has.
	ErrUnknownField = errors.New("unknown field")
	// ErrWrongKind is matched by a missing or unsupported apiVersion or kind.
	ErrWrongKind = errors.New("wrong apiVersion or kind")
)

// UnknownFieldError names a field that the object's type does not have.
type UnknownFieldError struct {
	// Field is the path of the field, e.g. "spec.fds[0].fdz".
	Field string
}

// Error returns `unknown field "PATH"`.
func (e *UnknownFieldError) Error() string { return fmt.Sprintf("unknown field %q", e.Field) }

// Is matches ErrUnknownField.
func (e *UnknownFieldError) Is(target error) bool { return target == ErrUnknownField }

// kindError is a missing or unsupported apiVersion or kind.
type kindError struct{ FieldError }

// Is matches ErrWrongKind.
func (e *kindError) Is(target error) bool { return target == ErrWrongKind }

// DecodeError is every problem found in one document of Decode's input.
type DecodeError struct {
	// Doc is the 1-based index of the document among the non-empty ones,
	// or 0 when the input has a single document.
	Doc int
	// Problems are the errors found, each naming its field.
	Problems []error
}

// Error returns "document N: PROBLEM; PROBLEM" (without the document part
// when the input has a single document).
func (e *DecodeError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Error()
	}
	msg := strings.Join(parts, "; ")
	if e.Doc > 0 {
		return fmt.Sprintf("document %d: %s", e.Doc, msg)
	}
	return msg
}

// Is matches ErrDecode.
func (e *DecodeError) Is(target error) bool { return target == ErrDecode }

// Unwrap returns the problems.
func (e *DecodeError) Unwrap() []error { return e.Problems }

// Decode reads Procs from YAML or JSON. YAML input may hold several
// documents separated by "---" lines; empty documents are skipped. JSON
// input is one object or an array of objects. Each object is a Proc or a
// ProcList (by kind) with apiVersion procstar.dev/v1; the items of a
// ProcList are returned in order, with apiVersion and kind filled in.
// Unknown fields, duplicate keys and values of the wrong type are errors
// that name the field. Decode neither validates nor sets defaults. The
// returned error is a *DecodeError.
func Decode(data []byte) ([]Proc, error) {
	trees, raw, err := parseDocuments(data)
	if err != nil {
		return nil, err
	}
	var procs []Proc
	for i, tree := range trees {
		doc := 0
		if len(trees) > 1 {
			doc = i + 1
		}
		got, problems := decodeObject(tree, raw)
		if len(problems) > 0 {
			return nil, &DecodeError{Doc: doc, Problems: problems}
		}
		if len(trees) == 1 {
			return got, nil
		}
		procs = append(procs, got...)
	}
	return procs, nil
}

// parseDocuments turns the input into JSON-shaped trees (map[string]any,
// []any, string, bool, json.Number, nil), one per non-empty document.
// When the input is a single JSON object it also returns that object's
// text, which decodeObject then decodes from: once checkTree has passed
// the tree (every key a field, matched exactly and only once, every value
// of its field's type), the text decodes to just what the tree marshalled
// again would, without the cost of marshalling it.
func parseDocuments(data []byte) ([]any, []byte, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '{' || t[0] == '[') && json.Valid(t) {
		tree, err := validJSONTree(t)
		if err != nil {
			return nil, nil, &DecodeError{Problems: []error{err}}
		}
		if arr, ok := tree.([]any); ok {
			return slices.DeleteFunc(arr, func(v any) bool { return v == nil }), nil, nil
		}
		return []any{tree}, t, nil
	}
	docs := splitDocuments(data)
	var trees []any
	var errs []error
	for i, d := range docs {
		if isJSONDocument(d) {
			tree, err := strictJSONTree(d)
			if err != nil {
				errs = append(errs, fmt.Errorf("document %d: %w", i+1, err))
			} else if tree != nil {
				trees = append(trees, tree)
			}
			continue
		}
		var raw any
		if err := yamlv2.UnmarshalStrict(d, &raw); err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i+1, yamlError(err)))
			continue
		}
		tree, err := jsonTree(raw, "")
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", i+1, err))
			continue
		}
		if tree != nil {
			trees = append(trees, tree)
		}
	}
	if len(errs) > 0 {
		if len(docs) == 1 {
			return nil, nil, &DecodeError{Problems: []error{errors.Unwrap(errs[0])}}
		}
		// Numbering here counts every document, empty ones included,
		// because a document that does not parse cannot be told empty.
		return nil, nil, &DecodeError{Problems: errs}
	}
	return trees, nil, nil
}

// isJSONDocument reports whether a document is JSON: its first character
// other than white space is "{" or "[". Such a document is never read as
// YAML, even when it is a valid YAML flow collection: yaml.v2 stops at the
// end of a top-level flow collection and silently drops whatever follows
// it (a stray "}", a second object, more keys), so a malformed body would
// be taken for a shorter, valid one.
func isJSONDocument(d []byte) bool {
	t := bytes.TrimLeft(d, " \t\r\n")
	return len(t) > 0 && (t[0] == '{' || t[0] == '[')
}

// strictJSONTree parses a JSON document as parseDocuments does: a
// JSON-shaped tree, nil for null. Anything but one JSON value and white
// space is an error that says where, by line and column in d.
func strictJSONTree(d []byte) (any, error) {
	t := bytes.TrimSpace(d)
	if json.Valid(t) {
		return validJSONTree(t)
	}
	return nil, jsonSyntaxError(d)
}

// jsonSyntaxError describes why d, which json.Valid refused, is not one
// JSON value: "json: line L, column C: PROBLEM (HINT)".
func jsonSyntaxError(d []byte) error {
	const hint = `; input that starts with "{" or "[" is read as JSON`
	dec := json.NewDecoder(bytes.NewReader(d))
	var first json.RawMessage
	err := dec.Decode(&first)
	var syn *json.SyntaxError
	switch {
	case err == nil:
		// One value, then something other than white space.
		off := dec.InputOffset()
		off += int64(len(d[off:]) - len(bytes.TrimLeft(d[off:], " \t\r\n")))
		what := "object"
		if bytes.HasPrefix(first, []byte("[")) {
			what = "array"
		}
		return fmt.Errorf("json: %s: data after the JSON %s%s", textPosition(d, off), what, hint)
	case errors.As(err, &syn):
		return fmt.Errorf("json: %s: %s%s", textPosition(d, max(syn.Offset-1, 0)), syn.Error(), hint)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return fmt.Errorf("json: %s: unexpected end of input%s", textPosition(d, int64(len(d))), hint)
	}
	return fmt.Errorf("json: %v%s", err, hint)
}

// textPosition gives byte offset off of d as "line L, column C", both
// counted from 1, the column in bytes.
func textPosition(d []byte, off int64) string {
	off = min(max(off, 0), int64(len(d)))
	before := d[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := off - int64(bytes.LastIndexByte(before, '\n'))
	return fmt.Sprintf("line %d, column %d", line, col)
}

// yamlError drops the library's "yaml: " prefix.
func yamlError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "\n ", "")
	return errors.New("yaml: " + msg)
}

// maxDepth bounds the nesting of JSON input.
const maxDepth = 1000

// splitDocuments splits YAML text on "---" lines. Text after "---" on the
// same line belongs to the next document.
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	start := 0
	for i := 0; i < len(data); {
		end := bytes.IndexByte(data[i:], '\n')
		next := len(data)
		if end >= 0 {
			next = i + end + 1
		}
		line := data[i:next]
		if bytes.HasPrefix(line, []byte("---")) && (len(line) == 3 || strings.IndexByte(" \t\r\n", line[3]) >= 0) {
			docs = append(docs, data[start:i])
			start = i + 3
			for start < next && (data[start] == ' ' || data[start] == '\t') {
				start++
			}
		}
		i = next
	}
	return append(docs, data[start:])
}

// jsonTree converts what the YAML library decoded into a JSON-shaped tree.
// Non-string keys become strings ("null", "1", "true"), as a YAML "null:"
// key must work for the null fd variant.
func jsonTree(v any, path string) (any, error) {
	switch t := v.(type) {
	case nil, string, bool:
		return t, nil
	case int:
		return json.Number(strconv.Itoa(t)), nil
	case int64:
		return json.Number(strconv.FormatInt(t, 10)), nil
	case uint64:
		return json.Number(strconv.FormatUint(t, 10)), nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, &FieldError{Field: path, Detail: "must be a finite number"}
		}
		return json.Number(strconv.FormatFloat(t, 'g', -1, 64)), nil
	case time.Time:
		return t.Format(time.RFC3339Nano), nil
	case []byte:
		return base64.StdEncoding.EncodeToString(t), nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			c, err := jsonTree(e, index(path, i))
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			var ks string
			switch kt := k.(type) {
			case nil:
				ks = "null"
			case string:
				ks = kt
			case bool, int, int64, uint64:
				ks = fmt.Sprint(kt)
			case float64:
				ks = strconv.FormatFloat(kt, 'g', -1, 64)
			default:
				return nil, &FieldError{Field: path, Detail: fmt.Sprintf("unsupported key of type %T", k)}
			}
			if _, dup := out[ks]; dup {
				return nil, &FieldError{Field: child(path, ks), Detail: "duplicate key"}
			}
			c, err := jsonTree(e, child(path, ks))
			if err != nil {
				return nil, err
			}
			out[ks] = c
		}
		return out, nil
	}
	return nil, &FieldError{Field: path, Detail: fmt.Sprintf("unsupported value of type %T", v)}
}

// decodeObject checks a document's apiVersion, kind and fields and decodes
// it, from raw when not nil (the document's JSON text), else from the
// tree.
func decodeObject(tree any, raw []byte) ([]Proc, []error) {
	obj, ok := tree.(map[string]any)
	if !ok {
		return nil, []error{&FieldError{Detail: "must be an object with apiVersion and kind, not " + describe(tree)}}
	}
	var problems []error
	kindOf := func(name, want string, allowed ...string) string {
		v, present := obj[name]
		s, isString := v.(string)
		switch {
		case !present || v == nil || s == "":
			problems = append(problems, &kindError{FieldError{Field: name, Detail: fmt.Sprintf("required (%s)", want)}})
		case !isString || !slices.Contains(allowed, s):
			problems = append(problems, &kindError{FieldError{Field: name, Detail: fmt.Sprintf("must be %s, not %s", want, describe(v))}})
		}
		return s
	}
	kindOf("apiVersion", strconv.Quote(APIVersion), APIVersion)
	kind := kindOf("kind", `"Proc" or "ProcList"`, KindProc, KindProcList)
	if len(problems) > 0 {
		return nil, problems
	}
	// A Proc is decoded in place into the slice returned.
	var one []Proc
	var target any
	if kind == KindProc {
		one = make([]Proc, 1)
		target = &one[0]
	} else {
		target = new(ProcList)
	}
	checkTree(tree, reflect.TypeOf(target).Elem(), "", &problems)
	if len(problems) > 0 {
		return nil, problems
	}
	b := raw
	if b == nil {
		var err error
		if b, err = json.Marshal(tree); err != nil {
			return nil, []error{err}
		}
	}
	// checkTree has refused every unknown field, matching names exactly,
	// which encoding/json's DisallowUnknownFields does not.
	if err := json.Unmarshal(b, target); err != nil {
		return nil, []error{err}
	}
	switch t := target.(type) {
	case *Proc:
		return one, nil
	case *ProcList:
		for i := range t.Items {
			it := &t.Items[i]
			ip := index("items", i)
			if it.APIVersion == "" {
				it.APIVersion = APIVersion
			} else if it.APIVersion != APIVersion {
				problems = append(problems, &kindError{FieldError{Field: child(ip, "apiVersion"), Detail: fmt.Sprintf("must be %q, not %q", APIVersion, it.APIVersion)}})
			}
			if it.Kind == "" {
				it.Kind = KindProc
			} else if it.Kind != KindProc {
				problems = append(problems, &kindError{FieldError{Field: child(ip, "kind"), Detail: fmt.Sprintf("must be %q, not %q", KindProc, it.Kind)}})
			}
		}
		if len(problems) > 0 {
			return nil, problems
		}
		if t.Items == nil {
			return []Proc{}, nil
		}
		return t.Items, nil
	}
	return nil, nil
}

// describe names a tree value for messages.
func describe(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return strconv.Quote(t)
	case bool:
		return strconv.FormatBool(t)
	case json.Number:
		return "the number " + t.String()
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

var jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// checkTree checks tree against type t: unknown fields (matched exactly,
// unlike encoding/json's case-folding) and values of the wrong type, each
// reported with its path.
func checkTree(tree any, t reflect.Type, path string, problems *[]error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if tree == nil {
		return
	}
	bad := func(want string) {
		detail := fmt.Sprintf("must be %s, not %s", want, describe(tree))
		if strings.HasSuffix(path, ".umask") {
			detail = `must be an octal string such as "0027" (quote it in YAML, where 0027 is the number 23)`
		}
		*problems = append(*problems, &FieldError{Field: path, Detail: detail})
	}
	if isUnmarshaler(t) {
		b, err := json.Marshal(tree)
		if err == nil {
			err = reflect.New(t).Interface().(json.Unmarshaler).UnmarshalJSON(b)
		}
		if err != nil {
			*problems = append(*problems, &FieldError{Field: path, Detail: err.Error()})
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		obj, ok := tree.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		fields := structFields(t)
		for _, k := range sortedKeys(obj) {
			ft, ok := fields[k]
			if !ok {
				*problems = append(*problems, &UnknownFieldError{Field: child(path, k)})
				continue
			}
			checkTree(obj[k], ft, child(path, k), problems)
		}
	case reflect.Slice, reflect.Array:
		arr, ok := tree.([]any)
		if !ok {
			bad("a list")
			return
		}
		if t.Kind() == reflect.Array && len(arr) != t.Len() {
			bad(fmt.Sprintf("a list of %d", t.Len()))
			return
		}
		for i, e := range arr {
			checkTree(e, t.Elem(), index(path, i), problems)
		}
	case reflect.Map:
		obj, ok := tree.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		for _, k := range sortedKeys(obj) {
			checkTree(obj[k], t.Elem(), key(path, k), problems)
		}
	case reflect.String:
		if _, ok := tree.(string); !ok {
			bad("a string")
		}
	case reflect.Bool:
		if _, ok := tree.(bool); !ok {
			bad("true or false")
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := tree.(json.Number)
		if !ok {
			bad("an integer")
			return
		}
		if _, err := strconv.ParseInt(n.String(), 10, t.Bits()); err != nil {
			bad(fmt.Sprintf("an integer that fits in %d bits", t.Bits()))
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, ok := tree.(json.Number)
		if !ok {
			bad("an integer, 0 or more")
			return
		}
		if _, err := strconv.ParseUint(n.String(), 10, t.Bits()); err != nil {
			bad(fmt.Sprintf("an integer, 0 or more, that fits in %d bits", t.Bits()))
		}
	case reflect.Float32, reflect.Float64:
		n, ok := tree.(json.Number)
		if !ok {
			bad("a number")
			return
		}
		if _, err := strconv.ParseFloat(n.String(), t.Bits()); err != nil {
			bad("a number in range")
		}
	case reflect.Interface:
	default:
		bad("something else")
	}
}

// fieldsCache holds structFields' answers by type: they depend on the type
// alone and are read, never modified.
var fieldsCache sync.Map // reflect.Type -> map[string]reflect.Type

// unmarshalerCache records, by type, whether a pointer to it is a
// json.Unmarshaler.
var unmarshalerCache sync.Map // reflect.Type -> bool

// isUnmarshaler reports whether *t implements json.Unmarshaler.
func isUnmarshaler(t reflect.Type) bool {
	if v, ok := unmarshalerCache.Load(t); ok {
		return v.(bool)
	}
	is := reflect.PointerTo(t).Implements(jsonUnmarshalerType)
	unmarshalerCache.Store(t, is)
	return is
}

// structFields maps the JSON names of t's fields, embedded structs
// included, to their types. The map is shared: callers must not modify it.
func structFields(t reflect.Type) map[string]reflect.Type {
	if v, ok := fieldsCache.Load(t); ok {
		return v.(map[string]reflect.Type)
	}
	out := buildStructFields(t)
	fieldsCache.Store(t, out)
	return out
}

func buildStructFields(t reflect.Type) map[string]reflect.Type {
	out := make(map[string]reflect.Type, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			for k, v := range structFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = f.Type
	}
	return out
}
