package fakecontrol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"procstar.dev/procstar/wire"
)

// Errors of the protocol, as the Python server sees them. Each is wrapped
// with the details; check with errors.Is.
var (
	// ErrProtocol is a frame the server cannot accept: a text frame, bytes
	// that are not one MessagePack map, an unknown "type", or a field set
	// that is not exactly the message's. The Python server closes the
	// connection on it.
	ErrProtocol = errors.New("protocol error")
	// ErrPermissionDenied is a Register whose access_token is wrong.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrGroupChanged is a reconnect under a known conn_id with another
	// group_id.
	ErrGroupChanged = errors.New("group changed on reconnect")
)

// Shutdown states, as they travel.
const (
	StateActive = "active"
	StateIdling = "idling"
	StateDone   = "done"
)

type kind int

const (
	kStr kind = iota
	kStrOrNil
	kInt
	kBin
	kMap
	kStrList
	kStrListOrNil
	kState
	kBool
)

type field struct {
	name string
	kind kind
}

// exactFields are the agent messages built by a dataclass constructor on
// the Python side: exactly these keys besides "type".
var exactFields = map[string][]field{
	"RequestError": {{"msg", kMap}, {"err", kStr}},
	"ProcDelete":   {{"proc_id", kStr}},
	"ProcResult":   {{"proc_id", kStr}, {"res", kMap}},
	"ProcFdData": {{"proc_id", kStr}, {"fd", kStr}, {"start", kInt}, {"stop", kInt},
		{"encoding", kStrOrNil}, {"data", kBin}},
	"ProcUnknown": {{"proc_id", kStr}},
	"ProcidList":  {{"proc_ids", kStrList}},
}

// resourcesFields are Register.resources under the "resources"
// extension (wire.AgentResources): exactly these keys.
var resourcesFields = []field{{"backend", kStr}, {"detail", kStr}, {"controllers", kStrList},
	{"best_effort", kBool}, {"perf_counters", kStr}}

var connFields = []field{{"conn_id", kStr}, {"group_id", kStr}, {"restricted_exe", kStrOrNil}}

var procFields = []field{{"pid", kInt}, {"ppid", kInt}, {"uid", kInt}, {"euid", kInt},
	{"username", kStrOrNil}, {"gid", kInt}, {"egid", kInt}, {"groupname", kStrOrNil}, {"hostname", kStr}}

// decodeMap decodes one frame as a single MessagePack map with string keys,
// as Python's msgpack.unpackb would (trailing bytes are an error): str
// becomes string, bin []byte, integers int64 or uint64, floats float64.
func decodeMap(frame []byte) (map[string]any, error) {
	// msgpack's DecodeInterface sizes a slice or map by its header before
	// reading any element, so a frame of a few bytes claiming 2^32
	// elements would exhaust memory. Python's unpacker checks lengths
	// against the bytes it has, and bounds nesting; checkValue does the
	// same first, trailing bytes included (msgpack then reads exactly the
	// bytes checkValue walked: FuzzCheckValue).
	rest, err := checkValue(frame, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: not MessagePack: %v", ErrProtocol, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the message", ErrProtocol, len(rest))
	}
	v, err := msgpack.NewDecoder(bytes.NewReader(frame)).DecodeInterface()
	v = normalize(v)
	if err != nil {
		return nil, fmt.Errorf("%w: not MessagePack: %v", ErrProtocol, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: message is %T, not a map", ErrProtocol, v)
	}
	return m, nil
}

// maxDepth bounds the nesting of a frame, as msgpack-python's unpacker
// stack does.
const maxDepth = 1024

var errShort = errors.New("unexpected end of data")

