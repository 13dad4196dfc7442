package runtime

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	v1 "procstar.dev/procstar/api/v1"
)

// listFds makes the shell print its own fd numbers, one per line, to fd
// out. ls runs as a separate process reading the shell's /proc entry; the
// trailing "true" stops the shell from exec'ing ls in its place.
func listFds(out int) string {
	return "ls -1 /proc/$$/fd >&" + strconv.Itoa(out) + "; true"
}

func TestFdVariants(t *testing.T) {
	type file struct {
		name, content string
		perm          os.FileMode
	}
	cases := []struct {
		name    string
		fds     []v1.FdSpec
		script  string
		pre     []file         // created in cwd before the run
		outputs map[int]string // captured fd -> expected output
		files   []file         // expected afterwards
		errors  []string       // expected Status.Errors
		extra   func(*testing.T, *Proc, v1.ProcStatus)
	}{
		{name: "null read gives EOF",
			fds:     []v1.FdSpec{{Fd: "0", Null: &v1.NullFd{}}, {Fd: "1", Capture: memCapture()}},
			script:  "cat; echo rc=$?",
			outputs: map[int]string{1: "rc=0\n"}},
		{name: "null write discards",
			fds:     []v1.FdSpec{{Fd: "1", Capture: memCapture()}, {Fd: "3", Null: &v1.NullFd{Flags: v1.OpenWrite}}},
			script:  "echo x >&3 && echo ok",
			outputs: map[int]string{1: "ok\n"}},
		{name: "null opened Read cannot be written",
			fds:     []v1.FdSpec{{Fd: "1", Capture: memCapture()}, {Fd: "3", Null: &v1.NullFd{Flags: v1.OpenRead}}},
			script:  "(echo x >&3) 2>/dev/null || echo failed",
			outputs: map[int]string{1: "failed\n"}},
		{name: "file /dev/stdout is the child's fd 1, not the agent's",
			fds: []v1.FdSpec{{Fd: "1", Capture: memCapture()},
				{Fd: "2", File: &v1.FileFd{Path: "/dev/stdout", Flags: v1.OpenWrite}},
				{Fd: "3", File: &v1.FileFd{Path: "/dev/fd/1", Flags: v1.OpenWrite}},
				{Fd: "4", File: &v1.FileFd{Path: "/proc/self/fd/2", Flags: v1.OpenWrite}}},
			script:  "echo out; echo err >&2; echo three >&3; echo four >&4",
			outputs: map[int]string{1: "out\nerr\nthree\nfour\n"}},
		{name: "file /dev/fd of an fd the child lacks",
			fds:    []v1.FdSpec{{Fd: "3", File: &v1.FileFd{Path: "/dev/fd/7"}}},
			script: "true",
			errors: []string{"failed to set up fd 3: Bad file descriptor (os error 9)"}},
		{name: "a failed fd leaves the captures empty, not broken",
			fds: []v1.FdSpec{{Fd: "1", Capture: memCapture()}, {Fd: "2", Capture: &v1.CaptureFd{Mode: v1.CaptureTempfile, Encoding: v1.EncodingUTF8}},
				{Fd: "3", File: &v1.FileFd{Path: "/nonexistent/x"}}},
			script:  "true",
			errors:  []string{"failed to set up fd 3: No such file or directory (os error 2)"},
			outputs: map[int]string{1: "", 2: ""}},
		{name: "file under /proc/self names the agent",
			fds:    []v1.FdSpec{{Fd: "3", File: &v1.FileFd{Path: "/proc/self/environ"}}},
			script: "true",
			errors: []string{"failed to set up fd 3: /proc/self/environ would name the agent, not the proc"}},
		{name: "file Write with mode, relative to cwd",
			fds:    []v1.FdSpec{{Fd: "3", File: &v1.FileFd{Path: "out.txt", Flags: v1.OpenWrite, Mode: ptr(uint32(0o600))}}},
			script: "echo data >&3",
			files:  []file{{"out.txt", "data\n", 0o600}}},
		{name: "file Default on stdout truncates",
			fds:    []v1.FdSpec{{Fd: "stdout", File: &v1.FileFd{Path: "o"}}},
			pre:    []file{{"o", "old content that is long\n", 0o644}},
			script: "echo new",
			files:  []file{{"o", "new\n", 0o644}}},
		{name: "file Append",
			fds:    []v1.FdSpec{{Fd: "1", File: &v1.FileFd{Path: "o", Flags: v1.OpenAppend}}},
			pre:    []file{{"o", "a\n", 0o644}},
			script: "echo b",
			files:  []file{{"o", "a\nb\n", 0o644}}},
		{name: "file CreateAppend creates",
			fds:    []v1.FdSpec{{Fd: "1", File: &v1.FileFd{Path: "o", Flags: v1.OpenCreateAppend, Mode: ptr(uint32(0o640))}}},
			script: "echo b",
			files:  []file{{"o", "b\n", 0o640}}},
		{name: "file Create fails on an existing file",
			fds:    []v1.FdSpec{{Fd: "1", File: &v1.FileFd{Path: "o", Flags: v1.OpenCreate}}},
			pre:    []file{{"o", "keep", 0o644}},
			script: "echo b",
			files:  []file{{"o", "keep", 0o644}},
			errors: []string{"failed to set up fd 1: File exists (os error 17)"}},
		{name: "file Replace needs an existing file",
			fds:    []v1.FdSpec{{Fd: "1", File: &v1.FileFd{Path: "missing", Flags: v1.OpenReplace}}},
			script: "echo b",
			errors: []string{"failed to set up fd 1: No such file or directory (os error 2)"}},
		{name: "file Read on stdin",
			fds:     []v1.FdSpec{{Fd: "stdin", File: &v1.FileFd{Path: "in", Flags: v1.OpenRead}}, {Fd: "1", Capture: memCapture()}},
			pre:     []file{{"in", "input\n", 0o644}},
			script:  "cat",
			outputs: map[int]string{1: "input\n"}},
		{name: "file Default on fd 4 is read-write",
			fds:     []v1.FdSpec{{Fd: "4", File: &v1.FileFd{Path: "rw"}}, {Fd: "1", Capture: memCapture()}},
			script:  "echo rw >&4; echo $(cat <&4)",
			files:   []file{{"rw", "rw\n", 0o644}},
			outputs: map[int]string{1: "\n"}},
		{name: "dup stderr onto stdout",
			fds:     []v1.FdSpec{{Fd: "stdout", Capture: memCapture()}, {Fd: "stderr", Dup: &v1.DupFd{Fd: 1}}},
			script:  "echo a; echo b >&2",
			outputs: map[int]string{1: "a\nb\n"}},
		{name: "dup then close: order matters",
			fds: []v1.FdSpec{{Fd: "3", Capture: memCapture()}, {Fd: "1", Dup: &v1.DupFd{Fd: 3}},
				{Fd: "3", Close: &v1.CloseFd{}}}[0:2:2],
			script:  "echo a",
			outputs: map[int]string{3: "a\n"}},
		{name: "dup of an earlier entry survives its overwrite",
			fds: []v1.FdSpec{{Fd: "1", Capture: memCapture()}, {Fd: "5", Dup: &v1.DupFd{Fd: 1}},
				{Fd: "2", Null: &v1.NullFd{}}},
			script:  "echo shown >&5",
			outputs: map[int]string{1: "shown\n"}},
		{name: "close unopened fd is a setup error",
			fds:    []v1.FdSpec{{Fd: "9", Close: &v1.CloseFd{}}},
			script: "true",
			errors: []string{"failed to set up fd 9: Bad file descriptor (os error 9)"}},
		{name: "every failing fd is reported",
			fds: []v1.FdSpec{{Fd: "3", File: &v1.FileFd{Path: "/nonexistent/x", Flags: v1.OpenRead}},
				{Fd: "1", Capture: memCapture()}, {Fd: "9", Close: &v1.CloseFd{}}, {Fd: "4", Dup: &v1.DupFd{Fd: 8}}},
			script: "true",
			errors: []string{"failed to set up fd 3: No such file or directory (os error 2)",
				"failed to set up fd 9: Bad file descriptor (os error 9)",
				"failed to set up fd 4: Bad file descriptor (os error 9)"}},
		{name: "high fds in any order",
			fds: []v1.FdSpec{{Fd: "7", Capture: memCapture()}, {Fd: "3", Capture: memCapture()},
				{Fd: "200", Capture: memCapture()}, {Fd: "1", Capture: memCapture()}},
			script:  "echo seven >&7; echo three >&3; echo twohundred >&200; " + listFds(1),
			outputs: map[int]string{7: "seven\n", 3: "three\n", 200: "twohundred\n", 1: "0\n1\n2\n200\n3\n7\n"}},
		{name: "closed stdout stays closed",
			fds:     []v1.FdSpec{{Fd: "stdout", Close: &v1.CloseFd{}}, {Fd: "3", Capture: memCapture()}},
			script:  listFds(3),
			outputs: map[int]string{3: "0\n2\n3\n"}},
		{name: "closed stdin and stderr stay closed",
			fds:     []v1.FdSpec{{Fd: "0", Close: &v1.CloseFd{}}, {Fd: "2", Close: &v1.CloseFd{}}, {Fd: "1", Capture: memCapture()}},
			script:  listFds(1),
			outputs: map[int]string{1: "1\n"}},
		{name: "capture modes",
			fds: []v1.FdSpec{{Fd: "1", Capture: &v1.CaptureFd{Mode: v1.CaptureTempfile}},
				{Fd: "2", Capture: &v1.CaptureFd{Mode: v1.CaptureFile, Path: "cap.txt"}}},
			script:  "echo to-tempfile; echo to-file >&2",
			outputs: map[int]string{1: "to-tempfile\n", 2: "to-file\n"},
			files:   []file{{"cap.txt", "to-file\n", 0}}},
	}
	modes(t, func(t *testing.T, rt *Runtime) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				dir := t.TempDir()
				for _, f := range tc.pre {
					if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.content), f.perm); err != nil {
						t.Fatal(err)
					}
				}
				fds := slices.Clone(tc.fds)
				for i := range fds {
					if c := fds[i].Capture; c != nil && c.Path != "" {
						cc := *c
						cc.Path = filepath.Join(dir, c.Path)
						fds[i].Capture = &cc
					}
				}
				p, st := run(t, rt, &v1.ProcSpec{Argv: []string{"/bin/bash", "-c", tc.script}, Cwd: dir, Fds: fds})
				if !slices.Equal(st.Errors, tc.errors) {
					t.Fatalf("errors %q, want %q", st.Errors, tc.errors)
				}
				if tc.errors == nil && exitCode(st) != 0 {
					t.Errorf("exit code %d", exitCode(st))
				}
				if tc.errors != nil && st.Pid != 0 {
					t.Errorf("forked despite setup errors: pid %d", st.Pid)
				}
				for fd, want := range tc.outputs {
					if got := output(t, p, fd); got != want {
						t.Errorf("fd %d output %q, want %q", fd, got, want)
					}
				}
				for _, f := range tc.files {
					path := filepath.Join(dir, f.name)
					b, err := os.ReadFile(path)
					if err != nil || string(b) != f.content {
						t.Errorf("%s: %q, %v; want %q", f.name, b, err, f.content)
					}
					if fi, err := os.Stat(path); f.perm != 0 && (err != nil || fi.Mode().Perm() != f.perm) {
						t.Errorf("%s: mode %v, want %v", f.name, fi.Mode().Perm(), f.perm)
					}
				}
			})
		}
	})
}

