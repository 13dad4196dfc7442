package runtime

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestReexecUnblocked: an agent started with SIGUSR2 blocked re-executes
// itself with no signal blocked, under the same pid and with its inherited
// fds, and then spawns directly; its children start with nothing blocked.
// With the blocked signal pending it does not re-execute, and uses the
// trampoline. The agent is a helper re-exec of this binary, started by a
// second helper that blocks the signal and execs it.
func TestReexecUnblocked(t *testing.T) {
	mask := startupSigmask | 1<<(unix.SIGUSR2-1)
	for _, tc := range []struct {
		name string
		want string
	}{
		{"clean", fmt.Sprintf("mask %x\nmask 0\nreexec error: <nil>\n", mask) +
			"marker \"\"\ntrampoline=false\nfd 3 inherited=true cloexec=true\nSigBlk:\t0000000000000000\n"},
		{"pending", fmt.Sprintf("mask %x\nreexec error: a blocked signal is pending (mask 800)\n", mask) +
			"marker \"\"\ntrampoline=true\nfd 3 inherited=true cloexec=true\nSigBlk:\t0000000000000000\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			devnull, err := os.Open(os.DevNull)
			if err != nil {
				t.Fatal(err)
			}
			defer devnull.Close()
			cmd := exec.Command(testExe(t), tc.name)
			cmd.Env = append(os.Environ(), helperEnv+"=blockexec")
			cmd.ExtraFiles = []*os.File{devnull}
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helper: %v\n%s", err, out)
			}
			// Each line starts with the pid of the process that wrote it:
			// one pid, before and after the exec.
			var pid string
			var got strings.Builder
			for _, line := range strings.SplitAfter(string(out), "\n") {
				if line == "" {
					continue
				}
				p, rest, ok := strings.Cut(line, " ")
				if !ok || (pid != "" && p != pid) {
					t.Fatalf("helper output:\n%s", out)
				}
				pid = p
				got.WriteString(rest)
			}
			if got.String() != tc.want {
				t.Fatalf("helper output:\n%s\nwant (after each pid):\n%s", out, tc.want)
			}
		})
	}
}

// blockexecHelper blocks SIGUSR2 in its thread, makes it pending there if
// args[0] is "pending", and execs this binary as reexecHelper with that
// mask and its fd 3.
func blockexecHelper(args []string) int {
	goruntime.LockOSThread()
	var set unix.Sigset_t
	set.Val[0] = 1 << (unix.SIGUSR2 - 1)
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, nil); err != nil {
		return 3
	}
	if len(args) > 0 && args[0] == "pending" {
		if err := unix.Tgkill(unix.Getpid(), unix.Gettid(), unix.SIGUSR2); err != nil {
			return 3
		}
	}
	// This binary's initialisation made the inherited fd 3 close-on-exec.
	if _, err := unix.FcntlInt(3, unix.F_SETFD, 0); err != nil {
		return 3
	}
	env := []string{helperEnv + "=reexec"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, helperEnv+"=") {
			env = append(env, kv)
		}
	}
	err := unix.Exec("/proc/self/exe", []string{os.Args[0]}, env)
	fmt.Fprintln(os.Stderr, "exec:", err)
	return 4
}

// reexecHelper is the agent of TestReexecUnblocked. It prints a line
// before ReexecUnblocked, which a re-exec prints again, and what it found
// after.
func reexecHelper() int {
	pr := func(format string, args ...any) {
		fmt.Printf("%d "+format+"\n", append([]any{os.Getpid()}, args...)...)
	}
	pr("mask %x", startupSigmask)
	ReexecUnblocked()
	pr("reexec error: %v", reexecErr)
	pr("marker %q", os.Getenv(reexecEnv))
	rt, err := New(Options{})
	if err != nil {
		return 3
	}
	defer rt.Close()
	pr("trampoline=%t", rt.trampoline)
	flags, err := unix.FcntlInt(3, unix.F_GETFD, 0)
	pr("fd 3 inherited=%t cloexec=%t", inheritedFds[3], err == nil && flags&unix.FD_CLOEXEC != 0)
	s := shSpec("")
	s.Argv = []string{"/bin/grep", "^SigBlk", "/proc/self/status"}
	ps, err := rt.Start(context.Background(), []Request{{ID: "x", Spec: s}})
	if err != nil {
		return 4
	}
	<-ps[0].Done()
	b, _ := ps[0].Output(1)
	pr("%s", strings.TrimSuffix(string(b), "\n"))
	return 0
}
