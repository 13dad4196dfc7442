package v1

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"procstar.dev/procstar/internal/signals"
)

// ErrInvalid is matched (errors.Is) by every validation error.
var ErrInvalid = errors.New("invalid")

// MaxFd is the largest fd number a spec may name.
const MaxFd = 65535

// MaxCPUMillicores bounds resources.cpuMax: a million CPUs, whose quota
// (100 s per 100 ms period) is well inside the kernel's.
const MaxCPUMillicores = 1_000_000_000

// MaxNameLen is the longest metadata.name, in bytes.
const MaxNameLen = 253

// FieldError is one validation problem: the path of the field, such as
// "spec.fds[2].dup.fd", and what is wrong with it.
type FieldError struct {
	// Field is the path of the offending field in JSON names.
	Field string
	// Detail says what is wrong, e.g. "must be 0 or more".
	Detail string
}

// Error returns "FIELD: DETAIL".
func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Detail
	}
	return e.Field + ": " + e.Detail
}

// Is matches ErrInvalid.
func (e *FieldError) Is(target error) bool { return target == ErrInvalid }

// ErrorList is every problem found in an object. A non-empty ErrorList is
// an error whose message has one "FIELD: DETAIL" part per problem, joined
// by "; ".
type ErrorList []*FieldError

// Error joins the problems with "; ".
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Is matches ErrInvalid.
func (l ErrorList) Is(target error) bool { return target == ErrInvalid }

// Unwrap returns the problems, so errors.As finds a *FieldError.
func (l ErrorList) Unwrap() []error {
	out := make([]error, len(l))
	for i, e := range l {
		out[i] = e
	}
	return out
}

// ToError returns l as an error, or nil when l is empty.
func (l ErrorList) ToError() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// add appends a problem.
func (l *ErrorList) add(field, format string, args ...any) {
	*l = append(*l, &FieldError{Field: field, Detail: fmt.Sprintf(format, args...)})
}

// Path builders.
func child(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }
func key(path, k string) string       { return path + "[" + k + "]" }

// Validate checks p and returns an ErrorList of every problem, or nil.
// apiVersion and kind may be empty (SetDefaults fills them).
func (p *Proc) Validate() error {
	return p.ValidateFields("").ToError()
}

// ValidateFields checks p with every field path prefixed by path.
func (p *Proc) ValidateFields(path string) ErrorList {
	var errs ErrorList
	if p.APIVersion != "" && p.APIVersion != APIVersion {
		errs.add(child(path, "apiVersion"), "must be %q", APIVersion)
	}
	if p.Kind != "" && p.Kind != KindProc {
		errs.add(child(path, "kind"), "must be %q", KindProc)
	}
	errs = append(errs, p.Metadata.ValidateFields(child(path, "metadata"))...)
	errs = append(errs, p.Spec.ValidateFields(child(path, "spec"))...)
	return errs
}

// ValidateFields checks m with every field path prefixed by path.
func (m *ObjectMeta) ValidateFields(path string) ErrorList {
	var errs ErrorList
	if err := ValidateName(m.Name); err != nil {
		errs.add(child(path, "name"), "%s", err.Error())
	}
	errs = append(errs, validateLabels(child(path, "labels"), m.Labels)...)
	return errs
}

// ValidateLabel checks one label as validateLabels does, for labels that
// are not a proc's (an agent's --label).
func ValidateLabel(k, v string) error {
	if k == "" {
		return errors.New("key must not be empty")
	}
	if err := validateLabelKey(k); err != nil {
		return fmt.Errorf("key %s", err)
	}
	if err := validateLabelValue(v); err != nil {
		return fmt.Errorf("value %s", err)
	}
	return nil
}

// validateLabels checks labels as Kubernetes does (a key is [prefix/]name,
// a value empty or a name), so that a label selector can name every label
// a proc can have.
func validateLabels(path string, labels map[string]string) ErrorList {
	var errs ErrorList
	for _, k := range sortedKeys(labels) {
		if k == "" {
			errs.add(path, "keys must not be empty")
			continue
		}
		if err := validateLabelKey(k); err != nil {
			errs.add(key(path, k), "key %s", err.Error())
		}
		if err := validateLabelValue(labels[k]); err != nil {
			errs.add(key(path, k), "value %s", err.Error())
		}
	}
	return errs
}

