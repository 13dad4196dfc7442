package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
	"procstar.dev/procstar/runtime/capture"
	"procstar.dev/procstar/runtime/perf"
	"procstar.dev/procstar/runtime/procfs"
	"procstar.dev/procstar/runtime/trampoline"
)

// fdCapture is one captured fd of a proc.
type fdCapture struct {
	fd  int
	cap capture.Capture
}

// Proc is one spawned (or failed) process. Its methods are safe for
// concurrent use.
type Proc struct {
	// Immutable after Start returns.
	id       string
	spec     *v1.ProcSpec
	pid      int // 0 if never forked
	start    time.Time
	cwd      string
	env      map[string]string // recorded, masked env; nil unless RecordEnv
	fdNames  map[int]bool      // every fd the spec lists
	captures map[int]capture.Capture
	res      *resources     // cgroup or units; nil if the proc never forked
	perf     *perf.Counters // nil unless spec.perfCounters
	// removed is closed once the cgroup is removed (or left to the
	// background to remove when it empties); nil without a cgroup.
	removed chan struct{}
	exited  chan struct{}
	done    chan struct{}
	// rt is the Runtime that started the proc; tok is its pidfd's watch
	// token there (set under rt.mu). Both are zero if it never forked.
	rt  *Runtime
	tok uint64
	// reaping is set by whoever reaps the child, the reaper loop or Wait,
	// so that exactly one does.
	reaping atomic.Bool

	// mu guards everything below. It is held only to copy or set fields and
	// around pidfd_send_signal/kill (non-blocking syscalls), so signals can
	// never reach a pid the reaper has already reaped.
	mu       sync.Mutex
	pidfd    int // -1 once reaped
	errors   []string
	errBuf   []byte // undecoded error-pipe bytes
	errPipe  bool   // an error pipe is still open
	reaped   bool
	exitDone bool // Exited closed
	doneDone bool // Done closed
	released bool
	// holds counts Hold calls not yet undone; a Release while they last
	// is pending (releasing) and frees the captures when the last ends.
	holds     int
	releasing bool
	stop      time.Time
	ws        unix.WaitStatus
	rusage    *v1.Rusage
	stat      *v1.ProcStat // zombie snapshot
	acct      *v1.CgroupAccounting
	perfRes   *v1.PerfCounters
}

func newProc(id string, spec *v1.ProcSpec) *Proc {
	p := &Proc{
		id:       id,
		spec:     spec,
		pidfd:    -1,
		fdNames:  map[int]bool{},
		captures: map[int]capture.Capture{},
		exited:   make(chan struct{}),
		done:     make(chan struct{}),
	}
	return p
}

// ID returns the proc ID.
func (p *Proc) ID() string { return p.id }

// Spec returns the spec the proc was started from. Callers must not modify
// it.
func (p *Proc) Spec() *v1.ProcSpec { return p.spec }

// Pid returns the process ID, or 0 if the process was never forked.
func (p *Proc) Pid() int { return p.pid }

// Started returns when the process was forked: for a batch, each proc's
// own time, after the forks before it. For a proc that never ran it is
// when its start failed.
func (p *Proc) Started() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.start
}

// Exited is closed once the process has been reaped (and a trampoline's
// error pipe read to EOF), or at once if it was never forked.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Done is closed once Exited is and every capture has been drained (or the
// drain gave up at the DrainTimeout). Status is final from then on.
func (p *Proc) Done() <-chan struct{} { return p.done }

func (p *Proc) captureList() []fdCapture {
	out := make([]fdCapture, 0, len(p.captures))
	for fd, c := range p.captures {
		out = append(out, fdCapture{fd: fd, cap: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].fd < out[j].fd })
	return out
}

func (p *Proc) addError(msg string) {
	p.mu.Lock()
	p.errors = append(p.errors, msg)
	p.mu.Unlock()
}

// appendErrBytes decodes error-pipe messages: a u16 little-endian length,
// then that many bytes.
func (p *Proc) appendErrBytes(b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errBuf = append(p.errBuf, b...)
	for len(p.errBuf) >= 2 {
		n := int(binary.LittleEndian.Uint16(p.errBuf))
		if len(p.errBuf) < 2+n {
			break
		}
		p.errors = append(p.errors, string(p.errBuf[2:2+n]))
		p.errBuf = p.errBuf[2+n:]
	}
}

