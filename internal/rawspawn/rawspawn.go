// Package rawspawn is the raw baseline the spawn benchmarks measure the
// runtime against: fork/exec with a pidfd, a blocking poll on the pidfd and
// wait4, as a hand-written parent would do it, with nothing else.
//
// It exists only for benchmarks; nothing outside tests may use it, and it
// must stay as bare as it is.
package rawspawn

import (
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Run starts path (argv is just path) in a new session with fds 0-2
// inherited and environment env, waits on its pidfd, reaps it with wait4
// and returns an error unless it exited 0.
func Run(path string, env []string) error { return run(path, env, -1, nil) }

// RunInCgroup is Run with the child cloned straight into the cgroup whose
// directory cgroupFD is open on (clone3 CLONE_INTO_CGROUP).
func RunInCgroup(path string, env []string, cgroupFD int) error {
	return run(path, env, cgroupFD, nil)
}

// Times are when a child was forked (ForkExec returned) and reaped (wait4
// returned): the points the runtime's start and stop times stand for.
type Times struct{ Forked, Reaped time.Time }

// Timed is Run, and also says when the child was forked and reaped.
func Timed(path string, env []string) (Times, error) {
	var t Times
	err := run(path, env, -1, &t)
	return t, err
}

func run(path string, env []string, cgroupFD int, times *Times) error {
	pidfd := -1
	sys := &syscall.SysProcAttr{Setsid: true, PidFD: &pidfd}
	if cgroupFD >= 0 {
		sys.UseCgroupFD, sys.CgroupFD = true, cgroupFD
	}
	pid, err := syscall.ForkExec(path, []string{path}, &syscall.ProcAttr{
		Env:   env,
		Files: []uintptr{0, 1, 2},
		Sys:   sys,
	})
	if err != nil {
		return err
	}
	if times != nil {
		times.Forked = time.Now()
	}
	defer unix.Close(pidfd)
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(fds, -1)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
	var ws unix.WaitStatus
	var ru unix.Rusage
	for {
		_, err = unix.Wait4(pid, &ws, 0, &ru)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if times != nil {
		times.Reaped = time.Now()
	}
	if err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("%s: wait status %#x", path, uint32(ws))
	}
	return nil
}