// checkValue walks the MessagePack value at the start of b without building
// it and returns the bytes after it. Every length must be backed by the
// bytes left (each element takes at least one), and nesting stops at
// maxDepth.
func checkValue(b []byte, depth int) ([]byte, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nested deeper than %d", maxDepth)
	}
	if len(b) == 0 {
		return nil, errShort
	}
	c, b := b[0], b[1:]
	switch {
	case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
		return b, nil // fixint, nil, bool
	case c&0xe0 == 0xa0:
		return skipBytes(b, int(c&0x1f)) // fixstr
	case c&0xf0 == 0x90:
		return checkValues(b, int(c&0x0f), depth) // fixarray
	case c&0xf0 == 0x80:
		return checkValues(b, 2*int(c&0x0f), depth) // fixmap
	}
	switch c {
	case 0xcc, 0xd0:
		return skipBytes(b, 1)
	case 0xcd, 0xd1:
		return skipBytes(b, 2)
	case 0xca, 0xce, 0xd2:
		return skipBytes(b, 4)
	case 0xcb, 0xcf, 0xd3:
		return skipBytes(b, 8)
	case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16, after the type byte
		return skipBytes(b, 1+1<<(c-0xd4))
	}
	// A length of width bytes, extra bytes, then the length's worth of
	// bytes, or of values (per element) for arrays and maps.
	var width, extra, per int
	switch c {
	case 0xc4, 0xd9: // bin 8, str 8
		width = 1
	case 0xc5, 0xda:
		width = 2
	case 0xc6, 0xdb:
		width = 4
	case 0xc7, 0xc8, 0xc9: // ext 8, 16, 32: the type byte follows the length
		width, extra = 1<<(c-0xc7), 1
	case 0xdc, 0xdd: // array 16, 32
		width, per = 2<<(c-0xdc), 1
	case 0xde, 0xdf: // map 16, 32
		width, per = 2<<(c-0xde), 2
	default:
		return nil, fmt.Errorf("reserved code 0x%02x", c)
	}
	if len(b) < width+extra {
		return nil, errShort
	}
	n := 0
	for _, x := range b[:width] {
		n = n<<8 | int(x)
	}
	b = b[width+extra:]
	if per == 0 {
		return skipBytes(b, n)
	}
	return checkValues(b, per*n, depth)
}

func skipBytes(b []byte, n int) ([]byte, error) {
	if n > len(b) {
		return nil, errShort
	}
	return b[n:], nil
}

// checkValues checks n values in a row, one level deeper.
func checkValues(b []byte, n, depth int) ([]byte, error) {
	if n > len(b) {
		return nil, errShort
	}
	var err error
	for range n {
		if b, err = checkValue(b, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// decodeAgentMessage decodes and checks one frame from an agent. It
// returns the type and the fields without "type".
func decodeAgentMessage(frame []byte) (string, map[string]any, error) {
	m, err := decodeMap(frame)
	if err != nil {
		return "", nil, err
	}
	t, ok := m["type"].(string)
	if !ok {
		return "", nil, fmt.Errorf("%w: no string \"type\" key", ErrProtocol)
	}
	delete(m, "type")
	switch t {
	case "Register":
		return t, m, checkRegister(m)
	case "ShutDown":
		return t, m, checkFields(t, m, []field{{"shutdown_state", kState}}, false)
	}
	fs, ok := exactFields[t]
	if !ok {
		return t, m, fmt.Errorf("%w: unknown message type %q", ErrProtocol, t)
	}
	return t, m, checkFields(t, m, fs, true)
}

func checkRegister(m map[string]any) error {
	if err := checkFields("Register", m, []field{{"access_token", kStr}, {"shutdown_state", kState}, {"conn", kMap}, {"proc", kMap}}, false); err != nil {
		return err
	}
	if err := checkFields("Register.conn", m["conn"].(map[string]any), connFields, true); err != nil {
		return err
	}
	if err := checkFields("Register.proc", m["proc"].(map[string]any), procFields, true); err != nil {
		return err
	}
	if ids, ok := m["proc_ids"]; ok && ids != nil {
		if err := checkKind("Register", "proc_ids", ids, kStrList); err != nil {
			return err
		}
	}
	if l, ok := m["labels"]; ok {
		lm, ok := l.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: Register: labels is %T, not a map", ErrProtocol, l)
		}
		for k, v := range lm {
			if err := checkKind("Register.labels", k, v, kStr); err != nil {
				return err
			}
		}
	}
	if r, ok := m["resources"]; ok {
		rm, ok := r.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: Register: resources is %T, not a map", ErrProtocol, r)
		}
		if err := checkFields("Register.resources", rm, resourcesFields, true); err != nil {
			return err
		}
	}
	return nil
}

// checkFields checks that m has every field of fs with the right kind and,
// when exact, no other key.
func checkFields(what string, m map[string]any, fs []field, exact bool) error {
	for _, f := range fs {
		v, ok := m[f.name]
		if !ok {
			return fmt.Errorf("%w: %s: missing key %q", ErrProtocol, what, f.name)
		}
		if err := checkKind(what, f.name, v, f.kind); err != nil {
			return err
		}
	}
	if exact && len(m) != len(fs) {
		var extra []string
		for k := range m {
			found := false
			for _, f := range fs {
				found = found || f.name == k
			}
			if !found {
				extra = append(extra, k)
			}
		}
		sort.Strings(extra)
		return fmt.Errorf("%w: %s: unexpected keys %s", ErrProtocol, what, strings.Join(extra, ", "))
	}
	return nil
}

func checkKind(what, name string, v any, k kind) error {
	ok := false
	switch k {
	case kStr:
		_, ok = v.(string)
	case kStrOrNil:
		_, ok = v.(string)
		ok = ok || v == nil
	case kInt:
		switch v.(type) {
		case int64, uint64:
			ok = true
		}
	case kBin:
		_, ok = v.([]byte)
	case kMap:
		_, ok = v.(map[string]any)
	case kStrList, kStrListOrNil:
		if v == nil {
			ok = k == kStrListOrNil
			break
		}
		l, isList := v.([]any)
		ok = isList
		for _, e := range l {
			if _, isStr := e.(string); !isStr {
				ok = false
			}
		}
	case kBool:
		_, ok = v.(bool)
	case kState:
		s, _ := v.(string)
		ok = s == StateActive || s == StateIdling || s == StateDone
	}
	if !ok {
		return fmt.Errorf("%w: %s: key %q has a bad value %#v", ErrProtocol, what, name, v)
	}
	return nil
}

// normalize widens the sized numbers of msgpack's DecodeInterface.
func normalize(v any) any {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint8:
		return uint64(x)
	case uint16:
		return uint64(x)
	case uint32:
		return uint64(x)
	case float32:
		return float64(x)
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	}
	return v
}

