package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

// AgentLeaf is the child of a Root that this process moves itself into
// when it sits in the Root's directory, so that the Root may enable
// controllers for its children (cgroup v2's no-internal-process rule).
// Create refuses it as a group name.
const AgentLeaf = "agent"

// RootOptions configure OpenRoot.
type RootOptions struct {
	// Logger receives what OpenRoot did; the zero value discards.
	Logger logr.Logger
	// AllowNonCgroupFS skips the statfs CGROUP2_SUPER_MAGIC check, for
	// tests on a temp-dir fake. On a fake, control files that do not
	// exist are created by writes, and Remove deletes directories with
	// their contents.
	AllowNonCgroupFS bool
	// RemoveOnClose makes Close remove dir itself: a directory the caller
	// made for this agent alone.
	RemoveOnClose bool

	// writeFile replaces how control files are written (tests record
	// writes with it); nil means writeControl.
	writeFile func(path string, data []byte, create bool) error
}

// Root is a delegated cgroup2 directory under which procs get their own
// child cgroups. Its fields are set by OpenRoot and never change, so it
// is safe for concurrent use without a lock.
//
// A Root is one agent's: OpenRoot takes an exclusive flock on the
// directory, held until Close or the agent's exit, and refuses a
// directory another agent holds (ErrInUse). Agents sharing one root
// would otherwise remove each other's proc cgroups, which every agent
// does at start for the leftovers of the one before it.
type Root struct {
	dir           string
	log           logr.Logger
	fake          bool
	write         func(path string, data []byte, create bool) error
	controllers   []string // enabled for children, sorted
	removeOnClose bool     // Close removes dir
	lock          int      // fd of dir, flocked; closed by Close
}

// OpenRoot opens dir as a Root: it checks that dir is on cgroup2 (unless
// opts.AllowNonCgroupFS), takes the Root's lock (ErrInUse while another
// agent holds it), checks that child cgroups can really be made there
// (mkdir and rmdir of a probe), moves this process into dir/agent when it
// is inside dir and dir is not the hierarchy root, and enables in
// cgroup.subtree_control whichever of cpu, memory and pids
// cgroup.controllers offers. Enabling is best effort: Controllers says
// what is enabled afterwards.
func OpenRoot(dir string, opts RootOptions) (*Root, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cgroup root %q: %w", dir, err)
	}
	r := &Root{dir: abs, log: opts.Logger, fake: opts.AllowNonCgroupFS, write: opts.writeFile, removeOnClose: opts.RemoveOnClose}
	if r.write == nil {
		r.write = writeControl
	}
	log := r.log.WithValues("cgroup", abs)

	var st unix.Statfs_t
	if err := unix.Statfs(abs, &st); err != nil {
		return nil, fmt.Errorf("cgroup root %s: %w", abs, &fs.PathError{Op: "statfs", Path: abs, Err: err})
	}
	if !r.fake && st.Type != unix.CGROUP2_SUPER_MAGIC {
		return nil, fmt.Errorf("cgroup root %s: file system magic %#x: %w", abs, st.Type, ErrNotCgroup2)
	}
	available, err := readList(filepath.Join(abs, "cgroup.controllers"))
	if err != nil {
		return nil, fmt.Errorf("cgroup root %s: %w", abs, err)
	}
	if r.lock, err = lockDir(abs); err != nil {
		return nil, fmt.Errorf("cgroup root %s: %w", abs, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(r.lock)
		}
	}()

	// A real probe: permissions and delegation are only known by trying.
	probe := filepath.Join(abs, "procstar-probe-"+strconv.Itoa(os.Getpid()))
	if err := unix.Mkdir(probe, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		return nil, fmt.Errorf("cgroup root %s: mkdir %s: %w: %w", abs, filepath.Base(probe), ErrNotWritable, err)
	}
	if err := r.removeDir(probe); err != nil {
		return nil, fmt.Errorf("cgroup root %s: remove probe: %w: %w", abs, ErrNotWritable, err)
	}

	if !isHierarchyRoot(abs) {
		r.leaveRoot(log)
	}
	r.enable(log, available)
	log.V(1).Info("opened cgroup root", "available", available, "controllers", r.controllers)
	ok = true
	return r, nil
}

// lockDir opens dir and takes an exclusive flock on it without waiting:
// ErrInUse if another open file holds it. The fd is close-on-exec, so the
// lock ends with this process, never lingering in procs that outlive it.
func lockDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	switch {
	case errors.Is(err, unix.EWOULDBLOCK):
		unix.Close(fd)
		return -1, ErrInUse
	case err != nil:
		unix.Close(fd)
		return -1, &fs.PathError{Op: "flock", Path: dir, Err: err}
	}
	return fd, nil
}

// Close removes the root directory if RootOptions.RemoveOnClose said so.
// Groups still in it (procs that outlived the agent) keep it, and Close
// says so with an error wrapping EBUSY; it never kills them.
func (r *Root) Close() error {
	// The lock goes last: until the directory is gone, it is this agent's.
	defer unix.Close(r.lock)
	if !r.removeOnClose {
		return nil
	}
	if err := r.removeDir(r.dir); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing cgroup root %s: %w", r.dir, err)
	}
	return nil
}

