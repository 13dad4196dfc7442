package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	v1 "procstar.dev/procstar/api/v1"
)

// Specs is the top level of a procstar spec document (spec file, HTTP POST
// body): {"specs": {proc_id: ProcSpec}}. "specs" is required and no other
// key is allowed.
type Specs struct {
	Specs map[string]ProcSpec `json:"specs" msgpack:"specs"`
}

// ProcSpec is procstar's proc spec. Decoding fills procstar's defaults, so
// a decoded value says everything explicitly; encoding writes every field,
// as procstar echoes a spec.
type ProcSpec struct {
	// ID is accepted and ignored by procstar.
	ID *string `json:"id" msgpack:"id"`
	// Exe defaults to argv[0] when nil.
	Exe  *string  `json:"exe" msgpack:"exe"`
	Argv []string `json:"argv" msgpack:"argv"`
	Env  EnvSpec  `json:"env" msgpack:"env"`
	// Fds are applied in order. Fds that are not listed are inherited
	// from procstar.
	Fds               []FdEntry         `json:"fds" msgpack:"fds"`
	SystemdProperties SystemdProperties `json:"systemd_properties" msgpack:"systemd_properties"`
}

// EnvSpec is procstar's env spec.
type EnvSpec struct {
	Inherit EnvInherit         `json:"inherit" msgpack:"inherit"`
	Vars    map[string]*string `json:"vars" msgpack:"vars"`
}

// EnvInherit is true, false or a list of names. In JSON it is a boolean or
// an array of strings; null is rejected.
type EnvInherit struct {
	// All is the boolean form; it is ignored when Names is non-nil.
	All bool
	// Names is the list form.
	Names []string
}

// FdEntry is one element of a proc spec's fds list, in JSON a two-element
// array [name, fdspec]. The name is kept as written.
type FdEntry struct {
	Name v1.FdName
	Spec FdSpec
}

// FdSpec is an fd variant, in serde's externally tagged form: the unit
// variants are the bare strings "inherit", "close" and "pipe-write"; the
// others are single-key objects {"null": {...}}, {"file": {...}},
// {"dup": {...}}, {"capture": {...}}, {"pipe-read": {...}}. Exactly one
// field is set.
type FdSpec struct {
	Inherit   bool        `json:"-" msgpack:"-"`
	Close     bool        `json:"-" msgpack:"-"`
	PipeWrite bool        `json:"-" msgpack:"-"`
	Null      *NullFd     `json:"null,omitempty" msgpack:"null,omitempty"`
	File      *FileFd     `json:"file,omitempty" msgpack:"file,omitempty"`
	Dup       *DupFd      `json:"dup,omitempty" msgpack:"dup,omitempty"`
	Capture   *CaptureFd  `json:"capture,omitempty" msgpack:"capture,omitempty"`
	PipeRead  *PipeReadFd `json:"pipe-read,omitempty" msgpack:"pipe-read,omitempty"`
}

// Fd variant tags.
const (
	tagInherit   = "inherit"
	tagClose     = "close"
	tagPipeWrite = "pipe-write"
	tagNull      = "null"
	tagFile      = "file"
	tagDup       = "dup"
	tagCapture   = "capture"
	tagPipeRead  = "pipe-read"
)

var fdTags = []string{tagInherit, tagClose, tagNull, tagFile, tagDup, tagCapture, tagPipeWrite, tagPipeRead}

// NullFd opens /dev/null.
type NullFd struct {
	Flags v1.OpenFlag `json:"flags" msgpack:"flags"`
}

// FileFd opens a file in the child.
type FileFd struct {
	Path  string      `json:"path" msgpack:"path"`
	Flags v1.OpenFlag `json:"flags" msgpack:"flags"`
	// Mode is a C int in procstar; it defaults to 0o666.
	Mode int32 `json:"mode" msgpack:"mode"`
}

// DupFd duplicates the child's fd Fd.
type DupFd struct {
	Fd int32 `json:"fd" msgpack:"fd"`
}

// CaptureFd captures output.
type CaptureFd struct {
	// Mode is "tempfile" (default) or "memory".
	Mode v1.CaptureMode `json:"mode" msgpack:"mode"`
	// Encoding is "utf-8" or nil, which means base64.
	Encoding *string `json:"encoding" msgpack:"encoding"`
	// Attached defaults to true.
	Attached bool `json:"attached" msgpack:"attached"`
}

// PipeReadFd is the read end of a pipe written by another proc's
// pipe-write fd.
type PipeReadFd struct {
	ProcID string    `json:"proc_id" msgpack:"proc_id"`
	Fd     v1.FdName `json:"fd" msgpack:"fd"`
}

// SystemdProperties are procstar's systemd unit settings. Nil fields are
// not set.
type SystemdProperties struct {
	Scope SystemdScope `json:"scope" msgpack:"scope"`
	Slice SystemdSlice `json:"slice" msgpack:"slice"`
}

