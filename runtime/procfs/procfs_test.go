package procfs

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"procstar.dev/procstar/internal/signals"
)

var testClock = Clock{TicksPerSecond: 100, PageSize: 4096, BootTime: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}

// line builds a stat line with comm and the 50 fields after it; fields
// maps a 1-based field number to its text, the rest are "0".
func line(pid, comm string, fields map[int]string) string {
	var b strings.Builder
	b.WriteString(pid + " (" + comm + ")")
	for i := 3; i <= statFields; i++ {
		v, ok := fields[i]
		if !ok {
			v = "0"
			if i == 3 {
				v = "S"
			}
		}
		b.WriteString(" " + v)
	}
	b.WriteString("\n")
	return b.String()
}

const realLine = "9102 (cat) R 9036 9036 3189 34817 9102 4194304 99 0 0 0 7 3 0 0 20 0 1 0 70216 3133440 409 18446744073709551615 94155482959872 94155482979753 140723522438448 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94155482995760 94155482997376 94156316368896 140723522443946 140723522443966 140723522443966 140723522445291 0\n"

func TestParseStatReal(t *testing.T) {
	st, err := ParseStat([]byte(realLine), testClock)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"pid", st.Pid, 9102},
		{"comm", st.Comm, "cat"},
		{"state", st.State, "R"},
		{"ppid", st.Ppid, 9036},
		{"pgrp", st.Pgrp, 9036},
		{"session", st.Session, 3189},
		{"tty", st.TtyNr, [2]uint32{136, 1}}, // 34817 = pts/1
		{"tpgid", *st.Tpgid, 9102},
		{"flags", st.Flags, uint32(4194304)},
		{"minflt", st.Minflt, uint64(99)},
		{"utime", st.Utime, 0.07},
		{"stime", st.Stime, 0.03},
		{"priority", st.Priority, int64(20)},
		{"threads", st.NumThreads, int64(1)},
		{"starttime", st.Starttime, testClock.BootTime.Add(702160 * time.Millisecond)},
		{"vsize", st.Vsize, uint64(3133440)},
		{"rss", st.Rss, int64(409 * 4096)},
		{"rsslim", st.Rsslim, uint64(18446744073709551615)},
		{"exit_signal", *st.ExitSignal, "SIGCHLD"},
		{"processor", st.Processor, int32(1)},
		{"signal", len(st.Signal), 0},
		{"exit_code", st.ExitCode, int32(0)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestParseStatTable(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, st *v1ProcStat)
	}{
		{"comm with paren and spaces", line("42", "a) b (c) ", nil), func(t *testing.T, st *v1ProcStat) {
			if st.Comm != "a) b (c) " || st.Pid != 42 || st.State != "S" {
				t.Errorf("comm %q pid %d state %q", st.Comm, st.Pid, st.State)
			}
		}},
		{"comm with newline", line("7", "x\ny) 1 2", nil), func(t *testing.T, st *v1ProcStat) {
			if st.Comm != "x\ny) 1 2" {
				t.Errorf("comm %q", st.Comm)
			}
		}},
		{"empty comm", line("7", "", nil), func(t *testing.T, st *v1ProcStat) {
			if st.Comm != "" {
				t.Errorf("comm %q", st.Comm)
			}
		}},
		{"tpgid -1, no tty", line("1", "init", map[int]string{8: "-1"}), func(t *testing.T, st *v1ProcStat) {
			if st.Tpgid != nil || st.TtyNr != [2]uint32{0, 0} {
				t.Errorf("tpgid %v tty %v", st.Tpgid, st.TtyNr)
			}
		}},
		// major 0xabc, minor 0x12345: minor low 8 bits in 0-7, high 12 bits in 20-31.
		{"tty high minor", line("1", "x", map[int]string{7: "305839173"}), func(t *testing.T, st *v1ProcStat) {
			// 0x123abc45: minor high 0x123 in bits 20-31, major 0xabc in 8-19, minor low 0x45
			want := [2]uint32{0xabc, 0x12345}
			if st.TtyNr != want {
				t.Errorf("tty %#x, want %#x", st.TtyNr, want)
			}
		}},
		{"signal masks with RT signals", line("1", "go", map[int]string{
			31: "1", 32: "9223372036854775808", 33: "18446744073709551615", 34: "8589950976"}), func(t *testing.T, st *v1ProcStat) {
			if strings.Join(st.Signal, ",") != "SIGHUP" {
				t.Errorf("signal %v", st.Signal)
			}
			if strings.Join(st.Blocked, ",") != "SIGRTMAX" {
				t.Errorf("blocked %v", st.Blocked)
			}
			if len(st.Sigignore) != 64 || st.Sigignore[15] != "SIGSTKFLT" || st.Sigignore[34] != "SIGRTMIN+1" {
				t.Errorf("sigignore %v", st.Sigignore)
			}
			// 8589950976 = 1<<33 | 1<<14: signals 34 and 15.
			if strings.Join(st.Sigcatch, ",") != "SIGTERM,SIGRTMIN" {
				t.Errorf("sigcatch %v", st.Sigcatch)
			}
		}},
		{"times and guest", line("1", "x", map[int]string{14: "250", 16: "5", 42: "3", 43: "100", 44: "150", 52: "256", 38: "0"}), func(t *testing.T, st *v1ProcStat) {
			if st.Utime != 2.5 || st.Cutime != 0.05 || st.DelayacctBlkioTicks != 0.03 || st.GuestTime != 1 || st.CguestTime != 1.5 || st.ExitCode != 256 || st.ExitSignal != nil {
				t.Errorf("%+v", st)
			}
		}},
		{"huge values", line("4194304", "x", map[int]string{10: "18446744073709551615", 23: "18446744073709551615", 24: "9223372036854775807", 22: "18446744073709551615", 19: "-20"}), func(t *testing.T, st *v1ProcStat) {
			if st.Minflt != 1<<64-1 || st.Rss != 1<<63-1 || st.Nice != -20 || st.Pid != 4194304 {
				t.Errorf("%+v", st)
			}
			if st.Starttime.Before(testClock.BootTime) {
				t.Errorf("starttime %v", st.Starttime)
			}
		}},
		{"rt exit signal", line("1", "x", map[int]string{38: "40"}), func(t *testing.T, st *v1ProcStat) {
			if st.ExitSignal == nil || *st.ExitSignal != "SIGRTMIN+6" {
				t.Errorf("exit signal %v", st.ExitSignal)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ParseStat([]byte(tt.in), testClock)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, st)
		})
	}
}