// isHierarchyRoot reports whether dir is the root of a cgroup2 hierarchy:
// the only cgroup without a cgroup.type file. The root of a cgroup
// namespace has one, and the no-internal-process rule applies to it.
func isHierarchyRoot(dir string) bool {
	_, err := os.Lstat(filepath.Join(dir, "cgroup.type"))
	return errors.Is(err, fs.ErrNotExist)
}

// leaveRoot moves this process into the AgentLeaf child if it is in the
// Root's directory itself. Failure is logged: controllers then stay off,
// which enable reports.
func (r *Root) leaveRoot(log logr.Logger) {
	pid := os.Getpid()
	pids, err := readPids(filepath.Join(r.dir, "cgroup.procs"))
	if err != nil {
		log.Error(err, "cannot read cgroup.procs of cgroup root")
		return
	}
	if !slices.Contains(pids, pid) {
		return
	}
	leaf := filepath.Join(r.dir, AgentLeaf)
	if err := unix.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
		log.Error(&fs.PathError{Op: "mkdir", Path: leaf, Err: err}, "cannot create agent leaf cgroup")
		return
	}
	if err := r.write(filepath.Join(leaf, "cgroup.procs"), []byte(strconv.Itoa(pid)), r.fake); err != nil {
		log.Error(err, "cannot move agent into its leaf cgroup", "pid", pid)
		return
	}
	log.V(1).Info("moved agent into leaf cgroup", "pid", pid, "leaf", leaf)
}

// enable turns on the managed controllers that are available and not yet
// enabled, all in one write, else one by one, then records what
// cgroup.subtree_control says.
func (r *Root) enable(log logr.Logger, available []string) {
	path := filepath.Join(r.dir, "cgroup.subtree_control")
	current, err := readList(path)
	if err != nil {
		log.Error(err, "cannot read cgroup.subtree_control")
		return
	}
	var want []string
	for _, c := range managedControllers {
		if slices.Contains(available, c) && !slices.Contains(current, c) {
			want = append(want, "+"+c)
		}
	}
	if len(want) > 0 {
		if err := r.write(path, []byte(strings.Join(want, " ")), r.fake); err != nil {
			log.V(1).Info("enabling controllers together failed, trying one by one", "error", err.Error())
			for _, w := range want {
				if err := r.write(path, []byte(w), r.fake); err != nil {
					log.Error(err, "cannot enable cgroup controller", "controller", w[1:])
				}
			}
		}
		if current, err = readList(path); err != nil {
			log.Error(err, "cannot read cgroup.subtree_control")
			return
		}
	}
	slices.Sort(current)
	r.controllers = current
}

// Dir returns the Root's absolute directory.
func (r *Root) Dir() string { return r.dir }

// Controllers returns the controllers enabled for the Root's children (its
// cgroup.subtree_control after OpenRoot), sorted.
func (r *Root) Controllers() []string { return slices.Clone(r.controllers) }

// reservedPrefixes are name prefixes of cgroup interface files; a child
// cgroup named like one would be confusing at best.
var reservedPrefixes = []string{"cgroup.", "cpu.", "cpuset.", "memory.", "pids.", "io.", "hugetlb.", "rdma.", "misc.", "irq."}

// ValidName checks that name can be a group of a Root: one path element,
// not "." or "..", not AgentLeaf, not starting with "cgroup." or a
// controller prefix.
func ValidName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("%q: %w", name, ErrInvalidName)
	case len(name) > 255:
		return fmt.Errorf("%q: longer than 255 bytes: %w", name[:32]+"…", ErrInvalidName)
	case strings.ContainsAny(name, "/\x00\n"):
		return fmt.Errorf("%q: contains '/', NUL or newline: %w", name, ErrInvalidName)
	case name == AgentLeaf:
		return fmt.Errorf("%q: reserved for the agent's own cgroup: %w", name, ErrInvalidName)
	}
	for _, p := range reservedPrefixes {
		if strings.HasPrefix(name, p) {
			return fmt.Errorf("%q: starts with %q, reserved for cgroup interface files: %w", name, p, ErrInvalidName)
		}
	}
	return nil
}

// Create makes the child cgroup name, writes l into it and opens it for
// clone3's CgroupFD. A limit whose controller is not enabled fails with
// ErrControllerUnavailable and leaves nothing behind; so does any other
// failure.
func (r *Root) Create(name string, l Limits) (*Group, error) {
	g, _, err := r.create(name, l, true)
	return g, err
}

// CreateBestEffort is Create, except that limits whose controller is not
// enabled (or whose control file does not exist, such as memory.swap.max
// without swap accounting) are skipped. The message lists what was skipped
// and why; it is "" when every limit applied.
func (r *Root) CreateBestEffort(name string, l Limits) (*Group, string, error) {
	return r.create(name, l, false)
}

