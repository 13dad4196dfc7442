package systemd_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/go-logr/logr/testr"
	godbus "github.com/godbus/dbus/v5"
	"go.uber.org/goleak"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/runtime/procfs"
	"procstar.dev/procstar/runtime/systemd"
	"procstar.dev/procstar/runtime/systemd/fakesystemd"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func ptr[T any](v T) *T { return &v }

// connect starts a fake and connects a Manager to it.
func connect(t testing.TB, opts fakesystemd.Options) (*fakesystemd.Fake, *systemd.Manager) {
	t.Helper()
	f := fakesystemd.Start(t, opts)
	mount := opts.CgroupMount
	if mount == "" {
		mount = "/sys/fs/cgroup"
	}
	m, err := systemd.Connect(context.Background(), systemd.Options{
		Logger: testr.NewWithInterface(t, testr.Options{}), Address: f.Address(), CgroupMount: mount,
	})
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(m.Close)
	return f, m
}

// selfDescription is the Description of the slices this process makes.
func selfDescription(t testing.TB) string {
	t.Helper()
	start, err := procfs.StartTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("procstar agent pid %d start %d", os.Getpid(), start)
}

func unitPath(name string) string {
	return "/org/freedesktop/systemd1/unit/" + strings.NewReplacer(".", "_2e", "-", "_2d").Replace(name)
}

func TestStartControlGroupKillStop(t *testing.T) {
	f, m := connect(t, fakesystemd.Options{})
	if m.Bus() != f.Address() {
		t.Errorf("Bus() = %q, want %q", m.Bus(), f.Address())
	}
	if m.Version() != fakesystemd.Version {
		t.Errorf("Version() = %q, want %q", m.Version(), fakesystemd.Version)
	}
	spec := &v1.ProcSpec{
		SystemdProperties: &v1.SystemdProperties{
			Scope: v1.SystemdScope{OOMPolicy: ptr("kill"), RuntimeMaxUSec: ptr(uint64(60000000))},
			Slice: v1.SystemdSlice{MemoryAccounting: ptr(true), MemorySwapMax: ptr(uint64(0))},
		},
		Resources: &v1.Resources{MemoryMax: ptr(v1.Quantity("256Mi")), TasksMax: ptr(int64(512))},
	}
	slice, scope, err := systemd.Properties(spec)
	if err != nil {
		t.Fatal(err)
	}
	f.ResetCalls()
	calls0 := m.Calls()
	ctx := context.Background()
	const pid = 4242 // the fake without a cgroup root never touches it
	u, err := m.Start(ctx, pid, slice, scope)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	name := strings.TrimSuffix(u.Slice(), ".slice")
	if len(name) != len("procstar")+32 || !strings.HasPrefix(name, "procstar") || u.Scope() != name+".scope" || u.Name() != name {
		t.Fatalf("unit names %q %q %q", u.Name(), u.Slice(), u.Scope())
	}
	if _, err := hex.DecodeString(strings.TrimPrefix(name, "procstar")); err != nil {
		t.Errorf("name %q: %v", name, err)
	}
	units := f.Units()
	if len(units) != 2 {
		t.Fatalf("units after Start: %v", units)
	}
	if got := units[u.Scope()].PIDs; !reflect.DeepEqual(got, []uint32{pid}) {
		t.Errorf("scope PIDs = %v", got)
	}
	cg, err := u.ControlGroup(ctx)
	if err != nil || cg != "/"+u.Slice() {
		t.Errorf("ControlGroup = %q, %v; want %q", cg, err, "/"+u.Slice())
	}
	if err := u.Kill(ctx, int(syscall.SIGTERM)); err != nil {
		t.Errorf("Kill: %v", err)
	}
	if err := u.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if units := f.Units(); len(units) != 0 {
		t.Errorf("units after Stop: %v", units)
	}

	noAux := []fakesystemd.AuxUnit{}
	want := []fakesystemd.Call{
		{Method: "StartTransientUnit", Path: "/org/freedesktop/systemd1", Args: []any{u.Slice(), "replace", []fakesystemd.Prop{
			{Name: "MemoryAccounting", Value: true},
			{Name: "MemoryMax", Value: uint64(268435456)},
			{Name: "MemorySwapMax", Value: uint64(0)},
			{Name: "TasksAccounting", Value: true},
			{Name: "TasksMax", Value: uint64(512)},
			{Name: "Description", Value: selfDescription(t)},
		}, noAux}},
		{Method: "StartTransientUnit", Path: "/org/freedesktop/systemd1", Args: []any{u.Scope(), "replace", []fakesystemd.Prop{
			{Name: "OOMPolicy", Value: "kill"},
			{Name: "RuntimeMaxUSec", Value: uint64(60000000)},
			{Name: "PIDs", Value: []uint32{pid}},
			{Name: "Slice", Value: u.Slice()},
		}, noAux}},
		{Method: "Get", Path: unitPath(u.Slice()), Args: []any{"org.freedesktop.systemd1.Slice", "ControlGroup"}},
		{Method: "KillUnit", Path: "/org/freedesktop/systemd1", Args: []any{u.Scope(), "all", int32(15)}},
		{Method: "StopUnit", Path: "/org/freedesktop/systemd1", Args: []any{u.Slice(), "replace"}},
	}
	got := f.Calls()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n got %#v\nwant %#v", got, want)
	}
	if d := m.Calls() - calls0; d != uint64(len(want)) {
		t.Errorf("Manager.Calls() grew by %d, want %d", d, len(want))
	}

	// A second Stop finds the slice gone, which is not an error;
	// ControlGroup and Kill of a gone unit are.
	if err := u.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := u.ControlGroup(ctx); err == nil {
		t.Error("ControlGroup of a stopped unit: no error")
	}
	if err := u.Kill(ctx, 9); err == nil {
		t.Error("Kill of a stopped unit: no error")
	}
	if err := u.Kill(ctx, 0); !errors.Is(err, systemd.ErrInvalid) {
		t.Errorf("Kill(0) = %v, want ErrInvalid", err)
	}
	if _, err := m.Start(ctx, 0, nil, nil); !errors.Is(err, systemd.ErrInvalid) {
		t.Errorf("Start(pid 0) = %v, want ErrInvalid", err)
	}
}

