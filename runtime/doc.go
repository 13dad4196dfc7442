// Package runtime is the Linux mechanics of running procs: it spawns a
// child with exactly the fd table its spec lists, its environment, cwd,
// session and (through a re-exec trampoline when needed) a clean signal
// state and umask; it learns of exits through pidfds in one epoll loop,
// reads /proc/PID/stat while the child is a zombie, reaps it with wait4,
// drains its output captures with a bound, and sends signals through the
// pidfd.
//
// Callers learn of the end of a proc from Done, which costs them nothing
// while the proc runs; a caller that waits on one proc at a time may call
// Wait instead, which reaps the child in its own thread, as a hand-written
// parent does, and so reports the exit sooner.
//
// It has no policy: no restarts, no timeouts, no phases or conditions, no
// table of procs by name. Those live in the controller, which builds on
// Runtime.Start and the Proc methods.
//
// It must not call wait on anything but its own children by pid (nothing
// else in the process may reap children, and SIGCHLD must not be set to
// SIG_IGN, which makes the kernel reap them), and it must not leak any fd
// the agent holds into a child.
//
// # The child's fd table
//
// The table is built in the parent from the spec alone, in list order,
// then handed to syscall.ForkExec as ProcAttr.Files, which permutes it
// safely in the child. File and null fds are opened by the agent, where
// procstar opens them in the child: paths that name "this process"
// (/dev/stdout, /dev/fd/N, /proc/self/fd/N) are mapped to the child's fd
// so far, other /proc/self paths are refused, and the spec's umask
// applies. The one open the agent cannot make for the child is that of a
// FIFO whose other end is not open yet, which waits for it: the
// trampoline makes it in the child, with any dup of its fd after it (see
// openForChild). Everything the runtime opens is O_CLOEXEC, the fds
// the agent inherited from its parent are marked FD_CLOEXEC at package
// initialisation, and New marks every other fd >= 3 open at that moment,
// so an fd that is not in the table never reaches a child. Unlisted fds
// 0-2 are the agent's own. An unlisted dup or inherit source, and a close
// target, mean the agent's fd of that number only for 0-2 and the fds the
// agent inherited at start-up (closeOtherFds=false passes exactly those
// on, as procstar does); any other number is not open in the child, so
// dup and close of it fail with EBADF. A start-up fd above the table is
// passed on through the fork instead of as an entry (see forkExec), so
// that inheriting fd 251 does not cost every child 248 close calls.
//
// # The trampoline
//
// Go's fork resets the handlers Go installed but keeps signals ignored
// and blocked signals blocked. Go installs a handler for every signal
// but SIGHUP and SIGINT, even one ignored when the agent started; New
// catches those two as well (dropping them, as the ignore did), so only
// a signal mask the agent started with leaves its signal state unclean
// (see catchIgnoredSignals). A program that calls ReexecUnblocked first
// in main is rid of that mask too, unless the re-exec fails. When New
// finds the state unclean,
// when a spec sets a umask, when a file fd must be opened in the child,
// or with Options.ForceTrampoline, the child is
// /proc/self/exe with argv[0] "procstar-trampoline" (package trampoline),
// which resets all of that and execs the target. Its exec failure comes
// back through an error pipe: Errors carries "execve failed: EXE: ERR" and
// the proc has a pid and exit code 63, as in procstar. On the direct path
// ForkExec reaps a child that failed to exec itself, so the proc has no
// pid; like every proc that never ran, it reads as exited with code 63
// and zero usage, which is what procstar's clients look for. The
// trampoline is a Go
// program: it costs a Go runtime start per spawn (see BenchmarkSpawnTrue),
// and GODEBUG, GOGC and the like in the child's environment also apply to
// it for the instant before exec.
//
// # pdeathSignal
//
// PR_SET_PDEATHSIG fires when the thread that forked the child exits, not
// the process. Go threads normally live as long as the process, but a
// goroutine that exits while locked to its thread (runtime.LockOSThread
// without Unlock) kills that thread and with it the pdeath signal of any
// child it forked. Do not call Start from such goroutines.
package runtime