// SystemdScope holds the transient scope unit's settings.
type SystemdScope struct {
	// OOMPolicy is "continue", "stop" or "kill".
	OOMPolicy                  *string `json:"oom_policy" msgpack:"oom_policy"`
	RuntimeMaxUSec             *uint64 `json:"runtime_max_usec" msgpack:"runtime_max_usec"`
	RuntimeRandomizedExtraUSec *uint64 `json:"runtime_randomized_extra_usec" msgpack:"runtime_randomized_extra_usec"`
}

// SystemdSlice holds the transient slice unit's settings (bytes, counts).
type SystemdSlice struct {
	MemoryAccounting *bool   `json:"memory_accounting" msgpack:"memory_accounting"`
	MemoryMin        *uint64 `json:"memory_min" msgpack:"memory_min"`
	MemoryLow        *uint64 `json:"memory_low" msgpack:"memory_low"`
	MemoryHigh       *uint64 `json:"memory_high" msgpack:"memory_high"`
	MemoryMax        *uint64 `json:"memory_max" msgpack:"memory_max"`
	MemorySwapMax    *uint64 `json:"memory_swap_max" msgpack:"memory_swap_max"`
	TasksAccounting  *bool   `json:"tasks_accounting" msgpack:"tasks_accounting"`
	TasksMax         *uint64 `json:"tasks_max" msgpack:"tasks_max"`
}

var openFlags = []string{
	string(v1.OpenDefault), string(v1.OpenRead), string(v1.OpenWrite), string(v1.OpenCreate),
	string(v1.OpenReplace), string(v1.OpenCreateAppend), string(v1.OpenAppend), string(v1.OpenReadWrite),
}

var oomPolicies = []string{"continue", "stop", "kill"}

const utf8Name = "utf-8"

// ---- decoding -------------------------------------------------------------

// UnmarshalJSON decodes {"specs": {...}} strictly.
func (s *Specs) UnmarshalJSON(data []byte) error {
	out := Specs{}
	found := false
	err := decodeObject(data, "", []string{"specs"}, func(_ string, val json.RawMessage) error {
		found = true
		out.Specs = map[string]ProcSpec{}
		return decodeMap(val, "specs", func(id string, val json.RawMessage) error {
			var p ProcSpec
			if err := p.decode(val, "specs."+id); err != nil {
				return err
			}
			out.Specs[id] = p
			return nil
		})
	})
	if err != nil {
		return err
	}
	if !found {
		return specErr("", "missing field \"specs\"")
	}
	*s = out
	return nil
}

// UnmarshalJSON decodes a proc spec strictly and fills procstar's defaults.
func (p *ProcSpec) UnmarshalJSON(data []byte) error { return p.decode(data, "") }