// TestExactFds: a child sees exactly the listed fds (plus the agent's
// 0-2 when unlisted), even while the agent holds other files, pipes and
// other procs' captures.
func TestExactFds(t *testing.T) {
	modes(t, func(t *testing.T, rt *Runtime) {
		// Noise: open files, a pipe, and another proc with captures.
		for i := 0; i < 20; i++ {
			f, err := os.Open("/etc/hostname")
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
		}
		pr, pw, _ := os.Pipe()
		defer pr.Close()
		defer pw.Close()
		other, err := rt.Start(context.Background(), []Request{{ID: "other", Spec: shSpec("exec sleep 100")}})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { other[0].Signal(9); <-other[0].Done(); other[0].Release() }()

		for _, tc := range []struct {
			name string
			fds  []v1.FdSpec
			want string
		}{
			{"listed", []v1.FdSpec{{Fd: "0", Null: &v1.NullFd{}}, {Fd: "1", Capture: memCapture()},
				{Fd: "2", Dup: &v1.DupFd{Fd: 1}}, {Fd: "7", Null: &v1.NullFd{}}, {Fd: "4", File: &v1.FileFd{Path: "/etc/hostname", Flags: v1.OpenRead}}},
				"0\n1\n2\n4\n7\n"},
			{"stdio unlisted", []v1.FdSpec{{Fd: "5", Capture: memCapture()}}, "0\n1\n2\n5\n"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				out := 1
				if tc.fds[0].Fd == "5" {
					out = 5
				}
				p, st := run(t, rt, &v1.ProcSpec{Argv: []string{"/bin/bash", "-c", listFds(out)}, Fds: tc.fds})
				if got := output(t, p, out); got != tc.want || exitCode(st) != 0 {
					t.Fatalf("fds %q, want %q (status %+v)", got, tc.want, st)
				}
			})
		}
	})
}

