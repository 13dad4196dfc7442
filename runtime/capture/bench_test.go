package capture

import (
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
)

// The benchmarks push 1 GiB from a child (this test binary writing a fixed
// 1 MiB buffer) through a raw pipe reader, a memory capture that keeps
// nothing, and a tempfile capture, and report each capture's throughput as
// a ratio of the raw pipe's measured in the same run.

const benchBytes = 1 << 30

var benchWriter = writer{kind: "fixed", n: benchBytes, chunk: 1 << 20}

// rawPipe is the baseline: a 1 MiB pipe read by blocking read(2) with a
// 1 MiB buffer into nothing. It returns the time from start to EOF and
// reap.
func rawPipe(b *testing.B) time.Duration {
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		b.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(fds[1]), unix.F_SETPIPE_SZ, 1<<20); err != nil {
		b.Logf("F_SETPIPE_SZ: %v", err)
	}
	w := os.NewFile(uintptr(fds[1]), "raw-w")
	start := time.Now()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envWriter+"=fixed", envN+"=1073741824", envChunk+"=1048576", "GORACE=atexit_sleep_ms=0")
	cmd.Stdout = w
	cmd.Stderr = os.Stderr
	err := cmd.Start()
	w.Close()
	if err != nil {
		unix.Close(fds[0])
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := unix.Read(fds[0], buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += int64(n)
	}
	unix.Close(fds[0])
	if err := cmd.Wait(); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	if total != benchBytes {
		b.Fatalf("raw pipe read %d bytes", total)
	}
	return d
}

// rawFile is the file baseline: the writer's stdout on an O_TMPFILE file
// in dir opened directly, timed from open to reap.
func rawFile(b *testing.B, dir string) time.Duration {
	start := time.Now()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		b.Skipf("O_TMPFILE in %s: %v", dir, err)
	}
	f := os.NewFile(uintptr(fd), "raw-file")
	defer f.Close()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), envWriter+"=fixed", envN+"=1073741824", envChunk+"=1048576", "GORACE=atexit_sleep_ms=0")
	cmd.Stdout = f
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// throughCapture runs the writer into a new capture for spec, drains it,
// checks the length and returns the time from New to Drain's return.
func throughCapture(b *testing.B, spec *v1.CaptureFd, opts Options) time.Duration {
	start := time.Now()
	c, err := New(spec, opts)
	if err != nil {
		b.Fatal(err)
	}
	benchWriter.run(b, c)
	d := time.Since(start)
	if n := c.Len(); n != benchBytes {
		b.Fatalf("capture holds %d bytes", n)
	}
	if err := c.Close(); err != nil {
		b.Fatal(err)
	}
	return d
}

var (
	discardSpec  = &v1.CaptureFd{Mode: v1.CaptureMemory, Limit: &v1.CaptureLimit{}}
	tempfileSpec = &v1.CaptureFd{Mode: v1.CaptureTempfile}
)

func mbps(d time.Duration, runs int) float64 {
	return float64(benchBytes) * float64(runs) / d.Seconds() / 1e6
}

func BenchmarkPipeRaw(b *testing.B) {
	b.SetBytes(benchBytes)
	for b.Loop() {
		rawPipe(b)
	}
}

// benchAgainstRaw times spec's capture; each iteration runs it twice and
// the raw pipe twice, outside the timer, in the order raw, capture,
// capture, raw, so that each follows the other as often, and the ratio of
// the two is reported.
func benchAgainstRaw(b *testing.B, spec *v1.CaptureFd) {
	b.SetBytes(2 * benchBytes)
	var raw, capt time.Duration
	runs := 0
	for b.Loop() {
		b.StopTimer()
		raw += rawPipe(b)
		b.StartTimer()
		capt += throughCapture(b, spec, Options{})
		capt += throughCapture(b, spec, Options{})
		b.StopTimer()
		raw += rawPipe(b)
		b.StartTimer()
		runs += 2
	}
	b.ReportMetric(mbps(raw, runs), "raw-MB/s")
	b.ReportMetric(raw.Seconds()/capt.Seconds(), "ratio")
}

func BenchmarkCaptureMemoryDiscard(b *testing.B) { benchAgainstRaw(b, discardSpec) }

func BenchmarkCaptureTempfile(b *testing.B) { benchAgainstRaw(b, tempfileSpec) }

// BenchmarkCapture1GiB runs, back to back, the raw pipe, the discarding
// memory capture, a raw O_TMPFILE file in os.TempDir() and the tempfile
// capture there, and reports the throughput of each and the ratios
// capture/raw. tempfile/raw compares a file write with a pipe read, so it
// measures the filesystem; tempfile/rawfile is the capture's own cost (it
// adds none while the child writes).
//
// A run right after a 1 GiB file was freed tends to be slower, whichever
// it is, and one 1 GiB run of each (under half a second) swung the ratios
// by ±10 % with the machine's load. So each iteration is four rounds, each
// a pipe pair then a file pair, each pair's order flipping every round:
// each side of a pair follows the other pair as often as its partner.
func BenchmarkCapture1GiB(b *testing.B) {
	const rounds = 4
	dir := os.TempDir()
	var raw, mem, rfile, tmp time.Duration
	runs := 0
	for b.Loop() {
		for k := range rounds {
			if k%2 == 0 {
				raw += rawPipe(b)
				mem += throughCapture(b, discardSpec, Options{})
				rfile += rawFile(b, dir)
				tmp += throughCapture(b, tempfileSpec, Options{TempDir: dir})
			} else {
				mem += throughCapture(b, discardSpec, Options{})
				raw += rawPipe(b)
				tmp += throughCapture(b, tempfileSpec, Options{TempDir: dir})
				rfile += rawFile(b, dir)
			}
			runs++
		}
	}
	b.ReportMetric(mbps(raw, runs), "raw-MB/s")
	b.ReportMetric(mbps(mem, runs), "memory-MB/s")
	b.ReportMetric(mbps(rfile, runs), "rawfile-MB/s")
	b.ReportMetric(mbps(tmp, runs), "tempfile-MB/s")
	b.ReportMetric(raw.Seconds()/mem.Seconds(), "memory/raw")
	b.ReportMetric(raw.Seconds()/tmp.Seconds(), "tempfile/raw")
	b.ReportMetric(rfile.Seconds()/tmp.Seconds(), "tempfile/rawfile")
}
