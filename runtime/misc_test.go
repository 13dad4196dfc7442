package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
)

// FuzzCheckBatch: no input makes the batch check (or the env builder)
// panic.
func FuzzCheckBatch(f *testing.F) {
	for _, seed := range []string{
		`{"a":{"argv":["/bin/true"]}}`,
		`{"a":{"argv":[]},"b":null}`,
		`{"a":{"argv":["x"],"fds":[{"fd":"stdout","pipeWrite":{}}]},"b":{"exe":"y","fds":[{"fd":"0","pipeRead":{"procId":"a","fd":"1"}}]}}`,
		`{"a":{"argv":["x"],"fds":[{"fd":"-5","close":{}},{"fd":"99999999999","dup":{"fd":-1}}]}}`,
		`{"a":{"argv":["x"],"umask":"7777","pdeathSignal":"SIGRTMAX+9","env":{"inherit":["A"],"vars":{"B":null,"=":"x"}}}}`,
		`{"a":{"argv":["x"],"fds":[{"fd":"3","file":{"path":"","flags":"Bogus","mode":99999}},{"fd":"4","capture":{}}]}}`,
	} {
		f.Add([]byte(seed))
	}
	rt := &Runtime{environ: []string{"A=1", "PATH=/bin", "PROCSTAR_AGENT_TOKEN=t", "BROKEN"}}
	f.Fuzz(func(t *testing.T, data []byte) {
		var specs map[string]*v1.ProcSpec
		if json.Unmarshal(data, &specs) != nil {
			return
		}
		reqs := make([]Request, 0, len(specs))
		for id, s := range specs {
			reqs = append(reqs, Request{ID: id, Spec: s})
		}
		if err := CheckBatch(reqs); err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error %v is not ErrInvalidSpec", err)
			}
			return
		}
		for _, r := range reqs {
			rt.buildEnv(r.Spec)
		}
	})
}

func TestStartCancelledContext(t *testing.T) {
	rt := newRT(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := rt.Start(ctx, []Request{{ID: "x", Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}}}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
}

// TestConcurrentStatus reads statuses and signals from many goroutines
// while the reaper reaps (run with -race).
func TestConcurrentStatus(t *testing.T) {
	rt := newRT(t, Options{ForceTrampoline: false})
	reqs := make([]Request, 50)
	for i := range reqs {
		reqs[i] = Request{ID: strconv.Itoa(i), Spec: shSpec("echo " + strconv.Itoa(i) + "; sleep 0.0" + strconv.Itoa(i%10))}
	}
	ps, err := rt.Start(context.Background(), reqs)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, p := range ps {
				for {
					if st := p.Status(); st.Pid != p.Pid() {
						t.Errorf("pid %d != %d", st.Pid, p.Pid())
					}
					_ = p.Signal(int(syscall.SIGCONT))
					_, _ = p.ReadOutput(1, 0, nil)
					select {
					case <-p.Done():
					default:
						continue
					}
					if st := p.Status(); exitCode(st) != 0 {
						t.Errorf("%s: %+v", p.ID(), st)
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	for i, p := range ps {
		if got := output(t, p, 1); got != strconv.Itoa(i)+"\n" {
			t.Errorf("%d: %q", i, got)
		}
		p.Release()
	}
}

// TestPdeathSignal: a helper agent starts a child with pdeathSignal
// SIGKILL and exits without touching it; the child must die with it.
func TestPdeathSignal(t *testing.T) {
	cmd := exec.Command(testExe(t))
	cmd.Env = append(os.Environ(), helperEnv+"=pdeath")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helper: %v (%s)", err, out)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		t.Fatalf("helper output %q", out)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	t.Fatalf("child %d survived its agent", pid)
}

// pdeathHelper is the child side of TestPdeathSignal.
func pdeathHelper() int {
	rt, err := New(Options{})
	if err != nil {
		return 3
	}
	ps, err := rt.Start(context.Background(), []Request{{ID: "x", Spec: &v1.ProcSpec{
		Argv: []string{"/bin/sleep", "100"}, PdeathSignal: ptr(v1.Signal("SIGKILL")),
		Fds: []v1.FdSpec{{Fd: "1", Null: &v1.NullFd{}}}}}})
	if err != nil || ps[0].Pid() == 0 {
		return 4
	}
	os.Stdout.WriteString(strconv.Itoa(ps[0].Pid()) + "\n")
	return 0 // exit without killing: the kernel must
}

// TestCloseDetaches: Close leaves a running child alone, and its Proc can
// no longer signal it through the (closed) pidfd.
func TestCloseDetaches(t *testing.T) {
	rt, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := rt.Start(context.Background(), []Request{{ID: "x", Spec: &v1.ProcSpec{Argv: []string{"/bin/sleep", "100"}}}})
	if err != nil {
		t.Fatal(err)
	}
	pid := ps[0].Pid()
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].Signal(9); !errors.Is(err, ErrClosed) {
		t.Fatalf("signal after close: %v", err)
	}
	if err := syscall.Kill(pid, 0); err != nil {
		t.Fatalf("child gone after Close: %v", err)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	syscall.Wait4(pid, &ws, 0, nil) // the runtime is gone; reap it here
}

// TestLibcSignalsAreThirtyTwoAndThree pins the mask New ignores when it
// judges the agent's signal state: exactly glibc's two internal signals.
func TestLibcSignalsAreThirtyTwoAndThree(t *testing.T) {
	if got := signals.Set(libcSignals); !slices.Equal(got, []string{"SIG32", "SIG33"}) {
		t.Fatalf("libcSignals covers %v", got)
	}
}
