package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// This file is the MessagePack codec of the agent protocol: EncodeMessage,
// DecodeMessage and EchoRequest. A message is a map holding "type" and the
// message struct's fields (their msgpack tags) beside it; nested structs
// are maps in field order, as rmp-serde's to_vec_named writes them.
//
// Types with a special form on the wire:
//   - Time: an RFC 3339 string (FormatTime);
//   - Float and other floats: float64;
//   - []byte: bin (never nil, even when empty);
//   - nil slices and maps: an empty array or map (errors, fds, proc_ids,
//     argv are never nil on the wire);
//   - FdRes: internally tagged by "type", only the variant's fields;
//   - ProcSpec: decoded with the same strictness and defaults as the JSON
//     spec decoder, by way of JSON; encoded like its JSON form (every
//     field, env inherit as a bool or a list, fds as [name, spec] pairs,
//     externally tagged fd variants), but with map keys sorted rather
//     than in struct order, which serde accepts.
//   - map[string]any (RequestError.msg): generic values, keys sorted.
//
// Decoding is strict: every field is required (nil only where the Go type
// is a pointer, an interface or a map value of pointer type), except a
// pointer field tagged "optional", which may be missing and then decodes
// as nil: the Option fields of the requests procstar decodes with serde,
// which takes a missing Option as None (ProcFdDataRequest.stop). Unknown keys
// and duplicate keys are errors, integers may use any msgpack int format
// but must fit the field, and floats, strings or nil are never taken for
// integers. The one exception is Register, whose top-level extra keys are
// ignored and whose "proc_ids" and "labels" may be missing or nil, as the
// Python server's Register parser allows; its "resources" (an extension)
// may be missing or nil too, but when it is a map that map is strict.

// ErrBadMessage is wrapped by every error of DecodeMessage and
// EncodeMessage.
var ErrBadMessage = errors.New("bad agent protocol message")

// DecodeError is the error DecodeMessage returns for a frame that is a
// msgpack map with a string "type" but is not a valid message of that
// type (or the type is unknown). Raw is the frame decoded generically (see
// EchoRequest for the value types), for RequestError.msg; when the frame
// cannot be decoded even generically, Raw holds only "type".
type DecodeError struct {
	Type string
	Raw  map[string]any
	Err  error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("decode %q message: %v", e.Type, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// messageTypes maps each "type" to its struct type.
var messageTypes = func() map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for _, msg := range []Message{
		Register{}, Registered{}, ProcStartRequest{}, ProcidListRequest{}, ProcResultRequest{},
		ProcSignalRequest{}, ProcFdDataRequest{}, ProcDeleteRequest{}, RequestError{}, ProcUnknown{},
		ProcidList{}, ProcResult{}, ProcFdData{}, ProcDelete{}, ShutDown{},
	} {
		m[msg.MessageType()] = reflect.TypeOf(msg)
	}
	return m
}()

var (
	timeType     = reflect.TypeFor[Time]()
	fdResType    = reflect.TypeFor[FdRes]()
	procSpecType = reflect.TypeFor[ProcSpec]()
	registerType = reflect.TypeFor[Register]()
)

// field is one msgpack-tagged struct field.
type field struct {
	name      string
	index     int
	omitEmpty bool
	// optional (tag option "optional", pointer fields only): decoding
	// takes a missing key as nil, as serde does for an Option field.
	// Encoding still writes the key.
	optional bool
	// key is name encoded as a msgpack string, written as is.
	key []byte
}

// fieldPlans holds the fields of every struct type reachable from a
// message, computed once at start-up and never changed after.
var fieldPlans = func() map[reflect.Type][]field {
	plans := map[reflect.Type][]field{}
	var walk func(t reflect.Type)
	walk = func(t reflect.Type) {
		switch t {
		case timeType, fdResType, procSpecType:
			return
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(t.Elem())
		case reflect.Map:
			walk(t.Key())
			walk(t.Elem())
		case reflect.Struct:
			if _, ok := plans[t]; ok {
				return
			}
			fs := computeFields(t)
			plans[t] = fs
			for _, f := range fs {
				walk(t.Field(f.index).Type)
			}
		}
	}
	for _, t := range messageTypes {
		walk(t)
	}
	return plans
}()

// fieldsOf returns the tagged fields of struct type t in order.
func fieldsOf(t reflect.Type) []field {
	if fs, ok := fieldPlans[t]; ok {
		return fs
	}
	return computeFields(t)
}

func computeFields(t reflect.Type) []field {
	var fs []field
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() {
			continue
		}
		tag := sf.Tag.Get("msgpack")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = sf.Name
		}
		f := field{name: name, index: i, key: encodedString(name)}
		for opt := range strings.SplitSeq(opts, ",") {
			switch opt {
			case "omitempty":
				f.omitEmpty = true
			case "optional":
				f.optional = sf.Type.Kind() == reflect.Pointer
			}
		}
		fs = append(fs, f)
	}
	return fs
}