// TestCloseOtherFdsFalse re-execs the test binary with inherited fds 3
// and 40 (start-up fds); inside, a Runtime passes them on only when
// closeOtherFds is false: as entries of the child's fd table when the
// spec's own fds reach above them, else through the fork, the trampoline
// included. They stay close-on-exec in the agent.
func TestCloseOtherFdsFalse(t *testing.T) {
	dir := t.TempDir()
	extra := make([]*os.File, 38) // fds 3 to 40; nil entries are closed
	for _, i := range []int{0, 37} {
		f, err := os.Create(filepath.Join(dir, fmt.Sprint("fd", 3+i)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		extra[i] = f
	}
	cmd := exec.Command(testExe(t))
	cmd.Env = append(os.Environ(), helperEnv+"=inherit")
	cmd.ExtraFiles = extra
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	paths := filepath.Join(dir, "fd3") + "\n" + filepath.Join(dir, "fd40") + "\n"
	want := "keep:\n0\n1\n2\n3\n40\n" + paths +
		"close:\n0\n1\n2\n" +
		"keep, fd 9 in the table:\n0\n1\n2\n3\n40\n9\n" + paths +
		"keep, trampoline:\n0\n1\n2\n3\n40\n" + paths +
		"agent flags: 3 cloexec, 40 cloexec\n"
	if string(out) != want {
		t.Fatalf("helper output:\n%s\nwant:\n%s", out, want)
	}
}

// inheritHelper is the child side of TestCloseOtherFdsFalse.
func inheritHelper() int {
	rt, err := New(Options{})
	if err != nil {
		return 3
	}
	defer rt.Close()
	// ls and readlink run as children of the shell, which holds no other
	// fd meanwhile; "true" keeps the shell from exec'ing readlink.
	script := "ls /proc/$$/fd; readlink /proc/$$/fd/3 /proc/$$/fd/40; true"
	umask := "022"
	for _, c := range []struct {
		label string
		keep  bool
		edit  func(*v1.ProcSpec)
	}{
		{"keep", true, nil},
		{"close", false, nil},
		{"keep, fd 9 in the table", true, func(s *v1.ProcSpec) { s.Fds = append(s.Fds, v1.FdSpec{Fd: "9", Null: &v1.NullFd{}}) }},
		{"keep, trampoline", true, func(s *v1.ProcSpec) { s.Umask = &umask }},
	} {
		s := shSpec(script)
		s.Argv[0] = "/bin/bash"
		s.CloseOtherFds = ptr(!c.keep)
		if c.edit != nil {
			c.edit(s)
		}
		ps, err := rt.Start(context.Background(), []Request{{ID: "x", Spec: s}})
		if err != nil {
			return 4
		}
		select {
		case <-ps[0].Done():
		case <-time.After(10 * time.Second):
			return 5
		}
		b, _ := ps[0].Output(1)
		os.Stdout.WriteString(c.label + ":\n" + string(b))
		ps[0].Release()
	}
	var flags []string
	for _, fd := range []int{3, 40} {
		f, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		state := "open"
		switch {
		case err != nil:
			state = err.Error()
		case f&unix.FD_CLOEXEC != 0:
			state = "cloexec"
		}
		flags = append(flags, fmt.Sprint(fd, " ", state))
	}
	os.Stdout.WriteString("agent flags: " + strings.Join(flags, ", ") + "\n")
	return 0
}

// start starts one proc without waiting for it.
func start(t *testing.T, rt *Runtime, spec *v1.ProcSpec) *Proc {
	t.Helper()
	ps, err := rt.Start(context.Background(), []Request{{ID: "p", Spec: spec}})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	p := ps[0]
	t.Cleanup(func() {
		if p.Pid() > 0 {
			_ = p.Signal(int(unix.SIGKILL))
		}
		<-p.Done()
		p.Release()
	})
	return p
}

// mkfifo makes a FIFO named name in dir.
func mkfifo(t *testing.T, dir, name string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// openWriter opens the FIFO at path for writing once a reader has it open,
// without blocking the test if none ever comes.
func openWriter(t *testing.T, path string) *os.File {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fd, err := unix.Open(path, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
		if err == nil {
			f := os.NewFile(uintptr(fd), path)
			if err := unix.SetNonblock(fd, false); err != nil {
				t.Fatal(err)
			}
			return f
		}
		if err != unix.ENXIO || time.Now().After(deadline) {
			t.Fatalf("no reader opened %s: %v", path, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// openReader opens the FIFO at path for reading once a writer has it open,
// failing the test if none comes.
func openReader(t *testing.T, path string) *os.File {
	t.Helper()
	type opened struct {
		f   *os.File
		err error
	}
	ch := make(chan opened, 1)
	go func() {
		f, err := os.Open(path)
		ch <- opened{f, err}
	}()
	select {
	case o := <-ch:
		if o.err != nil {
			t.Fatal(o.err)
		}
		return o.f
	case <-time.After(10 * time.Second):
		// Release the open with a writer of our own.
		if w, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
			w.Close()
		}
		t.Fatalf("no writer opened %s", path)
		return nil
	}
}

// TestFIFOFds checks that a file fd on a FIFO is opened as procstar opens
// it, in the child: the open waits for the other end, and the agent does
// not. Start returns before the test opens its end.
func TestFIFOFds(t *testing.T) {
	rt := newRT(t, Options{})
	t.Run("writer waits for its reader", func(t *testing.T) {
		fifo := mkfifo(t, t.TempDir(), "out")
		p := start(t, rt, &v1.ProcSpec{
			Argv: []string{"/bin/sh", "-c", "echo out; echo err >&2; echo three >&3"},
			Fds: []v1.FdSpec{
				{Fd: v1.Stdout, File: &v1.FileFd{Path: fifo, Flags: v1.OpenWrite}},
				// Both refer to fd 1, which only the child has.
				{Fd: v1.Stderr, Dup: &v1.DupFd{Fd: 1}},
				{Fd: "3", File: &v1.FileFd{Path: "/dev/fd/1", Flags: v1.OpenAppend}},
			},
		})
		f := openReader(t, fifo) // meets the child's open
		defer f.Close()
		got, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		waitDone(t, p, 10*time.Second)
		st := p.Status()
		if string(got) != "out\nerr\nthree\n" || exitCode(st) != 0 || len(st.Errors) != 0 {
			t.Fatalf("read %q; exit %d, errors %q", got, exitCode(st), st.Errors)
		}
	})
	t.Run("reader waits for its writer", func(t *testing.T) {
		fifo := mkfifo(t, t.TempDir(), "in")
		p := start(t, rt, &v1.ProcSpec{
			Argv: []string{"/bin/cat"},
			Fds: []v1.FdSpec{
				{Fd: v1.Stdin, File: &v1.FileFd{Path: fifo, Flags: v1.OpenRead}},
				{Fd: v1.Stdout, Capture: memCapture()},
			},
		})
		w := openWriter(t, fifo)
		if _, err := w.WriteString("data\n"); err != nil {
			t.Fatal(err)
		}
		w.Close()
		waitDone(t, p, 10*time.Second)
		if got, st := output(t, p, 1), p.Status(); got != "data\n" || exitCode(st) != 0 {
			t.Fatalf("output %q, exit %d, errors %q", got, exitCode(st), st.Errors)
		}
	})
	t.Run("a failed open in the child stops the exec", func(t *testing.T) {
		dir := t.TempDir()
		first, gone := mkfifo(t, dir, "first"), mkfifo(t, dir, "gone")
		p := start(t, rt, &v1.ProcSpec{
			Argv: []string{"/bin/sh", "-c", "echo ran"},
			Fds: []v1.FdSpec{
				{Fd: v1.Stdout, Capture: memCapture()},
				{Fd: "3", File: &v1.FileFd{Path: first, Flags: v1.OpenRead}},
				{Fd: "4", File: &v1.FileFd{Path: gone, Flags: v1.OpenRead}},
				{Fd: "5", Dup: &v1.DupFd{Fd: 3}},
			},
		})
		// The child waits in its open of first: gone goes before it
		// gets there.
		if err := os.Remove(gone); err != nil {
			t.Fatal(err)
		}
		openWriter(t, first).Close()
		waitDone(t, p, 10*time.Second)
		st := p.Status()
		want := []string{"failed to set up fd 4: No such file or directory (os error 2)"}
		if !slices.Equal(st.Errors, want) || exitCode(st) != 63 || output(t, p, 1) != "" {
			t.Fatalf("errors %q (want %q), exit %d, output %q", st.Errors, want, exitCode(st), output(t, p, 1))
		}
	})
	t.Run("a child waiting in its open can be killed", func(t *testing.T) {
		fifo := mkfifo(t, t.TempDir(), "nobody")
		p := start(t, rt, &v1.ProcSpec{
			Argv: []string{"/bin/true"},
			Fds:  []v1.FdSpec{{Fd: v1.Stdout, File: &v1.FileFd{Path: fifo, Flags: v1.OpenWrite}}},
		})
		if err := p.Signal(int(unix.SIGTERM)); err != nil {
			t.Fatal(err)
		}
		waitDone(t, p, 10*time.Second)
		if st := p.Status(); st.Signal != "SIGTERM" {
			t.Fatalf("status %+v", st)
		}
	})
}
