package capture

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
)

// modes are the capture specs every mode test runs through. The file
// capture's path is filled in per test.
func modes(t *testing.T) map[string]*v1.CaptureFd {
	return map[string]*v1.CaptureFd{
		"memory":   {Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8},
		"tempfile": {Mode: v1.CaptureTempfile, Encoding: v1.EncodingBase64},
		"file":     {Mode: v1.CaptureFile, Encoding: v1.EncodingBase64, Path: filepath.Join(t.TempDir(), "out")},
	}
}

func newCapture(t testing.TB, spec *v1.CaptureFd, opts Options) Capture {
	t.Helper()
	c, err := New(spec, opts)
	if err != nil {
		t.Fatalf("New(%+v): %v", spec, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func TestModes(t *testing.T) {
	const n = 300_001
	for name, spec := range modes(t) {
		t.Run(name, func(t *testing.T) {
			c := newCapture(t, spec, Options{TempDir: t.TempDir()})
			w := writer{kind: "prng", n: n, seed: 42, chunk: 4099}
			w.run(t, c)
			want := patternBytes(42, n)
			got, err := c.Bytes()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Bytes: %d bytes, %v; want the %d written", len(got), err, n)
			}
			p := make([]byte, 1000)
			for _, off := range []int64{0, 1, 999, 4098, 4099, 65535, 65536, n / 2, n - 1000, n - 999, n - 1, n, n + 1, n + 1<<20} {
				m, err := c.ReadAt(p, off)
				wantM := int(max(0, min(int64(len(p)), n-off)))
				if m != wantM {
					t.Fatalf("ReadAt(%d) read %d, want %d (%v)", off, m, wantM, err)
				}
				if m < len(p) != errors.Is(err, io.EOF) || (err != nil && !errors.Is(err, io.EOF)) {
					t.Fatalf("ReadAt(%d) = %d, %v", off, m, err)
				}
				if !bytes.Equal(p[:m], want[min(off, n):min(off, n)+int64(m)]) {
					t.Fatalf("ReadAt(%d) returned the wrong bytes", off)
				}
			}
			if _, err := c.ReadAt(p, -1); err == nil {
				t.Fatal("ReadAt(-1) succeeded")
			}
			st := c.Status()
			wantSt := v1.FdStatus{Length: n, Encoding: spec.Encoding, Mode: spec.Mode, Path: spec.Path}
			if st != wantSt {
				t.Fatalf("Status = %+v, want %+v", st, wantSt)
			}
			if spec.Mode == v1.CaptureFile {
				data, err := os.ReadFile(spec.Path)
				if err != nil || !bytes.Equal(data, want) {
					t.Fatalf("named file: %d bytes, %v", len(data), err)
				}
			}
		})
	}
}

// TestLarge pushes 256 MiB through each mode and checks it byte for byte.
func TestLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("256 MiB per mode")
	}
	const n = 256 << 20
	for name, spec := range modes(t) {
		t.Run(name, func(t *testing.T) {
			c := newCapture(t, spec, Options{TempDir: t.TempDir()})
			writer{kind: "prng", n: n, seed: 7}.run(t, c)
			verifyPattern(t, c, 7, n)
			if st := c.Status(); st.Length != n || st.Dropped != 0 || st.DrainTimedOut {
				t.Fatalf("Status = %+v", st)
			}
		})
	}
}