// encodedString returns s encoded as a msgpack string.
func encodedString(s string) []byte {
	var b bytes.Buffer
	if err := msgpack.NewEncoder(&b).EncodeString(s); err != nil {
		panic(err) // writing to a bytes.Buffer does not fail
	}
	return b.Bytes()
}

// encodeBufs holds scratch buffers for EncodeMessage.
var encodeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuf bounds the scratch buffers kept in encodeBufs.
const maxPooledBuf = 64 << 10

// ---- encoding -------------------------------------------------------------

// EncodeMessage encodes m (a message struct or a pointer to one) as
// procstar does: a msgpack map with "type" = m.MessageType() first and
// exactly the struct's fields beside it, nil pointers as nil, []byte as
// bin, strings as str. The result is a fresh slice owned by the caller.
// ProcFdData.Data is copied once, into the result.
func EncodeMessage(m Message) ([]byte, error) {
	if m == nil {
		return nil, fmt.Errorf("%w: nil message", ErrBadMessage)
	}
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, fmt.Errorf("%w: nil %T", ErrBadMessage, m)
		}
		v = v.Elem()
	}
	if messageTypes[m.MessageType()] != v.Type() {
		return nil, fmt.Errorf("%w: %T is not a protocol message", ErrBadMessage, m)
	}
	if b, ok := encodeFast(m); ok {
		return b, nil
	}
	size := -1
	if d, ok := m.(ProcFdData); ok {
		size = 128 + len(d.Data) + len(d.ProcID) + len(d.Fd)
	} else if d, ok := m.(*ProcFdData); ok {
		size = 128 + len(d.Data) + len(d.ProcID) + len(d.Fd)
	}
	var buf *bytes.Buffer
	if size >= 0 {
		// The data is copied once, straight into the result.
		buf = bytes.NewBuffer(make([]byte, 0, size))
	} else {
		// Other messages are small: encode into a pooled scratch buffer
		// and copy the result out at its exact size.
		buf = encodeBufs.Get().(*bytes.Buffer)
		buf.Reset()
		defer func() {
			if buf.Cap() <= maxPooledBuf {
				encodeBufs.Put(buf)
			}
		}()
	}
	e := msgpack.GetEncoder()
	defer msgpack.PutEncoder(e)
	e.Reset(buf)
	enc := encoder{e: e, buf: buf}
	if err := enc.structFields(v, m.MessageType()); err != nil {
		return nil, fmt.Errorf("%w: encode %s: %w", ErrBadMessage, m.MessageType(), err)
	}
	if size >= 0 {
		return buf.Bytes(), nil
	}
	return bytes.Clone(buf.Bytes()), nil
}

// errNoFastPath makes EncodeMessage take the reflective path.
var errNoFastPath = errors.New("no fast path")

// encodeFast encodes m without reflection where a fast path exists (see
// msgpack_result.go). ok is false when there is none, or when m cannot be
// encoded: the reflective path then says why, in its own words.
func encodeFast(m Message) (b []byte, ok bool) {
	var r *ProcResult
	switch m := m.(type) {
	case ProcResult:
		r = &m
	case *ProcResult:
		r = m
	default:
		return nil, false
	}
	b, err := encodeProcResult(make([]byte, 0, 1024), r)
	return b, err == nil
}

