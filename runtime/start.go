package runtime

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/signals"
	"procstar.dev/procstar/runtime/capture"
	"procstar.dev/procstar/runtime/trampoline"
)

// secretEnv are removed from every child's environment before vars apply.
var secretEnv = []string{"PROCSTAR_AGENT_CERT", "PROCSTAR_AGENT_KEY", "PROCSTAR_AGENT_TOKEN"}

// defaultPath is the search path when the child has no PATH (glibc's
// confstr(_CS_PATH)).
const defaultPath = "/bin:/usr/bin"

// closedFd marks a closed entry of a ProcAttr.Files table.
const closedFd = ^uintptr(0)

// testHookHeld, when set (tests only), runs with the pid of a child held
// before it runs its program, before the agent sets it up and lets it go.
var testHookHeld func(pid int)

// batchPipe is one pipe between two procs of a batch.
type batchPipe struct{ r, w int }

// Start checks the whole batch (see CheckBatch), then starts the procs one
// after another in sorted ID order. A check failure starts nothing and is
// returned. A failure of one proc (restricted exe, fd set-up, chdir, exec)
// does not stop the others: that proc's Status carries the errors and it
// has no pid, or, through the trampoline, exit code 63. The result is in
// the order of reqs. ctx is checked once, before anything starts.
func (r *Runtime) Start(ctx context.Context, reqs []Request) ([]*Proc, error) {
	if err := CheckBatch(reqs); err != nil {
		return nil, err
	}
	if err := r.checkResources(reqs); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r.mu.Lock()
	closed := r.closed
	r.mu.Unlock()
	if closed {
		return nil, ErrClosed
	}
	pipes := map[pipeKey]*batchPipe{}
	defer func() {
		for _, p := range pipes {
			unix.Close(p.r)
			unix.Close(p.w)
		}
	}()
	for _, req := range reqs {
		for _, f := range req.Spec.Fds {
			if f.PipeWrite == nil {
				continue
			}
			n, _ := f.Fd.Number()
			var fds [2]int
			if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
				return nil, fmt.Errorf("creating pipe for %s fd %d: %w", req.ID, n, err)
			}
			pipes[pipeKey{req.ID, n}] = &batchPipe{r: fds[0], w: fds[1]}
		}
	}
	agentCwd, err := unix.Getwd()
	if err != nil {
		return nil, fmt.Errorf("getting the agent's cwd: %w", err)
	}
	byID := map[string]*Proc{}
	for _, req := range sortedReqs(reqs) {
		byID[req.ID] = r.startOne(ctx, req, pipes, agentCwd)
	}
	out := make([]*Proc, len(reqs))
	for i, req := range reqs {
		out[i] = byID[req.ID]
	}
	return out, nil
}

// openFlags maps an OpenFlag to open(2) flags for child fd n.
func openFlags(f v1.OpenFlag, n int) (int, error) {
	switch f {
	case "", v1.OpenDefault:
		switch n {
		case 0:
			return unix.O_RDONLY, nil
		case 1, 2:
			return unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, nil
		}
		return unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC, nil
	case v1.OpenRead:
		return unix.O_RDONLY, nil
	case v1.OpenWrite:
		return unix.O_WRONLY | unix.O_CREAT | unix.O_TRUNC, nil
	case v1.OpenCreate:
		return unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL, nil
	case v1.OpenReplace:
		return unix.O_WRONLY | unix.O_TRUNC, nil
	case v1.OpenAppend:
		return unix.O_WRONLY | unix.O_APPEND, nil
	case v1.OpenCreateAppend:
		return unix.O_WRONLY | unix.O_CREAT | unix.O_APPEND, nil
	case v1.OpenReadWrite:
		return unix.O_RDWR | unix.O_CREAT | unix.O_TRUNC, nil
	}
	return 0, fmt.Errorf("unknown open flag: %q", string(f))
}

// fdOpen reports whether fd is open in the agent.
func fdOpen(fd int) bool {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	return err == nil
}

// agentFd is the agent fd a child fd number n refers to when the spec has
// not (yet) set it: the agent's own 0-2, or an fd it inherited at start-up;
// -1 for anything else, so internal fds never reach a child.
func (r *Runtime) agentFd(n int) int {
	if (n <= 2 || r.startupFds[n]) && fdOpen(n) {
		return n
	}
	return -1
}

