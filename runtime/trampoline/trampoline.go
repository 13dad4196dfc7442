// Package trampoline is the tiny re-exec stage the runtime uses when a child
// needs set-up that Go's syscall.SysProcAttr cannot express: every signal
// disposition reset to SIG_DFL, an empty signal mask, a umask, closing
// fds 0-2 that the Go runtime of the trampoline itself reopened on
// /dev/null, and opening files that only the child may open (a FIFO,
// whose open waits for its other end: see FdOp).
//
// The runtime execs its own binary (/proc/self/exe) with argv[0] set to
// Arg0. The init function of this package recognises that marker and never
// returns: it resets the process state, then execs the real program. On
// failure it writes "execve failed: EXE: ERR" to the error pipe (a u16
// little-endian length followed by UTF-8, as procstar's error pipe) and exits
// with ExitCode.
//
// Because it runs from init, the trampoline works in any binary that links
// package runtime, test binaries included. It must not start goroutines,
// log, allocate resources that survive exec, or do anything other than the
// steps above; in any process whose argv[0] is not Arg0 it does nothing.
package trampoline

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// Arg0 is the argv[0] marker of trampoline mode.
	Arg0 = "procstar-trampoline"
	// ExitCode is the exit status of a trampoline that could not exec, as
	// procstar's forked child uses.
	ExitCode = 63
	// headerArgs is how many argv entries precede the fd ops and the
	// target's exe.
	headerArgs = 3
)

// FdOp is one entry of the target's fd table that the trampoline sets up
// itself, in the child, as procstar does every file fd: the open of a FIFO,
// which waits for the other end to be opened, must block the child and not
// the agent. An op with a Path opens it with Flags and Mode (under the
// umask) and moves the fd to Fd; one without dups Src onto Fd, for a spec
// entry that dups an fd opened here.
type FdOp struct {
	Fd    int
	Path  string
	Flags int
	Mode  uint32
	Src   int
}

// encode renders op as one argv entry: "o<fd>,<flags>,<mode>,<path>" or
// "d<fd>,<src>". The path goes last, so it may hold any byte but NUL.
func (op FdOp) encode() string {
	if op.Path == "" {
		return "d" + strconv.Itoa(op.Fd) + "," + strconv.Itoa(op.Src)
	}
	return "o" + strconv.Itoa(op.Fd) + "," + strconv.Itoa(op.Flags) + "," + strconv.FormatUint(uint64(op.Mode), 10) + "," + op.Path
}

// decodeOp parses what encode made.
func decodeOp(s string) (FdOp, bool) {
	if s == "" {
		return FdOp{}, false
	}
	kind, rest := s[0], s[1:]
	f := strings.SplitN(rest, ",", 4)
	num := func(i int) int {
		if i >= len(f) {
			return -1
		}
		v, err := strconv.Atoi(f[i])
		if err != nil || v < 0 {
			return -1
		}
		return v
	}
	switch {
	case kind == 'd' && len(f) == 2:
		op := FdOp{Fd: num(0), Src: num(1)}
		return op, op.Fd >= 0 && op.Src >= 0
	case kind == 'o' && len(f) == 4 && f[3] != "":
		op := FdOp{Fd: num(0), Flags: num(1), Mode: uint32(num(2)), Path: f[3]}
		return op, op.Fd >= 0 && op.Flags >= 0 && num(2) >= 0
	}
	return FdOp{}, false
}

// Argv returns the trampoline's argument vector: the marker, the error-pipe
// fd, a header of the umask (negative for none), the fds among 0-2 to
// close before exec, the hold fd (negative for none) and the number of fd
// ops, then the fd ops, the target exe and its argv.
//
// The fd ops run in order after the umask is set and fds 0-2 are closed.
// One that fails reports "failed to set up fd N: ERR" on the error pipe
// and the rest still run, as in procstar; the child then exits with
// ExitCode instead of exec, after the hold.
//
// With a hold fd the trampoline blocks, after every other step and just
// before exec, in a read of that fd: one byte releases it to exec, EOF
// makes it exit with ExitCode without exec. The parent uses the pause to
// move the child into a systemd scope or attach perf counters to it.
func Argv(errFd int, umask int, closeStd []int, holdFd int, ops []FdOp, exe string, argv []string) []string {
	u := "-"
	if umask >= 0 {
		u = strconv.FormatInt(int64(umask), 8)
	}
	h := "-"
	if holdFd >= 0 {
		h = strconv.Itoa(holdFd)
	}
	cs := make([]string, 0, len(closeStd))
	for _, fd := range closeStd {
		cs = append(cs, strconv.Itoa(fd))
	}
	c := strings.Join(cs, ",")
	if c == "" {
		c = "-"
	}
	out := make([]string, 0, headerArgs+len(ops)+1+len(argv))
	out = append(out, Arg0, strconv.Itoa(errFd), u+":"+c+":"+h+":"+strconv.Itoa(len(ops)))
	for _, op := range ops {
		out = append(out, op.encode())
	}
	out = append(out, exe)
	return append(out, argv...)
}