// encoder writes through e to buf; e writes straight to buf, unbuffered,
// so the two may be interleaved.
type encoder struct {
	e   *msgpack.Encoder
	buf *bytes.Buffer
}

// structFields writes struct v as a map, with "type" first when typ is
// not empty.
func (enc encoder) structFields(v reflect.Value, typ string) error {
	fs := fieldsOf(v.Type())
	n := 0
	for _, f := range fs {
		if !f.omitEmpty || !v.Field(f.index).IsZero() {
			n++
		}
	}
	if typ != "" {
		n++
	}
	if err := enc.e.EncodeMapLen(n); err != nil {
		return err
	}
	if typ != "" {
		if err := enc.e.EncodeString("type"); err != nil {
			return err
		}
		if err := enc.e.EncodeString(typ); err != nil {
			return err
		}
	}
	for _, f := range fs {
		fv := v.Field(f.index)
		if f.omitEmpty && fv.IsZero() {
			continue
		}
		enc.buf.Write(f.key)
		if err := enc.value(fv); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

func (enc encoder) value(v reflect.Value) error {
	e := enc.e
	kind := v.Kind()
	if kind == reflect.Struct {
		// The special types (but []byte, handled below with every byte
		// slice) are structs: only then compare types.
		switch v.Type() {
		case timeType:
			// The string, with its msgpack header (fixstr or str 8) in
			// front, without a detour through a string.
			var tmp [48]byte
			n := len(appendTime(tmp[2:2], time.Time(v.Interface().(Time))))
			if n < 32 {
				tmp[1] = 0xa0 | byte(n)
				enc.buf.Write(tmp[1 : 2+n])
			} else {
				tmp[0], tmp[1] = 0xd9, byte(n)
				enc.buf.Write(tmp[:2+n])
			}
			return nil
		case fdResType:
			return enc.fdRes(v.Interface().(FdRes))
		case procSpecType:
			p := v.Interface().(ProcSpec)
			for i, f := range p.Fds {
				if n := f.Spec.variants(); n != 1 {
					return fmt.Errorf("fds[%d]: fd spec has %d variants set, want exactly 1", i, n)
				}
			}
			return enc.value(reflect.ValueOf(specWireForm(p)))
		}
	}
	switch kind {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return e.EncodeNil()
		}
		return enc.value(v.Elem())
	case reflect.String:
		return e.EncodeString(v.String())
	case reflect.Bool:
		return e.EncodeBool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return e.EncodeInt(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return e.EncodeUint(v.Uint())
	case reflect.Float32, reflect.Float64:
		return e.EncodeFloat64(v.Float())
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			b := v.Bytes()
			if b == nil {
				b = []byte{}
			}
			return e.EncodeBytes(b)
		}
		if err := e.EncodeArrayLen(v.Len()); err != nil {
			return err
		}
		for i := range v.Len() {
			if err := enc.value(v.Index(i)); err != nil {
				return fmt.Errorf("[%d]: %w", i, err)
			}
		}
		return nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("map key type %s is not a string", v.Type().Key())
		}
		keys := v.MapKeys()
		slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
		if err := e.EncodeMapLen(len(keys)); err != nil {
			return err
		}
		for _, k := range keys {
			if err := e.EncodeString(k.String()); err != nil {
				return err
			}
			if err := enc.value(v.MapIndex(k)); err != nil {
				return fmt.Errorf("%s: %w", k.String(), err)
			}
		}
		return nil
	case reflect.Struct:
		return enc.structFields(v, "")
	}
	return fmt.Errorf("cannot encode %s", v.Type())
}

// fdRes writes an fd result with only its variant's fields, as
// FdRes.MarshalJSON does.
func (enc encoder) fdRes(f FdRes) error {
	e := enc.e
	kv := func(k, v string) error {
		if err := e.EncodeString(k); err != nil {
			return err
		}
		return e.EncodeString(v)
	}
	var err error
	switch f.Type {
	case FdResText:
		err = errors.Join(e.EncodeMapLen(3), kv("type", f.Type), kv("text", f.Text), kv("encoding", f.Encoding))
	case FdResData:
		err = errors.Join(e.EncodeMapLen(3), kv("type", f.Type), kv("data", f.Data), kv("encoding", f.Encoding))
	case FdResDetached:
		err = errors.Join(e.EncodeMapLen(3), kv("type", f.Type), e.EncodeString("length"), e.EncodeInt(f.Length),
			kv("encoding", f.Encoding))
	case FdResError:
		err = errors.Join(e.EncodeMapLen(1), kv("type", f.Type))
	case FdResFile:
		err = errors.Join(e.EncodeMapLen(2), kv("type", f.Type), kv("path", f.Path))
	default:
		return fmt.Errorf("unknown fd result type %q", f.Type)
	}
	return err
}