func TestStartFailures(t *testing.T) {
	for _, tc := range []struct {
		name     string
		opts     fakesystemd.Options
		timeout  time.Duration
		wantErr  error
		wantStop bool // a StopUnit of the slice was sent
	}{
		{name: "scope job fails", opts: fakesystemd.Options{FailUnit: ".scope"}, wantErr: systemd.ErrJobFailed, wantStop: true},
		{name: "slice job fails", opts: fakesystemd.Options{FailUnit: ".slice"}, wantErr: systemd.ErrJobFailed, wantStop: true},
		{name: "scope job never ends", opts: fakesystemd.Options{HangUnit: ".scope"}, timeout: 300 * time.Millisecond, wantErr: context.DeadlineExceeded, wantStop: true},
		{name: "slice job never ends", opts: fakesystemd.Options{HangUnit: ".slice"}, timeout: 300 * time.Millisecond, wantErr: context.DeadlineExceeded, wantStop: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, m := connect(t, tc.opts)
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			slice, scope, err := systemd.Properties(&v1.ProcSpec{Resources: &v1.Resources{TasksMax: ptr(int64(8))}})
			if err != nil {
				t.Fatal(err)
			}
			u, err := m.Start(ctx, 4242, slice, scope)
			if !errors.Is(err, tc.wantErr) || u != nil {
				t.Fatalf("Start = %v, %v; want error %v", u, err, tc.wantErr)
			}
			if errors.Is(tc.wantErr, systemd.ErrJobFailed) && !strings.Contains(err.Error(), `"failed"`) {
				t.Errorf("error %q does not name the result", err)
			}
			if units := f.Units(); len(units) != 0 {
				t.Errorf("units left behind: %v", units)
			}
			stopped := false
			for _, c := range f.Calls() {
				if c.Method == "StopUnit" && strings.HasSuffix(c.Args[0].(string), ".slice") {
					stopped = true
				}
			}
			if stopped != tc.wantStop {
				t.Errorf("slice stopped = %v, want %v; calls %v", stopped, tc.wantStop, f.Calls())
			}
		})
	}
}

