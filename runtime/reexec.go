package runtime

import (
	"fmt"
	"os"
	goruntime "runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reexecEnv marks the process ReexecUnblocked has started. The new process
// takes it out of its environment at once, so no child inherits it, and
// never re-executes a second time.
const reexecEnv = "PROCSTAR_REEXEC_UNBLOCKED"

// reexecErr is why ReexecUnblocked could not re-execute; New logs it.
var reexecErr error

// ReexecUnblocked re-executes the running program, with the same
// arguments, environment and inherited fds, when it started with signals
// blocked, so that it runs again with none blocked.
//
// Go gives each of its threads the signal mask the process was started
// with, and a forked child keeps the mask of the thread that forked it. A
// Runtime in such a process starts every child through the trampoline,
// which clears the mask but costs a Go runtime start, milliseconds, per
// spawn (see BenchmarkSpawnTrue/trampoline). A program that starts many
// children calls ReexecUnblocked first thing in main, before it has
// goroutines, files or listeners of its own.
//
// It returns only if it does not re-execute: at once when the mask is
// clean or this process is the re-executed one, and otherwise when the
// exec failed or a blocked signal is pending (unblocking it would deliver
// it before the program is ready for it). New then uses the trampoline and
// logs why.
func ReexecUnblocked() {
	if os.Getenv(reexecEnv) != "" {
		os.Unsetenv(reexecEnv)
		return
	}
	if startupSigmask == 0 {
		return
	}
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	var pending uint64
	if _, _, errno := unix.RawSyscall(unix.SYS_RT_SIGPENDING, uintptr(unsafe.Pointer(&pending)), 8, 0); errno != 0 {
		reexecErr = fmt.Errorf("rt_sigpending: %w", errno)
		return
	}
	if p := pending & startupSigmask; p != 0 {
		reexecErr = fmt.Errorf("a blocked signal is pending (mask %x)", p)
		return
	}
	// The fds inherited were made close-on-exec at initialisation; the
	// new process must inherit them again.
	for fd := range inheritedFds {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
	}
	var none, old unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &none, &old); err != nil {
		reexecErr = fmt.Errorf("unblocking signals: %w", err)
	} else {
		err = unix.Exec("/proc/self/exe", os.Args, append(os.Environ(), reexecEnv+"=1"))
		reexecErr = fmt.Errorf("exec /proc/self/exe: %w", err)
		_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	}
	for fd := range inheritedFds {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
	}
}