// specWireForm returns spec as generic values in its wire form (the JSON
// form EncodeSpecs writes): env.inherit a bool or a list of names.
func specWireForm(p ProcSpec) map[string]any {
	m := specGeneric(p)
	env := m["env"].(map[string]any)
	if p.Env.Inherit.Names != nil {
		env["inherit"] = stringsAny(p.Env.Inherit.Names)
	} else {
		env["inherit"] = p.Env.Inherit.All
	}
	return m
}

// specGeneric returns spec as generic values, env.inherit unset.
func specGeneric(p ProcSpec) map[string]any {
	vars := make(map[string]any, len(p.Env.Vars))
	for k, v := range p.Env.Vars {
		vars[k] = optString(v)
	}
	fds := make([]any, len(p.Fds))
	for i, f := range p.Fds {
		fds[i] = []any{string(f.Name), fdSpecGeneric(f.Spec)}
	}
	sc, sl := p.SystemdProperties.Scope, p.SystemdProperties.Slice
	return map[string]any{
		"id":   optString(p.ID),
		"exe":  optString(p.Exe),
		"argv": stringsAny(p.Argv),
		"env":  map[string]any{"vars": vars},
		"fds":  fds,
		"systemd_properties": map[string]any{
			"scope": map[string]any{
				"oom_policy":                    optString(sc.OOMPolicy),
				"runtime_max_usec":              optUint(sc.RuntimeMaxUSec),
				"runtime_randomized_extra_usec": optUint(sc.RuntimeRandomizedExtraUSec),
			},
			"slice": map[string]any{
				"memory_accounting": optBool(sl.MemoryAccounting),
				"memory_min":        optUint(sl.MemoryMin),
				"memory_low":        optUint(sl.MemoryLow),
				"memory_high":       optUint(sl.MemoryHigh),
				"memory_max":        optUint(sl.MemoryMax),
				"memory_swap_max":   optUint(sl.MemorySwapMax),
				"tasks_accounting":  optBool(sl.TasksAccounting),
				"tasks_max":         optUint(sl.TasksMax),
			},
		},
	}
}

func fdSpecGeneric(f FdSpec) any {
	switch {
	case f.Inherit:
		return tagInherit
	case f.Close:
		return tagClose
	case f.PipeWrite:
		return tagPipeWrite
	case f.Null != nil:
		return map[string]any{tagNull: map[string]any{"flags": string(orDefaultFlag(f.Null.Flags))}}
	case f.File != nil:
		return map[string]any{tagFile: map[string]any{
			"path": f.File.Path, "flags": string(orDefaultFlag(f.File.Flags)), "mode": int64(f.File.Mode)}}
	case f.Dup != nil:
		return map[string]any{tagDup: map[string]any{"fd": int64(f.Dup.Fd)}}
	case f.Capture != nil:
		mode := f.Capture.Mode
		if mode == "" {
			mode = "tempfile"
		}
		return map[string]any{tagCapture: map[string]any{
			"mode": string(mode), "encoding": optString(f.Capture.Encoding), "attached": f.Capture.Attached}}
	case f.PipeRead != nil:
		return map[string]any{tagPipeRead: map[string]any{"proc_id": f.PipeRead.ProcID, "fd": string(f.PipeRead.Fd)}}
	}
	// No variant set: not expressible; write nil so that decoding it fails.
	return nil
}