func TestMemoryLimits(t *testing.T) {
	const n = 1<<20 + 12345
	data := patternBytes(9, n)
	tests := []struct {
		name        string
		limit       v1.CaptureLimit
		head, tail  int64 // bytes retained
		droppedFrom int64 // first dropped offset, or -1
	}{
		{"headOnly", v1.CaptureLimit{Head: 1000}, 1000, 0, 1000},
		{"tailOnly", v1.CaptureLimit{Tail: 70_000}, 0, 70_000, 0},
		{"both", v1.CaptureLimit{Head: 100_000, Tail: 300_000}, 100_000, 300_000, 100_000},
		{"discard", v1.CaptureLimit{}, 0, 0, 0},
		{"roomy", v1.CaptureLimit{Head: n, Tail: n}, n, 0, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			limit := tt.limit
			c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingBase64, Limit: &limit}, Options{PipeSize: 64 << 10})
			writer{kind: "prng", n: n, seed: 9, chunk: 10_007}.run(t, c)
			want := append(append([]byte{}, data[:tt.head]...), data[n-tt.tail:]...)
			got, err := c.Bytes()
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("Bytes: %d bytes, %v; want %d", len(got), err, len(want))
			}
			st := c.Status()
			wantSt := v1.FdStatus{Length: n, Encoding: v1.EncodingBase64, Mode: v1.CaptureMemory, Dropped: n - tt.head - tt.tail}
			if st != wantSt || c.Len() != n {
				t.Fatalf("Status = %+v, want %+v", st, wantSt)
			}
			p := make([]byte, 100)
			if tt.droppedFrom >= 0 {
				for _, off := range []int64{tt.droppedFrom, tt.droppedFrom + 1, n - tt.tail - 1} {
					if m, err := c.ReadAt(p, off); m != 0 || !errors.Is(err, ErrDropped) {
						t.Fatalf("ReadAt(%d) in the dropped range = %d, %v; want ErrDropped", off, m, err)
					}
				}
			}
			if tt.head >= 50 && tt.head < n {
				m, err := c.ReadAt(p, tt.head-50) // straddles head and the drop
				if m != 50 || !errors.Is(err, ErrDropped) || !bytes.Equal(p[:m], data[tt.head-50:tt.head]) {
					t.Fatalf("ReadAt across the head end = %d, %v", m, err)
				}
			}
			if tt.tail >= 100 {
				m, err := c.ReadAt(p, n-100)
				if m != 100 || err != nil || !bytes.Equal(p, data[n-100:]) {
					t.Fatalf("ReadAt in the tail = %d, %v", m, err)
				}
			}
		})
	}
}

// TestGrandchildHoldsPipe: a grandchild keeps the pipe open after the
// child exits. Drain must give up at its deadline, keep what was read and
// leave no goroutine behind (TestMain checks).
func TestGrandchildHoldsPipe(t *testing.T) {
	c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8}, Options{})
	cmd := exec.Command("/bin/sh", "-c", "sleep 30 & echo $!; echo hi")
	cmd.Stdout = c.ChildFile()
	err := cmd.Start()
	c.Started()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// Kill the grandchild whatever happens below.
	var pid int
	t.Cleanup(func() {
		if pid > 0 {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	// The output is there before the drain gives up. The pid's length is
	// unknown, so wait for the last line rather than for a byte count.
	var out []byte
	for deadline := time.Now().Add(10 * time.Second); !bytes.HasSuffix(out, []byte("\nhi\n")); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("output %q never ended with hi", out)
		}
		out, _ = c.Bytes()
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[1] != "hi" {
		t.Fatalf("output %q, want the pid and hi", out)
	}
	pid, err = strconv.Atoi(lines[0])
	if err != nil {
		t.Fatalf("grandchild pid %q: %v", lines[0], err)
	}
	start := time.Now()
	if c.Drain(start.Add(200 * time.Millisecond)) {
		t.Fatal("Drain reported complete while the grandchild holds the pipe")
	}
	if took := time.Since(start); took < 190*time.Millisecond || took > 5*time.Second {
		t.Fatalf("Drain took %v, want about 200ms", took)
	}
	if c.Drain(time.Now().Add(time.Hour)) {
		t.Fatal("second Drain changed its answer")
	}
	st := c.Status()
	if !st.DrainTimedOut || st.Length != int64(len(out)) {
		t.Fatalf("Status = %+v", st)
	}
	if again, _ := c.Bytes(); !bytes.Equal(again, out) {
		t.Fatalf("output after Drain %q, want %q", again, out)
	}
}

// TestDrainWaitsForEOF: output the child writes after it was "reaped" from
// the capture's point of view still arrives, because Drain waits for EOF.
func TestDrainWaitsForEOF(t *testing.T) {
	c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8}, Options{})
	cmd := exec.Command("/bin/sh", "-c", "(sleep 0.3; echo late) & echo early")
	cmd.Stdout = c.ChildFile()
	err := cmd.Start()
	c.Started()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if !c.Drain(time.Now().Add(10 * time.Second)) {
		t.Fatal("Drain timed out")
	}
	if out, _ := c.Bytes(); string(out) != "early\nlate\n" {
		t.Fatalf("output %q", out)
	}
	if c.Status().DrainTimedOut {
		t.Fatal("DrainTimedOut set after a complete drain")
	}
}

