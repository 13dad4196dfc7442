package runtime

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
)

// TestWait: Wait returns the final status, reaped in the caller's thread
// or by the loop, with output drained, in both spawn modes.
func TestWait(t *testing.T) {
	modes(t, func(t *testing.T, rt *Runtime) {
		fds := openFds(t)
		ps, err := rt.Start(context.Background(), []Request{
			{ID: "out", Spec: shSpec("sleep 0.1; echo hi; exit 3")},
			{ID: "true", Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}}},
			{ID: "missing", Spec: &v1.ProcSpec{Argv: []string{"/nonexistent/x"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			t.Cleanup(func() { p.Release() })
		}
		st := ps[0].Wait()
		if exitCode(st) != 3 || len(st.Errors) != 0 || st.Rusage == nil {
			t.Fatalf("out: %+v", st)
		}
		if st.ProcStat == nil || st.ProcStat.Pid != ps[0].Pid() || st.ProcStat.State != "Z" {
			t.Fatalf("out: zombie stat %+v", st.ProcStat)
		}
		if got := output(t, ps[0], 1); got != "hi\n" {
			t.Fatalf("out: stdout %q", got)
		}
		select {
		case <-ps[0].Done():
		default:
			t.Fatal("out: Wait returned before Done")
		}
		// By now the loop may well have reaped /bin/true: Wait leaves it be.
		if st := ps[1].Wait(); exitCode(st) != 0 || len(st.Errors) != 0 {
			t.Fatalf("true: %+v", st)
		}
		if st := ps[2].Wait(); st.ExitCode != nil && exitCode(st) == 0 || len(st.Errors) == 0 {
			t.Fatalf("missing: %+v", st)
		}
		// A second Wait, and Done, see the same end.
		if st := ps[0].Wait(); exitCode(st) != 3 {
			t.Fatalf("second Wait: %+v", st)
		}
		if now := openFds(t); now != fds {
			t.Errorf("%d fds open before, %d after", fds, now)
		}
	})
}

// TestWaitRaces: Wait races the reaper loop, other Waits and Done for
// children that exit at once; each child is reaped exactly once (a second
// wait4 would fail with ECHILD and say so in the errors).
func TestWaitRaces(t *testing.T) {
	rt := newRT(t, Options{})
	n := 300
	if testing.Short() {
		n = 50
	}
	fds := openFds(t)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		ps, err := rt.Start(context.Background(), []Request{{ID: "t" + strconv.Itoa(i), Spec: &v1.ProcSpec{Argv: []string{"/bin/true"}}}})
		if err != nil {
			t.Fatal(err)
		}
		p := ps[0]
		// From at once to after the exit: Wait takes some children over,
		// finds others being reaped or reaped by the loop.
		delay := time.Duration(i%8) * 200 * time.Microsecond
		for range 2 {
			wg.Go(func() {
				time.Sleep(delay)
				if st := p.Wait(); exitCode(st) != 0 || len(st.Errors) != 0 {
					t.Errorf("%s: %+v", p.ID(), st)
				}
			})
		}
		waitDone(t, p, 10*time.Second)
	}
	wg.Wait()
	if now := openFds(t); now != fds {
		t.Errorf("%d fds open before, %d after", fds, now)
	}
}

// TestWaitAcrossClose: a Wait that has taken its child over still ends
// when the child exits after the Runtime is closed.
func TestWaitAcrossClose(t *testing.T) {
	rt, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := rt.Start(context.Background(), []Request{{ID: "s", Spec: &v1.ProcSpec{Argv: []string{"/bin/sleep", "0.3"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := ps[0]
	got := make(chan v1.ProcStatus, 1)
	go func() { got <- p.Wait() }()
	// Wait has taken the child once its watch is gone from the set.
	for deadline := time.Now().Add(10 * time.Second); ; {
		rt.mu.Lock()
		taken := rt.watches[p.tok] == nil
		rt.mu.Unlock()
		if taken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Wait did not take the child over")
		}
		time.Sleep(time.Millisecond)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-got:
		if exitCode(st) != 0 || len(st.Errors) != 0 {
			t.Fatalf("%+v", st)
		}
	case <-time.After(10 * time.Second):
		p.Signal(9)
		t.Fatal("Wait did not return")
	}
}

// TestStatusShowsEndOnceExited reads a proc's status between its reap and
// the close of Exited: it must still say running (no stop time, no wait
// status, no errors), with the zombie's stat, so that no result says
// terminated or error while the controller, which goes by Exited, still
// counts the proc as running. The exec failure runs through the
// trampoline, whose errors come on a pipe; the direct path finds its own
// inside ForkExec, and never reaps.
func TestStatusShowsEndOnceExited(t *testing.T) {
	for _, tc := range []struct {
		name  string
		tramp bool
		argv  string
		code  int
		err   string
	}{
		{"direct", false, "/bin/true", 0, ""},
		{"trampoline", true, "/bin/true", 0, ""},
		{"exec failure", true, "/nonexistent/x", 63, "execve failed: /nonexistent/x: No such file or directory (os error 2)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRT(t, Options{ForceTrampoline: tc.tramp})
			rt.trampoline = false // as in modes
			var between []v1.ProcStatus
			testHookReaped = func(p *Proc) {
				if isDone(p.Exited()) {
					t.Error("Exited closed before the reaper was done with the proc")
				}
				between = append(between, p.Status())
			}
			t.Cleanup(func() { testHookReaped = nil })
			_, final := run(t, rt, &v1.ProcSpec{Argv: []string{tc.argv}})
			testHookReaped = nil
			if len(between) != 1 {
				t.Fatalf("the hook ran %d times", len(between))
			}
			st := between[0]
			if st.WaitStatus != nil || st.ExitCode != nil || st.Rusage != nil || st.Times == nil || st.Times.Stop != nil || st.Errors != nil {
				t.Errorf("status before Exited shows the end: wait status set %t, exit code %d, rusage %+v, times %+v, errors %q",
					st.WaitStatus != nil, exitCode(st), st.Rusage, st.Times, st.Errors)
			}
			if st.ProcStat == nil || st.ProcStat.State != "Z" || st.ProcStatm != nil {
				t.Errorf("status before Exited: want the zombie's stat and no statm, got stat %+v, statm %+v", st.ProcStat, st.ProcStatm)
			}
			var wantErrs []string
			if tc.err != "" {
				wantErrs = []string{tc.err}
			}
			if final.WaitStatus == nil || exitCode(final) != tc.code || final.Times.Stop == nil || !slices.Equal(final.Errors, wantErrs) {
				t.Errorf("final status: wait status set %t, exit code %d, times %+v, errors %q; want exit code %d, errors %q",
					final.WaitStatus != nil, exitCode(final), final.Times, final.Errors, tc.code, wantErrs)
			}
		})
	}
}