func stringsAny(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

func optString(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func optUint(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}

func optBool(p *bool) any {
	if p == nil {
		return nil
	}
	return *p
}

// ---- decoding -------------------------------------------------------------

// DecodeMessage decodes one frame strictly (see the top of this file) and
// returns the message as a struct value, e.g. ProcDelete, not *ProcDelete.
// The frame must hold exactly one msgpack map. Unknown "type", a missing,
// extra or duplicate field, or a value of the wrong type is an error
// wrapping ErrBadMessage; proc spec errors also wrap ErrBadSpec. When the
// frame is a map with a string "type", the error is a *DecodeError.
// ProcFdData.Data is a copy, not an alias of data.
func DecodeMessage(data []byte) (Message, error) {
	typ, err := frameType(data)
	if err != nil {
		return nil, err
	}
	m, err := decodeTyped(data, typ)
	if err != nil {
		r := &reader{b: data}
		raw, rerr := r.anyMap()
		if rerr != nil || r.left() != 0 {
			raw = map[string]any{"type": typ}
		}
		return nil, &DecodeError{Type: typ, Raw: raw, Err: err}
	}
	return m, nil
}

// frameType returns the string "type" of the map in data.
func frameType(data []byte) (string, error) {
	r := &reader{b: data}
	n, err := r.mapLen()
	if err != nil {
		return "", fmt.Errorf("frame is not a map: %w", err)
	}
	for range n {
		k, err := r.peek()
		if err != nil {
			return "", err
		}
		if k == kindStr {
			key, err := r.strBytes()
			if err != nil {
				return "", err
			}
			if string(key) == "type" {
				t, err := r.str()
				if err != nil {
					return "", fmt.Errorf("\"type\": %w", err)
				}
				return t, nil
			}
		} else if err := r.skip(); err != nil {
			return "", err
		}
		if err := r.skip(); err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("%w: map has no \"type\" key", ErrBadMessage)
}

func decodeTyped(data []byte, typ string) (Message, error) {
	t, ok := messageTypes[typ]
	if !ok {
		return nil, fmt.Errorf("%w: unknown message type %q", ErrBadMessage, typ)
	}
	r := &reader{b: data}
	v := reflect.New(t).Elem()
	if err := r.structValue(v, true, t == registerType); err != nil {
		if !errors.Is(err, ErrBadMessage) {
			err = fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		return nil, err
	}
	if r.left() != 0 {
		return nil, r.errf("%d bytes after the message", r.left())
	}
	return v.Interface().(Message), nil
}

// pathError is a decoding error at a path in the message, such as
// res.fds.stdout or specs.p.fds[0]. The path is built as the error
// travels up, so that decoding without error builds none.
type pathError struct {
	segs []string // innermost last
	err  error
}

func (e *pathError) Error() string {
	var b strings.Builder
	for i := len(e.segs) - 1; i >= 0; i-- {
		s := e.segs[i]
		if b.Len() > 0 && !strings.HasPrefix(s, "[") {
			b.WriteByte('.')
		}
		b.WriteString(s)
	}
	return b.String() + ": " + e.err.Error()
}

func (e *pathError) Unwrap() error { return e.err }

// within adds the path segment seg (a key, or "[i]") in front of err's
// path.
func within(seg string, err error) error {
	if pe, ok := err.(*pathError); ok {
		pe.segs = append(pe.segs, seg)
		return pe
	}
	return &pathError{segs: []string{seg}, err: err}
}

func index(i int) string { return "[" + strconv.Itoa(i) + "]" }

// badf is an ErrBadMessage error without a byte offset.
func badf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadMessage, fmt.Sprintf(format, args...))
}

// structValue decodes a map into struct v. With top set, v is a message
// and its "type" key is skipped. With lenient set (Register), unknown
// keys are skipped and "proc_ids", "labels" and "resources" may be missing
// or nil (a nil "resources" decodes as a nil pointer).
func (r *reader) structValue(v reflect.Value, top, lenient bool) error {
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	fs := fieldsOf(v.Type())
	var seen uint64 // structs have at most 64 fields
	sawType := false
	for range n {
		keyAt := r.off
		kb, err := r.strBytes()
		if err != nil {
			return fmt.Errorf("key: %w", err)
		}
		if top && string(kb) == "type" {
			if sawType {
				r.off = keyAt
				return r.errf("duplicate field \"type\"")
			}
			sawType = true
			if err := r.skip(); err != nil {
				return err
			}
			continue
		}
		i := fieldIndex(fs, kb)
		if i < 0 {
			if lenient {
				if err := r.skip(); err != nil {
					return err
				}
				continue
			}
			r.off = keyAt
			return r.errf("unknown field %q, expected one of %s", kb, fieldList(fs))
		}
		key := fs[i].name
		if seen&(1<<i) != 0 {
			r.off = keyAt
			return r.errf("duplicate field %q", key)
		}
		seen |= 1 << i
		if lenient && (key == "proc_ids" || key == "labels") && r.isNil() {
			continue
		}
		if err := r.value(v.Field(fs[i].index)); err != nil {
			return within(key, err)
		}
	}
	for i, f := range fs {
		if seen&(1<<i) != 0 || f.omitEmpty || f.optional || (lenient && f.name == "proc_ids") {
			continue
		}
		return badf("missing field %q", f.name)
	}
	return nil
}

// fieldIndex returns the index in fs of the field named key, or -1.
func fieldIndex(fs []field, key []byte) int {
	for i := range fs {
		if fs[i].name == string(key) {
			return i
		}
	}
	return -1
}

func fieldList(fs []field) string {
	if len(fs) == 0 {
		return "nothing"
	}
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.name
	}
	return quoteList(names)
}

// value decodes one value into v.
func (r *reader) value(v reflect.Value) error {
	switch v.Type() {
	case timeType:
		s, err := r.str()
		if err != nil {
			return err
		}
		t, err := ParseTime(s)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadMessage, err)
		}
		v.Set(reflect.ValueOf(Time(t)))
		return nil
	case fdResType:
		f, err := r.fdRes()
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(f))
		return nil
	case procSpecType:
		p, err := r.procSpec()
		if err != nil {
			return err
		}
		v.Set(reflect.ValueOf(p))
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if r.isNil() {
			v.SetZero()
			return nil
		}
		p := reflect.New(v.Type().Elem())
		if err := r.value(p.Elem()); err != nil {
			return err
		}
		v.Set(p)
		return nil
	case reflect.Interface:
		a, err := r.any()
		if err != nil {
			return err
		}
		if a != nil {
			v.Set(reflect.ValueOf(a))
		}
		return nil
	case reflect.String:
		s, err := r.str()
		if err != nil {
			return err
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		b, err := r.bool()
		if err != nil {
			return err
		}
		v.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		bits := v.Type().Bits()
		x, err := r.intIn(-1<<(bits-1), 1<<(bits-1)-1)
		if err != nil {
			return err
		}
		v.SetInt(x)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x, err := r.uintIn(math.MaxUint64 >> (64 - v.Type().Bits()))
		if err != nil {
			return err
		}
		v.SetUint(x)
		return nil
	case reflect.Float32, reflect.Float64:
		x, err := r.float()
		if err != nil {
			return err
		}
		v.SetFloat(x)
		return nil
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			b, err := r.bin()
			if err != nil {
				return err
			}
			v.SetBytes(append(make([]byte, 0, len(b)), b...))
			return nil
		}
		n, err := r.arrayLen()
		if err != nil {
			return err
		}
		s := reflect.MakeSlice(v.Type(), n, n)
		if err := r.elems(s); err != nil {
			return err
		}
		v.Set(s)
		return nil
	case reflect.Array:
		n, err := r.arrayLen()
		if err != nil {
			return err
		}
		if n != v.Len() {
			return badf("invalid length %d, expected %d", n, v.Len())
		}
		return r.elems(v)
	case reflect.Map:
		n, err := r.mapLen()
		if err != nil {
			return err
		}
		if err := r.enter(); err != nil {
			return err
		}
		defer r.leave()
		m := reflect.MakeMapWithSize(v.Type(), n)
		kt, et := v.Type().Key(), v.Type().Elem()
		for range n {
			keyAt := r.off
			k, err := r.str()
			if err != nil {
				return fmt.Errorf("key: %w", err)
			}
			kv := reflect.ValueOf(k).Convert(kt)
			if m.MapIndex(kv).IsValid() {
				r.off = keyAt
				return r.errf("duplicate key %q", k)
			}
			e := reflect.New(et).Elem()
			if err := r.value(e); err != nil {
				return within(k, err)
			}
			m.SetMapIndex(kv, e)
		}
		v.Set(m)
		return nil
	case reflect.Struct:
		return r.structValue(v, false, false)
	}
	return badf("cannot decode into %s", v.Type())
}

