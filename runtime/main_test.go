package runtime

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	v1 "procstar.dev/procstar/api/v1"
)

// helperEnv selects a helper mode when the test binary is re-exec'd as a
// child (see helperMain).
const helperEnv = "RUNTIME_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(helperMain(mode, os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// pattern is the deterministic byte at offset i of big-output tests.
func pattern(i int64) byte { return byte(i*131 + i>>9 + i>>17) }

// helperMain runs a helper mode and returns the exit code.
func helperMain(mode string, args []string) int {
	switch mode {
	case "pattern": // write N pattern bytes to stdout
		var n int64
		fmt.Sscan(args[0], &n)
		w := bufio.NewWriterSize(os.Stdout, 1<<20)
		buf := make([]byte, 1<<16)
		for off := int64(0); off < n; {
			k := min(int64(len(buf)), n-off)
			for i := int64(0); i < k; i++ {
				buf[i] = pattern(off + i)
			}
			w.Write(buf[:k])
			off += k
		}
		if err := w.Flush(); err != nil {
			return 1
		}
		return 0
	case "inherit":
		return inheritHelper()
	case "sigstate":
		return sigstateHelper()
	case "sigagain":
		return sigagainHelper()
	case "blockexec":
		return blockexecHelper(args)
	case "reexec":
		return reexecHelper()
	case "pdeath":
		return pdeathHelper()
	case "rss-runtime", "rss-exec":
		return rssHelper(mode, args)
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// testExe is this test binary, for helper children.
func testExe(t testing.TB) string {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

func newRT(t testing.TB, opts Options) *Runtime {
	t.Helper()
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 5 * time.Second
	}
	rt, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Close(); err != nil {
			t.Error(err)
		}
	})
	return rt
}

func ptr[T any](v T) *T { return &v }

func memCapture() *v1.CaptureFd {
	return &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8}
}

// shSpec runs script with sh -c, stdin null, stdout and stderr captured to
// memory.
func shSpec(script string) *v1.ProcSpec {
	return &v1.ProcSpec{
		Argv: []string{"/bin/sh", "-c", script},
		Fds: []v1.FdSpec{
			{Fd: v1.Stdin, Null: &v1.NullFd{}},
			{Fd: v1.Stdout, Capture: memCapture()},
			{Fd: v1.Stderr, Capture: memCapture()},
		},
	}
}

func waitDone(t testing.TB, p *Proc, d time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(d):
		if p.Pid() > 0 {
			p.Signal(9)
		}
		t.Fatalf("proc %s not done after %v", p.ID(), d)
	}
}

// run starts one proc and waits until it is done.
func run(t testing.TB, rt *Runtime, spec *v1.ProcSpec) (*Proc, v1.ProcStatus) {
	t.Helper()
	ps, err := rt.Start(context.Background(), []Request{{ID: "p", Spec: spec}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	p := ps[0]
	t.Cleanup(func() { p.Release() })
	waitDone(t, p, 20*time.Second)
	return p, p.Status()
}

func output(t testing.TB, p *Proc, fd int) string {
	t.Helper()
	b, err := p.Output(fd)
	if err != nil {
		t.Fatalf("output fd %d: %v", fd, err)
	}
	return string(b)
}

func exitCode(st v1.ProcStatus) int {
	if st.ExitCode == nil {
		return -1
	}
	return *st.ExitCode
}

// modes runs f with the direct spawn path and with the trampoline forced.
func modes(t *testing.T, f func(t *testing.T, rt *Runtime)) {
	for _, tramp := range []bool{false, true} {
		name := "direct"
		if tramp {
			name = "trampoline"
		}
		t.Run(name, func(t *testing.T) {
			rt := newRT(t, Options{ForceTrampoline: tramp})
			// The direct path is tested even where the test process itself
			// started with signals ignored or blocked (a CI runner may), which
			// would otherwise make New choose the trampoline for every spawn.
			rt.trampoline = false
			f(t, rt)
		})
	}
}