// TestDrainTimeoutSparesWriter: after a Drain gives up, a process still
// holding the pipe (a killTree: false leftover) can go on writing: it is
// not killed by SIGPIPE.
func TestDrainTimeoutSparesWriter(t *testing.T) {
	c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8}, Options{})
	marker := filepath.Join(t.TempDir(), "wrote")
	cmd := exec.Command("/bin/sh", "-c", "echo early; sleep 0.5; echo late; echo later; touch "+marker)
	cmd.Stdout = c.ChildFile()
	err := cmd.Start()
	c.Started()
	if err != nil {
		t.Fatal(err)
	}
	for c.Len() < int64(len("early\n")) {
		time.Sleep(time.Millisecond)
	}
	if c.Drain(time.Now().Add(100 * time.Millisecond)) {
		t.Fatal("Drain completed while the writer runs")
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the writer failed after the drain: %v", err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("the writer did not finish:", err)
	}
	if out, _ := c.Bytes(); string(out) != "early\n" || !c.Status().DrainTimedOut {
		t.Fatalf("output %q, status %+v", out, c.Status())
	}
}

// TestFileOffsetUntouched: the parent reads while the child writes; the
// child's writes must land exactly where it meant them to.
func TestFileOffsetUntouched(t *testing.T) {
	const n = 2 << 20
	for name, spec := range modes(t) {
		if spec.Mode == v1.CaptureMemory {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := newCapture(t, spec, Options{TempDir: t.TempDir()})
			cmd := writer{kind: "prng", n: n, seed: 5, chunk: 4096, pause: 20 * time.Microsecond}.start(t, c)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			p := make([]byte, 777)
			reads := 0
			for running := true; running; {
				select {
				case err := <-done:
					if err != nil {
						t.Fatal(err)
					}
					running = false
				default:
				}
				if l := c.Len(); l > 2000 {
					if _, err := c.ReadAt(p, l/2); err != nil && !errors.Is(err, io.EOF) {
						t.Fatal(err)
					}
					reads++
				}
			}
			if reads < 10 {
				t.Fatalf("only %d reads overlapped the writer", reads)
			}
			if !c.Drain(time.Now()) {
				t.Fatal("file Drain not complete")
			}
			verifyPattern(t, c, 5, n)
		})
	}
}

// TestMemoryConcurrentReads reads a memory capture while its reader
// appends (run with -race).
func TestMemoryConcurrentReads(t *testing.T) {
	const n = 8 << 20
	c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory}, Options{PipeSize: 64 << 10})
	cmd := writer{kind: "prng", n: n, seed: 11, chunk: 8192}.start(t, c)
	want := patternBytes(11, n)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := make([]byte, 5000)
		for {
			select {
			case <-stop:
				return
			default:
			}
			l := c.Len()
			off := l / 3
			m, err := c.ReadAt(p, off)
			if err != nil && !errors.Is(err, io.EOF) || !bytes.Equal(p[:m], want[off:off+int64(m)]) {
				errc <- errors.New("concurrent ReadAt returned wrong data")
				return
			}
			_ = c.Status()
		}
	}()
	err := cmd.Wait()
	complete := c.Drain(time.Now().Add(10 * time.Second))
	close(stop)
	wg.Wait()
	if err != nil || !complete {
		t.Fatalf("writer %v, drain complete %v", err, complete)
	}
	select {
	case err := <-errc:
		t.Fatal(err)
	default:
	}
	verifyPattern(t, c, 11, n)
}