func (p *Proc) errPipeDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errBuf) > 0 {
		p.errors = append(p.errors, "error pipe: truncated message")
		p.errBuf = nil
	}
	p.errPipe = false
}

// setReaped records the reap and closes the pidfd under mu, so Signal never
// uses a closed (or reused) pidfd.
func (p *Proc) setReaped(stop time.Time, ws unix.WaitStatus, ru *unix.Rusage, stat *v1.ProcStat, waitErr error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reaped = true
	p.stop = stop
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
	p.stat = stat
	if waitErr != nil {
		p.errors = append(p.errors, "wait failed: "+osError(waitErr))
		return
	}
	p.ws = ws
	p.rusage = convertRusage(ru)
}

// detach closes the pidfd of a proc whose Runtime is closing: the proc will
// never be reaped by it, and Signal returns ErrClosed from then on.
func (p *Proc) detach() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
}

// markExited closes Exited if the proc is reaped and its error pipe is
// done; it reports whether it did (so the caller drains exactly once).
func (p *Proc) markExited() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exitDone || !p.reaped || p.errPipe {
		return false
	}
	p.exitDone = true
	close(p.exited)
	return true
}

func (p *Proc) markDone() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.doneDone {
		p.doneDone = true
		close(p.done)
	}
}

// failNow ends a proc that never ran: not forked, or forked by ForkExec,
// whose child failed to exec and was reaped inside it. Its status is that
// of procstar's forked child that did not exec, exit code 63
// (trampoline.ExitCode, which the trampoline's child exits with for real)
// with zero usage, whichever start path found the failure. Exited and
// Done close at once.
func (p *Proc) failNow() {
	now := time.Now()
	p.mu.Lock()
	if p.start.IsZero() {
		p.start = now
	}
	p.stop = now
	p.reaped = true
	p.ws = unix.WaitStatus(trampoline.ExitCode << 8)
	p.rusage = &v1.Rusage{}
	p.mu.Unlock()
	p.markExited()
	p.markDone()
}

func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func convertRusage(ru *unix.Rusage) *v1.Rusage {
	tv := func(t unix.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)*1e-6 }
	return &v1.Rusage{
		Utime:   tv(ru.Utime),
		Stime:   tv(ru.Stime),
		Maxrss:  ru.Maxrss * 1024,
		Minflt:  ru.Minflt,
		Majflt:  ru.Majflt,
		Nswap:   ru.Nswap,
		Inblock: ru.Inblock,
		Oublock: ru.Oublock,
		Nvcsw:   ru.Nvcsw,
		Nivcsw:  ru.Nivcsw,
	}
}

// Resources says how the proc's resources are controlled; nil if it was
// never forked.
func (p *Proc) Resources() *v1.ResourceStatus {
	if p.res == nil {
		return nil
	}
	rs := p.res.status
	return &rs
}