// fdPlan is the child's fd table as the spec builds it, in the parent.
type fdPlan struct {
	table   map[int]int // child fd -> parent fd, -1 closed, inChild
	opened  []int       // parent fds to close after fork
	errors  []string
	maxFd   int
	capture map[int]capture.Capture
	keep    []*os.File // files whose raw fds are in table
	// childOps are the entries the trampoline sets up in the child, in
	// spec order: the opens that must wait for a FIFO's other end, and
	// what refers to their fds.
	childOps []trampoline.FdOp
}

// inChild marks a table entry that childOps set up. It is closed until
// then: the trampoline finds the fd free.
const inChild = -2

func (pl *fdPlan) close() {
	for _, fd := range pl.opened {
		unix.Close(fd)
	}
	pl.opened = nil
}

func (r *Runtime) buildPlan(id string, spec *v1.ProcSpec, cwd string, pipes map[pipeKey]*batchPipe) *fdPlan {
	pl := &fdPlan{table: map[int]int{}, capture: map[int]capture.Capture{}, maxFd: 2}
	lookup := func(n int) int {
		if v, ok := pl.table[n]; ok {
			return v
		}
		return r.agentFd(n)
	}
	fail := func(n int, err error) {
		pl.errors = append(pl.errors, fmt.Sprintf("failed to set up fd %d: %s", n, osError(err)))
	}
	for i := range spec.Fds {
		f := &spec.Fds[i]
		n, err := f.Fd.Number()
		if err != nil { // CheckBatch rejects this; never trust the input
			pl.errors = append(pl.errors, err.Error())
			continue
		}
		pl.maxFd = max(pl.maxFd, n)
		switch {
		case f.Inherit != nil:
			pl.table[n] = r.agentFd(n)
		case f.Close != nil:
			if lookup(n) < 0 {
				fail(n, unix.EBADF)
			}
			pl.table[n] = -1
		case f.Null != nil:
			fl, err := openFlags(f.Null.Flags, n)
			if err != nil {
				fail(n, err)
				continue
			}
			fd, err := openNoBlock("/dev/null", fl, 0)
			if err != nil {
				fail(n, err)
				continue
			}
			pl.opened = append(pl.opened, fd)
			pl.table[n] = fd
		case f.File != nil:
			fl, err := openFlags(f.File.Flags, n)
			if err != nil {
				fail(n, err)
				continue
			}
			mode := uint32(0o666)
			if f.File.Mode != nil {
				mode = *f.File.Mode
			}
			path := f.File.Path
			if !filepath.IsAbs(path) {
				path = filepath.Join(cwd, path)
			}
			mapped, own, err := childPath(path, lookup)
			var fd int
			if err == nil {
				// The agent opens the file, under its own umask: the
				// spec's applies too, as it would to an open in the
				// child.
				agentMode := mode
				if spec.Umask != nil {
					if m, err := parseUmask(*spec.Umask); err == nil {
						agentMode &^= uint32(m)
					}
				}
				fd, err = openForChild(mapped, !own, fl, agentMode)
			}
			if err == errOpenInChild {
				// The trampoline's open applies the umask itself.
				pl.childOps = append(pl.childOps, trampoline.FdOp{Fd: n, Path: path, Flags: fl, Mode: mode})
				pl.table[n] = inChild
				continue
			}
			if err != nil {
				fail(n, err)
				continue
			}
			pl.opened = append(pl.opened, fd)
			pl.table[n] = fd
		case f.Dup != nil:
			src := lookup(f.Dup.Fd)
			if src == inChild {
				pl.childOps = append(pl.childOps, trampoline.FdOp{Fd: n, Src: f.Dup.Fd})
				pl.table[n] = inChild
				continue
			}
			if src < 0 && f.Dup.Fd != n {
				fail(n, unix.EBADF)
				continue
			}
			pl.table[n] = src
		case f.Capture != nil:
			cs := *f.Capture // defaults, in case the caller skipped SetDefaults
			if cs.Mode == "" {
				cs.Mode = v1.CaptureTempfile
			}
			if cs.Encoding == "" {
				cs.Encoding = v1.EncodingBase64
			}
			if cs.Mode == v1.CaptureFile && cs.Path != "" && !filepath.IsAbs(cs.Path) {
				cs.Path = filepath.Join(cwd, cs.Path) // as for a file fd
			}
			c, err := capture.New(&cs, capture.Options{TempDir: r.opts.TempDir})
			if err != nil {
				fail(n, err)
				continue
			}
			cf := c.ChildFile()
			if cf == nil {
				c.Close()
				fail(n, fmt.Errorf("capture has no child file"))
				continue
			}
			pl.capture[n] = c
			pl.keep = append(pl.keep, cf)
			pl.table[n] = int(cf.Fd())
		case f.PipeWrite != nil:
			p := pipes[pipeKey{id, n}]
			if p == nil {
				fail(n, fmt.Errorf("no pipe"))
				continue
			}
			pl.table[n] = p.w
		case f.PipeRead != nil:
			src, err := f.PipeRead.Fd.Number()
			p := pipes[pipeKey{f.PipeRead.ProcID, src}]
			if err != nil || p == nil {
				fail(n, fmt.Errorf("no pipe"))
				continue
			}
			pl.table[n] = p.r
		default:
			fail(n, fmt.Errorf("no fd variant"))
		}
	}
	return pl
}

