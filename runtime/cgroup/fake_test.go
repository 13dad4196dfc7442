package cgroup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeFS is a temp-dir cgroup fs. Writes go through it: it records each
// one and applies "+ctl"/"-ctl" writes to cgroup.subtree_control the way
// the kernel would, failing the controllers in refuse.
type fakeFS struct {
	dir    string
	refuse map[string]bool // controllers whose enabling fails (EBUSY)

	mu     sync.Mutex // guards writes
	writes []string   // "relative/path=data"
}

func newFakeFS(t *testing.T, files map[string]string) *fakeFS {
	t.Helper()
	f := &fakeFS{dir: t.TempDir()}
	for name, data := range files {
		p := filepath.Join(f.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fakeFS) write(path string, data []byte, create bool) error {
	rel, _ := filepath.Rel(f.dir, path)
	f.mu.Lock()
	f.writes = append(f.writes, rel+"="+string(data))
	f.mu.Unlock()
	if filepath.Base(path) != "cgroup.subtree_control" {
		return writeControl(path, data, create)
	}
	cur, err := readList(path)
	if err != nil {
		return err
	}
	next := slices.Clone(cur)
	for _, tok := range strings.Fields(string(data)) {
		c := tok[1:]
		if f.refuse[c] {
			return &fs.PathError{Op: "write", Path: path, Err: unix.EBUSY}
		}
		switch tok[0] {
		case '+':
			if !slices.Contains(next, c) {
				next = append(next, c)
			}
		case '-':
			next = slices.DeleteFunc(next, func(s string) bool { return s == c })
		default:
			return &fs.PathError{Op: "write", Path: path, Err: unix.EINVAL}
		}
	}
	return os.WriteFile(path, []byte(strings.Join(next, " ")+"\n"), 0o644)
}

func (f *fakeFS) open(t *testing.T) *Root {
	t.Helper()
	r, err := OpenRoot(f.dir, RootOptions{AllowNonCgroupFS: true, writeFile: f.write})
	if err != nil {
		t.Fatalf("OpenRoot(fake): %v", err)
	}
	return r
}

func (f *fakeFS) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.writes)
}

func i64(v int64) *int64 { return &v }

func TestFakeOpenRootEnables(t *testing.T) {
	for _, tc := range []struct {
		name        string
		available   string
		enabled     string
		refuse      []string
		wantWrites  []string
		controllers []string
	}{
		{"all", "cpu io memory pids", "", nil,
			[]string{"cgroup.subtree_control=+cpu +memory +pids"}, []string{"cpu", "memory", "pids"}},
		{"someAlready", "cpu memory pids", "memory", nil,
			[]string{"cgroup.subtree_control=+cpu +pids"}, []string{"cpu", "memory", "pids"}},
		{"allAlready", "cpu memory pids", "pids cpu memory", nil, nil, []string{"cpu", "memory", "pids"}},
		{"onlyHugetlb", "hugetlb", "", nil, nil, nil},
		{"keepsOthers", "io pids", "io", nil,
			[]string{"cgroup.subtree_control=+pids"}, []string{"io", "pids"}},
		{"memoryRefused", "cpu memory pids", "", []string{"memory"},
			[]string{"cgroup.subtree_control=+cpu +memory +pids", "cgroup.subtree_control=+cpu",
				"cgroup.subtree_control=+memory", "cgroup.subtree_control=+pids"}, []string{"cpu", "pids"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeFS(t, map[string]string{
				"cgroup.controllers":     tc.available + "\n",
				"cgroup.subtree_control": tc.enabled + "\n",
				"cgroup.procs":           "",
			})
			f.refuse = map[string]bool{}
			for _, c := range tc.refuse {
				f.refuse[c] = true
			}
			r := f.open(t)
			if got := f.recorded(); !slices.Equal(got, tc.wantWrites) {
				t.Errorf("writes %q, want %q", got, tc.wantWrites)
			}
			if got := r.Controllers(); !slices.Equal(got, tc.controllers) {
				t.Errorf("Controllers %v, want %v", got, tc.controllers)
			}
		})
	}
}