// Status returns a snapshot of what has been observed. While the process
// runs, ProcStat and ProcStatm are read fresh from /proc; once reaped,
// ProcStat is the zombie's snapshot and ProcStatm is nil.
//
// The end of a run, its exit (stop time, wait status, rusage) and its
// errors, is reported once Exited has closed, not at the reap or as the
// errors come: a status that shows it never comes before Exited, which
// the controller goes by. So a Delete that refuses a running proc accepts
// one whose result says terminated or error, and a trampoline child's
// errors, read up to its error pipe's EOF, all come with its exit.
func (p *Proc) Status() v1.ProcStatus {
	p.mu.Lock()
	reaped, exited := p.reaped, p.exitDone
	st := v1.ProcStatus{Pid: p.pid, Cwd: p.cwd}
	if exited {
		st.Errors = append([]string(nil), p.errors...)
	}
	if p.env != nil {
		st.Env = make(map[string]string, len(p.env))
		for k, v := range p.env {
			st.Env[k] = v
		}
	}
	if !p.start.IsZero() {
		start := p.start.UTC()
		st.Times = &v1.ProcTimes{Start: &start}
		if exited {
			stop := p.stop.UTC()
			st.Times.Stop = &stop
			st.Times.Elapsed = p.stop.Sub(p.start).Seconds()
		} else {
			st.Times.Elapsed = time.Since(p.start).Seconds()
		}
	}
	if exited && p.rusage != nil {
		ws := p.ws
		raw := int(ws)
		st.WaitStatus = &raw
		switch {
		case ws.Exited():
			code := ws.ExitStatus()
			st.ExitCode = &code
		case ws.Signaled():
			st.Signal = signals.Name(int(ws.Signal()))
			st.CoreDump = ws.CoreDump()
		}
		ru := *p.rusage
		st.Rusage = &ru
	}
	if reaped && p.stat != nil {
		s := *p.stat
		st.ProcStat = &s
	}
	st.CgroupAccounting = p.acct.DeepCopy()
	st.PerfCounters = p.perfRes.DeepCopy()
	p.mu.Unlock()
	st.Resources = p.Resources()

	if p.pid != 0 && !reaped {
		stat, errS := procfs.ReadStat(p.pid)
		statm, errM := procfs.ReadStatm(p.pid)
		// Use the reads only if the pid was still ours throughout: it
		// cannot be reused before the reaper has reaped it.
		p.mu.Lock()
		stillOurs := !p.reaped
		if !stillOurs && p.stat != nil {
			s := *p.stat
			st.ProcStat = &s
		}
		p.mu.Unlock()
		if stillOurs {
			if errS == nil {
				st.ProcStat = stat
			}
			if errM == nil {
				st.ProcStatm = statm
			}
		}
	}
	if len(p.captures) > 0 { // capture Status works after Close too
		st.Fds = make(map[string]v1.FdStatus, len(p.captures))
		for fd, c := range p.captures {
			st.Fds[string(v1.FdNameOf(fd))] = c.Status()
		}
	}
	return st
}

// Signal sends sig (1..64) through the pidfd. Signal 0 sends nothing and
// only checks that the process is there, as kill(2)'s. After the reap it
// returns ErrNotRunning.
func (p *Proc) Signal(sig int) error {
	if !signals.Valid(sig) && sig != 0 {
		return fmt.Errorf("%w: %d", ErrBadSignal, sig)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reaped {
		return ErrNotRunning
	}
	if p.pidfd < 0 {
		return ErrClosed
	}
	err := unix.PidfdSendSignal(p.pidfd, unix.Signal(sig), nil, 0)
	if errors.Is(err, unix.ESRCH) {
		return ErrNotRunning
	}
	if err != nil {
		return fmt.Errorf("pidfd_send_signal: %w", err)
	}
	return nil
}

// SignalGroup sends sig to the proc's whole tree: every process of its
// cgroup or systemd scope, or, without either (or with spec.killTree
// false), its process group (the child is a session and group leader),
// which grandchildren that left the group do not belong to. It works only
// while the main process has not been reaped, so the group ID cannot have
// been reused; after that it returns ErrNotRunning (and leftovers are
// killed at exit unless killTree is false).
func (p *Proc) SignalGroup(sig int) error {
	if !signals.Valid(sig) {
		return fmt.Errorf("%w: %d", ErrBadSignal, sig)
	}
	p.mu.Lock()
	if p.reaped || p.pid <= 0 {
		p.mu.Unlock()
		return ErrNotRunning
	}
	if p.treeKill() {
		// The cgroup or unit is the proc's alone until finalized: no
		// reuse race, so no lock across a possibly slow D-Bus call.
		p.mu.Unlock()
		if err := p.signalTree(sig); err != nil {
			return fmt.Errorf("signalling the proc's tree: %w", err)
		}
		return nil
	}
	defer p.mu.Unlock()
	err := unix.Kill(-p.pid, unix.Signal(sig))
	if errors.Is(err, unix.ESRCH) {
		return ErrNotRunning
	}
	if err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	return nil
}

// capture returns the capture of fd, or a sentinel error.
func (p *Proc) capture(fd int) (capture.Capture, error) {
	if !p.fdNames[fd] {
		return nil, noFd(fd)
	}
	c, ok := p.captures[fd]
	if !ok {
		return nil, ErrNotCapture
	}
	p.mu.Lock()
	released := p.released
	p.mu.Unlock()
	if released {
		return nil, ErrReleased
	}
	return c, nil
}

// Output returns the whole retained output of a captured fd.
func (p *Proc) Output(fd int) ([]byte, error) {
	c, err := p.capture(fd)
	if err != nil {
		return nil, err
	}
	return c.Bytes()
}

// OutputLen returns how many bytes the child has written to a captured fd.
func (p *Proc) OutputLen(fd int) (int64, error) {
	c, err := p.capture(fd)
	if err != nil {
		return 0, err
	}
	return c.Len(), nil
}

// maxRead bounds one ReadOutput call's allocation.
const maxRead = 1 << 30

// ReadOutput returns bytes [start, stop) of a captured fd; a nil stop means
// the current end. stop is clamped to the length and start beyond it gives
// an empty result; a negative start or stop, or a range over 1 GiB, is
// ErrBadRange. Bytes a capture limit dropped give capture.ErrDropped.
func (p *Proc) ReadOutput(fd int, start int64, stop *int64) ([]byte, error) {
	c, err := p.capture(fd)
	if err != nil {
		return nil, err
	}
	n := c.Len()
	end := n
	if stop != nil {
		if *stop < 0 {
			return nil, fmt.Errorf("%w: stop %d", ErrBadRange, *stop)
		}
		end = min(*stop, n)
	}
	if start < 0 {
		return nil, fmt.Errorf("%w: start %d", ErrBadRange, start)
	}
	if start >= end {
		return []byte{}, nil
	}
	if end-start > maxRead {
		return nil, fmt.Errorf("%w: %d bytes is more than %d", ErrBadRange, end-start, maxRead)
	}
	buf := make([]byte, end-start)
	got := 0
	for got < len(buf) {
		m, err := c.ReadAt(buf[got:], start+int64(got))
		got += m
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
	}
	return buf[:got], nil
}

// ReadOutputAt reads captured output of fd at offset off into p, like
// io.ReaderAt: io.EOF at the end of what has been written so far. It lets
// a server stream large outputs through one reused buffer.
func (p *Proc) ReadOutputAt(fd int, buf []byte, off int64) (int, error) {
	c, err := p.capture(fd)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, fmt.Errorf("%w: offset %d", ErrBadRange, off)
	}
	return c.ReadAt(buf, off)
}