func TestConnectUnavailable(t *testing.T) {
	// A socket that accepts and never answers.
	dir := t.TempDir()
	mute := filepath.Join(dir, "mute")
	ln, err := net.Listen("unix", mute)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()

	for _, tc := range []struct {
		name    string
		opts    systemd.Options
		env     map[string]string
		timeout time.Duration
	}{
		{name: "no socket", opts: systemd.Options{Address: "unix:path=" + filepath.Join(dir, "nope"), CgroupMount: "/sys/fs/cgroup"}},
		{name: "bad address", opts: systemd.Options{Address: "nonsense", CgroupMount: "/sys/fs/cgroup"}},
		{name: "no cgroup2", opts: systemd.Options{Address: "unix:path=" + mute}},
		{name: "silent bus", opts: systemd.Options{Address: "unix:path=" + mute, CgroupMount: "/sys/fs/cgroup"}, timeout: 200 * time.Millisecond},
		{name: "no user bus", opts: systemd.Options{User: true, CgroupMount: "/sys/fs/cgroup"},
			env: map[string]string{"DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": ""}},
		{name: "user bus dir without socket", opts: systemd.Options{User: true, CgroupMount: "/sys/fs/cgroup"},
			env: map[string]string{"DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			ctx := context.Background()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}
			start := time.Now()
			m, err := systemd.Connect(ctx, tc.opts)
			if err == nil {
				m.Close()
				t.Fatal("Connect succeeded")
			}
			if !errors.Is(err, systemd.ErrUnavailable) || !errors.Is(err, errdefs.ErrUnavailable) {
				t.Errorf("Connect = %v, want ErrUnavailable", err)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("Connect took %v", d)
			}
		})
	}
}

// busDir is the directory of a "unix:path=DIR/bus,guid=..." address.
func busDir(addr string) string {
	p, _, _ := strings.Cut(strings.TrimPrefix(addr, "unix:path="), ",")
	return filepath.Dir(p)
}

func TestConnectBusFromEnv(t *testing.T) {
	f := fakesystemd.Start(t, fakesystemd.Options{})
	for _, tc := range []struct {
		name    string
		user    bool
		env     map[string]string
		wantBus string
	}{
		{name: "user bus from DBUS_SESSION_BUS_ADDRESS", user: true,
			env: map[string]string{"DBUS_SESSION_BUS_ADDRESS": f.Address()}, wantBus: "user"},
		{name: "user bus from XDG_RUNTIME_DIR", user: true,
			env: map[string]string{"DBUS_SESSION_BUS_ADDRESS": "", "XDG_RUNTIME_DIR": busDir(f.Address())}, wantBus: "user"},
		{name: "system bus as root",
			env: map[string]string{"DBUS_SYSTEM_BUS_ADDRESS": f.Address(), "DBUS_SESSION_BUS_ADDRESS": "nonsense"}, wantBus: "system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.user && os.Geteuid() != 0 {
				t.Skip("the system manager is used only as root")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			m, err := systemd.Connect(context.Background(), systemd.Options{User: tc.user, CgroupMount: "/sys/fs/cgroup"})
			if err != nil {
				t.Fatalf("Connect: %v", err)
			}
			defer m.Close()
			if m.Bus() != tc.wantBus || m.Version() != fakesystemd.Version {
				t.Errorf("Bus() = %q, Version() = %q; want bus %q", m.Bus(), m.Version(), tc.wantBus)
			}
		})
	}
}

func TestConnectBusWithoutManager(t *testing.T) {
	f := fakesystemd.Start(t, fakesystemd.Options{NoManager: true})
	m, err := systemd.Connect(context.Background(), systemd.Options{Address: f.Address(), CgroupMount: "/sys/fs/cgroup"})
	if err == nil {
		m.Close()
		t.Fatal("Connect succeeded on a bus without systemd")
	}
	if !errors.Is(err, systemd.ErrUnavailable) {
		t.Errorf("Connect = %v, want ErrUnavailable", err)
	}
}

// cgroup2Mount finds the cgroup2 mount in /proc/self/mountinfo.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	fh, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4]
		}
	}
	t.Skip("no cgroup2 mount")
	return ""
}

// testCgroup makes a writable test directory under the cgroup2 mount.
func testCgroup(t *testing.T) (mount, root string) {
	mount = cgroup2Mount(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	root = filepath.Join(mount, "procstar-test-"+hex.EncodeToString(b[:]))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Skipf("cgroup2 mount %s not writable: %v", mount, err)
	}
	t.Cleanup(func() {
		if err := os.Remove(root); err != nil {
			t.Errorf("removing %s: %v", root, err)
		}
	})
	return mount, root
}

func procCgroup(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			return p
		}
	}
	return ""
}