func TestParseStatErrors(t *testing.T) {
	full := line("1", "x", nil)
	tests := map[string]string{
		"empty":            "",
		"no comm":          "1 x S 0",
		"no close paren":   "1 (x S 0",
		"bad pid":          strings.Replace(full, "1 (", "a (", 1),
		"negative pid":     strings.Replace(full, "1 (", "-1 (", 1),
		"short":            full[:len(full)/2],
		"only comm":        "1 (x)",
		"garbage field":    line("1", "x", map[int]string{10: "12a"}),
		"overflow u64":     line("1", "x", map[int]string{10: "18446744073709551616"}),
		"overflow int":     line("1", "x", map[int]string{4: "2147483648"}),
		"negative u64":     line("1", "x", map[int]string{10: "-1"}),
		"double space":     strings.Replace(full, ") S ", ") S  ", 1),
		"empty state":      strings.Replace(full, ") S ", ")  ", 1),
		"trailing garbage": full + "x",
		"skipped garbage":  line("1", "x", map[int]string{26: "z"}),
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			st, err := ParseStat([]byte(in), testClock)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParseStat = %+v, %v; want ErrMalformed", st, err)
			}
		})
	}
	if _, err := ParseStat([]byte(full), Clock{}); err == nil {
		t.Error("zero clock accepted")
	}
}

func TestParseStatm(t *testing.T) {
	m, err := ParseStatm([]byte("765 440 412 5 0 123 0\n"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != 765*4096 || m.Resident != 440*4096 || m.Shared != 412*4096 || m.Text != 5*4096 || m.Data != 123*4096 {
		t.Errorf("%+v", m)
	}
	for _, bad := range []string{"", "1 2 3", "1 2 3 4 5 6 x", "1 2 3 4 5 6 7 8", "1  2 3 4 5 6 7", "-1 2 3 4 5 6 7"} {
		if m, err := ParseStatm([]byte(bad), 4096); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseStatm(%q) = %+v, %v", bad, m, err)
		}
	}
}

func TestParseSignalState(t *testing.T) {
	in := "Name:\tx\nSigQ:\t0/1\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\nSigBlk:\tfffffffe7ffbfeff\nSigIgn:\t0000000000001000\nSigCgt:\t0\n"
	b, i, err := ParseSignalState([]byte(in))
	if err != nil || b != 0xfffffffe7ffbfeff || i != 0x1000 {
		t.Errorf("= %#x %#x %v", b, i, err)
	}
	for _, bad := range []string{"", "SigBlk:\t0\n", "SigBlk:\tzz\nSigIgn:\t0\n"} {
		if _, _, err := ParseSignalState([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSignalState(%q) err %v", bad, err)
		}
	}
}

func TestSystemClock(t *testing.T) {
	c := SystemClock()
	if c.TicksPerSecond != 100 {
		t.Errorf("CLK_TCK = %d; every Linux Go port uses 100", c.TicksPerSecond)
	}
	if c.PageSize != int64(os.Getpagesize()) {
		t.Errorf("page size %d", c.PageSize)
	}
	up, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	var secs float64
	if _, err := fmtSscan(string(up), &secs); err != nil {
		t.Fatal(err)
	}
	fromUptime := time.Now().Add(-time.Duration(secs * float64(time.Second)))
	if d := c.BootTime.Sub(fromUptime); d > time.Second || d < -time.Second {
		t.Errorf("boot time %v differs from now-uptime %v by %v", c.BootTime, fromUptime, d)
	}
}

func TestReadStatSelfAndChild(t *testing.T) {
	cmd := exec.Command("sleep", "10")
	before := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = unix.Kill(pid, unix.SIGKILL)
		_ = cmd.Wait()
	})
	var st *v1ProcStat
	var err error
	// Until exec completes, comm is the test binary's.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		st, err = ReadStat(pid)
		if err == nil && st.Comm == "sleep" {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != pid || st.Ppid != os.Getpid() || st.Comm != "sleep" {
		t.Errorf("pid %d ppid %d comm %q", st.Pid, st.Ppid, st.Comm)
	}
	if st.State != "S" && st.State != "R" {
		t.Errorf("state %q", st.State)
	}
	if d := st.Starttime.Sub(before); d < -time.Second || d > 5*time.Second {
		t.Errorf("starttime %v is %v from fork", st.Starttime, d)
	}
	m, err := ReadStatm(pid)
	if err != nil || m.Size == 0 || m.Resident == 0 {
		t.Errorf("statm %+v %v", m, err)
	}
	if _, _, err := SignalState(pid); err != nil {
		t.Error(err)
	}
	// The Go test binary catches many signals, RT ones included.
	self, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(self.Sigcatch) == 0 {
		t.Errorf("self sigcatch empty")
	}
}

func TestReadStatMissing(t *testing.T) {
	_, err := ReadStat(1 << 30)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err %v, want ErrNotExist", err)
	}
	if _, err := ReadStatm(1 << 30); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("statm err %v", err)
	}
}