func (r *Root) create(name string, l Limits, strict bool) (*Group, string, error) {
	if err := ValidName(name); err != nil {
		return nil, "", err
	}
	if err := l.validate(); err != nil {
		return nil, "", err
	}
	path := filepath.Join(r.dir, name)
	var apply []limitWrite
	var skipped []string
	for _, w := range l.writes() {
		if slices.Contains(r.controllers, w.controller) {
			apply = append(apply, w)
			continue
		}
		skipped = append(skipped, fmt.Sprintf("%s (%s) needs the %s controller, which is not enabled for children of %s",
			w.name, w.file, w.controller, r.dir))
	}
	if strict && len(skipped) > 0 {
		return nil, "", fmt.Errorf("create cgroup %s: %s: %w", path, strings.Join(skipped, "; "), ErrControllerUnavailable)
	}

	if err := unix.Mkdir(path, 0o755); err != nil {
		return nil, "", fmt.Errorf("create cgroup: %w", &fs.PathError{Op: "mkdir", Path: path, Err: err})
	}
	fail := func(err error) (*Group, string, error) {
		if rerr := r.removeDir(path); rerr != nil {
			r.log.Error(rerr, "cannot remove cgroup after failed create", "cgroup", path)
		}
		return nil, "", err
	}
	for _, w := range apply {
		err := r.write(filepath.Join(path, w.file), []byte(w.value), r.fake)
		if errors.Is(err, fs.ErrNotExist) {
			msg := fmt.Sprintf("%s (%s) is not supported by the %s controller here (no such file)", w.name, w.file, w.controller)
			if strict {
				return fail(fmt.Errorf("create cgroup %s: %s: %w", path, msg, ErrControllerUnavailable))
			}
			skipped = append(skipped, msg)
			continue
		}
		if err != nil {
			return fail(fmt.Errorf("create cgroup %s: set %s to %q: %w", path, w.name, w.value, err))
		}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(fmt.Errorf("create cgroup: %w", &fs.PathError{Op: "open", Path: path, Err: err}))
	}
	msg := ""
	if len(skipped) > 0 {
		msg = "not enforced: " + strings.Join(skipped, "; ")
	}
	r.log.V(2).Info("created cgroup", "cgroup", path, "skipped", msg)
	return &Group{path: path, fake: r.fake, log: r.log.WithValues("cgroup", path), fd: fd, controllers: r.controllers}, msg, nil
}

// removeDir removes a cgroup directory: rmdir on cgroupfs; on a fake,
// the directory and the files the test or the writes created.
func (r *Root) removeDir(path string) error {
	if r.fake {
		return os.RemoveAll(path)
	}
	return rmdir(path)
}

func rmdir(path string) error {
	if err := unix.Rmdir(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return &fs.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

// writeControl writes data to a control file in one write(2), as cgroupfs
// wants. With create (fakes only) a missing file is created.
func writeControl(path string, data []byte, create bool) error {
	flags := unix.O_WRONLY | unix.O_CLOEXEC
	if create {
		flags |= unix.O_CREAT | unix.O_TRUNC
	}
	fd, err := unix.Open(path, flags, 0o644)
	if err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, data)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &fs.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// readList reads a space-separated list file such as cgroup.controllers.
func readList(path string) ([]string, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(data)), nil
}

// readPids reads a cgroup.procs file. A missing file (the cgroup is gone)
// is an error wrapping fs.ErrNotExist.
func readPids(path string) ([]int, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, err
	}
	return parsePids(data)
}

func parsePids(data []byte) ([]int, error) {
	fields := strings.Fields(string(data))
	pids := make([]int, 0, len(fields))
	for _, f := range fields {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 0 {
			return nil, fmt.Errorf("cgroup.procs entry %q: %w", f, ErrMalformed)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// readFile is os.ReadFile for the small files of cgroupfs and procfs,
// without the os.File machinery: cgroupfs files are pollable, so os.Open
// would register each one with the Go netpoller and unregister it at
// Close, which costs more than the read. Errors are *fs.PathError, as
// os.ReadFile's.
func readFile(path string) ([]byte, error) { return readFileAt(unix.AT_FDCWD, path) }

// readFileAt is readFile for path relative to the directory dirfd
// (unix.AT_FDCWD: the working directory, or path is absolute).
func readFileAt(dirfd int, path string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	for err == unix.EINTR {
		fd, err = unix.Openat(dirfd, path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// cgDir is a cgroup directory to read control files from: through its open
// fd when it has one (no path walk per file), else by path.
type cgDir struct {
	path string
	fd   int // -1: none
}

// read reads the control file name of d. Errors name the whole path.
func (d cgDir) read(name string) ([]byte, error) {
	if d.fd < 0 {
		return readFile(filepath.Join(d.path, name))
	}
	data, err := readFileAt(d.fd, name)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		pe.Path = filepath.Join(d.path, name)
	}
	return data, err
}
