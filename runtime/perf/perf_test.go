package perf

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// busyGrandchild burns CPU in a grandchild of the held shell: the subshell
// forks, so only inherited counters see the loop.
const busyGrandchild = `(i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done); true`

// startHeld starts `sh -c 'read x <&3; exec sh -c SCRIPT'`, which blocks
// before exec until release is called.
func startHeld(t testing.TB, script string) (cmd *exec.Cmd, release func()) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("sh", "-c", `read x <&3; exec 3<&-; exec sh -c "$0"`, script)
	cmd.ExtraFiles = []*os.File{r}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	var once sync.Once
	release = func() {
		once.Do(func() {
			_, _ = w.Write([]byte("go\n"))
			w.Close()
		})
	}
	t.Cleanup(func() {
		release()
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, release
}

func counterValue(p *v1.PerfCounters, name string) *uint64 {
	switch name {
	case NameInstructions:
		return p.Instructions
	case NameCycles:
		return p.Cycles
	case NameTaskClock:
		return p.TaskClockNs
	}
	return nil
}

// checkShape asserts each counter is either a value or named in
// Unsupported with a reason, never both or neither.
func checkShape(t *testing.T, p *v1.PerfCounters) {
	t.Helper()
	if p == nil {
		t.Fatal("Read returned nil")
	}
	for _, d := range defs {
		v := counterValue(p, d.name)
		why, unsupported := p.Unsupported[d.name]
		switch {
		case v != nil && unsupported:
			t.Errorf("%s: both value %d and unsupported %q", d.name, *v, why)
		case v == nil && !unsupported:
			t.Errorf("%s: neither value nor unsupported", d.name)
		case unsupported && why == "":
			t.Errorf("%s: unsupported with empty reason", d.name)
		}
	}
	if len(p.Unsupported) > nCounters {
		t.Errorf("unsupported has unknown names: %v", p.Unsupported)
	}
}

func TestInheritedCounts(t *testing.T) {
	tests := []struct {
		name     string
		script   string
		minClock time.Duration // task-clock must be at least this
		maxClock time.Duration // and at most this (0: no limit)
		hwPos    bool          // supported hardware counters must be > 0
	}{
		{name: "busyGrandchild", script: busyGrandchild, minClock: 10 * time.Millisecond, hwPos: true},
		// Control: sleeping uses almost no CPU, so the lower bound above
		// is a real test of counting, not of elapsed time.
		{name: "sleeper", script: "sleep 0.1", maxClock: 10 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, release := startHeld(t, tt.script)
			c, err := Open(cmd.Process.Pid)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer c.Close()
			release()
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v", err)
			}
			p := c.Read()
			checkShape(t, p)
			t.Logf("counters: %s", describe(p))
			if p.TaskClockNs == nil {
				// Only acceptable where perf is refused altogether.
				ok, why := Available()
				if ok {
					t.Fatalf("task-clock unsupported (%q) but Available says ok", p.Unsupported[NameTaskClock])
				}
				t.Skipf("perf not available here: %s", why)
			}
			clock := time.Duration(*p.TaskClockNs)
			if clock < tt.minClock {
				t.Errorf("task-clock %v < %v", clock, tt.minClock)
			}
			if tt.maxClock > 0 && clock > tt.maxClock {
				t.Errorf("task-clock %v > %v", clock, tt.maxClock)
			}
			if tt.minClock > 0 {
				// The grandchild was waited for by the shell, so rusage
				// of the reaped child includes it; the counter must too.
				ru := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
				if clock < ru/2 {
					t.Errorf("task-clock %v is less than half of rusage CPU %v: grandchild not counted", clock, ru)
				}
			}
			for _, name := range []string{NameInstructions, NameCycles} {
				v := counterValue(p, name)
				if v == nil {
					if !strings.Contains(p.Unsupported[name], "(E") {
						t.Errorf("%s unsupported without an errno in reason: %q", name, p.Unsupported[name])
					}
					continue
				}
				if tt.hwPos && *v == 0 {
					t.Errorf("%s = 0 for a busy proc", name)
				}
			}
		})
	}
}

func describe(p *v1.PerfCounters) string {
	var b strings.Builder
	for _, d := range defs {
		if v := counterValue(p, d.name); v != nil {
			fmt.Fprintf(&b, "%s=%d ", d.name, *v)
		} else {
			fmt.Fprintf(&b, "%s=unsupported(%s) ", d.name, p.Unsupported[d.name])
		}
	}
	return b.String()
}

func reapedPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestOpenBadPid(t *testing.T) {
	pidMax := 4194304
	if b, err := os.ReadFile("/proc/sys/kernel/pid_max"); err == nil {
		if v, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			pidMax = v
		}
	}
	tests := []struct {
		name string
		pid  int
	}{
		{"zero", 0},
		{"negative", -5},
		{"aboveMax", pidMax + 1},
		{"reaped", reapedPid(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Open(tt.pid)
			if !errors.Is(err, ErrBadPid) {
				c.Close()
				t.Fatalf("Open(%d) = %v, want ErrBadPid", tt.pid, err)
			}
			if c != nil {
				t.Errorf("Open(%d) returned non-nil Counters with error", tt.pid)
			}
			if !strings.Contains(err.Error(), strconv.Itoa(tt.pid)) {
				t.Errorf("error %q does not name the pid", err)
			}
		})
	}
}

// A zombie (exited, not yet reaped) must not panic: Open either rejects it
// as a bad pid or returns counters that read cleanly.
func TestOpenZombie(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	pid := cmd.Process.Pid
	// Wait until it is a zombie, without reaping it.
	for deadline := time.Now().Add(5 * time.Second); ; {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && strings.HasPrefix(string(b[i+1:]), " Z") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("child never became a zombie")
		}
		time.Sleep(time.Millisecond)
	}
	c, err := Open(pid)
	if err != nil {
		if !errors.Is(err, ErrBadPid) {
			t.Fatalf("Open(zombie) = %v, want nil or ErrBadPid", err)
		}
		return
	}
	checkShape(t, c.Read())
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestCloseIdempotentAndReadAfterClose(t *testing.T) {
	cmd, release := startHeld(t, busyGrandchild)
	c, err := Open(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	before := c.Read()
	for i := range 3 {
		if err := c.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	for _, fd := range c.fds {
		if fd != -1 {
			t.Errorf("fd %d still recorded after Close", fd)
		}
	}
	after := c.Read()
	checkShape(t, after)
	if describe(after) != describe(before) {
		t.Errorf("Read after Close = %s, want %s (the process was reaped before)", describe(after), describe(before))
	}
	// The returned value is a copy: changing it does not change later reads.
	if after.TaskClockNs != nil {
		*after.TaskClockNs = 1
	}
	after.Unsupported = map[string]string{"x": "y"}
	if again := c.Read(); describe(again) != describe(before) {
		t.Errorf("Read after mutation = %s, want %s", describe(again), describe(before))
	}
	var nilC *Counters
	if nilC.Read() != nil || nilC.Close() != nil {
		t.Error("nil Counters: Read or Close not nil")
	}
}

// Read and Close from several goroutines, for -race.
func TestConcurrentReadClose(t *testing.T) {
	c, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if i%4 == 3 {
				_ = c.Close()
			}
			if c.Read() == nil {
				t.Error("Read returned nil")
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAvailable(t *testing.T) {
	ok, why := Available()
	t.Logf("Available() = %v, %q", ok, why)
	c, err := Open(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	p := c.Read()
	c.Close()
	checkShape(t, p)
	opened := nCounters - len(p.Unsupported)
	if ok != (opened > 0) {
		t.Errorf("Available ok=%v but Open on self opened %d counters (%s)", ok, opened, describe(p))
	}
	for name, r := range p.Unsupported {
		if !strings.Contains(why, name+": "+r) {
			t.Errorf("reason %q does not mention %s: %s", why, name, r)
		}
	}
	if len(p.Unsupported) == 0 && why != "" {
		t.Errorf("all counters open but reason %q", why)
	}
}

func TestScale(t *testing.T) {
	const max = ^uint64(0)
	tests := []struct {
		name                    string
		value, enabled, running uint64
		want                    uint64
		ok                      bool
	}{
		{"neverEnabled", 0, 0, 0, 0, true},
		{"fullyRunning", 1000, 500, 500, 1000, true},
		{"half", 1000, 200, 100, 2000, true},
		{"third", 10, 300, 100, 30, true},
		{"roundsDown", 10, 3, 2, 15, true},
		{"neverRan", 1000, 500, 0, 0, false},
		{"runningAboveEnabled", 7, 5, 6, 7, true},
		{"bigNoOverflow", 1 << 62, 1 << 40, 1 << 39, 1 << 63, true},
		{"saturates", max, 10, 1, max, true},
		{"bigExact", max / 3, 3, 1, max / 3 * 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Scale(tt.value, tt.enabled, tt.running)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Scale(%d, %d, %d) = %d, %v; want %d, %v", tt.value, tt.enabled, tt.running, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseParanoid(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"2\n", 2, false},
		{"-1\n", -1, false},
		{"3", 3, false},
		{"  4 \n", 4, false},
		{"", 0, true},
		{"two\n", 0, true},
		{"2 3\n", 0, true},
	}
	for _, tt := range tests {
		t.Run(strconv.Quote(tt.in), func(t *testing.T) {
			got, err := ParseParanoid([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseParanoid(%q) = %d, %v; want %d, err=%v", tt.in, got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errMalformed) {
				t.Errorf("error %v does not wrap errMalformed", err)
			}
		})
	}
}

func TestParseCapEff(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    uint64
		wantErr bool
	}{
		{"root", "Name:\tx\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001fffeffffff\nCapBnd:\t000001ffffffffff\n", 0x000001fffeffffff, false},
		{"none", "CapEff:\t0000000000000000\n", 0, false},
		{"perfmonOnly", "CapEff:\t0000004000000000", 1 << 38, false},
		{"missing", "Name:\tx\nCapPrm:\t0\n", 0, true},
		{"garbled", "CapEff:\tzz\n", 0, true},
		{"tooBig", "CapEff:\t1ffffffffffffffff\n", 0, true},
		{"empty", "", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCapEff([]byte(tt.in))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("ParseCapEff = %#x, %v; want %#x, err=%v", got, err, tt.want, tt.wantErr)
			}
			if err != nil && !errors.Is(err, errMalformed) {
				t.Errorf("error %v does not wrap errMalformed", err)
			}
		})
	}
}

func TestPolicy(t *testing.T) {
	tests := []struct {
		name     string
		capEff   uint64
		paranoid int
		privil   bool
		userOnly bool
	}{
		{"rootParanoid2", 0x000001fffeffffff, 2, true, false},
		{"unprivParanoid2", 0, 2, false, true},
		{"unprivParanoid3", 0, 3, false, true},
		{"unprivParanoid1", 0, 1, false, false},
		{"unprivParanoidMinus1", 0, -1, false, false},
		{"perfmonParanoid2", 1 << capPerfmon, 2, true, false},
		{"sysAdminParanoid3", 1 << capSysAdmin, 3, true, false},
		{"otherCapsParanoid2", 1<<capSysAdmin - 1, 2, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasPerfCaps(tt.capEff); got != tt.privil {
				t.Errorf("HasPerfCaps(%#x) = %v, want %v", tt.capEff, got, tt.privil)
			}
			if got := NeedUserOnly(tt.paranoid, HasPerfCaps(tt.capEff)); got != tt.userOnly {
				t.Errorf("NeedUserOnly(%d, %v) = %v, want %v", tt.paranoid, tt.privil, got, tt.userOnly)
			}
			a := attrFor(defs[0], tt.userOnly)
			excl := a.Bits&(unix.PerfBitExcludeKernel|unix.PerfBitExcludeHv) != 0
			if excl != tt.userOnly || a.Bits&unix.PerfBitInherit == 0 {
				t.Errorf("attr bits %#x: exclude=%v want %v, inherit must be set", a.Bits, excl, tt.userOnly)
			}
		})
	}
}

func TestReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		p    policy
		want string
	}{
		{"enoent", unix.ENOENT, policy{}, "not supported by this CPU or VM (ENOENT)"},
		{"eopnotsupp", unix.EOPNOTSUPP, policy{}, "not supported by this CPU or VM (EOPNOTSUPP)"},
		{"eaccesParanoid", unix.EACCES, policy{paranoid: 3, paranoidOK: true}, "not permitted: perf_event_paranoid=3 (EACCES)"},
		{"epermUnknown", unix.EPERM, policy{}, "not permitted (EPERM)"},
		{"enosys", unix.ENOSYS, policy{}, "perf_event_open is not available in this kernel (ENOSYS)"},
		{"emfile", unix.EMFILE, policy{}, "out of file descriptors (EMFILE)"},
		{"wrapped", fmt.Errorf("x: %w", unix.EINVAL), policy{}, "rejected by the kernel (EINVAL)"},
		{"notErrno", errors.New("boom"), policy{}, "cannot open: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reason(tt.err, tt.p); got != tt.want {
				t.Errorf("reason = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseCapEff(f *testing.F) {
	f.Add([]byte("CapEff:\t000001fffeffffff\n"))
	f.Add([]byte("CapEff:"))
	f.Add([]byte("x\nCapEff:\t-1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseCapEff(b)
		if err != nil && v != 0 {
			t.Errorf("value %#x with error", v)
		}
	})
}

func FuzzParseParanoid(f *testing.F) {
	f.Add([]byte("2\n"))
	f.Add([]byte("-1"))
	f.Add([]byte("99999999999999999999999"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseParanoid(b)
		if err != nil && v != 0 {
			t.Errorf("value %d with error", v)
		}
	})
}

func BenchmarkOpenReadClose(b *testing.B) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	pid := cmd.Process.Pid
	opened := 0
	b.ReportAllocs()
	for b.Loop() {
		c, err := Open(pid)
		if err != nil {
			b.Fatal(err)
		}
		p := c.Read()
		opened = nCounters - len(p.Unsupported)
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(opened), "counters/proc")
}