// childPath maps a path that names "this process" to what it names in the
// child, which procstar opens it in: the agent opens file fds itself, where
// /dev/stdout, /dev/fd/N and /proc/self/fd/N would name the agent's own
// fds. Such a path becomes /proc/self/fd/M of the agent's fd M that the
// child gets as N so far (lookup), which opens the same file anew, as the
// child would (own is then true); an fd the child does not have is EBADF,
// and one the trampoline will open is errOpenInChild. Other paths under
// /proc/self name the agent and are refused.
func childPath(path string, lookup func(int) int) (mapped string, own bool, err error) {
	path = filepath.Clean(path)
	n := -1
	switch path {
	case "/dev/stdin":
		n = 0
	case "/dev/stdout":
		n = 1
	case "/dev/stderr":
		n = 2
	default:
		for _, dir := range []string{"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/"} {
			if rest, ok := strings.CutPrefix(path, dir); ok {
				v, err := strconv.Atoi(rest)
				if err != nil || v < 0 {
					return "", false, unix.ENOENT
				}
				n = v
			}
		}
		if n < 0 {
			if path == "/proc/self" || strings.HasPrefix(path, "/proc/self/") || path == "/proc/thread-self" || strings.HasPrefix(path, "/proc/thread-self/") {
				return "", false, fmt.Errorf("%s would name the agent, not the proc", path)
			}
			return path, false, nil
		}
	}
	switch fd := lookup(n); {
	case fd == inChild:
		return "", true, errOpenInChild
	case fd < 0:
		return "", true, unix.EBADF
	default:
		return "/proc/self/fd/" + strconv.Itoa(fd), true, nil
	}
}

// errOpenInChild says that a file fd must be opened by the child, through
// the trampoline, rather than by the agent.
var errOpenInChild = errors.New("opened in the child")

// openForChild opens path for a child's file fd in the agent, which
// procstar opens in the child, and must then behave the same. It does for
// every file but a FIFO whose other end is not open yet: the child's
// open(2) would wait for it, which must not block the agent. For such a
// FIFO it returns errOpenInChild. A write-only open tells, failing with
// ENXIO; a read-only one would succeed and then read EOF before a writer
// came, so a FIFO opened read-only always goes to the child (whose open
// returns at once if a writer is there). O_RDWR never waits. named is
// false for a path that names one of the child's own fds (see childPath):
// the pipe that is behind it is the agent's, which has its other end, or
// never will.
func openForChild(path string, named bool, flags int, mode uint32) (int, error) {
	if named && flags&unix.O_ACCMODE == unix.O_RDONLY && isFIFO(path) {
		return -1, errOpenInChild
	}
	fd, err := openNoBlock(path, flags, mode)
	if named && err == unix.ENXIO && isFIFO(path) {
		return -1, errOpenInChild
	}
	return fd, err
}

// isFIFO reports whether path names a FIFO, following symlinks.
func isFIFO(path string) bool {
	var st unix.Stat_t
	return unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFIFO
}