func asInt(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case uint64:
		return int64(n)
	}
	return 0
}

func asStrPtr(v any) *string {
	if s, ok := v.(string); ok {
		return &s
	}
	return nil
}

func asStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, e := range l {
		out = append(out, e.(string))
	}
	return out
}

// registerFrom builds the typed Register from checked fields.
func registerFrom(m map[string]any) wire.Register {
	c := m["conn"].(map[string]any)
	p := m["proc"].(map[string]any)
	r := wire.Register{
		Conn: wire.ConnInfo{
			ConnID:        c["conn_id"].(string),
			GroupID:       c["group_id"].(string),
			RestrictedExe: asStrPtr(c["restricted_exe"]),
		},
		Proc: wire.ProcInfo{
			Pid: int(asInt(p["pid"])), Ppid: int(asInt(p["ppid"])),
			UID: int(asInt(p["uid"])), EUID: int(asInt(p["euid"])),
			Username: asStrPtr(p["username"]),
			GID:      int(asInt(p["gid"])), EGID: int(asInt(p["egid"])),
			Groupname: asStrPtr(p["groupname"]),
			Hostname:  p["hostname"].(string),
		},
		AccessToken:   m["access_token"].(string),
		ShutdownState: m["shutdown_state"].(string),
	}
	if ids, ok := m["proc_ids"]; ok && ids != nil {
		r.ProcIDs = asStrings(ids)
	}
	if l, ok := m["labels"].(map[string]any); ok {
		r.Labels = make(map[string]string, len(l))
		for k, v := range l {
			r.Labels[k] = v.(string)
		}
	}
	if rm, ok := m["resources"].(map[string]any); ok {
		r.Resources = &wire.AgentResources{
			Backend:      rm["backend"].(string),
			Detail:       rm["detail"].(string),
			Controllers:  asStrings(rm["controllers"]),
			BestEffort:   rm["best_effort"].(bool),
			PerfCounters: rm["perf_counters"].(string),
		}
	}
	return r
}

// encodeMessage encodes a server message the way Python's msgpack.packb
// does for a dict: a map, "type" beside the fields, compact integers.
func encodeMessage(typ string, fields map[string]any) ([]byte, error) {
	m := make(map[string]any, len(fields)+1)
	for k, v := range fields {
		m[k] = v
	}
	m["type"] = typ
	var b bytes.Buffer
	enc := msgpack.NewEncoder(&b)
	enc.UseCompactInts(true)
	enc.SetSortMapKeys(true)
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	return b.Bytes(), nil
}

// SpecMap turns a wire.ProcSpec into the plain map a Python client would
// send: its JSON form, with integral numbers as integers.
func SpecMap(spec wire.ProcSpec) (map[string]any, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return nil, fmt.Errorf("encode spec: %w", err)
	}
	return JSONMap(b)
}

// JSONMap decodes a JSON object into a plain map as Python's json module
// would: integral numbers become integers, others floats.
func JSONMap(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode JSON: %w", err)
	}
	m, ok := fixNumbers(v).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decode JSON: %T is not an object", v)
	}
	return m, nil
}

func fixNumbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = fixNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fixNumbers(e)
		}
	}
	return v
}

// ProcRes decodes a ProcResult's res map into wire.ProcRes, through its
// JSON form and wire's strict decoder.
func ProcRes(res map[string]any) (wire.ProcRes, error) {
	b, err := json.Marshal(res)
	if err != nil {
		return wire.ProcRes{}, fmt.Errorf("encode res: %w", err)
	}
	return wire.DecodeProcRes(b)
}