func (r *reader) elems(s reflect.Value) error {
	if err := r.enter(); err != nil {
		return err
	}
	defer r.leave()
	for i := range s.Len() {
		if err := r.value(s.Index(i)); err != nil {
			return within(index(i), err)
		}
	}
	return nil
}

// fdResFields lists each fd result type's fields.
var fdResFields = map[string][]string{
	FdResText:     {"type", "text", "encoding"},
	FdResData:     {"type", "data", "encoding"},
	FdResDetached: {"type", "length", "encoding"},
	FdResError:    {"type"},
	FdResFile:     {"type", "path"},
}

// fdRes decodes an internally tagged fd result with exactly its variant's
// fields.
func (r *reader) fdRes() (FdRes, error) {
	start := r.off
	var f FdRes
	// First find the type.
	n, err := r.mapLen()
	if err != nil {
		return f, err
	}
	for range n {
		k, err := r.strBytes()
		if err != nil {
			return f, fmt.Errorf("key: %w", err)
		}
		if string(k) == "type" {
			if f.Type, err = r.str(); err != nil {
				return f, within("type", err)
			}
			break
		}
		if err := r.skip(); err != nil {
			return f, err
		}
	}
	fields, ok := fdResFields[f.Type]
	if !ok {
		if f.Type == "" {
			return f, badf("missing field \"type\"")
		}
		return f, badf("unknown fd result type %q", f.Type)
	}
	r.off = start
	n, _ = r.mapLen()
	var seen uint
	for range n {
		keyAt := r.off
		k, err := r.strBytes()
		if err != nil {
			return f, fmt.Errorf("key: %w", err)
		}
		i := slices.IndexFunc(fields, func(s string) bool { return s == string(k) })
		if i < 0 {
			r.off = keyAt
			return f, r.errf("unknown field %q for fd result type %q", k, f.Type)
		}
		if seen&(1<<i) != 0 {
			r.off = keyAt
			return f, r.errf("duplicate field %q", k)
		}
		seen |= 1 << i
		var dst *string
		switch fields[i] {
		case "type":
			err = r.skip() // read above
			if err != nil {
				return f, err
			}
			continue
		case "text":
			dst = &f.Text
		case "data":
			dst = &f.Data
		case "encoding":
			dst = &f.Encoding
		case "path":
			dst = &f.Path
		case "length":
			if f.Length, err = r.intIn(0, math.MaxInt64); err != nil {
				return f, within("length", err)
			}
			continue
		}
		if *dst, err = r.str(); err != nil {
			return f, within(fields[i], err)
		}
	}
	for i, k := range fields {
		if seen&(1<<i) == 0 {
			return f, badf("missing field %q", k)
		}
	}
	return f, nil
}