func readPids(t *testing.T, dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		t.Fatalf("cgroup.procs: %v", err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, _ := strconv.Atoi(f)
		pids = append(pids, n)
	}
	return pids
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether pid no longer runs (absent or a zombie).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

func TestRealCgroup(t *testing.T) {
	mount, root := testCgroup(t)
	f, m := connect(t, fakesystemd.Options{CgroupRoot: root, CgroupMount: mount})

	// The child waits for a line on stdin, as procstar's child waits on
	// its eventfd, so it is in the scope before it forks anything. The
	// first sleep ignores SIGTERM, so it survives Kill and only Stop
	// ends it. The shell sets its TERM trap before it forks, and the
	// subshell its ignore before it execs sleep: once the test sees the
	// shell and two sleeps, both are in place.
	cmd := exec.Command("sh", "-c", `read x; trap 'exit 3' TERM; (trap "" TERM; exec sleep 100) & sleep 100 & wait; wait`)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	waited := false
	defer func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	ctx := context.Background()
	u, err := m.Start(ctx, pid, nil, nil)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	rel := strings.TrimPrefix(root, mount)
	if got, want := procCgroup(pid), rel+"/"+u.Slice()+"/"+u.Scope(); got != want {
		t.Errorf("child's cgroup = %q, want %q", got, want)
	}
	cg, err := u.ControlGroup(ctx)
	if err != nil || cg != rel+"/"+u.Slice() {
		t.Errorf("ControlGroup = %q, %v; want %q", cg, err, rel+"/"+u.Slice())
	}
	scopeDir := filepath.Join(root, u.Slice(), u.Scope())
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the shell and two sleeps in the scope", func() bool {
		pids := readPids(t, scopeDir)
		sleeps := 0
		for _, p := range pids {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p)); err == nil && string(b) == "sleep\n" {
				sleeps++
			}
		}
		return len(pids) == 3 && sleeps == 2
	})

	if err := u.Kill(ctx, int(syscall.SIGTERM)); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	err = cmd.Wait()
	waited = true
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Errorf("child after SIGTERM: %v, want exit 3 from its TERM trap", err)
	}
	var survivor int
	waitFor(t, "one survivor in the scope", func() bool {
		p := readPids(t, scopeDir)
		if len(p) == 1 {
			survivor = p[0]
		}
		return len(p) == 1
	})

	if err := u.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if !gone(survivor) {
		t.Errorf("survivor %d still runs after Stop", survivor)
	}
	for _, d := range []string{scopeDir, filepath.Join(root, u.Slice())} {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Stop: %v", d, err)
		}
	}
	if units := f.Units(); len(units) != 0 {
		t.Errorf("units after Stop: %v", units)
	}
}