func TestFakeOpenRootNeedsCgroup2(t *testing.T) {
	f := newFakeFS(t, map[string]string{"cgroup.controllers": "cpu\n", "cgroup.subtree_control": ""})
	if _, err := OpenRoot(f.dir, RootOptions{}); !errors.Is(err, ErrNotCgroup2) {
		t.Errorf("OpenRoot without AllowNonCgroupFS = %v, want ErrNotCgroup2", err)
	}
	g := newFakeFS(t, map[string]string{"cgroup.subtree_control": ""})
	if _, err := OpenRoot(g.dir, RootOptions{AllowNonCgroupFS: true}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenRoot without cgroup.controllers = %v, want ErrNotExist", err)
	}
}

// TestFakeOpenRootLocks: a Root is one agent's. A second OpenRoot of its
// directory fails with ErrInUse until Close, and the lock is not
// inherited: a child started while the Root was open does not keep it.
func TestFakeOpenRootLocks(t *testing.T) {
	f := newFakeFS(t, map[string]string{"cgroup.controllers": "cpu\n", "cgroup.subtree_control": "", "cgroup.procs": ""})
	r := f.open(t)
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = child.Process.Kill()
		_ = child.Wait()
	})
	_, err := OpenRoot(f.dir, RootOptions{AllowNonCgroupFS: true})
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("second OpenRoot = %v, want ErrInUse", err)
	}
	if !strings.Contains(err.Error(), f.dir) {
		t.Errorf("error %q does not name the directory", err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The child still runs, and must not hold the lock.
	r2, err := OpenRoot(f.dir, RootOptions{AllowNonCgroupFS: true})
	if err != nil {
		t.Fatalf("OpenRoot after Close, with the child still running: %v", err)
	}
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestFakeAgentLeaf: in a non-root cgroup (it has cgroup.type) that lists
// this process, OpenRoot moves it to agent/ before enabling controllers.
func TestFakeAgentLeaf(t *testing.T) {
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		name     string
		files    map[string]string
		wantMove bool
	}{
		{"nonRootWithSelf", map[string]string{"cgroup.type": "domain\n", "cgroup.procs": "1\n" + pid + "\n"}, true},
		{"nonRootWithoutSelf", map[string]string{"cgroup.type": "domain\n", "cgroup.procs": "1\n"}, false},
		{"hierarchyRoot", map[string]string{"cgroup.procs": pid + "\n"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.files["cgroup.controllers"] = "memory pids\n"
			tc.files["cgroup.subtree_control"] = ""
			f := newFakeFS(t, tc.files)
			r := f.open(t)
			var want []string
			if tc.wantMove {
				want = append(want, "agent/cgroup.procs="+pid)
			}
			want = append(want, "cgroup.subtree_control=+memory +pids")
			if got := f.recorded(); !slices.Equal(got, want) {
				t.Errorf("writes %q, want %q", got, want)
			}
			_, err := os.Stat(filepath.Join(r.Dir(), AgentLeaf))
			if moved := err == nil; moved != tc.wantMove {
				t.Errorf("agent leaf exists = %v, want %v", moved, tc.wantMove)
			}
		})
	}
}

func TestFakeCreateWritesLimits(t *testing.T) {
	f := newFakeFS(t, map[string]string{
		"cgroup.controllers":     "cpu memory pids\n",
		"cgroup.subtree_control": "cpu memory pids\n",
		"cgroup.procs":           "",
	})
	r := f.open(t)
	for _, tc := range []struct {
		name  string
		l     Limits
		files map[string]string
	}{
		{"all", Limits{
			MemoryMax: i64(1 << 30), MemoryHigh: i64(900 << 20), MemorySwapMax: i64(0),
			PidsMax: i64(512), CPUMax: &CPUMax{QuotaUsec: 50000, PeriodUsec: 100000}, CPUWeight: i64(200),
		}, map[string]string{
			"memory.max": "1073741824", "memory.high": "943718400", "memory.swap.max": "0",
			"pids.max": "512", "cpu.max": "50000 100000", "cpu.weight": "200",
		}},
		{"unlimited", Limits{MemoryMax: i64(-1), PidsMax: i64(-1), CPUMax: &CPUMax{}}, map[string]string{
			"memory.max": "max", "pids.max": "max", "cpu.max": "max 100000",
		}},
		{"protection and oom group", Limits{MemoryMin: i64(64 << 20), MemoryLow: i64(128 << 20), OOMGroup: func() *bool { b := true; return &b }()}, map[string]string{
			"memory.min": "67108864", "memory.low": "134217728", "memory.oom.group": "1",
		}},
		{"none", Limits{}, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, msg, err := r.CreateBestEffort(tc.name, tc.l)
			if err != nil || msg != "" {
				t.Fatalf("CreateBestEffort = %q, %v", msg, err)
			}
			entries, err := os.ReadDir(g.Path())
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, e := range entries {
				got[e.Name()] = readString(t, filepath.Join(g.Path(), e.Name()))
			}
			if len(got) != len(tc.files) {
				t.Errorf("files %v, want %v", got, tc.files)
			}
			for name, want := range tc.files {
				if got[name] != want {
					t.Errorf("%s = %q, want %q", name, got[name], want)
				}
			}
			var st unix.Stat_t
			if err := unix.Fstat(g.FD(), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				t.Errorf("FD is not an open directory: %v", err)
			}
			if flags, err := unix.FcntlInt(uintptr(g.FD()), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
				t.Errorf("FD not close-on-exec: %v", err)
			}
			if err := g.Remove(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(g.Path()); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Remove left %s", g.Path())
			}
		})
	}
}