func TestTempfileUnlinked(t *testing.T) {
	for _, tryTmpfile := range []bool{true, false} {
		t.Run("O_TMPFILE="+strconv.FormatBool(tryTmpfile), func(t *testing.T) {
			dir := t.TempDir()
			f, err := openTempfile(dir, tryTmpfile)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			checkUnlinkedIn(t, f, dir)
		})
	}
	t.Run("New", func(t *testing.T) {
		dir := t.TempDir()
		c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureTempfile}, Options{TempDir: dir})
		checkUnlinkedIn(t, c.ChildFile(), dir)
	})
	t.Run("TMPDIR", func(t *testing.T) {
		dir := t.TempDir()
		t.Setenv("TMPDIR", dir)
		c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureTempfile}, Options{})
		checkUnlinkedIn(t, c.ChildFile(), dir)
	})
}

// checkUnlinkedIn checks that f is a file in dir with no directory entry,
// mode 0600 and close-on-exec.
func checkUnlinkedIn(t *testing.T, f *os.File, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Fatalf("%s holds %d entries (%v), want none", dir, len(entries), err)
	}
	link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(link, dir+"/") || !strings.HasSuffix(link, " (deleted)") {
		t.Fatalf("tempfile is %q, want a deleted file in %s", link, dir)
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("tempfile mode %v (%v), want 0600", fi.Mode(), err)
	}
	checkCloexec(t, f)
}

func checkCloexec(t *testing.T, f *os.File) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	rc.Control(func(fd uintptr) { flags, err = unix.FcntlInt(fd, unix.F_GETFD, 0) })
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("%s: fd flags %#x (%v), want FD_CLOEXEC", f.Name(), flags, err)
	}
}

func TestChildFileCloexec(t *testing.T) {
	for name, spec := range modes(t) {
		t.Run(name, func(t *testing.T) {
			c := newCapture(t, spec, Options{TempDir: t.TempDir()})
			checkCloexec(t, c.ChildFile())
			if mc, ok := c.(*memCapture); ok {
				checkCloexec(t, mc.r)
			}
		})
	}
}

func TestNamedFileModeAndKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.log")
	if err := os.WriteFile(path, []byte("old content that must be truncated"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := New(&v1.CaptureFd{Mode: v1.CaptureFile, Path: path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writer{kind: "prng", n: 10, seed: 1}.run(t, c)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(data, patternBytes(1, 10)) {
		t.Fatalf("named file after Close: %q, %v", data, err)
	}
	if st := c.Status(); st.Length != 10 || st.Path != path {
		t.Fatalf("Status after Close = %+v", st)
	}

	fresh := filepath.Join(t.TempDir(), "fresh")
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	c2 := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureFile, Path: fresh}, Options{})
	if fi, err := c2.ChildFile().Stat(); err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("created file mode %v (%v), want 0644", fi.Mode(), err)
	}
}

func TestPipeSize(t *testing.T) {
	want := defaultPipeSize()
	tests := []struct {
		name string
		opt  int
		want int
	}{
		{"default", 0, want},
		{"small", 128 << 10, 128 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory}, Options{PipeSize: tt.opt})
			got, err := unix.FcntlInt(c.ChildFile().Fd(), unix.F_GETPIPE_SZ, 0)
			if err != nil || got != tt.want {
				t.Fatalf("pipe size %d (%v), want %d", got, err, tt.want)
			}
		})
	}
	if want > maxPipeSize || want < 64<<10 {
		t.Fatalf("default pipe size %d", want)
	}
}

func TestNewErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		spec *v1.CaptureFd
		opts Options
		want error
	}{
		{"nilSpec", nil, Options{}, ErrBadSpec},
		{"unknownMode", &v1.CaptureFd{Mode: "disk"}, Options{}, ErrBadSpec},
		{"fileNoPath", &v1.CaptureFd{Mode: v1.CaptureFile}, Options{}, ErrBadSpec},
		{"fileMissingDir", &v1.CaptureFd{Mode: v1.CaptureFile, Path: filepath.Join(missing, "x")}, Options{}, fs.ErrNotExist},
		{"tempfileMissingDir", &v1.CaptureFd{Mode: v1.CaptureTempfile}, Options{TempDir: missing}, fs.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.spec, tt.opts)
			if !errors.Is(err, tt.want) || c != nil {
				t.Fatalf("New = %v, %v; want %v", c, err, tt.want)
			}
			if tt.want == fs.ErrNotExist && !strings.Contains(err.Error(), missing) {
				t.Fatalf("error %q does not name the path", err)
			}
		})
	}
}

