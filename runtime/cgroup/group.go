package cgroup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/go-logr/logr"
	v1 "procstar.dev/procstar/api/v1"

	"golang.org/x/sys/unix"
)

// Group is one proc's cgroup, made by Root.Create. Its methods are safe
// for concurrent use.
type Group struct {
	path        string
	fake        bool
	log         logr.Logger
	controllers []string // enabled in the group: its root's, read-only

	mu sync.Mutex // guards fd and removed
	// fd is the open directory, -1 after Remove.
	fd      int
	removed bool
}

// At is the cgroup at dir, which another manager owns (a systemd unit's),
// for Kill, Signal and Populated only: it holds no fd and Remove must not
// be called on it.
func At(dir string) *Group {
	return &Group{path: dir, log: logr.Discard(), fd: -1}
}

// Path returns the group's absolute directory.
func (g *Group) Path() string { return g.path }

// FD returns the open directory fd for SysProcAttr.CgroupFD. It is valid
// until Remove or Leave, after which FD returns -1.
func (g *Group) FD() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fd
}

// Leave closes the directory fd of a group left in place (processes
// still in it), which Remove would have closed; FD returns -1 after it.
func (g *Group) Leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
}

// Bounds of Kill's fallback loop for kernels without cgroup.kill.
const (
	killRounds    = 100
	killRoundWait = 2 * time.Millisecond
)

// Kill sends SIGKILL to every process in the group and its sub-cgroups by
// writing "1" to cgroup.kill. Without cgroup.kill (kernels before 5.14) it
// freezes the group when it can, sends SIGKILL to the tree as Signal does
// (through pidfds), and repeats, a bounded number of times, until no live
// process is left. A removed group is a no-op.
func (g *Group) Kill() error {
	if g.isRemoved() {
		return nil
	}
	err := writeControl(filepath.Join(g.path, "cgroup.kill"), []byte("1"), false)
	if err == nil {
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("kill cgroup %s: %w", g.path, err)
	}
	if _, serr := os.Stat(g.path); errors.Is(serr, fs.ErrNotExist) {
		return nil // gone already
	}
	return g.killByPids(context.Background())
}