// procSpec decodes a proc spec by converting it to JSON and running the
// JSON spec decoder, so that both forms are equally strict and fill the
// same defaults. A spec holds no floats or bin, so those are type errors.
func (r *reader) procSpec() (ProcSpec, error) {
	b, err := r.appendJSON(nil)
	if err != nil {
		return ProcSpec{}, err
	}
	var p ProcSpec
	if err := p.decode(b, ""); err != nil {
		return ProcSpec{}, fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return p, nil
}

// appendJSON converts one msgpack value to JSON. Map keys must be
// strings; duplicates are kept (the JSON decoder rejects them).
func (r *reader) appendJSON(b []byte) ([]byte, error) {
	k, err := r.peek()
	if err != nil {
		return b, err
	}
	switch k {
	case kindNil:
		r.off++
		return append(b, "null"...), nil
	case kindBool:
		v, _ := r.bool()
		return strconv.AppendBool(b, v), nil
	case kindInt:
		v, u, big, err := r.int()
		if err != nil {
			return b, err
		}
		if big {
			return strconv.AppendUint(b, u, 10), nil
		}
		return strconv.AppendInt(b, v, 10), nil
	case kindStr:
		s, err := r.str()
		if err != nil {
			return b, err
		}
		return appendJSONString(b, s), nil
	case kindArray:
		n, err := r.arrayLen()
		if err != nil {
			return b, err
		}
		if err := r.enter(); err != nil {
			return b, err
		}
		defer r.leave()
		b = append(b, '[')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = r.appendJSON(b); err != nil {
				return b, within(index(i), err)
			}
		}
		return append(b, ']'), nil
	case kindMap:
		n, err := r.mapLen()
		if err != nil {
			return b, err
		}
		if err := r.enter(); err != nil {
			return b, err
		}
		defer r.leave()
		b = append(b, '{')
		for i := range n {
			if i > 0 {
				b = append(b, ',')
			}
			key, err := r.str()
			if err != nil {
				return b, fmt.Errorf("key: %w", err)
			}
			b = append(appendJSONString(b, key), ':')
			if b, err = r.appendJSON(b); err != nil {
				return b, within(key, err)
			}
		}
		return append(b, '}'), nil
	}
	return b, r.errf("invalid type: %s in a proc spec", k)
}