// openNoBlock opens path O_CLOEXEC|O_NONBLOCK (so a FIFO cannot block the
// agent), then clears O_NONBLOCK for the child.
func openNoBlock(path string, flags int, mode uint32) (int, error) {
	var fd int
	var err error
	for {
		fd, err = unix.Open(path, flags|unix.O_CLOEXEC|unix.O_NONBLOCK, mode)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return -1, err
	}
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	if err == nil {
		_, err = unix.FcntlInt(uintptr(fd), unix.F_SETFL, fl&^unix.O_NONBLOCK)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// buildEnv computes the child's environment (procstar §2.3), sorted by
// name.
func (r *Runtime) buildEnv(spec *v1.ProcSpec) []string {
	in := spec.Env.Inherit
	all := in == nil || (in.Names == nil && in.All)
	if all && len(spec.Env.Vars) == 0 && r.defaultEnv != nil {
		return r.defaultEnv // shared and never modified
	}
	env := map[string]string{}
	var names map[string]bool
	if in != nil && in.Names != nil {
		names = make(map[string]bool, len(in.Names))
		for _, n := range in.Names {
			names[n] = true
		}
	}
	if all || names != nil {
		for _, kv := range r.environ {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				continue
			}
			if all || names[k] {
				env[k] = v
			}
		}
	}
	for _, k := range secretEnv {
		delete(env, k)
	}
	for k, v := range spec.Env.Vars {
		if v == nil {
			delete(env, k)
		} else {
			env[k] = *v
		}
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// secretName reports whether an env var name looks secret.
func secretName(k string) bool {
	u := strings.ToUpper(k)
	for _, s := range []string{"TOKEN", "SECRET", "PASSWORD", "KEY"} {
		if strings.Contains(u, s) {
			return true
		}
	}
	return false
}

func recordEnv(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if secretName(k) {
			v = "***"
		}
		m[k] = v
	}
	return m
}

// lookPath finds a slash-less exe in the child's PATH, relative entries
// against the child's cwd, as execvp would.
func lookPath(exe string, env []string, cwd string) (string, bool) {
	path := defaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		cand := filepath.Join(dir, exe)
		if !filepath.IsAbs(cand) {
			cand = filepath.Join(cwd, cand)
		}
		var st unix.Stat_t
		if unix.Stat(cand, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		if unix.Access(cand, unix.X_OK) == nil {
			return cand, true
		}
	}
	return "", false
}

// checkDir reports why the child could not chdir to dir, or nil.
func checkDir(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	return unix.Access(dir, unix.X_OK)
}

// startOne spawns one proc. It never returns nil and never panics on a
// spec that passed CheckBatch.
func (r *Runtime) startOne(ctx context.Context, req Request, pipes map[pipeKey]*batchPipe, agentCwd string) *Proc {
	spec := req.Spec
	p := newProc(req.ID, spec)
	for _, f := range spec.Fds {
		if n, err := f.Fd.Number(); err == nil {
			p.fdNames[n] = true
		}
	}
	log := r.log.WithValues("proc", req.ID)
	fail := func(msgs ...string) *Proc {
		p.errors = append(p.errors, msgs...)
		log.V(1).Info("proc not started", "errors", p.errors)
		p.failNow()
		return p
	}

	cwd := agentCwd
	if spec.Cwd != "" {
		cwd = spec.Cwd
		if !filepath.IsAbs(cwd) {
			cwd = filepath.Join(agentCwd, cwd)
		}
	}
	p.cwd = cwd
	env := r.buildEnv(spec)
	if spec.RecordEnv {
		p.env = recordEnv(env)
	}
	exe := spec.Exe
	if exe == "" && len(spec.Argv) > 0 {
		exe = spec.Argv[0]
	}
	if exe == "" {
		return fail("execve failed: : " + osError(unix.ENOENT))
	}
	if spec.PathSearch && !strings.Contains(exe, "/") {
		found, ok := lookPath(exe, env, cwd)
		if !ok {
			if r.opts.RestrictExe != "" && exe != r.opts.RestrictExe {
				return fail("restricted executable: " + r.opts.RestrictExe)
			}
			return fail("execve failed: " + exe + ": " + osError(unix.ENOENT))
		}
		exe = found
	}
	if r.opts.RestrictExe != "" && exe != r.opts.RestrictExe {
		return fail("restricted executable: " + r.opts.RestrictExe)
	}

	if spec.Cwd != "" {
		if err := checkDir(cwd); err != nil {
			return fail(fmt.Sprintf("chdir failed: %s: %s", spec.Cwd, osError(err)))
		}
	}

	pl := r.buildPlan(req.ID, spec, cwd, pipes)
	defer goruntime.KeepAlive(pl.keep)
	// closeAll gives up the plan for a proc that will not start: its fds
	// are closed, and its captures stay, empty and complete, as
	// procstar's are for a child that did not exec.
	closeAll := func() {
		pl.close()
		p.captures = pl.capture
		for _, c := range pl.capture {
			c.Started() // no writer is left: EOF at once
			c.Drain(time.Now().Add(time.Second))
		}
	}
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) == nil && uint64(pl.maxFd) >= lim.Cur {
		pl.errors = append(pl.errors, fmt.Sprintf("failed to set up fd %d: %s", pl.maxFd, osError(unix.EBADF)))
	}
	if len(pl.errors) > 0 {
		closeAll()
		return fail(pl.errors...)
	}
	p.captures = pl.capture

	closeOther := spec.CloseOtherFds == nil || *spec.CloseOtherFds
	files := make([]uintptr, pl.maxFd+1)
	for i := range files {
		files[i] = closedFd
	}
	for n := 0; n <= 2; n++ {
		if fd := r.agentFd(n); fd >= 0 {
			files[n] = uintptr(fd)
		}
	}
	// passOn are the start-up fds above the table, which the child
	// inherits through the fork (see forkExec) rather than as entries.
	var passOn []int
	if !closeOther {
		for fd := range r.startupFds {
			switch {
			case !fdOpen(fd):
			case fd < len(files):
				files[fd] = uintptr(fd)
			default:
				passOn = append(passOn, fd)
			}
		}
	}
	for n, fd := range pl.table {
		if fd < 0 {
			files[n] = closedFd
		} else {
			files[n] = uintptr(fd)
		}
	}

	attr := &syscall.ProcAttr{
		Env:   env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	}
	if spec.Cwd != "" {
		attr.Dir = cwd // else the child keeps the agent's cwd: no chdir
	}
	pidfd := -1
	attr.Sys.PidFD = &pidfd
	if spec.PdeathSignal != nil {
		if sig, err := signals.Parse(string(*spec.PdeathSignal)); err == nil {
			attr.Sys.Pdeathsig = syscall.Signal(sig)
		}
	}

	res, err := r.setupResources(req.ID, spec)
	if err != nil {
		closeAll()
		return fail(err.Error())
	}
	releaseRes := func() {
		if res.group != nil {
			if err := res.group.Remove(); err != nil {
				log.Error(err, "removing the cgroup of a proc that did not start")
			}
		}
	}
	if res.group != nil {
		attr.Sys.UseCgroupFD = true
		attr.Sys.CgroupFD = res.group.FD()
	}
	hold := res.needsHold(spec)
	needTrampoline := r.trampoline || r.opts.ForceTrampoline || spec.Umask != nil || len(pl.childOps) > 0
	// A hold costs microseconds with ptrace, milliseconds through the
	// trampoline: use ptrace where it works.
	trace := hold && !needTrampoline && r.canHoldByTrace()
	if trace {
		// ptrace belongs to the thread that forked: it must also detach.
		goruntime.LockOSThread()
		defer goruntime.UnlockOSThread()
		attr.Sys.Ptrace = true
	}

	argv0, argv := exe, spec.Argv
	errR, errW := -1, -1
	holdW := -1
	if needTrampoline || (hold && !trace) {
		umask := -1
		if spec.Umask != nil {
			m, err := parseUmask(*spec.Umask)
			if err != nil {
				closeAll()
				releaseRes()
				return fail(err.Error())
			}
			umask = m
		}
		var ep [2]int
		if err := unix.Pipe2(ep[:], unix.O_CLOEXEC); err != nil {
			closeAll()
			releaseRes()
			return fail("error pipe: " + osError(err))
		}
		errR, errW = ep[0], ep[1]
		var closeStd []int
		for n := 0; n <= 2; n++ {
			if files[n] == closedFd {
				closeStd = append(closeStd, n)
			}
		}
		// The trampoline's own fds go above every fd the child gets, so
		// the start-up fds passed on become entries here.
		for _, fd := range passOn {
			for len(files) <= fd {
				files = append(files, closedFd)
			}
			files[fd] = uintptr(fd)
		}
		passOn = nil
		errFd := len(files)
		attr.Files = append(files, uintptr(errW))
		holdFd := -1
		if hold {
			var hp [2]int
			if err := unix.Pipe2(hp[:], unix.O_CLOEXEC); err != nil {
				unix.Close(errR)
				unix.Close(errW)
				closeAll()
				releaseRes()
				return fail("hold pipe: " + osError(err))
			}
			defer unix.Close(hp[0])
			holdW = hp[1]
			holdFd = len(attr.Files)
			attr.Files = append(attr.Files, uintptr(hp[0]))
		}
		argv = trampoline.Argv(errFd, umask, closeStd, holdFd, pl.childOps, exe, spec.Argv)
		argv0 = "/proc/self/exe"
	}

	pid, err := forkExec(argv0, argv, attr, passOn)
	p.start = time.Now()
	for _, c := range pl.capture {
		c.Started()
	}
	pl.close()
	if errW >= 0 {
		unix.Close(errW)
	}
	if err != nil {
		if errR >= 0 {
			unix.Close(errR)
		}
		if holdW >= 0 {
			unix.Close(holdW)
		}
		releaseRes()
		if spec.Cwd != "" && checkDir(cwd) != nil {
			return fail(fmt.Sprintf("chdir failed: %s: %s", spec.Cwd, osError(checkDir(cwd))))
		}
		return fail("execve failed: " + exe + ": " + osError(err))
	}
	p.pid = pid
	p.res = res
	if testHookHeld != nil && (trace || holdW >= 0) {
		testHookHeld(pid)
	}
	if trace {
		if ws, ru, exited := r.holdByTrace(ctx, p, res, pidfd); exited {
			// Killed before its exec stop, and reaped here.
			p.pidfd = pidfd
			r.endReapedHere(p, ws, ru, nil)
			return p
		}
	}
	if holdW >= 0 {
		// The child waits before exec. If set-up fails, closing the pipe
		// makes it exit with 63 instead: it never runs half set up.
		if err := r.afterFork(ctx, p, res); err != nil {
			p.addError(err.Error())
			log.Error(err, "setting up a held child; it exits without exec")
		} else if _, err := unix.Write(holdW, []byte{1}); err != nil {
			p.addError("releasing the child: " + osError(err))
		}
		unix.Close(holdW)
	}
	if !res.noFinalize() {
		p.removed = make(chan struct{})
	}
	if pidfd < 0 {
		// Cannot happen on Linux >= 5.3; never leave an untracked child.
		_ = unix.Kill(pid, unix.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		if errR >= 0 {
			unix.Close(errR)
		}
		p.pid = 0
		p.finishRemove(r.finalizeResources(p))
		return fail("no pidfd for child")
	}
	p.pidfd = pidfd
	if errR >= 0 {
		p.errPipe = true
		if err := unix.SetNonblock(errR, true); err != nil {
			log.Error(err, "setting error pipe non-blocking")
		}
		if err := r.register(watchErrPipe, errR, p); err != nil {
			unix.Close(errR)
			p.errPipe = false
			p.errors = append(p.errors, "error pipe: "+err.Error())
		}
	}
	if err := r.register(watchPidfd, pidfd, p); err != nil {
		// The loop will never see this child: kill and reap it here.
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
		var ws unix.WaitStatus
		var ru unix.Rusage
		_, werr := unix.Wait4(pid, &ws, 0, &ru)
		p.addError("cannot watch child: " + err.Error())
		p.mu.Lock()
		p.errPipe = false
		p.mu.Unlock()
		r.endReapedHere(p, ws, &ru, werr)
		return p
	}
	log.V(1).Info("started", "pid", pid)
	return p
}

// endReapedHere ends a proc that startOne had to reap itself, as the
// reaper loop would: record the reap, finalize its resources, drain its
// captures, close Exited and Done.
func (r *Runtime) endReapedHere(p *Proc, ws unix.WaitStatus, ru *unix.Rusage, waitErr error) {
	p.setReaped(time.Now(), ws, ru, nil, waitErr)
	p.finishRemove(r.finalizeResources(p))
	if p.markExited() {
		deadline := time.Now().Add(r.opts.DrainTimeout)
		for _, c := range p.captureList() {
			c.cap.Drain(deadline)
		}
	}
	p.markDone()
}

// forkMu orders the runtime's forks against the window in which forkExec
// clears the close-on-exec flag of start-up fds, which is process-wide:
// that fork holds it exclusively, every other one shared.
var forkMu sync.RWMutex

// forkExec is syscall.ForkExec, with passOn, start-up fds the child must
// inherit beyond attr.Files, inherited through the fork: their
// close-on-exec flag is cleared for the fork and set again after it. An
// entry in Files would do the same, but every lower number the table does
// not use then costs the child a close(2) before exec: 248 of them, and
// tens of microseconds, for the fd 251 a shell may leave open.
func forkExec(argv0 string, argv []string, attr *syscall.ProcAttr, passOn []int) (int, error) {
	if len(passOn) == 0 {
		forkMu.RLock()
		defer forkMu.RUnlock()
		return syscall.ForkExec(argv0, argv, attr)
	}
	forkMu.Lock()
	defer forkMu.Unlock()
	for _, fd := range passOn {
		_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
	}
	defer func() {
		for _, fd := range passOn {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}()
	return syscall.ForkExec(argv0, argv, attr)
}