// ValidateName checks a proc name (the procstar proc ID): non-empty, at
// most MaxNameLen bytes, no NUL or "/", and not "." or "..". Its error
// reads like a FieldError detail.
func ValidateName(name string) error {
	switch {
	case name == "":
		return errors.New("required")
	case len(name) > MaxNameLen:
		return fmt.Errorf("must be at most %d bytes", MaxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		return errors.New("must not contain NUL")
	case strings.Contains(name, "/"):
		return errors.New(`must not contain "/"`)
	case name == "." || name == "..":
		return fmt.Errorf("must not be %q", name)
	}
	return nil
}

// noNUL adds a problem if s holds a NUL byte.
func (l *ErrorList) noNUL(field, s string) {
	if strings.IndexByte(s, 0) >= 0 {
		l.add(field, "must not contain NUL")
	}
}

// envName adds problems for a bad environment variable name.
func (l *ErrorList) envName(field, name string) {
	switch {
	case name == "":
		l.add(field, "variable name must not be empty")
	case strings.Contains(name, "="):
		l.add(field, `variable name must not contain "="`)
	case strings.IndexByte(name, 0) >= 0:
		l.add(field, "variable name must not contain NUL")
	}
}

// fdRange adds a problem if fd is outside 0..MaxFd.
func (l *ErrorList) fdRange(field string, fd int) {
	switch {
	case fd < 0:
		l.add(field, "must be 0 or more")
	case fd > MaxFd:
		l.add(field, "must be at most %d", MaxFd)
	}
}

// ValidateFields checks s with every field path prefixed by path (usually
// "spec"). Pipe matching across a batch is left to the runtime.
func (s *ProcSpec) ValidateFields(path string) ErrorList {
	var errs ErrorList
	errs.noNUL(child(path, "exe"), s.Exe)
	if len(s.Argv) == 0 && s.Exe == "" {
		errs.add(child(path, "argv"), "must not be empty when exe is not set")
	}
	for i, a := range s.Argv {
		errs.noNUL(index(child(path, "argv"), i), a)
	}
	errs.noNUL(child(path, "cwd"), s.Cwd)
	if s.Umask != nil {
		if _, _, err := s.UmaskValue(); err != nil {
			errs.add(child(path, "umask"), "%s", err.Error())
		}
	}
	if s.PdeathSignal != nil {
		if _, err := s.PdeathSignal.Number(); err != nil {
			errs.add(child(path, "pdeathSignal"), "%s", err.Error())
		}
	}
	errs = append(errs, s.Env.validate(child(path, "env"))...)

	fdsPath := child(path, "fds")
	seen := make(map[int]bool, len(s.Fds))
	for i := range s.Fds {
		fp := index(fdsPath, i)
		f := &s.Fds[i]
		if n, err := f.Fd.Number(); err != nil {
			errs.add(child(fp, "fd"), "%s", err.Error())
		} else if n < 0 || n > MaxFd {
			errs.fdRange(child(fp, "fd"), n)
		} else if seen[n] {
			errs.add(child(fp, "fd"), "duplicate fd: %s", f.Fd)
		} else {
			seen[n] = true
		}
		errs = append(errs, f.validateVariant(fp)...)
	}
	if s.SystemdProperties != nil {
		if p := s.SystemdProperties.Scope.OOMPolicy; p != nil {
			switch *p {
			case "continue", "stop", "kill":
			default:
				errs.add(child(path, "systemdProperties.scope.oomPolicy"), "must be continue, stop or kill, not %q", *p)
			}
		}
		// systemd refuses TasksMax=0 (out of range): refuse it here, not
		// after the fork.
		if t := s.SystemdProperties.Slice.TasksMax; t != nil && *t < 1 {
			errs.add(child(path, "systemdProperties.slice.tasksMax"), "must be 1 or more")
		}
	}
	if s.Resources != nil {
		errs = append(errs, s.Resources.validate(child(path, "resources"))...)
	}
	if t := s.Timeout; t != nil {
		tp := child(path, "timeout")
		if math.IsNaN(t.Seconds) || math.IsInf(t.Seconds, 0) || t.Seconds <= 0 {
			errs.add(child(tp, "seconds"), "must be a finite number greater than 0")
		}
		if t.Signal != "" {
			if _, err := t.Signal.Number(); err != nil {
				errs.add(child(tp, "signal"), "%s", err.Error())
			}
		}
		if g := t.GracePeriodSeconds; g != nil && (math.IsNaN(*g) || math.IsInf(*g, 0) || *g < 0) {
			errs.add(child(tp, "gracePeriodSeconds"), "must be a finite number, 0 or more")
		}
	}
	switch s.RestartPolicy {
	case "", RestartNever:
	case RestartOnFailure, RestartAlways:
		for i := range s.Fds {
			if s.Fds[i].PipeRead != nil || s.Fds[i].PipeWrite != nil {
				errs.add(child(path, "restartPolicy"), "must be Never for a proc with pipe fds (%s is a pipe), since a batch cannot be restarted piecemeal", s.Fds[i].Fd)
				break
			}
		}
	default:
		errs.add(child(path, "restartPolicy"), "must be Never, OnFailure or Always, not %q", s.RestartPolicy)
	}
	if pl := s.Placement; pl != nil {
		pp := child(path, "placement")
		errs.noNUL(child(pp, "group"), pl.Group)
		for _, k := range sortedKeys(pl.Selector) {
			v := pl.Selector[k]
			if k == "" {
				errs.add(child(pp, "selector"), "keys must not be empty")
			}
			if strings.IndexByte(k, 0) >= 0 || strings.IndexByte(v, 0) >= 0 {
				errs.add(key(child(pp, "selector"), k), "must not contain NUL")
			}
		}
	}
	return errs
}

func (e *EnvSpec) validate(path string) ErrorList {
	var errs ErrorList
	if e.Inherit != nil {
		for i, n := range e.Inherit.Names {
			errs.envName(index(child(path, "inherit"), i), n)
		}
	}
	for _, name := range sortedKeys(e.Vars) {
		vp := key(child(path, "vars"), name)
		errs.envName(vp, name)
		if v := e.Vars[name]; v != nil {
			errs.noNUL(vp, *v)
		}
	}
	return errs
}

// variantNames lists the set variants of f in declaration order.
func (f *FdSpec) variantNames() []string {
	var out []string
	for _, v := range []struct {
		name string
		set  bool
	}{
		{"inherit", f.Inherit != nil}, {"close", f.Close != nil}, {"null", f.Null != nil},
		{"file", f.File != nil}, {"dup", f.Dup != nil}, {"capture", f.Capture != nil},
		{"pipeWrite", f.PipeWrite != nil}, {"pipeRead", f.PipeRead != nil},
	} {
		if v.set {
			out = append(out, v.name)
		}
	}
	return out
}

const allVariants = "inherit, close, null, file, dup, capture, pipeWrite or pipeRead"

func (f *FdSpec) validateVariant(path string) ErrorList {
	var errs ErrorList
	switch set := f.variantNames(); len(set) {
	case 0:
		errs.add(path, "must set one of %s", allVariants)
	case 1:
	default:
		errs.add(path, "must set only one of %s; got %s", allVariants, strings.Join(set, ", "))
	}
	if n := f.Null; n != nil {
		errs.openFlag(child(path, "null.flags"), n.Flags)
	}
	if fl := f.File; fl != nil {
		fp := child(path, "file")
		if fl.Path == "" {
			errs.add(child(fp, "path"), "required")
		}
		errs.noNUL(child(fp, "path"), fl.Path)
		errs.openFlag(child(fp, "flags"), fl.Flags)
		if fl.Mode != nil && *fl.Mode > 0o7777 {
			errs.add(child(fp, "mode"), "must be at most 07777 (%d)", 0o7777)
		}
	}
	if d := f.Dup; d != nil {
		errs.fdRange(child(path, "dup.fd"), d.Fd)
	}
	if c := f.Capture; c != nil {
		cp := child(path, "capture")
		switch c.Mode {
		case "", CaptureTempfile, CaptureMemory, CaptureFile:
		default:
			errs.add(child(cp, "mode"), "must be tempfile, memory or file, not %q", c.Mode)
		}
		switch c.Encoding {
		case "", EncodingUTF8, EncodingBase64, EncodingBase2048:
		default:
			errs.add(child(cp, "encoding"), "must be utf-8, base64 or base2048, not %q", c.Encoding)
		}
		if l := c.Limit; l != nil {
			if c.Mode != CaptureMemory {
				errs.add(child(cp, "limit"), "allowed only with mode memory")
			}
			if l.Head < 0 {
				errs.add(child(cp, "limit.head"), "must be 0 or more")
			}
			if l.Tail < 0 {
				errs.add(child(cp, "limit.tail"), "must be 0 or more")
			}
		}
		if c.Mode == CaptureFile && c.Path == "" {
			errs.add(child(cp, "path"), "required for mode file")
		}
		if c.Mode != CaptureFile && c.Path != "" {
			errs.add(child(cp, "path"), "allowed only with mode file")
		}
		errs.noNUL(child(cp, "path"), c.Path)
	}
	if r := f.PipeRead; r != nil {
		rp := child(path, "pipeRead")
		if r.ProcID == "" {
			errs.add(child(rp, "procId"), "required")
		}
		errs.noNUL(child(rp, "procId"), r.ProcID)
		if r.Fd == "" {
			errs.add(child(rp, "fd"), "required")
		} else if n, err := r.Fd.Number(); err != nil {
			errs.add(child(rp, "fd"), "%s", err.Error())
		} else {
			errs.fdRange(child(rp, "fd"), n)
		}
	}
	return errs
}

func (l *ErrorList) openFlag(field string, f OpenFlag) {
	switch f {
	case "", OpenDefault, OpenRead, OpenWrite, OpenCreate, OpenReplace, OpenAppend, OpenCreateAppend, OpenReadWrite:
	default:
		l.add(field, "must be one of Default, Read, Write, Create, Replace, Append, CreateAppend, ReadWrite, not %q", f)
	}
}

func (r *Resources) validate(path string) ErrorList {
	var errs ErrorList
	for _, m := range []struct {
		name string
		q    *Quantity
	}{{"memoryMax", r.MemoryMax}, {"memoryHigh", r.MemoryHigh}, {"memorySwapMax", r.MemorySwapMax}} {
		if m.q == nil {
			continue
		}
		if _, err := m.q.Bytes(); err != nil {
			errs.add(child(path, m.name), "%s", err.Error())
		}
	}
	if r.CPUMax != nil {
		if m, err := r.CPUMax.Millicores(); err != nil {
			errs.add(child(path, "cpuMax"), "%s", err.Error())
		} else if m > MaxCPUMillicores {
			errs.add(child(path, "cpuMax"), "must be at most %d CPUs", MaxCPUMillicores/1000)
		}
	}
	if w := r.CPUWeight; w != nil && (*w < 1 || *w > 10000) {
		errs.add(child(path, "cpuWeight"), "must be between 1 and 10000")
	}
	if t := r.TasksMax; t != nil && *t < 1 {
		errs.add(child(path, "tasksMax"), "must be 1 or more")
	}
	return errs
}

// Bytes parses q as a byte count: a non-negative whole number of bytes
// ("2Gi", "1.5Ki", "0"; not "100m" or "-1").
func (q Quantity) Bytes() (int64, error) {
	v, err := q.Parse()
	if err != nil {
		return 0, err
	}
	if v.Sign() < 0 {
		return 0, fmt.Errorf("%w %q: must be 0 or more", ErrBadQuantity, string(q))
	}
	if !v.IsInteger() {
		return 0, fmt.Errorf("%w %q: must be a whole number of bytes", ErrBadQuantity, string(q))
	}
	return v.Int64(), nil
}

// Millicores parses q as a positive CPU amount in thousandths of a core
// ("500m" is 500, "2" is 2000), rounding up.
func (q Quantity) Millicores() (int64, error) {
	v, err := q.Parse()
	if err != nil {
		return 0, err
	}
	if v.Sign() <= 0 {
		return 0, fmt.Errorf("%w %q: must be greater than 0", ErrBadQuantity, string(q))
	}
	m, ok := v.MilliValue()
	if !ok {
		return 0, fmt.Errorf("%w %q: out of range", ErrBadQuantity, string(q))
	}
	return m, nil
}

// UmaskValue parses spec.umask, an octal string from "0" to "0777" (a
// leading "0o" is allowed). set is false when umask is absent.
func (s *ProcSpec) UmaskValue() (mask uint32, set bool, err error) {
	if s.Umask == nil {
		return 0, false, nil
	}
	u := *s.Umask
	digits := strings.TrimPrefix(strings.TrimPrefix(u, "0o"), "0O")
	if digits == "" || len(digits) > 12 {
		return 0, true, fmt.Errorf("must be an octal string from 0 to 0777, not %q", u)
	}
	v, perr := strconv.ParseUint(digits, 8, 32)
	if perr != nil || v > 0o777 {
		return 0, true, fmt.Errorf("must be an octal string from 0 to 0777, not %q", u)
	}
	return uint32(v), true, nil
}

// Number returns the signal number s names, in 1..64.
func (s Signal) Number() (int, error) {
	return signals.Parse(string(s))
}

// ValidateProcs validates each proc and checks that names are unique
// across the batch. Paths are prefixed "items[i].". Pipe matching is left
// to the runtime.
func ValidateProcs(procs []Proc) error {
	var errs ErrorList
	first := make(map[string]int, len(procs))
	for i := range procs {
		p := index("items", i)
		errs = append(errs, procs[i].ValidateFields(p)...)
		name := procs[i].Metadata.Name
		if name == "" {
			continue
		}
		if j, dup := first[name]; dup {
			errs.add(child(p, "metadata.name"), "duplicate name %q (also items[%d])", name, j)
		} else {
			first[name] = i
		}
	}
	return errs.ToError()
}
