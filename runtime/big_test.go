package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/runtime/procfs"
)

// Test256MiB pushes 256 MiB through each capture mode from a real child and
// checks it byte for byte. The child repeats a file whose size is prime, so
// a lost, duplicated or reordered chunk cannot line up by accident.
func Test256MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("256 MiB per capture mode")
	}
	const total = 256 << 20
	const period = 8388593 // the largest prime below 8 MiB
	dir := t.TempDir()
	pat := make([]byte, period)
	for i := range pat {
		pat[i] = pattern(int64(i))
	}
	if err := os.WriteFile(filepath.Join(dir, "pat"), pat, 0o644); err != nil {
		t.Fatal(err)
	}
	script := "for i in $(seq 33); do cat pat; done | head -c " + strconv.Itoa(total)
	rt := newRT(t, Options{TempDir: dir})
	for _, mode := range []v1.CaptureMode{v1.CaptureMemory, v1.CaptureTempfile, v1.CaptureFile} {
		t.Run(string(mode), func(t *testing.T) {
			c := &v1.CaptureFd{Mode: mode, Encoding: v1.EncodingBase64}
			if mode == v1.CaptureFile {
				c.Path = filepath.Join(dir, "out")
			}
			p, st := run(t, rt, &v1.ProcSpec{Argv: []string{"/bin/bash", "-c", script}, Cwd: dir,
				Fds: []v1.FdSpec{{Fd: "stdout", Capture: c}}})
			if exitCode(st) != 0 || len(st.Errors) != 0 {
				t.Fatalf("status %+v", st)
			}
			if n, err := p.OutputLen(1); n != total || err != nil || st.Fds["stdout"].Length != total {
				t.Fatalf("length %d %v, status %+v", n, err, st.Fds)
			}
			const chunk = 8 << 20
			want := make([]byte, chunk)
			for off := int64(0); off < total; off += chunk {
				stop := off + chunk
				got, err := p.ReadOutput(1, off, &stop)
				if err != nil {
					t.Fatal(err)
				}
				for i := 0; i < chunk; {
					i += copy(want[i:], pat[(off+int64(i))%period:])
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("mismatch in [%d, %d)", off, stop)
				}
			}
			p.Release()
		})
	}
}

// TestIgnoredSignalsCaught: an agent started with SIGHUP and SIGINT
// ignored (nohup, in a shell that ignores SIGINT for background jobs)
// catches both at New, the only two the Go runtime leaves ignored, so its
// direct children start with neither ignored and it needs no trampoline;
// the trampoline's child starts with nothing ignored or blocked. The agent
// is a helper re-exec of this binary.
func TestIgnoredSignalsCaught(t *testing.T) {
	nohup, err := exec.LookPath("nohup")
	if err != nil {
		t.Skip("no nohup to start the helper with SIGHUP ignored")
	}
	cmd := exec.Command("/bin/sh", "-c", `trap '' INT; exec "$0" "$1"`, nohup, testExe(t))
	cmd.Env = append(os.Environ(), helperEnv+"=sigstate")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	lines := strings.SplitAfterN(string(out), "\n", 3)
	if len(lines) < 3 {
		t.Fatalf("helper output:\n%s", out)
	}
	// Only a signal blocked when this test process started (a CI runner
	// may block some; the helper inherits the mask) needs the trampoline.
	var agentIgn uint64
	if _, err := fmt.Sscanf(lines[1], "agent SigIgn:\t%x\n", &agentIgn); err != nil {
		t.Fatalf("helper output:\n%s", out)
	}
	if agentIgn&3 != 0 {
		t.Errorf("the agent still ignores SIGHUP or SIGINT: SigIgn %016x", agentIgn)
	}
	want := fmt.Sprintf("trampoline=%t\n", startupSigmask != 0) + lines[1] +
		"SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n" + // via the trampoline
		fmt.Sprintf("SigBlk:\t%016x\nSigIgn:\t%016x\n", startupSigmask, agentIgn) // direct
	if string(out) != want {
		t.Fatalf("helper output:\n%s\nwant:\n%s", out, want)
	}
}

// sigstateHelper is the child side of TestIgnoredSignalsCaught.
func sigstateHelper() int {
	rt, err := New(Options{})
	if err != nil {
		return 3
	}
	defer rt.Close()
	_, ignored, err := procfs.SignalState(os.Getpid())
	if err != nil {
		return 3
	}
	fmt.Printf("trampoline=%t\nagent SigIgn:\t%016x\n", rt.trampoline, ignored)
	for _, tramp := range []bool{true, false} {
		rt.trampoline = tramp
		s := shSpec("")
		s.Argv = []string{"/bin/grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"}
		ps, err := rt.Start(context.Background(), []Request{{ID: "x", Spec: s}})
		if err != nil {
			return 4
		}
		<-ps[0].Done()
		b, _ := ps[0].Output(1)
		os.Stdout.Write(b)
		ps[0].Release()
	}
	return 0
}

// TestIgnoredSignalCaughtAgain: an agent catches SIGINT for itself before
// its runtime starts, so New has nothing to catch, and signal.Stop at its
// end brings the inherited ignore back; a later New in the same process
// must catch it again rather than fall back to the trampoline.
func TestIgnoredSignalCaughtAgain(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", `trap '' INT; exec "$0"`, testExe(t))
	cmd.Env = append(os.Environ(), helperEnv+"=sigagain")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	want := fmt.Sprintf("while caught: trampoline=%t\nafter stop: ignores SIGINT\nagain: trampoline=%t, ignores SIGINT: false\n",
		startupSigmask != 0, startupSigmask != 0)
	if string(out) != want {
		t.Fatalf("helper output:\n%s\nwant:\n%s", out, want)
	}
}

// sigagainHelper is the child side of TestIgnoredSignalCaughtAgain.
func sigagainHelper() int {
	ignoresInt := func() bool {
		_, ignored, err := procfs.SignalState(os.Getpid())
		return err == nil && ignored&(1<<(syscall.SIGINT-1)) != 0
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGINT)
	rt, err := New(Options{})
	if err != nil {
		return 3
	}
	fmt.Printf("while caught: trampoline=%t\n", rt.trampoline)
	rt.Close()
	signal.Stop(ch)
	if ignoresInt() {
		fmt.Println("after stop: ignores SIGINT")
	}
	rt, err = New(Options{})
	if err != nil {
		return 3
	}
	defer rt.Close()
	fmt.Printf("again: trampoline=%t, ignores SIGINT: %t\n", rt.trampoline, ignoresInt())
	return 0
}
