package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The test binary doubles as the child that writes output: with
// CAPTURE_TEST_WRITER set, it writes a deterministic stream to stdout and
// exits.
const (
	envWriter = "CAPTURE_TEST_WRITER" // "prng" or "fixed"
	envN      = "CAPTURE_TEST_N"      // bytes to write
	envSeed   = "CAPTURE_TEST_SEED"   // prng seed
	envChunk  = "CAPTURE_TEST_CHUNK"  // bytes per write(2)
	envPause  = "CAPTURE_TEST_PAUSE"  // pause between writes, a Go duration
)

func TestMain(m *testing.M) {
	if kind := os.Getenv(envWriter); kind != "" {
		if err := runWriter(kind); err != nil {
			fmt.Fprintln(os.Stderr, "writer:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func runWriter(kind string) error {
	n, err := strconv.ParseInt(os.Getenv(envN), 10, 64)
	if err != nil {
		return err
	}
	chunk := 1 << 20
	if s := os.Getenv(envChunk); s != "" {
		if chunk, err = strconv.Atoi(s); err != nil {
			return err
		}
	}
	var pause time.Duration
	if s := os.Getenv(envPause); s != "" {
		if pause, err = time.ParseDuration(s); err != nil {
			return err
		}
	}
	var src io.Reader
	switch kind {
	case "prng":
		seed, err := strconv.ParseUint(os.Getenv(envSeed), 10, 64)
		if err != nil {
			return err
		}
		src = pattern(seed)
	case "fixed":
		src = nil
	default:
		return fmt.Errorf("unknown writer %q", kind)
	}
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for n > 0 {
		k := int(min(int64(chunk), n))
		if src != nil {
			if _, err := io.ReadFull(src, buf[:k]); err != nil {
				return err
			}
		}
		if _, err := os.Stdout.Write(buf[:k]); err != nil {
			return err
		}
		n -= int64(k)
		if pause > 0 {
			time.Sleep(pause)
		}
	}
	return nil
}

// pattern is the deterministic byte stream of seed.
func pattern(seed uint64) io.Reader {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	return rand.NewChaCha8(key)
}

// patternBytes returns the first n bytes of pattern(seed).
func patternBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	io.ReadFull(pattern(seed), b)
	return b
}

// writer describes one run of the writer child.
type writer struct {
	kind  string
	n     int64
	seed  uint64
	chunk int
	pause time.Duration
}

// start starts the writer with its stdout on c and calls c.Started.
func (w writer) start(t testing.TB, c Capture) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(),
		envWriter+"="+w.kind,
		envN+"="+strconv.FormatInt(w.n, 10),
		envSeed+"="+strconv.FormatUint(w.seed, 10),
		"GORACE=atexit_sleep_ms=0", // a -race writer would idle 1s at exit
	)
	if w.chunk > 0 {
		cmd.Env = append(cmd.Env, envChunk+"="+strconv.Itoa(w.chunk))
	}
	if w.pause > 0 {
		cmd.Env = append(cmd.Env, envPause+"="+w.pause.String())
	}
	cmd.Stdout = c.ChildFile()
	cmd.Stderr = os.Stderr
	err := cmd.Start()
	c.Started()
	if err != nil {
		t.Fatalf("start writer: %v", err)
	}
	return cmd
}

// run runs the writer to completion and drains c.
func (w writer) run(t testing.TB, c Capture) {
	t.Helper()
	cmd := w.start(t, c)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	if !c.Drain(time.Now().Add(10 * time.Second)) {
		t.Fatalf("drain timed out")
	}
}

// verifyPattern checks that c holds exactly the first n bytes of
// pattern(seed), comparing chunk by chunk.
func verifyPattern(t testing.TB, c Capture, seed uint64, n int64) {
	t.Helper()
	if got := c.Len(); got != n {
		t.Fatalf("Len = %d, want %d", got, n)
	}
	src := pattern(seed)
	want := make([]byte, 1<<20)
	got := make([]byte, 1<<20)
	for off := int64(0); off < n; {
		k := int(min(int64(len(want)), n-off))
		io.ReadFull(src, want[:k])
		m, err := c.ReadAt(got[:k], off)
		if m != k || (err != nil && !errors.Is(err, io.EOF)) {
			t.Fatalf("ReadAt(%d bytes, %d) = %d, %v", k, off, m, err)
		}
		if !bytes.Equal(got[:k], want[:k]) {
			i := 0
			for got[i] == want[i] {
				i++
			}
			t.Fatalf("output differs at byte %d", off+int64(i))
		}
		off += int64(k)
	}
	if m, err := c.ReadAt(got[:1], n); m != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("ReadAt at end = %d, %v; want 0, EOF", m, err)
	}
}