// ---- echo -----------------------------------------------------------------

// EchoRequest returns the map procstar puts in RequestError.msg for a
// request it decoded: the request re-encoded in full, "type" included.
// Values are generic: string, int64, uint64, bool, nil, []any and
// map[string]any (bin as []byte). For ProcStartRequest the specs come back
// with every default filled and env.inherit as "All", "None" or
// {"Vars": [...]} (reference §4.5). m may be a message struct or a pointer
// to one; anything else gives a map with only "type".
func EchoRequest(m Message) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	v := reflect.ValueOf(m)
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return map[string]any{"type": m.MessageType()}
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return map[string]any{"type": m.MessageType()}
	}
	out := map[string]any{"type": m.MessageType()}
	for _, f := range fieldsOf(v.Type()) {
		fv := v.Field(f.index)
		if f.omitEmpty && fv.IsZero() {
			continue
		}
		out[f.name] = generic(fv)
	}
	return out
}

// generic converts v to generic values as EchoRequest describes.
func generic(v reflect.Value) any {
	switch v.Type() {
	case timeType:
		return FormatTime(time.Time(v.Interface().(Time)))
	case fdResType:
		f := v.Interface().(FdRes)
		m := map[string]any{"type": f.Type}
		switch f.Type {
		case FdResText:
			m["text"], m["encoding"] = f.Text, f.Encoding
		case FdResData:
			m["data"], m["encoding"] = f.Data, f.Encoding
		case FdResDetached:
			m["length"], m["encoding"] = f.Length, f.Encoding
		case FdResFile:
			m["path"] = f.Path
		}
		return m
	case procSpecType:
		p := v.Interface().(ProcSpec)
		m := specGeneric(p)
		env := m["env"].(map[string]any)
		switch {
		case p.Env.Inherit.Names != nil:
			env["inherit"] = map[string]any{"Vars": stringsAny(p.Env.Inherit.Names)}
		case p.Env.Inherit.All:
			env["inherit"] = "All"
		default:
			env["inherit"] = "None"
		}
		return m
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return generic(v.Elem())
	case reflect.String:
		return v.String()
	case reflect.Bool:
		return v.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		u := v.Uint()
		if u <= math.MaxInt64 {
			return int64(u)
		}
		return u
	case reflect.Float32, reflect.Float64:
		return v.Float()
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.Uint8 {
			return append([]byte{}, v.Bytes()...)
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = generic(v.Index(i))
		}
		return out
	case reflect.Map:
		out := make(map[string]any, v.Len())
		it := v.MapRange()
		for it.Next() {
			out[fmt.Sprint(it.Key().Interface())] = generic(it.Value())
		}
		return out
	case reflect.Struct:
		out := map[string]any{}
		for _, f := range fieldsOf(v.Type()) {
			fv := v.Field(f.index)
			if f.omitEmpty && fv.IsZero() {
				continue
			}
			out[f.name] = generic(fv)
		}
		return out
	}
	return nil
}
