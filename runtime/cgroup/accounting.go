package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strconv"

	v1 "procstar.dev/procstar/api/v1"
)

// ReadAccounting reads what the cgroup at dir counted, by procstar 0.7.5's
// rules (its result's cgroup_accounting):
//
//   - The enabled controllers come from cgroup.controllers, or from
//     cgroup.subtree_control when dir is the hierarchy root (the cgroup
//     without a cgroup.type file).
//   - CPUStat is always read from cpu.stat; usage_usec, user_usec and
//     system_usec are required, nr_periods, nr_throttled, throttled_usec,
//     nr_bursts and burst_usec are nil when absent.
//   - Pids (pids.current, pids.peak) only when pids is enabled.
//   - Memory (memory.current, memory.peak, memory.swap.current,
//     memory.swap.peak) only when memory is enabled; the swap files are
//     absent without swap accounting and then count as 0. OOMKills is the
//     oom_kill line of memory.events (0 when the file is absent).
//
// A missing or unparsable required file is an error; the caller then
// reports no accounting at all.
func ReadAccounting(dir string) (*v1.CgroupAccounting, error) {
	ctlFile := "cgroup.controllers"
	if isHierarchyRoot(dir) {
		ctlFile = "cgroup.subtree_control"
	}
	controllers, err := readList(filepath.Join(dir, ctlFile))
	if err != nil {
		return nil, fmt.Errorf("cgroup accounting: %w", err)
	}
	return readAccounting(cgDir{path: dir, fd: -1}, controllers)
}

// readAccounting is ReadAccounting once the enabled controllers are known.
func readAccounting(dir cgDir, controllers []string) (*v1.CgroupAccounting, error) {
	acct := &v1.CgroupAccounting{}

	data, err := dir.read("cpu.stat")
	if err != nil {
		return nil, fmt.Errorf("cgroup accounting: %w", err)
	}
	if acct.CPUStat, err = parseCPUStat(data); err != nil {
		return nil, fmt.Errorf("cgroup accounting: %s: %w", filepath.Join(dir.path, "cpu.stat"), err)
	}

	if slices.Contains(controllers, ControllerPids) {
		var p v1.CgroupPids
		if p.Current, err = readUint(dir, "pids.current", false); err != nil {
			return nil, err
		}
		if p.Peak, err = readUint(dir, "pids.peak", false); err != nil {
			return nil, err
		}
		acct.Pids = &p
	}

	if slices.Contains(controllers, ControllerMemory) {
		var m v1.CgroupMemory
		if m.Current, err = readUint(dir, "memory.current", false); err != nil {
			return nil, err
		}
		if m.Peak, err = readUint(dir, "memory.peak", false); err != nil {
			return nil, err
		}
		if m.SwapCurrent, err = readUint(dir, "memory.swap.current", true); err != nil {
			return nil, err
		}
		if m.SwapPeak, err = readUint(dir, "memory.swap.peak", true); err != nil {
			return nil, err
		}
		if m.OOMKills, err = readOOMKills(dir); err != nil {
			return nil, err
		}
		acct.Memory = &m
	}
	return acct, nil
}

// readUint reads a single-value file. With optional, a missing file is 0.
func readUint(dir cgDir, name string, optional bool) (uint64, error) {
	data, err := dir.read(name)
	if optional && errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cgroup accounting: %w", err)
	}
	v, err := parseUint(data)
	if err != nil {
		return 0, fmt.Errorf("cgroup accounting: %s: %w", filepath.Join(dir.path, name), err)
	}
	return v, nil
}

func readOOMKills(dir cgDir) (uint64, error) {
	path := filepath.Join(dir.path, "memory.events")
	data, err := dir.read("memory.events")
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cgroup accounting: %w", err)
	}
	kv, err := parseFlatKeyed(data)
	if err != nil {
		return 0, fmt.Errorf("cgroup accounting: %s: %w", path, err)
	}
	s, ok := kv["oom_kill"]
	if !ok {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup accounting: %s: oom_kill %q: %w", path, s, ErrMalformed)
	}
	return v, nil
}

// parseUint parses a single-value file: a decimal number and a newline.
func parseUint(data []byte) (uint64, error) {
	s := string(bytes.TrimSpace(data))
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("value %q: %w", truncate(s), ErrMalformed)
	}
	return v, nil
}

// parseFlatKeyed parses a flat-keyed file ("KEY VALUE" lines, as
// cpu.stat, memory.events, cgroup.events). Values are kept as text; the
// caller parses the keys it uses, so new kernel keys do no harm.
func parseFlatKeyed(data []byte) (map[string]string, error) {
	kv := make(map[string]string)
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		fields := bytes.Fields(line)
		switch len(fields) {
		case 0:
			continue
		case 2:
			kv[string(fields[0])] = string(fields[1])
		default:
			return nil, fmt.Errorf("line %q is not \"key value\": %w", truncate(string(line)), ErrMalformed)
		}
	}
	return kv, nil
}

// parseCPUStat parses cpu.stat.
func parseCPUStat(data []byte) (*v1.CgroupCPUStat, error) {
	kv, err := parseFlatKeyed(data)
	if err != nil {
		return nil, err
	}
	get := func(key string, required bool) (*uint64, error) {
		s, ok := kv[key]
		if !ok {
			if required {
				return nil, fmt.Errorf("no %s: %w", key, ErrMalformed)
			}
			return nil, nil
		}
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", key, truncate(s), ErrMalformed)
		}
		return &v, nil
	}
	st := &v1.CgroupCPUStat{}
	for _, f := range []struct {
		key string
		dst *uint64
	}{{"usage_usec", &st.UsageUsec}, {"user_usec", &st.UserUsec}, {"system_usec", &st.SystemUsec}} {
		v, err := get(f.key, true)
		if err != nil {
			return nil, err
		}
		*f.dst = *v
	}
	for _, f := range []struct {
		key string
		dst **uint64
	}{
		{"nr_periods", &st.NrPeriods}, {"nr_throttled", &st.NrThrottled}, {"throttled_usec", &st.ThrottledUsec},
		{"nr_bursts", &st.NrBursts}, {"burst_usec", &st.BurstUsec},
	} {
		v, err := get(f.key, false)
		if err != nil {
			return nil, err
		}
		*f.dst = v
	}
	return st, nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