func TestFakeCreateUnavailable(t *testing.T) {
	f := newFakeFS(t, map[string]string{
		"cgroup.controllers":     "pids\n",
		"cgroup.subtree_control": "pids\n",
	})
	r := f.open(t)
	l := Limits{MemoryMax: i64(1 << 20), PidsMax: i64(10), CPUWeight: i64(50)}
	_, err := r.Create("p", l)
	if !errors.Is(err, ErrControllerUnavailable) {
		t.Fatalf("Create = %v, want ErrControllerUnavailable", err)
	}
	mustContain(t, err.Error(), "MemoryMax (memory.max) needs the memory controller", "CPUWeight (cpu.weight) needs the cpu controller")
	if _, err := os.Stat(filepath.Join(f.dir, "p")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed Create left the group: %v", err)
	}
	g, msg, err := r.CreateBestEffort("p", l)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, msg, "not enforced: ", "MemoryMax", "CPUWeight")
	if strings.Contains(msg, "PidsMax") {
		t.Errorf("message %q names an applied limit", msg)
	}
	if got := readString(t, filepath.Join(g.Path(), "pids.max")); got != "10" {
		t.Errorf("pids.max = %q", got)
	}
	if _, err := os.Stat(filepath.Join(g.Path(), "memory.max")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("skipped limit written: %v", err)
	}
}

func TestCreateRejects(t *testing.T) {
	f := newFakeFS(t, map[string]string{"cgroup.controllers": "cpu\n", "cgroup.subtree_control": "cpu\n"})
	r := f.open(t)
	for _, tc := range []struct {
		name string
		l    Limits
		want error
	}{
		{"", Limits{}, ErrInvalidName},
		{".", Limits{}, ErrInvalidName},
		{"..", Limits{}, ErrInvalidName},
		{"a/b", Limits{}, ErrInvalidName},
		{"agent", Limits{}, ErrInvalidName},
		{"cgroup.procs", Limits{}, ErrInvalidName},
		{"memory.max", Limits{}, ErrInvalidName},
		{"cpu.x", Limits{}, ErrInvalidName},
		{"pids.max", Limits{}, ErrInvalidName},
		{"a\x00b", Limits{}, ErrInvalidName},
		{strings.Repeat("x", 256), Limits{}, ErrInvalidName},
		{"weight0", Limits{CPUWeight: i64(0)}, ErrInvalidLimit},
		{"weightBig", Limits{CPUWeight: i64(10001)}, ErrInvalidLimit},
		{"period", Limits{CPUMax: &CPUMax{QuotaUsec: 5000, PeriodUsec: 10}}, ErrInvalidLimit},
		{"quota", Limits{CPUMax: &CPUMax{QuotaUsec: 10}}, ErrInvalidLimit},
	} {
		_, err := r.Create(tc.name, tc.l)
		if !errors.Is(err, tc.want) {
			t.Errorf("Create(%q) = %v, want %v", tc.name, err, tc.want)
		}
	}
	for _, ok := range []string{"p1", "proc.with.dots", "cpuish", "agent2"} {
		if err := ValidName(ok); err != nil {
			t.Errorf("ValidName(%q) = %v", ok, err)
		}
	}
	entries, _ := os.ReadDir(f.dir)
	for _, e := range entries {
		if e.IsDir() {
			t.Errorf("rejected Create left %s", e.Name())
		}
	}
}