// killByPids is Kill without cgroup.kill.
func (g *Group) killByPids(ctx context.Context) error {
	freeze := filepath.Join(g.path, "cgroup.freeze")
	if writeControl(freeze, []byte("1"), false) == nil {
		// Frozen processes cannot fork; SIGKILL still ends them.
		defer func() {
			if err := writeControl(freeze, []byte("0"), false); err != nil && !errors.Is(err, fs.ErrNotExist) {
				g.log.Error(err, "cannot thaw cgroup after kill")
			}
		}()
	}
	var live []int
	for round := range killRounds {
		pids, err := treePids(g.path)
		if err != nil {
			return fmt.Errorf("kill cgroup %s: %w", g.path, err)
		}
		live = live[:0]
		for _, pid := range pids {
			if !isZombie(pid) { // a zombie is dead already; its parent reaps it
				live = append(live, pid)
			}
		}
		if len(live) == 0 {
			return nil
		}
		// Through pidfds, as Signal does: never a bare pid, which a
		// process outside the group may have taken since the listing.
		if _, err := g.Signal(unix.SIGKILL); err != nil {
			return fmt.Errorf("kill: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(killRoundWait * time.Duration(1+round/10)):
		}
	}
	return fmt.Errorf("kill cgroup %s: %d processes after %d rounds (%v): %w", g.path, len(live), killRounds, live, ErrKillIncomplete)
}

// isZombie reports whether pid has exited and waits to be reaped; such a
// process may still be listed in cgroup.procs but cannot be killed.
func isZombie(pid int) bool {
	data, err := readFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	// The state follows the last ')' (the command may contain one).
	for i := len(data) - 1; i >= 0; i-- {
		if data[i] == ')' {
			return i+2 < len(data) && (data[i+2] == 'Z' || data[i+2] == 'X')
		}
	}
	return false
}

// Signal sends sig to every process in the group and its sub-cgroups and
// returns how many it reached. A process that is gone (ESRCH) is not an
// error; other failures are joined.
//
// It never signals a bare pid, which may have been reused by a process
// elsewhere since cgroup.procs was read: it opens a pidfd for each pid,
// reads cgroup.procs again, and signals through the pidfds whose pid is
// still listed. A pidfd opened before the second read names the process
// that was in the group then; if it has since gone, its signal is ESRCH.
func (g *Group) Signal(sig unix.Signal) (int, error) {
	n := 0
	var errs []error
	err := walkTree(g.path, func(dir string) error {
		pids, err := readPids(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(pids) == 0 {
			return err
		}
		fds := make(map[int]int, len(pids))
		defer func() {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}()
		for _, pid := range pids {
			fd, err := unix.PidfdOpen(pid, 0)
			if err == nil {
				fds[pid] = fd
			} else if err != unix.ESRCH {
				errs = append(errs, fmt.Errorf("pidfd_open %d: %w", pid, err))
			}
		}
		still, err := readPids(filepath.Join(dir, "cgroup.procs"))
		if err != nil {
			return err
		}
		for _, pid := range still {
			fd, ok := fds[pid]
			if !ok {
				continue // came in after the first read: next time
			}
			switch err := unix.PidfdSendSignal(fd, sig, nil, 0); {
			case err == nil:
				n++
			case err == unix.ESRCH:
			default:
				errs = append(errs, fmt.Errorf("signal %d to pid %d: %w", sig, pid, err))
			}
		}
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("signal cgroup %s: %w", g.path, err)
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("signal cgroup %s: %w", g.path, errors.Join(errs...))
	}
	return n, nil
}

// walkTree calls f for dir and every cgroup below it, parents first. A
// sub-cgroup that disappears while walking is skipped, and so is what is
// below a cgroup removed after f ran on it (f's signal may have emptied
// it, and the runtime then removes it).
func walkTree(dir string, f func(dir string) error) error {
	if err := f(dir); err != nil {
		return err
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		err := walkTree(filepath.Join(dir, e.Name()), f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// treePids returns the pids of cgroup.procs of dir and of every cgroup
// below it. A sub-cgroup that disappears while walking is skipped.
func treePids(dir string) ([]int, error) {
	var pids []int
	err := walkTree(dir, func(d string) error {
		p, err := readPids(filepath.Join(d, "cgroup.procs"))
		pids = append(pids, p...)
		return err
	})
	if err != nil {
		return nil, err
	}
	return pids, nil
}

// Populated reports the "populated" key of cgroup.events: whether any
// process is in the group or below it.
func (g *Group) Populated() (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return populated(cgDir{path: g.path, fd: g.fd})
}

// Populated reports whether any process is in the cgroup directory dir or
// below it.
func Populated(dir string) (bool, error) { return populated(cgDir{path: dir, fd: -1}) }

func populated(dir cgDir) (bool, error) {
	data, err := dir.read("cgroup.events")
	if err != nil {
		return false, fmt.Errorf("cgroup %s: %w", dir.path, err)
	}
	return parsePopulated(data)
}

func parsePopulated(data []byte) (bool, error) {
	kv, err := parseFlatKeyed(data)
	if err != nil {
		return false, fmt.Errorf("cgroup.events: %w", err)
	}
	switch kv["populated"] {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, fmt.Errorf("cgroup.events: populated %q: %w", kv["populated"], ErrMalformed)
}

// waitPollInterval is how often WaitEmpty re-reads cgroup.events when the
// file cannot be watched with epoll (a fake file system).
const waitPollInterval = 10 * time.Millisecond

// WaitEmpty returns when no process is left in the group or below it, or
// with ctx's error. It watches cgroup.events with epoll (the kernel
// signals a change with EPOLLPRI) and re-reads it on every change.
func (g *Group) WaitEmpty(ctx context.Context) error { return WaitEmpty(ctx, g.path) }

// WaitEmpty is Group.WaitEmpty for any cgroup directory, such as a
// systemd unit's.
func WaitEmpty(ctx context.Context, dir string) error {
	path := filepath.Join(dir, "cgroup.events")
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("wait for cgroup %s: %w", dir, &fs.PathError{Op: "open", Path: path, Err: err})
	}
	defer unix.Close(fd)
	buf := make([]byte, 256)
	read := func() (bool, error) {
		n, err := unix.Pread(fd, buf, 0)
		for err == unix.EINTR {
			n, err = unix.Pread(fd, buf, 0)
		}
		if err != nil {
			return false, fmt.Errorf("wait for cgroup %s: %w", dir, &fs.PathError{Op: "read", Path: path, Err: err})
		}
		populated, err := parsePopulated(buf[:n])
		if err != nil {
			return false, fmt.Errorf("wait for cgroup %s: %w", dir, err)
		}
		return populated, nil
	}

	ep, err := newEventWaiter(ctx, fd)
	if err != nil {
		return fmt.Errorf("wait for cgroup %s: %w", dir, err)
	}
	defer ep.close()
	for {
		// Reading through the watched fd also re-arms the notification.
		populated, err := read()
		if err != nil {
			return err
		}
		if !populated {
			return nil
		}
		if err := ep.wait(ctx); err != nil {
			return fmt.Errorf("wait for cgroup %s: %w", dir, err)
		}
	}
}

// eventWaiter waits for EPOLLPRI on a kernfs file, or for a context to
// end, whichever is first. When the file cannot be polled (a regular file
// on a fake) it ticks every waitPollInterval instead.
type eventWaiter struct {
	epfd, efd int
	polling   bool
	stop      func() bool
	done      chan struct{} // closed when the AfterFunc has run
}

func newEventWaiter(ctx context.Context, fd int) (*eventWaiter, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("epoll_create1: %w", err)
	}
	w := &eventWaiter{epfd: epfd, efd: -1, done: make(chan struct{})}
	err = unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLPRI, Fd: int32(fd)})
	if err == unix.EPERM {
		w.polling = true // regular files cannot be polled
		return w, nil
	}
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, fmt.Errorf("eventfd: %w", err)
	}
	w.efd = efd
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		w.close()
		return nil, fmt.Errorf("epoll_ctl: %w", err)
	}
	w.stop = context.AfterFunc(ctx, func() {
		defer close(w.done)
		one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
		unix.Write(efd, one)
	})
	return w, nil
}

func (w *eventWaiter) wait(ctx context.Context) error {
	if w.polling {
		t := time.NewTimer(waitPollInterval)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}
	events := make([]unix.EpollEvent, 2)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		_, err := unix.EpollWait(w.epfd, events, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("epoll_wait: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		return nil
	}
}

func (w *eventWaiter) close() {
	if w.stop != nil && !w.stop() {
		<-w.done // the AfterFunc may be writing to efd
	}
	if w.efd >= 0 {
		unix.Close(w.efd)
	}
	unix.Close(w.epfd)
}

// Accounting reads the group's accounting; see ReadAccounting.
func (g *Group) Accounting() (*v1.CgroupAccounting, error) {
	// A group's controllers are its root's subtree_control, known since
	// Create: no need to read cgroup.controllers again.
	g.mu.Lock()
	defer g.mu.Unlock()
	return readAccounting(cgDir{path: g.path, fd: g.fd}, g.controllers)
}

func (g *Group) isRemoved() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.removed
}

// Remove closes the group's fd and removes its directory and any
// sub-cgroups the proc made, deepest first. While processes remain it
// fails with an error wrapping unix.EBUSY and may be called again. A
// second call after success does nothing.
func (g *Group) Remove() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil
	}
	if g.fd >= 0 {
		unix.Close(g.fd)
		g.fd = -1
	}
	var err error
	if g.fake {
		err = os.RemoveAll(g.path)
	} else {
		err = removeTree(g.path)
	}
	if err != nil {
		return fmt.Errorf("remove cgroup: %w", err)
	}
	g.removed = true
	return nil
}

// removeTree rmdirs dir after every cgroup below it, deepest first. A
// directory that is already gone is not an error. It tries the plain
// rmdir first: a proc seldom makes cgroups of its own, and listing the
// directory costs more than the rmdir.
func removeTree(dir string) error {
	err := unix.Rmdir(dir)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
		return &fs.PathError{Op: "rmdir", Path: dir, Err: err}
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := removeTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return rmdir(dir)
}
