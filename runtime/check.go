package runtime

import (
	"sort"
	"strconv"
	"strings"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
)

// Request is one proc to start: its ID and spec.
type Request struct {
	ID   string
	Spec *v1.ProcSpec
}

// pipeKey names a pipeWrite fd: the writer's proc ID and fd number.
type pipeKey struct {
	id string
	fd int
}

// CheckBatch validates a whole batch before anything is forked. Its errors
// match ErrInvalidSpec, and carry procstar's exact wording where procstar
// has one: "bad fd: X", "duplicate fd: NAME", "duplicate proc id: X",
// "unmatched read pipe: PROC FDNAME", "unmatched write pipe: PROC FD".
// Procs are checked in sorted ID order; the first failure is returned.
func CheckBatch(reqs []Request) error {
	ids := make(map[string]bool, len(reqs))
	for _, r := range reqs {
		if ids[r.ID] {
			return specErrorf("duplicate proc id: %s", r.ID)
		}
		ids[r.ID] = true
	}
	sorted := sortedReqs(reqs)
	writers := map[pipeKey]bool{}
	for _, r := range sorted {
		if err := checkSpec(r.ID, r.Spec); err != nil {
			return err
		}
		for _, f := range r.Spec.Fds {
			if f.PipeWrite != nil {
				n, _ := f.Fd.Number()
				writers[pipeKey{r.ID, n}] = true
			}
		}
	}
	read := map[pipeKey]bool{}
	for _, r := range sorted {
		for _, f := range r.Spec.Fds {
			if f.PipeRead == nil {
				continue
			}
			n, err := f.PipeRead.Fd.Number()
			if err != nil {
				return specErrorf("bad fd: %s", f.PipeRead.Fd)
			}
			k := pipeKey{f.PipeRead.ProcID, n}
			if !writers[k] {
				return specErrorf("unmatched read pipe: %s %s", f.PipeRead.ProcID, f.PipeRead.Fd)
			}
			if read[k] {
				return specErrorf("duplicate read pipe: %s %s", f.PipeRead.ProcID, f.PipeRead.Fd)
			}
			read[k] = true
		}
	}
	keys := make([]pipeKey, 0, len(writers))
	for k := range writers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].id != keys[j].id {
			return keys[i].id < keys[j].id
		}
		return keys[i].fd < keys[j].fd
	})
	for _, k := range keys {
		if !read[k] {
			return specErrorf("unmatched write pipe: %s %d", k.id, k.fd)
		}
	}
	return nil
}

func sortedReqs(reqs []Request) []Request {
	s := append([]Request(nil), reqs...)
	sort.SliceStable(s, func(i, j int) bool { return s[i].ID < s[j].ID })
	return s
}

func hasNUL(s string) bool { return strings.IndexByte(s, 0) >= 0 }

// checkSpec validates one spec: everything that would otherwise make the
// spawn fail in a way that is the caller's fault.
func checkSpec(id string, s *v1.ProcSpec) error {
	if hasNUL(id) {
		return specErrorf("proc %q: NUL byte in proc id", id)
	}
	if s == nil {
		return specErrorf("proc %s: no spec", id)
	}
	if s.Exe == "" && len(s.Argv) == 0 {
		return specErrorf("proc %s: empty argv and no exe", id)
	}
	if hasNUL(s.Exe) {
		return specErrorf("proc %s: NUL byte in exe", id)
	}
	for i, a := range s.Argv {
		if hasNUL(a) {
			return specErrorf("proc %s: NUL byte in argv[%d]", id, i)
		}
	}
	if hasNUL(s.Cwd) {
		return specErrorf("proc %s: NUL byte in cwd", id)
	}
	if s.Umask != nil {
		if _, err := parseUmask(*s.Umask); err != nil {
			return specErrorf("proc %s: %s", id, err.Error())
		}
	}
	if s.PdeathSignal != nil {
		if _, err := signals.Parse(string(*s.PdeathSignal)); err != nil {
			return specErrorf("proc %s: pdeathSignal: %s", id, err.Error())
		}
	}
	if in := s.Env.Inherit; in != nil {
		for _, n := range in.Names {
			if hasNUL(n) {
				return specErrorf("proc %s: NUL byte in env.inherit name", id)
			}
		}
	}
	for k, v := range s.Env.Vars {
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return specErrorf("proc %s: bad env var name: %q", id, k)
		}
		if v != nil && hasNUL(*v) {
			return specErrorf("proc %s: NUL byte in env var %s", id, k)
		}
	}
	seen := map[int]bool{}
	for _, f := range s.Fds {
		n, err := f.Fd.Number()
		if err != nil {
			return specErrorf("bad fd: %s", f.Fd)
		}
		if n < 0 || n > MaxFd {
			return specErrorf("proc %s: fd out of range 0..%d: %s", id, MaxFd, f.Fd)
		}
		if seen[n] {
			return specErrorf("duplicate fd: %s", f.Fd)
		}
		seen[n] = true
		if err := checkFd(id, n, &f); err != nil {
			return err
		}
	}
	return nil
}

func checkFd(id string, n int, f *v1.FdSpec) error {
	variants := 0
	for _, set := range []bool{f.Inherit != nil, f.Close != nil, f.Null != nil, f.File != nil,
		f.Dup != nil, f.Capture != nil, f.PipeWrite != nil, f.PipeRead != nil} {
		if set {
			variants++
		}
	}
	if variants != 1 {
		return specErrorf("proc %s: fd %d: exactly one of inherit, close, null, file, dup, capture, pipeWrite, pipeRead must be set (%d are)", id, n, variants)
	}
	switch {
	case f.Null != nil:
		if _, err := openFlags(f.Null.Flags, n); err != nil {
			return specErrorf("proc %s: fd %d: %s", id, n, err.Error())
		}
	case f.File != nil:
		if _, err := openFlags(f.File.Flags, n); err != nil {
			return specErrorf("proc %s: fd %d: %s", id, n, err.Error())
		}
		if f.File.Path == "" || hasNUL(f.File.Path) {
			return specErrorf("proc %s: fd %d: bad file path: %q", id, n, f.File.Path)
		}
		if f.File.Mode != nil && *f.File.Mode > 0o7777 {
			return specErrorf("proc %s: fd %d: bad file mode: %o", id, n, *f.File.Mode)
		}
	case f.Dup != nil:
		if f.Dup.Fd < 0 || f.Dup.Fd > MaxFd {
			return specErrorf("proc %s: fd %d: dup fd out of range 0..%d: %d", id, n, MaxFd, f.Dup.Fd)
		}
	case f.Capture != nil:
		if hasNUL(f.Capture.Path) {
			return specErrorf("proc %s: fd %d: NUL byte in capture path", id, n)
		}
	}
	return nil
}

// parseUmask parses an octal umask such as "0027".
func parseUmask(s string) (int, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, specErrorf("bad umask: %q", s)
	}
	return int(m), nil
}