func BenchmarkReadStat(b *testing.B) {
	pid := os.Getpid()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadStat(pid); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadFileBaseline is the raw cost of os.ReadFile of the same
// file, for comparison.
func BenchmarkReadFileBaseline(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := os.ReadFile("/proc/self/stat"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseStat(b *testing.B) {
	data := []byte(realLine)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseStat(data, testClock); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(realLine))
	f.Add([]byte(line("1", "a) (b", map[int]string{8: "-1", 31: "18446744073709551615"})))
	f.Add([]byte("1 (x)"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseStat(data, testClock)
		if err == nil && st == nil {
			t.Fatal("nil without error")
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("error not ErrMalformed: %v", err)
		}
	})
}

func FuzzParseStatm(f *testing.F) {
	f.Add([]byte("765 440 412 5 0 123 0\n"))
	f.Add([]byte("1 2"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseStatm(data, 4096)
		if (err == nil) == (m == nil) {
			t.Fatalf("m %v err %v", m, err)
		}
	})
}

func TestSignalSetMatchesSignals(t *testing.T) {
	for _, m := range []uint64{0, 1, 1 << 63, 1<<64 - 1, 0xfffffffe7ffbfeff, 8589950976} {
		got, want := signalSet(m), signals.Set(m)
		if strings.Join(got, ",") != strings.Join(want, ",") || got == nil {
			t.Errorf("signalSet(%#x) = %v, want %v", m, got, want)
		}
	}
}

func TestReadStatZombie(t *testing.T) {
	cmd := exec.Command("sh", "-c", "exit 3")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	defer func() { _ = cmd.Wait() }()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		st, err := ReadStat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if st.State == "Z" {
			// exit_code holds the raw wait status of the zombie.
			if st.ExitCode != 3<<8 {
				t.Errorf("zombie exit_code %d, want %d", st.ExitCode, 3<<8)
			}
			if _, err := ReadStatm(pid); err != nil {
				t.Errorf("statm of zombie: %v", err)
			}
			return
		}
	}
	t.Fatal("child never became a zombie")
}

func TestStartTicks(t *testing.T) {
	c := SystemClock()
	pid := os.Getpid()
	ticks, err := StartTicks(pid)
	if err != nil {
		t.Fatal(err)
	}
	st, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.BootTime.Add(ticksToDuration(ticks, c.TicksPerSecond)).UTC(); !st.Starttime.Equal(want) {
		t.Errorf("StartTicks %d is %v, ReadStat's starttime %v", ticks, want, st.Starttime)
	}
	// A comm with spaces and parentheses does not shift the fields.
	line := "42 (a) b (c) R 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 1 1 1 1 1 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	if got, err := parseStartTicks([]byte(line)); err != nil || got != 98765 {
		t.Errorf("parseStartTicks = %d, %v; want 98765", got, err)
	}
	for _, bad := range []string{"", "42 (x R 1", "42 (x) R 1 2 3", "42 (x) R 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 -5 1\n"} {
		if _, err := parseStartTicks([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Errorf("parseStartTicks(%q) = %v, want ErrMalformed", bad, err)
		}
	}
	if _, err := StartTicks(1 << 30); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("StartTicks of no process: %v, want ErrNotExist", err)
	}
}
