package runtime

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// TestTrampolineCleansSignalState: an agent started under nohup (SIGHUP
// ignored) notices at New and spawns through the trampoline, whose child
// starts with no ignored and no blocked signals; the direct path would pass
// SIG_IGN on. The agent is a helper re-exec of this binary under nohup.
func TestTrampolineCleansSignalState(t *testing.T) {
	nohup, err := exec.LookPath("nohup")
	if err != nil {
		t.Skip("no nohup to start the helper with SIGHUP ignored")
	}
	cmd := exec.Command(nohup, testExe(t))
	cmd.Env = append(os.Environ(), helperEnv+"=sigstate")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	// The direct child keeps whatever this test process had ignored when
	// it started (a CI runner may ignore some), plus nohup's SIGHUP.
	_, inherited, err := procfs.SignalState(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	want := "trampoline=true\n" +
		"SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n" + // via the trampoline
		fmt.Sprintf("SigBlk:\t%016x\nSigIgn:\t%016x\n", startupSigmask, inherited|1) // direct
	if string(out) != want {
		t.Fatalf("helper output:\n%s\nwant:\n%s", out, want)
	}
}

// sigstateHelper is the child side of TestTrampolineCleansSignalState.
func sigstateHelper() int {
	rt, err := New(Options{})
	if err != nil {
		return 3
	}
	defer rt.Close()
	os.Stdout.WriteString("trampoline=" + strconv.FormatBool(rt.trampoline) + "\n")
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