// finishRemove runs the cgroup removal that finalizeResources returned and
// tells Release it is over.
func (p *Proc) finishRemove(remove func()) {
	if remove != nil {
		remove()
	}
	if p.removed != nil {
		close(p.removed)
	}
}

// OutputFile opens the file a file-backed capture of fd is kept in, for
// reading with an offset of its own (so the caller may sendfile(2) from
// it). It returns ErrNotFile for a memory capture. The caller closes it.
func (p *Proc) OutputFile(fd int) (*os.File, error) {
	c, err := p.capture(fd)
	if err != nil {
		return nil, err
	}
	r, ok := c.(interface{ Reopen() (*os.File, error) })
	if !ok {
		return nil, ErrNotFile
	}
	return r.Reopen()
}

// Release frees the proc's captures. It is idempotent; output is
// unreadable afterwards (once every Hold has ended). For a proc that is
// done, it first waits for its cgroup to be removed, so nothing of it is
// left after a delete.
func (p *Proc) Release() error {
	if p.removed != nil && isDone(p.done) {
		<-p.removed
	}
	p.mu.Lock()
	if p.released || p.releasing {
		p.mu.Unlock()
		return nil
	}
	if p.holds > 0 {
		p.releasing = true
		p.mu.Unlock()
		return nil
	}
	p.released = true
	p.mu.Unlock()
	return p.closeCaptures()
}

// Hold keeps the captures readable past a Release until unhold is called
// (once; more calls do nothing), for a reader that must see all of this
// run's output, such as a followed log. ok is false when the captures
// have been freed already.
func (p *Proc) Hold() (unhold func(), ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.released {
		return nil, false
	}
	p.holds++
	return sync.OnceFunc(func() {
		p.mu.Lock()
		p.holds--
		free := p.holds == 0 && p.releasing
		if free {
			p.released, p.releasing = true, false
		}
		p.mu.Unlock()
		if free {
			if err := p.closeCaptures(); err != nil && p.rt != nil {
				p.rt.log.Error(err, "releasing captures", "proc", p.id)
			}
		}
	}), true
}

// closeCaptures frees the captures, once released is set.
func (p *Proc) closeCaptures() error {
	var errs []error
	for _, c := range p.captureList() {
		if err := c.cap.Close(); err != nil {
			errs = append(errs, fmt.Errorf("fd %s: %w", strconv.Itoa(c.fd), err))
		}
	}
	return errors.Join(errs...)
}