func BenchmarkStartStop(b *testing.B) {
	_, m := connect(b, fakesystemd.Options{})
	slice, scope, err := systemd.Properties(&v1.ProcSpec{
		Resources: &v1.Resources{MemoryMax: ptr(v1.Quantity("1Gi")), TasksMax: ptr(int64(64))},
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	calls0 := m.Calls()
	b.ResetTimer()
	for b.Loop() {
		u, err := m.Start(ctx, os.Getpid(), slice, scope)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := u.ControlGroup(ctx); err != nil {
			b.Fatal(err)
		}
		if err := u.Stop(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(m.Calls()-calls0)/float64(b.N), "dbus-calls/op")
}

func TestStartRejectedProperties(t *testing.T) {
	f, m := connect(t, fakesystemd.Options{})
	for _, tc := range []struct {
		name         string
		slice, scope []sddbus.Property
	}{
		{name: "wrong type on the slice", slice: []sddbus.Property{{Name: "MemoryMax", Value: godbus.MakeVariant(int64(1))}}},
		{name: "scope property on the slice", slice: []sddbus.Property{{Name: "OOMPolicy", Value: godbus.MakeVariant("kill")}}},
		{name: "unknown property on the scope", scope: []sddbus.Property{{Name: "Bogus", Value: godbus.MakeVariant("x")}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := m.Start(context.Background(), 4242, tc.slice, tc.scope)
			if err == nil || u != nil {
				t.Fatalf("Start = %v, %v; want an error", u, err)
			}
			if errors.Is(err, systemd.ErrJobFailed) {
				t.Errorf("a rejected call is not a failed job: %v", err)
			}
			if units := f.Units(); len(units) != 0 {
				t.Errorf("units left behind: %v", units)
			}
		})
	}
}

// exitedPid returns the pid of a process that has exited and been reaped.
func exitedPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// startLive starts m's units for a process that runs until the test ends.
func startLive(t *testing.T, m *systemd.Manager) *systemd.Unit {
	t.Helper()
	live := exec.Command("sleep", "100")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = live.Process.Kill(); _ = live.Wait() })
	u, err := m.Start(context.Background(), live.Process.Pid, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// startEmpty starts m's units for a process that then exits, leaving an
// empty slice.
func startEmpty(t *testing.T, m *systemd.Manager) *systemd.Unit {
	t.Helper()
	// It waits for its stdin to close, so it is alive when moved.
	cmd := exec.Command("sh", "-c", "read x")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	u, err := m.Start(context.Background(), cmd.Process.Pid, nil, nil)
	stdin.Close()
	_ = cmd.Wait()
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// TestStopLeftovers: slices an agent left when it died are stopped by the
// next one, unless a process still runs in them.
func TestStopLeftovers(t *testing.T) {
	mount, root := testCgroup(t)
	f, dead := connect(t, fakesystemd.Options{CgroupRoot: root, CgroupMount: mount})
	systemd.SetOwner(dead, exitedPid(t), 1)
	ctx := context.Background()
	// A proc still running, and one whose process has exited.
	uLive := startLive(t, dead)
	uGone := startEmpty(t, dead)
	dead.Close() // the agent is gone; its units stay

	m, err := systemd.Connect(ctx, systemd.Options{Address: f.Address(), CgroupMount: mount})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	stopped, left, err := m.StopLeftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(stopped, []string{uGone.Slice()}) || !reflect.DeepEqual(left, []string{uLive.Slice()}) {
		t.Fatalf("stopped %v, left %v; want %s stopped and %s left", stopped, left, uGone.Slice(), uLive.Slice())
	}
	units := f.Units()
	if _, ok := units[uGone.Slice()]; ok {
		t.Errorf("%s still loaded", uGone.Slice())
	}
	if _, ok := units[uLive.Scope()]; !ok {
		t.Errorf("%s was stopped with its process running", uLive.Scope())
	}
}

// TestStopLeftoversSparesRunningAgents: an agent starting on a manager
// that another agent uses leaves that agent's slices alone, even empty
// ones; it stops those of an agent whose pid now names another process,
// and those that name no agent.
func TestStopLeftoversSparesRunningAgents(t *testing.T) {
	mount, root := testCgroup(t)
	f, running := connect(t, fakesystemd.Options{CgroupRoot: root, CgroupMount: mount})
	ctx := context.Background()
	other := func() *systemd.Manager {
		m, err := systemd.Connect(ctx, systemd.Options{Address: f.Address(), CgroupMount: mount})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return m
	}
	start, err := procfs.StartTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	reused, anonymous := other(), other()
	systemd.SetOwner(reused, os.Getpid(), start+1)
	systemd.SetOwner(anonymous, 0, 0)

	uRunning := startEmpty(t, running)
	uReused := startEmpty(t, reused)
	uAnon := startEmpty(t, anonymous)
	units := f.Units()
	if got := units[uRunning.Slice()].Properties["Description"]; got != selfDescription(t) {
		t.Errorf("Description = %v, want %q", got, selfDescription(t))
	}
	if _, ok := units[uAnon.Slice()].Properties["Description"]; ok {
		t.Errorf("a slice of an agent with no start time has a Description")
	}

	stopped, left, err := other().StopLeftovers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{uReused.Slice(), uAnon.Slice()}
	slices.Sort(want)
	if !reflect.DeepEqual(stopped, want) || len(left) != 0 {
		t.Fatalf("stopped %v, left %v; want %v stopped", stopped, left, want)
	}
	if _, ok := f.Units()[uRunning.Slice()]; !ok {
		t.Fatalf("the slice of a running agent was stopped")
	}
	if err := uRunning.Stop(ctx); err != nil {
		t.Error(err)
	}
}

// TestStopLeftoversLeavesUnreadable: a slice whose cgroup cannot be read
// (here, the manager was told a wrong cgroup2 mount) is left, not
// stopped: stopping it would kill whatever it holds.
func TestStopLeftoversLeavesUnreadable(t *testing.T) {
	mount, root := testCgroup(t)
	f, dead := connect(t, fakesystemd.Options{CgroupRoot: root, CgroupMount: mount})
	systemd.SetOwner(dead, exitedPid(t), 1)
	ctx := context.Background()
	u := startLive(t, dead)
	dead.Close()
	m, err := systemd.Connect(ctx, systemd.Options{Address: f.Address(), CgroupMount: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	stopped, left, err := m.StopLeftovers(ctx)
	if err != nil || len(stopped) != 0 || !reflect.DeepEqual(left, []string{u.Slice()}) {
		t.Fatalf("stopped %v, left %v, err %v; want %s left", stopped, left, err, u.Slice())
	}
	if _, ok := f.Units()[u.Scope()]; !ok {
		t.Errorf("%s was stopped with its process running", u.Scope())
	}
}
