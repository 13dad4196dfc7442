package cgroup

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

const fullCPUStat = "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\nnice_usec 0\ncore_sched.force_idle_usec 0\n" +
	"nr_periods 10\nnr_throttled 2\nthrottled_usec 500\nnr_bursts 1\nburst_usec 7\n"

func u64(v uint64) *uint64 { return &v }

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestReadAccounting(t *testing.T) {
	nonRoot := func(m map[string]string) map[string]string {
		m["cgroup.type"] = "domain\n"
		return m
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  *v1.CgroupAccounting
		err   error
	}{
		{"all", nonRoot(map[string]string{
			"cgroup.controllers": "cpu memory pids\n",
			"cpu.stat":           fullCPUStat,
			"pids.current":       "3\n", "pids.peak": "7\n",
			"memory.current": "4096\n", "memory.peak": "352256\n",
			"memory.swap.current": "0\n", "memory.swap.peak": "8192\n",
			"memory.events": "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n",
		}), &v1.CgroupAccounting{
			Pids: &v1.CgroupPids{Current: 3, Peak: 7},
			CPUStat: &v1.CgroupCPUStat{UsageUsec: 1234, UserUsec: 1000, SystemUsec: 234,
				NrPeriods: u64(10), NrThrottled: u64(2), ThrottledUsec: u64(500), NrBursts: u64(1), BurstUsec: u64(7)},
			Memory: &v1.CgroupMemory{Current: 4096, Peak: 352256, SwapPeak: 8192, OOMKills: 2},
		}, nil},
		{"cpuOnlyNoOptional", nonRoot(map[string]string{
			"cgroup.controllers": "hugetlb\n",
			"cpu.stat":           "usage_usec 5\nuser_usec 3\nsystem_usec 2\n",
			"pids.current":       "3\n", // ignored: pids not enabled
		}), &v1.CgroupAccounting{CPUStat: &v1.CgroupCPUStat{UsageUsec: 5, UserUsec: 3, SystemUsec: 2}}, nil},
		{"noSwapAccounting", nonRoot(map[string]string{
			"cgroup.controllers": "memory\n",
			"cpu.stat":           "usage_usec 5\nuser_usec 3\nsystem_usec 2\n",
			"memory.current":     "10\n", "memory.peak": "20\n",
		}), &v1.CgroupAccounting{
			CPUStat: &v1.CgroupCPUStat{UsageUsec: 5, UserUsec: 3, SystemUsec: 2},
			Memory:  &v1.CgroupMemory{Current: 10, Peak: 20},
		}, nil},
		{"rootUsesSubtreeControl", map[string]string{
			"cgroup.controllers":     "cpu memory pids\n",
			"cgroup.subtree_control": "pids\n",
			"cpu.stat":               "usage_usec 5\nuser_usec 3\nsystem_usec 2\n",
			"pids.current":           "1\n", "pids.peak": "1\n",
		}, &v1.CgroupAccounting{
			Pids:    &v1.CgroupPids{Current: 1, Peak: 1},
			CPUStat: &v1.CgroupCPUStat{UsageUsec: 5, UserUsec: 3, SystemUsec: 2},
		}, nil},
		{"missingCPUStat", nonRoot(map[string]string{"cgroup.controllers": "\n"}), nil, fs.ErrNotExist},
		{"missingRequiredCPUField", nonRoot(map[string]string{
			"cgroup.controllers": "\n", "cpu.stat": "usage_usec 5\nuser_usec 3\n",
		}), nil, ErrMalformed},
		{"badOptionalCPUField", nonRoot(map[string]string{
			"cgroup.controllers": "\n", "cpu.stat": "usage_usec 5\nuser_usec 3\nsystem_usec 2\nnr_periods x\n",
		}), nil, ErrMalformed},
		{"missingControllers", nonRoot(map[string]string{"cpu.stat": fullCPUStat}), nil, fs.ErrNotExist},
		{"rootMissingSubtreeControl", map[string]string{"cgroup.controllers": "\n", "cpu.stat": fullCPUStat}, nil, fs.ErrNotExist},
		{"missingPidsPeak", nonRoot(map[string]string{
			"cgroup.controllers": "pids\n", "cpu.stat": fullCPUStat, "pids.current": "1\n",
		}), nil, fs.ErrNotExist},
		{"badPidsCurrent", nonRoot(map[string]string{
			"cgroup.controllers": "pids\n", "cpu.stat": fullCPUStat, "pids.current": "max\n", "pids.peak": "1\n",
		}), nil, ErrMalformed},
		{"missingMemoryCurrent", nonRoot(map[string]string{
			"cgroup.controllers": "memory\n", "cpu.stat": fullCPUStat, "memory.peak": "1\n",
		}), nil, fs.ErrNotExist},
		{"badSwap", nonRoot(map[string]string{
			"cgroup.controllers": "memory\n", "cpu.stat": fullCPUStat,
			"memory.current": "1\n", "memory.peak": "1\n", "memory.swap.current": "-1\n",
		}), nil, ErrMalformed},
		{"badMemoryEvents", nonRoot(map[string]string{
			"cgroup.controllers": "memory\n", "cpu.stat": fullCPUStat,
			"memory.current": "1\n", "memory.peak": "1\n", "memory.events": "oom_kill lots\n",
		}), nil, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadAccounting(writeFiles(t, tc.files))
			if tc.err != nil {
				if !errors.Is(err, tc.err) || got != nil {
					t.Fatalf("ReadAccounting = %v, %v; want error %v", got, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ReadAccounting: %v", err)
			}
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(tc.want)
			if string(gj) != string(wj) {
				t.Errorf("got  %s\nwant %s", gj, wj)
			}
		})
	}
}

func TestParseMountinfo(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n", "/sys/fs/cgroup/unified", nil},
		{"30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n", "/sys/fs/cgroup", nil},
		{"1 0 0:1 / / rw - ext4 /dev/sda rw\n2 1 0:2 / /my\\040cg rw - cgroup2 none rw\n", "/my cg", nil},
		{"32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n", "", ErrNotCgroup2},
		{"garbage\n- cgroup2\n", "", ErrNotCgroup2},
		{"", "", ErrNotCgroup2},
	} {
		got, err := parseMountinfo([]byte(tc.in))
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("parseMountinfo(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if _, err := Mount(); err != nil && !errors.Is(err, ErrNotCgroup2) {
		t.Errorf("Mount: %v", err)
	}
}

func TestParseProcCgroup(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		err      error
	}{
		{"0::/\n", "/", nil},
		{"12:pids:/x\n1:name=systemd:/y\n0::/system.slice/procstar.service\n", "/system.slice/procstar.service", nil},
		{"1:cpu:/\n", "", ErrNotCgroup2},
		{"0::relative\n", "", ErrMalformed},
	} {
		got, err := parseProcCgroup([]byte(tc.in))
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("parseProcCgroup(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
	if p, err := Self(); err == nil && (p == "" || p[0] != '/') {
		t.Errorf("Self = %q", p)
	}
}

func FuzzParseCPUStat(f *testing.F) {
	for _, s := range []string{fullCPUStat, "usage_usec 1\nuser_usec 1\nsystem_usec 0", "", "a b c\n", "usage_usec -1\n", "usage_usec 18446744073709551616\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := parseCPUStat(data)
		if (st == nil) == (err == nil) {
			t.Fatalf("parseCPUStat = %v, %v", st, err)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error %v is not ErrMalformed", err)
		}
	})
}

func FuzzParseFlatKeyed(f *testing.F) {
	for _, s := range []string{"populated 1\nfrozen 0\n", "low 0\noom_kill 2\n", "\n\n", "k\n", "k v w\n", "k\tv\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kv, err := parseFlatKeyed(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) || kv != nil {
				t.Fatalf("parseFlatKeyed = %v, %v", kv, err)
			}
			return
		}
		for k, v := range kv {
			if k == "" || v == "" {
				t.Fatalf("empty key or value in %q", kv)
			}
		}
		_, _ = parsePopulated(data)
		_, _ = parseUint(data)
	})
}

func FuzzParseMountinfo(f *testing.F) {
	for _, s := range []string{
		"41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n",
		"2 1 0:2 / /my\\040cg\\ rw - cgroup2 none rw\n", "- - - - - - - cgroup2", "0::/x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if p, err := parseMountinfo(data); err == nil && p == "" {
			t.Fatalf("parseMountinfo = %q, %v", p, err)
		}
		_, _ = parseProcCgroup(data)
		_, _ = parsePids(data)
	})
}

func TestParseV1Controllers(t *testing.T) {
	mountinfo := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:9 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	got := parseV1Controllers([]byte(mountinfo))
	want := map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/pids"}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	if m := parseV1Controllers([]byte("41 31 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n")); len(m) != 0 {
		t.Errorf("pure v2: %v", m)
	}
}
