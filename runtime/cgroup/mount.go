package cgroup

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// Mount returns the mount point of the cgroup2 file system, the first
// mount of type cgroup2 in /proc/self/mountinfo: /sys/fs/cgroup on a pure
// cgroup v2 host, /sys/fs/cgroup/unified on a hybrid one. It fails with
// ErrNotCgroup2 when none is mounted.
func Mount() (string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("find cgroup2 mount: %w", err)
	}
	return parseMountinfo(data)
}

// parseMountinfo returns the mount point of the first cgroup2 entry of a
// mountinfo file.
func parseMountinfo(data []byte) (string, error) {
	for _, m := range mounts(data) {
		if m.fstype == "cgroup2" {
			return m.point, nil
		}
	}
	return "", fmt.Errorf("no cgroup2 mount in /proc/self/mountinfo: %w", ErrNotCgroup2)
}

// V1Controllers returns, for each controller bound to a cgroup v1
// hierarchy, that hierarchy's mount point (a hybrid host's memory, pids
// and cpu usually are). A controller bound to v1 cannot be enabled in
// cgroup2: this is what says why.
func V1Controllers() map[string]string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return parseV1Controllers(data)
}

func parseV1Controllers(data []byte) map[string]string {
	out := map[string]string{}
	for _, m := range mounts(data) {
		if m.fstype != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(m.superOpts, ",") {
			switch opt {
			case ControllerCPU, ControllerMemory, ControllerPids:
				if _, ok := out[opt]; !ok {
					out[opt] = m.point
				}
			}
		}
	}
	return out
}

// mount is one line of a mountinfo file (proc(5)): "ID PARENT MAJ:MIN
// ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS".
type mount struct{ point, fstype, superOpts string }

// mounts parses a mountinfo file, skipping malformed lines.
func mounts(data []byte) []mount {
	var out []mount
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		fields := strings.Fields(string(line))
		sep := -1
		for i, f := range fields {
			if f == "-" && i >= 6 {
				sep = i
				break
			}
		}
		if sep < 0 || sep+1 >= len(fields) {
			continue
		}
		m := mount{point: unescapeMountPath(fields[4]), fstype: fields[sep+1]}
		if sep+3 < len(fields) {
			m.superOpts = fields[sep+3]
		}
		out = append(out, m)
	}
	return out
}

// unescapeMountPath undoes mountinfo's octal escapes (\040 for a space,
// \011, \012, \134).
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			v := (int(s[i+1]-'0')<<6 | int(s[i+2]-'0')<<3 | int(s[i+3]-'0'))
			if v <= 0xff {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// Self returns this process's cgroup2 path relative to the cgroup2 mount,
// from the "0::" line of /proc/self/cgroup ("/" for the root).
func Self() (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read own cgroup: %w", err)
	}
	return parseProcCgroup(data)
}

// parseProcCgroup returns the path of the "0::PATH" line of a
// /proc/PID/cgroup file.
func parseProcCgroup(data []byte) (string, error) {
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			if len(p) == 0 || p[0] != '/' {
				return "", fmt.Errorf("cgroup2 path %q is not absolute: %w", p, ErrMalformed)
			}
			return string(p), nil
		}
	}
	return "", fmt.Errorf("no cgroup2 (0::) line in /proc/self/cgroup: %w", ErrNotCgroup2)
}