func TestLimitsControllers(t *testing.T) {
	for _, tc := range []struct {
		l    Limits
		want []string
		zero bool
	}{
		{Limits{}, nil, true},
		{Limits{PidsMax: i64(1)}, []string{"pids"}, false},
		{Limits{MemoryHigh: i64(1), MemorySwapMax: i64(0), MemoryMax: i64(2)}, []string{"memory"}, false},
		{Limits{CPUWeight: i64(1), CPUMax: &CPUMax{}, MemoryMax: i64(1), PidsMax: i64(3)}, []string{"cpu", "memory", "pids"}, false},
		{Limits{CPUMax: &CPUMax{QuotaUsec: 1000}}, []string{"cpu"}, false},
	} {
		if got := tc.l.Controllers(); !slices.Equal(got, tc.want) {
			t.Errorf("%+v.Controllers() = %v, want %v", tc.l, got, tc.want)
		}
		if tc.l.IsZero() != tc.zero {
			t.Errorf("%+v.IsZero() = %v", tc.l, !tc.zero)
		}
	}
}

func TestFakeKillFallbackEmpty(t *testing.T) {
	// No cgroup.kill: Kill walks cgroup.procs, here empty, in the group
	// and a sub-cgroup.
	f := newFakeFS(t, map[string]string{"cgroup.controllers": "\n", "cgroup.subtree_control": "\n"})
	r := f.open(t)
	g, err := r.Create("k", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"cgroup.procs", "sub/cgroup.procs"} {
		path := filepath.Join(g.Path(), p)
		os.MkdirAll(filepath.Dir(path), 0o755)
		os.WriteFile(path, nil, 0o644)
	}
	if err := g.Kill(); err != nil {
		t.Errorf("Kill = %v", err)
	}
	os.WriteFile(filepath.Join(g.Path(), "sub/cgroup.procs"), []byte("x\n"), 0o644)
	if err := g.Kill(); !errors.Is(err, ErrMalformed) {
		t.Errorf("Kill with bad cgroup.procs = %v, want ErrMalformed", err)
	}
}

func TestFakePopulated(t *testing.T) {
	for _, tc := range []struct {
		events string
		want   bool
		err    error
	}{
		{"populated 1\nfrozen 0\n", true, nil},
		{"populated 0\nfrozen 0\n", false, nil},
		{"frozen 0\n", false, ErrMalformed},
		{"populated\n", false, ErrMalformed},
	} {
		got, err := parsePopulated([]byte(tc.events))
		if got != tc.want || !errors.Is(err, tc.err) {
			t.Errorf("parsePopulated(%q) = %v, %v; want %v, %v", tc.events, got, err, tc.want, tc.err)
		}
	}
}

// TestFakeWaitEmptyPolls covers the path for files epoll refuses.
func TestFakeWaitEmptyPolls(t *testing.T) {
	f := newFakeFS(t, map[string]string{"cgroup.controllers": "\n", "cgroup.subtree_control": "\n"})
	r := f.open(t)
	g, err := r.Create("w", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	events := filepath.Join(g.Path(), "cgroup.events")
	if err := os.WriteFile(events, []byte("populated 1\nfrozen 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pop, err := g.Populated(); err != nil || !pop {
		t.Fatalf("Populated = %v, %v", pop, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := g.WaitEmpty(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitEmpty = %v, want DeadlineExceeded", err)
	}
	go func() {
		time.Sleep(30 * time.Millisecond)
		// Rewrite one byte in place, so a concurrent read never sees a
		// truncated file.
		if fh, err := os.OpenFile(events, os.O_WRONLY, 0); err == nil {
			fh.WriteAt([]byte("0"), int64(len("populated ")))
			fh.Close()
		}
	}()
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.WaitEmpty(ctx); err != nil {
		t.Fatalf("WaitEmpty: %v", err)
	}
}