// TestLifecycleEdges: Close without Started, Drain without Started,
// double Close, reads after Close.
func TestLifecycleEdges(t *testing.T) {
	t.Run("closeNeverStarted", func(t *testing.T) {
		for name, spec := range modes(t) {
			c, err := New(spec, Options{TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("%s: Close: %v", name, err)
			}
			if err := c.Close(); err != nil {
				t.Fatalf("%s: second Close: %v", name, err)
			}
			if _, err := c.ReadAt(make([]byte, 1), 0); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("%s: ReadAt after Close: %v", name, err)
			}
			if _, err := c.Bytes(); !errors.Is(err, os.ErrClosed) {
				t.Fatalf("%s: Bytes after Close: %v", name, err)
			}
		}
	})
	t.Run("drainNeverStarted", func(t *testing.T) {
		c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory}, Options{})
		if !c.Drain(time.Now().Add(5 * time.Second)) {
			t.Fatal("Drain of an unused pipe did not see EOF")
		}
	})
	t.Run("forkFailed", func(t *testing.T) {
		c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory}, Options{})
		c.Started() // as after a failed fork: no writer exists
		if !c.Drain(time.Now().Add(5*time.Second)) || c.Len() != 0 {
			t.Fatal("Drain after a failed fork")
		}
	})
	t.Run("closeWhileReading", func(t *testing.T) {
		c, err := New(&v1.CaptureFd{Mode: v1.CaptureMemory}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("/bin/sh", "-c", "echo x; exec sleep 30")
		cmd.Stdout = c.ChildFile()
		err = cmd.Start()
		c.Started()
		if err != nil {
			t.Fatal(err)
		}
		defer cmd.Wait()
		defer cmd.Process.Kill()
		for c.Len() < 2 {
			time.Sleep(time.Millisecond)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if st := c.Status(); st.Length != 2 {
			t.Fatalf("Status after Close = %+v", st)
		}
		if c.Drain(time.Now()) {
			t.Fatal("Drain after Close reported complete")
		}
	})
}

// TestCloseCutsDrainShort: Close during a long Drain ends it at once.
func TestCloseCutsDrainShort(t *testing.T) {
	c, err := New(&v1.CaptureFd{Mode: v1.CaptureMemory}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The writer writes again once Close has run: with the pipe closed
	// for good (no reader left behind), it dies of SIGPIPE.
	cmd := exec.Command("/bin/sh", "-c", "echo x; for i in $(seq 50); do sleep 0.2; echo y; done")
	cmd.Stdout = c.ChildFile()
	err = cmd.Start()
	c.Started()
	if err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	defer func() {
		var err error
		select {
		case err = <-waited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			err = <-waited
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGPIPE {
			t.Errorf("the writer ended with %v, want SIGPIPE", err)
		}
	}()
	drained := make(chan bool)
	go func() { drained <- c.Drain(time.Now().Add(time.Minute)) }()
	for c.Len() < 2 {
		time.Sleep(time.Millisecond)
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if <-drained {
		t.Fatal("Drain cut short by Close reported complete")
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Close waited %v for Drain", took)
	}
}

// TestMemoryLines is a smoke test with a shell writer and text.
func TestMemoryLines(t *testing.T) {
	c := newCapture(t, &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8}, Options{})
	cmd := exec.Command("/bin/sh", "-c", "for i in 1 2 3 4 5; do echo line $i; done")
	cmd.Stdout = c.ChildFile()
	err := cmd.Start()
	c.Started()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	c.Drain(time.Now().Add(5 * time.Second))
	out, _ := c.Bytes()
	sc := bufio.NewScanner(bytes.NewReader(out))
	i := 0
	for sc.Scan() {
		i++
		if sc.Text() != "line "+strconv.Itoa(i) {
			t.Fatalf("line %d = %q", i, sc.Text())
		}
	}
	if i != 5 {
		t.Fatalf("%d lines, want 5", i)
	}
}