func (p *ProcSpec) decode(data []byte, path string) error {
	out := ProcSpec{
		Argv: []string{},
		Env:  EnvSpec{Inherit: EnvInherit{All: true}, Vars: map[string]*string{}},
		Fds:  []FdEntry{},
	}
	fields := []string{"id", "exe", "argv", "env", "fds", "systemd_properties"}
	err := decodeObject(data, path, fields, func(key string, val json.RawMessage) error {
		var err error
		at := join(path, key)
		switch key {
		case "id":
			out.ID, err = decodeOptString(val, at)
		case "exe":
			out.Exe, err = decodeOptString(val, at)
		case "argv":
			out.Argv, err = decodeStrings(val, at)
		case "env":
			err = out.Env.decode(val, at)
		case "fds":
			var elems []json.RawMessage
			if elems, err = decodeArray(val, at); err != nil {
				return err
			}
			out.Fds = make([]FdEntry, len(elems))
			for i, e := range elems {
				if err := out.Fds[i].decode(e, fmt.Sprintf("%s[%d]", at, i)); err != nil {
					return err
				}
			}
		case "systemd_properties":
			err = out.SystemdProperties.decode(val, at)
		}
		return err
	})
	if err != nil {
		return err
	}
	*p = out
	return nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// UnmarshalJSON decodes an env spec strictly.
func (e *EnvSpec) UnmarshalJSON(data []byte) error { return e.decode(data, "") }

func (e *EnvSpec) decode(data []byte, path string) error {
	out := EnvSpec{Inherit: EnvInherit{All: true}, Vars: map[string]*string{}}
	err := decodeObject(data, path, []string{"inherit", "vars"}, func(key string, val json.RawMessage) error {
		at := join(path, key)
		if key == "inherit" {
			return out.Inherit.decode(val, at)
		}
		return decodeMap(val, at, func(name string, val json.RawMessage) error {
			v, err := decodeOptString(val, at+"."+name)
			out.Vars[name] = v
			return err
		})
	})
	if err != nil {
		return err
	}
	*e = out
	return nil
}

// UnmarshalJSON accepts true, false or an array of names.
func (e *EnvInherit) UnmarshalJSON(data []byte) error { return e.decode(data, "") }

func (e *EnvInherit) decode(data []byte, path string) error {
	switch jsonKind(data) {
	case "boolean":
		b, err := decodeBool(data, path)
		*e = EnvInherit{All: b}
		return err
	case "sequence":
		names, err := decodeStrings(data, path)
		if err != nil {
			return err
		}
		*e = EnvInherit{Names: names}
		return nil
	}
	return specErr(path, "invalid type: %s, expected true, false, or seq of env var names", jsonKind(data))
}

// MarshalJSON writes true, false or the array of names.
func (e EnvInherit) MarshalJSON() ([]byte, error) {
	if e.Names != nil {
		return Marshal(e.Names)
	}
	return Marshal(e.All)
}

// UnmarshalJSON decodes a [name, fdspec] pair.
func (f *FdEntry) UnmarshalJSON(data []byte) error { return f.decode(data, "") }

func (f *FdEntry) decode(data []byte, path string) error {
	elems, err := decodeArray(data, path)
	if err != nil {
		return err
	}
	if len(elems) != 2 {
		return specErr(path, "invalid length %d, expected a tuple of size 2", len(elems))
	}
	name, err := decodeString(elems[0], path+"[0]")
	if err != nil {
		return err
	}
	var spec FdSpec
	if err := spec.decode(elems[1], path+"[1]"); err != nil {
		return err
	}
	*f = FdEntry{Name: v1.FdName(name), Spec: spec}
	return nil
}

// MarshalJSON writes the [name, fdspec] pair.
func (f FdEntry) MarshalJSON() ([]byte, error) {
	spec, err := f.Spec.MarshalJSON()
	if err != nil {
		return nil, err
	}
	name, _ := Marshal(string(f.Name))
	var b bytes.Buffer
	b.WriteByte('[')
	b.Write(name)
	b.WriteByte(',')
	b.Write(spec)
	b.WriteByte(']')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes an externally tagged fd variant strictly and fills
// its defaults.
func (f *FdSpec) UnmarshalJSON(data []byte) error { return f.decode(data, "") }

func (f *FdSpec) decode(data []byte, path string) error {
	var out FdSpec
	switch jsonKind(data) {
	case "string":
		tag, err := decodeString(data, path)
		if err != nil {
			return err
		}
		switch tag {
		case tagInherit:
			out.Inherit = true
		case tagClose:
			out.Close = true
		case tagPipeWrite:
			out.PipeWrite = true
		case tagNull, tagFile, tagDup, tagCapture, tagPipeRead:
			return specErr(path, "invalid type: unit variant %q, expected struct variant", tag)
		default:
			return specErr(path, "unknown variant %q, expected one of %s", tag, quoteList(fdTags))
		}
	case "map":
		n := 0
		err := decodeMap(data, path, func(tag string, val json.RawMessage) error {
			if n++; n > 1 {
				return specErr(path, "invalid type: map, expected map with a single key")
			}
			at := path + "." + tag
			switch tag {
			case tagInherit, tagClose, tagPipeWrite:
				// serde_json accepts {"close": null} for a unit variant.
				if !isNull(val) {
					return specErr(at, "invalid type: %s, expected unit variant", jsonKind(val))
				}
				out.Inherit, out.Close, out.PipeWrite = tag == tagInherit, tag == tagClose, tag == tagPipeWrite
				return nil
			case tagNull:
				out.Null = &NullFd{Flags: v1.OpenDefault}
				return decodeObject(val, at, []string{"flags"}, func(_ string, val json.RawMessage) error {
					return decodeOpenFlag(val, at+".flags", &out.Null.Flags)
				})
			case tagFile:
				out.File = &FileFd{Flags: v1.OpenDefault, Mode: 0o666}
				hasPath := false
				err := decodeObject(val, at, []string{"path", "flags", "mode"}, func(key string, val json.RawMessage) error {
					switch key {
					case "path":
						hasPath = true
						p, err := decodeString(val, at+".path")
						out.File.Path = p
						return err
					case "flags":
						return decodeOpenFlag(val, at+".flags", &out.File.Flags)
					}
					m, err := decodeInt(val, at+".mode", -1<<31, 1<<31-1)
					out.File.Mode = int32(m)
					return err
				})
				if err == nil && !hasPath {
					err = specErr(at, "missing field \"path\"")
				}
				return err
			case tagDup:
				out.Dup = &DupFd{}
				hasFd := false
				err := decodeObject(val, at, []string{"fd"}, func(_ string, val json.RawMessage) error {
					hasFd = true
					v, err := decodeInt(val, at+".fd", -1<<31, 1<<31-1)
					out.Dup.Fd = int32(v)
					return err
				})
				if err == nil && !hasFd {
					err = specErr(at, "missing field \"fd\"")
				}
				return err
			case tagCapture:
				out.Capture = &CaptureFd{Mode: v1.CaptureTempfile, Attached: true}
				return decodeObject(val, at, []string{"mode", "encoding", "attached"}, func(key string, val json.RawMessage) error {
					p := at + "." + key
					switch key {
					case "mode":
						m, err := decodeString(val, p)
						if err != nil {
							return err
						}
						if m != string(v1.CaptureTempfile) && m != string(v1.CaptureMemory) {
							return specErr(p, "unknown variant %q, expected one of \"tempfile\", \"memory\"", m)
						}
						out.Capture.Mode = v1.CaptureMode(m)
						return nil
					case "encoding":
						e, err := decodeOptString(val, p)
						if err != nil {
							return err
						}
						if e != nil && *e != utf8Name {
							return specErr(p, "unknown variant %q, expected \"utf-8\"", *e)
						}
						out.Capture.Encoding = e
						return nil
					}
					b, err := decodeBool(val, p)
					out.Capture.Attached = b
					return err
				})
			case tagPipeRead:
				out.PipeRead = &PipeReadFd{}
				var has [2]bool
				err := decodeObject(val, at, []string{"proc_id", "fd"}, func(key string, val json.RawMessage) error {
					s, err := decodeString(val, at+"."+key)
					if key == "proc_id" {
						has[0] = true
						out.PipeRead.ProcID = s
					} else {
						has[1] = true
						out.PipeRead.Fd = v1.FdName(s)
					}
					return err
				})
				if err == nil && !has[0] {
					err = specErr(at, "missing field \"proc_id\"")
				}
				if err == nil && !has[1] {
					err = specErr(at, "missing field \"fd\"")
				}
				return err
			}
			return specErr(path, "unknown variant %q, expected one of %s", tag, quoteList(fdTags))
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return specErr(path, "invalid type: map, expected map with a single key")
		}
	default:
		return specErr(path, "invalid type: %s, expected an fd variant", jsonKind(data))
	}
	*f = out
	return nil
}

func decodeOpenFlag(raw []byte, path string, dst *v1.OpenFlag) error {
	s, err := decodeString(raw, path)
	if err != nil {
		return err
	}
	if indexOf(openFlags, s) < 0 {
		return specErr(path, "unknown variant %q, expected one of %s", s, quoteList(openFlags))
	}
	*dst = v1.OpenFlag(s)
	return nil
}

// variants counts the set variant fields.
func (f FdSpec) variants() int {
	n := 0
	for _, b := range []bool{f.Inherit, f.Close, f.PipeWrite, f.Null != nil, f.File != nil, f.Dup != nil, f.Capture != nil, f.PipeRead != nil} {
		if b {
			n++
		}
	}
	return n
}

// MarshalJSON writes the externally tagged form. It fails unless exactly
// one variant is set.
func (f FdSpec) MarshalJSON() ([]byte, error) {
	if n := f.variants(); n != 1 {
		return nil, fmt.Errorf("fd spec has %d variants set, want exactly 1", n)
	}
	var tag string
	var val any
	switch {
	case f.Inherit:
		return []byte(`"inherit"`), nil
	case f.Close:
		return []byte(`"close"`), nil
	case f.PipeWrite:
		return []byte(`"pipe-write"`), nil
	case f.Null != nil:
		tag, val = tagNull, f.Null
	case f.File != nil:
		tag, val = tagFile, f.File
	case f.Dup != nil:
		tag, val = tagDup, f.Dup
	case f.Capture != nil:
		tag, val = tagCapture, f.Capture
	default:
		tag, val = tagPipeRead, f.PipeRead
	}
	inner, err := Marshal(val)
	if err != nil {
		return nil, err
	}
	return []byte(`{"` + tag + `":` + string(inner) + `}`), nil
}

// UnmarshalJSON decodes systemd_properties strictly.
func (s *SystemdProperties) UnmarshalJSON(data []byte) error { return s.decode(data, "") }

func (s *SystemdProperties) decode(data []byte, path string) error {
	var out SystemdProperties
	err := decodeObject(data, path, []string{"scope", "slice"}, func(key string, val json.RawMessage) error {
		at := join(path, key)
		if key == "scope" {
			return out.Scope.decode(val, at)
		}
		return out.Slice.decode(val, at)
	})
	if err != nil {
		return err
	}
	*s = out
	return nil
}

// UnmarshalJSON decodes the scope settings strictly.
func (s *SystemdScope) UnmarshalJSON(data []byte) error { return s.decode(data, "") }

func (s *SystemdScope) decode(data []byte, path string) error {
	var out SystemdScope
	fields := []string{"oom_policy", "runtime_max_usec", "runtime_randomized_extra_usec"}
	err := decodeObject(data, path, fields, func(key string, val json.RawMessage) error {
		var err error
		at := join(path, key)
		switch key {
		case "oom_policy":
			if out.OOMPolicy, err = decodeOptString(val, at); err == nil && out.OOMPolicy != nil && indexOf(oomPolicies, *out.OOMPolicy) < 0 {
				err = specErr(at, "unknown variant %q, expected one of %s", *out.OOMPolicy, quoteList(oomPolicies))
			}
		case "runtime_max_usec":
			out.RuntimeMaxUSec, err = decodeOptUint64(val, at)
		default:
			out.RuntimeRandomizedExtraUSec, err = decodeOptUint64(val, at)
		}
		return err
	})
	if err != nil {
		return err
	}
	*s = out
	return nil
}

// UnmarshalJSON decodes the slice settings strictly.
func (s *SystemdSlice) UnmarshalJSON(data []byte) error { return s.decode(data, "") }

func (s *SystemdSlice) decode(data []byte, path string) error {
	var out SystemdSlice
	fields := []string{"memory_accounting", "memory_min", "memory_low", "memory_high", "memory_max", "memory_swap_max", "tasks_accounting", "tasks_max"}
	u64 := map[string]**uint64{
		"memory_min": &out.MemoryMin, "memory_low": &out.MemoryLow, "memory_high": &out.MemoryHigh,
		"memory_max": &out.MemoryMax, "memory_swap_max": &out.MemorySwapMax, "tasks_max": &out.TasksMax,
	}
	err := decodeObject(data, path, fields, func(key string, val json.RawMessage) error {
		var err error
		at := join(path, key)
		switch key {
		case "memory_accounting":
			out.MemoryAccounting, err = decodeOptBool(val, at)
		case "tasks_accounting":
			out.TasksAccounting, err = decodeOptBool(val, at)
		default:
			*u64[key], err = decodeOptUint64(val, at)
		}
		return err
	})
	if err != nil {
		return err
	}
	*s = out
	return nil
}

// ---- conversion to api/v1 -------------------------------------------------

// DecodeSpecs decodes a procstar spec document {"specs": {id: spec}} into
// Procs sorted by proc ID, each named by its ID. Decoding is as strict as
// procstar's (see the package doc); errors wrap ErrBadSpec.
//
// procstar's defaults are filled in: env inherit true, capture mode
// tempfile, encoding base64 (procstar's null), attached true, open flags
// Default, file mode 0666. Fd names are kept as written.
//
// procstar inherits every fd a spec does not list, so the result has
// spec.closeOtherFds false: the child inherits the fds the agent itself
// inherited (a shell's "procstar spec.json 5>file"), never one the agent
// opened.
func DecodeSpecs(data []byte) ([]v1.Proc, error) {
	specs, err := DecodeSpecMap(data)
	if err != nil {
		return nil, err
	}
	return toProcs(specs, func(id string) string { return "specs." + id })
}

// toProcs converts specs to Procs sorted by proc ID, each named by its
// ID; path(id) is where an error says the spec is.
func toProcs(specs map[string]ProcSpec, path func(id string) string) ([]v1.Proc, error) {
	ids := make([]string, 0, len(specs))
	for id := range specs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	procs := make([]v1.Proc, 0, len(ids))
	for _, id := range ids {
		spec, err := specs[id].toV1(path(id))
		if err != nil {
			return nil, err
		}
		procs = append(procs, v1.Proc{
			TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProc},
			Metadata: v1.ObjectMeta{Name: id},
			Spec:     spec,
		})
	}
	return procs, nil
}

// DecodeSpecMap decodes a procstar spec document {"specs": {id: spec}} as
// DecodeSpecs does, without converting the specs: the body of procstar's
// POST /procs, for PrepareStart.
func DecodeSpecMap(data []byte) (map[string]ProcSpec, error) {
	if err := checkDocument(data); err != nil {
		return nil, err
	}
	var s Specs
	if err := s.UnmarshalJSON(data); err != nil {
		return nil, err
	}
	return s.Specs, nil
}

// ToV1 converts a procstar proc spec to a v1 ProcSpec, as DecodeSpecs
// does. A negative file mode, which v1 cannot hold, is an error wrapping
// ErrBadSpec.
func (p ProcSpec) ToV1() (v1.ProcSpec, error) { return p.toV1("") }

func (p ProcSpec) toV1(path string) (v1.ProcSpec, error) {
	var out v1.ProcSpec
	if p.Exe != nil {
		out.Exe = *p.Exe
	}
	if len(p.Argv) > 0 {
		out.Argv = append([]string(nil), p.Argv...)
	}
	inh := &v1.EnvInherit{All: p.Env.Inherit.All}
	if p.Env.Inherit.Names != nil {
		inh = &v1.EnvInherit{Names: append([]string{}, p.Env.Inherit.Names...)}
	}
	out.Env.Inherit = inh
	if len(p.Env.Vars) > 0 {
		out.Env.Vars = make(map[string]*string, len(p.Env.Vars))
		for k, v := range p.Env.Vars {
			if v != nil {
				s := *v
				v = &s
			}
			out.Env.Vars[k] = v
		}
	}
	for i, e := range p.Fds {
		fd, err := e.toV1(fmt.Sprintf("%s[%d][1]", join(path, "fds"), i))
		if err != nil {
			return v1.ProcSpec{}, err
		}
		out.Fds = append(out.Fds, fd)
	}
	if sp := p.SystemdProperties.toV1(); sp != nil {
		out.SystemdProperties = sp
	}
	// procstar's child inherits every fd it does not list.
	inherit := false
	out.CloseOtherFds = &inherit
	return out, nil
}

func (e FdEntry) toV1(path string) (v1.FdSpec, error) {
	f := e.Spec
	out := v1.FdSpec{Fd: e.Name}
	if n := f.variants(); n != 1 {
		return out, specErr(path, "fd spec has %d variants set, want exactly 1", n)
	}
	switch {
	case f.Inherit:
		out.Inherit = &v1.InheritFd{}
	case f.Close:
		out.Close = &v1.CloseFd{}
	case f.PipeWrite:
		out.PipeWrite = &v1.PipeWriteFd{}
	case f.Null != nil:
		out.Null = &v1.NullFd{Flags: orDefaultFlag(f.Null.Flags)}
	case f.File != nil:
		if f.File.Mode < 0 {
			return out, specErr(path+".file.mode", "negative mode %d", f.File.Mode)
		}
		m := uint32(f.File.Mode)
		out.File = &v1.FileFd{Path: f.File.Path, Flags: orDefaultFlag(f.File.Flags), Mode: &m}
	case f.Dup != nil:
		out.Dup = &v1.DupFd{Fd: int(f.Dup.Fd)}
	case f.Capture != nil:
		c := f.Capture
		enc := v1.EncodingBase64
		if c.Encoding != nil {
			if *c.Encoding != utf8Name {
				return out, specErr(path+".capture.encoding", "unknown encoding %q", *c.Encoding)
			}
			enc = v1.EncodingUTF8
		}
		mode := c.Mode
		if mode == "" {
			mode = v1.CaptureTempfile
		}
		att := c.Attached
		out.Capture = &v1.CaptureFd{Mode: mode, Encoding: enc, Attached: &att}
	case f.PipeRead != nil:
		out.PipeRead = &v1.PipeReadFd{ProcID: f.PipeRead.ProcID, Fd: f.PipeRead.Fd}
	}
	return out, nil
}

func orDefaultFlag(f v1.OpenFlag) v1.OpenFlag {
	if f == "" {
		return v1.OpenDefault
	}
	return f
}

func (s SystemdProperties) toV1() *v1.SystemdProperties {
	if s == (SystemdProperties{}) {
		return nil
	}
	c := func(p *uint64) *uint64 {
		if p == nil {
			return nil
		}
		v := *p
		return &v
	}
	cb := func(p *bool) *bool {
		if p == nil {
			return nil
		}
		v := *p
		return &v
	}
	out := &v1.SystemdProperties{}
	if s.Scope.OOMPolicy != nil {
		v := *s.Scope.OOMPolicy
		out.Scope.OOMPolicy = &v
	}
	out.Scope.RuntimeMaxUSec = c(s.Scope.RuntimeMaxUSec)
	out.Scope.RuntimeRandomizedExtraUSec = c(s.Scope.RuntimeRandomizedExtraUSec)
	out.Slice = v1.SystemdSlice{
		MemoryAccounting: cb(s.Slice.MemoryAccounting),
		MemoryMin:        c(s.Slice.MemoryMin),
		MemoryLow:        c(s.Slice.MemoryLow),
		MemoryHigh:       c(s.Slice.MemoryHigh),
		MemoryMax:        c(s.Slice.MemoryMax),
		MemorySwapMax:    c(s.Slice.MemorySwapMax),
		TasksAccounting:  cb(s.Slice.TasksAccounting),
		TasksMax:         c(s.Slice.TasksMax),
	}
	return out
}

// ---- conversion from api/v1 -----------------------------------------------

// EncodeSpecs writes procs as a procstar spec document, every field
// explicit (defaults filled, as procstar echoes specs). Each proc's
// metadata.name is its ID; names must be non-empty and unique.
//
// It fails, with an error wrapping ErrNotExpressible that names the proc
// and field, when a spec uses something procstar 0.7.5 cannot express: cwd,
// umask, pathSearch, pdeathSignal, recordEnv, resources, timeout,
// placement, capture mode file, capture path or limit, encoding base2048,
// an unknown open flag or OOM policy, a file mode above 0x7fffffff, or an
// fd entry without exactly one variant.
//
// closeOtherFds is accepted in every form. false is exactly procstar's
// behaviour (unlisted fds are inherited). Unset and true (what
// v1.SetDefaults fills in) are written the same way, as the inverse of
// DecodeSpecs's mapping: a procstar agent then still inherits its own
// unlisted fds into the child, which for fds 0-2 matches v1 and for fds
// above 2 is procstar's long-standing behaviour. Rejecting true would make
// every defaulted v1 spec inexpressible.
func EncodeSpecs(procs []v1.Proc) ([]byte, error) {
	s := Specs{Specs: make(map[string]ProcSpec, len(procs))}
	for i := range procs {
		id := procs[i].Metadata.Name
		if id == "" {
			return nil, fmt.Errorf("procs[%d]: metadata.name: %w: empty proc ID", i, ErrNotExpressible)
		}
		if _, dup := s.Specs[id]; dup {
			return nil, fmt.Errorf("procs[%d]: metadata.name: %w: duplicate proc ID %q", i, ErrNotExpressible, id)
		}
		p, err := FromV1(&procs[i].Spec)
		if err != nil {
			return nil, fmt.Errorf("proc %q: %w", id, err)
		}
		s.Specs[id] = p
	}
	return Marshal(s)
}

// ErrNotExpressible is wrapped by EncodeSpecs and FromV1 errors for v1
// specs that procstar 0.7.5's format cannot say.
var ErrNotExpressible = errors.New("not expressible in procstar 0.7.5 spec")

func notExpr(field string) error {
	return fmt.Errorf("spec.%s: %w", field, ErrNotExpressible)
}

// FromV1 converts a v1 spec to procstar's form with defaults filled. See
// EncodeSpecs for what fails.
func FromV1(in *v1.ProcSpec) (ProcSpec, error) {
	switch {
	case in.Cwd != "":
		return ProcSpec{}, notExpr("cwd")
	case in.Umask != nil:
		return ProcSpec{}, notExpr("umask")
	case in.PathSearch:
		return ProcSpec{}, notExpr("pathSearch")
	case in.PdeathSignal != nil:
		return ProcSpec{}, notExpr("pdeathSignal")
	case in.RecordEnv:
		return ProcSpec{}, notExpr("recordEnv")
	case in.Resources != nil:
		return ProcSpec{}, notExpr("resources")
	case in.KillTree != nil && !*in.KillTree:
		return ProcSpec{}, notExpr("killTree")
	case in.PerfCounters:
		return ProcSpec{}, notExpr("perfCounters")
	case in.Timeout != nil:
		return ProcSpec{}, notExpr("timeout")
	case in.Placement != nil:
		return ProcSpec{}, notExpr("placement")
	}
	out := ProcSpec{
		Argv: append([]string{}, in.Argv...),
		Env:  EnvSpec{Inherit: EnvInherit{All: true}, Vars: map[string]*string{}},
		Fds:  make([]FdEntry, 0, len(in.Fds)),
	}
	if in.Exe != "" {
		exe := in.Exe
		out.Exe = &exe
	}
	if inh := in.Env.Inherit; inh != nil {
		if inh.Names != nil {
			out.Env.Inherit = EnvInherit{Names: append([]string{}, inh.Names...)}
		} else {
			out.Env.Inherit = EnvInherit{All: inh.All}
		}
	}
	for k, v := range in.Env.Vars {
		if v != nil {
			s := *v
			v = &s
		}
		out.Env.Vars[k] = v
	}
	for i, f := range in.Fds {
		e, err := fdFromV1(f)
		if err != nil {
			return ProcSpec{}, fmt.Errorf("spec.fds[%d].%w", i, err)
		}
		out.Fds = append(out.Fds, e)
	}
	if sp := in.SystemdProperties; sp != nil {
		out.SystemdProperties = SystemdProperties{
			Scope: SystemdScope{OOMPolicy: sp.Scope.OOMPolicy, RuntimeMaxUSec: sp.Scope.RuntimeMaxUSec,
				RuntimeRandomizedExtraUSec: sp.Scope.RuntimeRandomizedExtraUSec},
			Slice: SystemdSlice{MemoryAccounting: sp.Slice.MemoryAccounting, MemoryMin: sp.Slice.MemoryMin,
				MemoryLow: sp.Slice.MemoryLow, MemoryHigh: sp.Slice.MemoryHigh, MemoryMax: sp.Slice.MemoryMax,
				MemorySwapMax: sp.Slice.MemorySwapMax, TasksAccounting: sp.Slice.TasksAccounting, TasksMax: sp.Slice.TasksMax},
		}
		if p := sp.Scope.OOMPolicy; p != nil && indexOf(oomPolicies, *p) < 0 {
			return ProcSpec{}, fmt.Errorf("spec.systemdProperties.scope.oomPolicy: %w: %q is not one of %s", ErrNotExpressible, *p, quoteList(oomPolicies))
		}
	}
	return out, nil
}

// fdFromV1 converts one fd; its error starts with the field path after
// "fds[i].".
func fdFromV1(f v1.FdSpec) (FdEntry, error) {
	e := FdEntry{Name: f.Fd}
	n := 0
	if f.Inherit != nil {
		n++
		e.Spec.Inherit = true
	}
	if f.Close != nil {
		n++
		e.Spec.Close = true
	}
	if f.PipeWrite != nil {
		n++
		e.Spec.PipeWrite = true
	}
	flag := func(field string, fl v1.OpenFlag) (v1.OpenFlag, error) {
		if fl == "" {
			return v1.OpenDefault, nil
		}
		if indexOf(openFlags, string(fl)) < 0 {
			return "", fmt.Errorf("%s.flags: %w: unknown open flag %q", field, ErrNotExpressible, fl)
		}
		return fl, nil
	}
	if f.Null != nil {
		n++
		fl, err := flag("null", f.Null.Flags)
		if err != nil {
			return e, err
		}
		e.Spec.Null = &NullFd{Flags: fl}
	}
	if f.File != nil {
		n++
		fl, err := flag("file", f.File.Flags)
		if err != nil {
			return e, err
		}
		mode := int32(0o666)
		if f.File.Mode != nil {
			if *f.File.Mode > 1<<31-1 {
				return e, fmt.Errorf("file.mode: %w: %d does not fit a C int", ErrNotExpressible, *f.File.Mode)
			}
			mode = int32(*f.File.Mode)
		}
		e.Spec.File = &FileFd{Path: f.File.Path, Flags: fl, Mode: mode}
	}
	if f.Dup != nil {
		n++
		if f.Dup.Fd < -1<<31 || f.Dup.Fd > 1<<31-1 {
			return e, fmt.Errorf("dup.fd: %w: %d does not fit a C int", ErrNotExpressible, f.Dup.Fd)
		}
		e.Spec.Dup = &DupFd{Fd: int32(f.Dup.Fd)}
	}
	if c := f.Capture; c != nil {
		n++
		out := &CaptureFd{Mode: v1.CaptureTempfile, Attached: true}
		switch c.Mode {
		case "", v1.CaptureTempfile:
		case v1.CaptureMemory:
			out.Mode = v1.CaptureMemory
		default:
			return e, fmt.Errorf("capture.mode: %w: %q", ErrNotExpressible, c.Mode)
		}
		switch c.Encoding {
		case "", v1.EncodingBase64:
		case v1.EncodingUTF8:
			s := utf8Name
			out.Encoding = &s
		default:
			return e, fmt.Errorf("capture.encoding: %w: %q", ErrNotExpressible, c.Encoding)
		}
		if c.Limit != nil {
			return e, fmt.Errorf("capture.limit: %w", ErrNotExpressible)
		}
		if c.Path != "" {
			return e, fmt.Errorf("capture.path: %w", ErrNotExpressible)
		}
		if c.Attached != nil {
			out.Attached = *c.Attached
		}
		e.Spec.Capture = out
	}
	if f.PipeRead != nil {
		n++
		e.Spec.PipeRead = &PipeReadFd{ProcID: f.PipeRead.ProcID, Fd: f.PipeRead.Fd}
	}
	if n != 1 {
		return e, fmt.Errorf("fd %s: %w: %d variants set, want exactly 1", strconv.Quote(string(f.Fd)), ErrNotExpressible, n)
	}
	return e, nil
}

// ---- batch validation, as procstar does it ---------------------------------

// SpecCheckError is a start batch that procstar 0.7.5 refuses before
// forking anything. Its message is exactly procstar's (reference §2.4),
// with no field path: "bad fd: X", "duplicate fd: NAME",
// "unmatched read pipe: PROC NAME" or "unmatched write pipe: PROC N". It
// matches ErrBadSpec.
type SpecCheckError struct {
	Msg string
}

func (e *SpecCheckError) Error() string { return e.Msg }

// Is matches ErrBadSpec.
func (e *SpecCheckError) Is(target error) bool { return target == ErrBadSpec }

func checkErr(format string, args ...any) error {
	return &SpecCheckError{Msg: fmt.Sprintf(format, args...)}
}

// pipeEnd names a pipe-write fd: the writer's proc ID and fd number.
type pipeEnd struct {
	id string
	fd int
}

// CheckFds checks the fds of a start batch as procstar 0.7.5's
// validate_procs_fds does, and returns the first failure it would report
// as a *SpecCheckError, or nil. The checks run in procstar's order, each
// over the procs in sorted ID order and each proc's fds in list order:
//
//  1. every fd name parses ("bad fd: NAME") and appears once per proc
//     ("duplicate fd: NAME", the second spelling as written);
//  2. every pipe-read names a parsable fd ("bad fd: NAME") of a pipe-write
//     in the batch not already taken by an earlier reader ("unmatched read
//     pipe: PROC NAME", as written);
//  3. every pipe-write has a reader ("unmatched write pipe: PROC N"; procstar
//     picks among several in hash order, this in sorted order).
//
// procstar checks for proc IDs already in its table before this, and its
// shutdown state after it.
func CheckFds(specs map[string]ProcSpec) error {
	ids := make([]string, 0, len(specs))
	for id := range specs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		seen := make(map[int]bool, len(specs[id].Fds))
		for _, e := range specs[id].Fds {
			n, err := e.Name.Number()
			if err != nil {
				return checkErr("bad fd: %s", e.Name)
			}
			if seen[n] {
				return checkErr("duplicate fd: %s", e.Name)
			}
			seen[n] = true
		}
	}
	writers := map[pipeEnd]bool{}
	for _, id := range ids {
		for _, e := range specs[id].Fds {
			if e.Spec.PipeWrite {
				n, _ := e.Name.Number() // parsed above
				writers[pipeEnd{id, n}] = true
			}
		}
	}
	for _, id := range ids {
		for _, e := range specs[id].Fds {
			r := e.Spec.PipeRead
			if r == nil {
				continue
			}
			n, err := r.Fd.Number()
			if err != nil {
				return checkErr("bad fd: %s", r.Fd)
			}
			k := pipeEnd{r.ProcID, n}
			if !writers[k] {
				return checkErr("unmatched read pipe: %s %s", r.ProcID, r.Fd)
			}
			delete(writers, k)
		}
	}
	if len(writers) > 0 {
		left := make([]pipeEnd, 0, len(writers))
		for k := range writers {
			left = append(left, k)
		}
		slices.SortFunc(left, func(a, b pipeEnd) int {
			if a.id != b.id {
				return strings.Compare(a.id, b.id)
			}
			return a.fd - b.fd
		})
		return checkErr("unmatched write pipe: %s %d", left[0].id, left[0].fd)
	}
	return nil
}