func init() {
	if len(os.Args) <= headerArgs || os.Args[0] != Arg0 {
		return
	}
	run(os.Args, os.Environ())
}

// sigaction is the kernel's struct sigaction on Linux (not libc's).
type sigaction struct {
	handler  uintptr
	flags    uint64
	restorer uintptr
	mask     uint64
}

// run never returns.
func run(args, env []string) {
	errFd, err := strconv.Atoi(args[1])
	if err != nil || errFd < 3 {
		os.Exit(ExitCode)
	}
	// Keep the error pipe out of the target even when it is one of the
	// target's own listed fds (it never is: the runtime places it above
	// every listed fd).
	_, _ = unix.FcntlInt(uintptr(errFd), unix.F_SETFD, unix.FD_CLOEXEC)
	report := func(msg string) {
		b := make([]byte, 2, 2+len(msg))
		if len(msg) > 0xffff {
			msg = msg[:0xffff]
		}
		binary.LittleEndian.PutUint16(b, uint16(len(msg)))
		b = append(b, msg...)
		_, _ = unix.Write(errFd, b)
	}
	fail := func(msg string) {
		report(msg)
		os.Exit(ExitCode)
	}
	header := strings.Split(args[2], ":")
	if len(header) != 4 {
		fail("bad trampoline header: " + args[2])
	}
	umask, closeStd, hold := header[0], header[1], header[2]
	nops, err := strconv.Atoi(header[3])
	if err != nil || nops < 0 || headerArgs+nops >= len(args) {
		fail("bad trampoline header: " + args[2])
	}
	ops := args[headerArgs : headerArgs+nops]
	exe := args[headerArgs+nops]
	argv := args[headerArgs+nops+1:]

	if umask != "-" {
		m, err := strconv.ParseUint(umask, 8, 32)
		if err != nil || m > 0o777 {
			fail("bad umask: " + umask)
		}
		unix.Umask(int(m))
	}
	// Every disposition back to SIG_DFL: the target must not inherit
	// ignored signals (nohup's SIGHUP, a parent's SIGPIPE).
	dfl := sigaction{}
	for sig := 1; sig <= 64; sig++ {
		if sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		_, _, _ = unix.RawSyscall6(unix.SYS_RT_SIGACTION, uintptr(sig),
			uintptr(unsafe.Pointer(&dfl)), 0, 8, 0, 0)
	}
	var empty unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil); err != nil {
		fail("sigprocmask failed: " + OSError(err))
	}
	if closeStd != "-" {
		for _, s := range strings.Split(closeStd, ",") {
			if fd, err := strconv.Atoi(s); err == nil && fd >= 0 && fd <= 2 {
				_ = unix.Close(fd)
			}
		}
	}
	setupFailed := false
	for _, enc := range ops {
		op, ok := decodeOp(enc)
		if !ok {
			fail("bad fd op: " + enc)
		}
		if err := op.apply(); err != nil {
			report("failed to set up fd " + strconv.Itoa(op.Fd) + ": " + OSError(err))
			setupFailed = true
		}
	}
	if hold != "" && hold != "-" {
		fd, err := strconv.Atoi(hold)
		if err != nil || fd < 3 {
			fail("bad hold fd: " + hold)
		}
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		var b [1]byte
		for {
			n, err := unix.Read(fd, b[:])
			if err == unix.EINTR {
				continue
			}
			if n == 1 {
				break
			}
			// EOF or an error: the parent gave up on this child.
			os.Exit(ExitCode)
		}
		_ = unix.Close(fd)
	}
	if setupFailed {
		os.Exit(ExitCode)
	}
	err = syscall.Exec(exe, argv, env)
	fail("execve failed: " + exe + ": " + OSError(err))
}

// apply sets up op's fd. An open blocks as long as the open(2) does: for a
// FIFO, until its other end is opened. The new fd is not close-on-exec.
func (op FdOp) apply() error {
	if op.Path == "" {
		// Src is an fd opened here, never Fd itself: Fd is the spec's
		// one entry for that number.
		return unix.Dup2(op.Src, op.Fd)
	}
	var fd int
	var err error
	for {
		fd, err = unix.Open(op.Path, op.Flags&^unix.O_CLOEXEC, op.Mode)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil || fd == op.Fd {
		return err
	}
	defer unix.Close(fd)
	return unix.Dup2(fd, op.Fd)
}

// OSError formats err as Rust's io::Error Display does for an OS error:
// "No such file or directory (os error 2)". Errors that are not an errno
// are returned as err.Error().
func OSError(err error) string {
	var errno syscall.Errno
	if !asErrno(err, &errno) {
		return err.Error()
	}
	s := errno.Error()
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s + " (os error " + strconv.Itoa(int(errno)) + ")"
}

// asErrno is errors.As for syscall.Errno without importing errors' reflect
// path into the trampoline's hot start-up.
func asErrno(err error, out *syscall.Errno) bool {
	for err != nil {
		if e, ok := err.(syscall.Errno); ok {
			*out = e
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}
