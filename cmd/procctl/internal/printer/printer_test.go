package printer

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func ago(d time.Duration) *time.Time {
	t := now.Add(-d)
	return &t
}

func ptr[T any](v T) *T { return &v }

// fixtures are fixed procs covering every column's cases.
func fixtures() []v1.Proc {
	return []v1.Proc{
		{
			Metadata: v1.ObjectMeta{Name: "hello", UID: "uid-1", Generation: 1, ResourceVersion: "7",
				CreationTimestamp: ago(5 * time.Second), Labels: map[string]string{"app": "hello", "team": "data"}},
			Spec: v1.ProcSpec{Argv: []string{"/bin/sh", "-c", "echo hello from procstar"},
				Fds: []v1.FdSpec{
					{Fd: "stdin", Null: &v1.NullFd{}},
					{Fd: "stdout", Capture: &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8}},
					{Fd: "stderr", Dup: &v1.DupFd{Fd: 1}},
				}},
			Status: v1.ProcStatus{Phase: v1.PhaseSucceeded, Pid: 4242, ExitCode: ptr(0),
				Conditions: []v1.Condition{
					{Type: v1.ConditionStarted, Status: v1.ConditionTrue, Reason: v1.ReasonExec, LastTransitionTime: *ago(4 * time.Second)},
					{Type: v1.ConditionTerminated, Status: v1.ConditionTrue, Reason: v1.ReasonExited, Message: "exited with\ncode 0", LastTransitionTime: *ago(3 * time.Second)},
				},
				Times:  &v1.ProcTimes{Start: ago(4 * time.Second), Stop: ago(3 * time.Second), Elapsed: 1.25},
				Rusage: &v1.Rusage{Utime: 0.01, Stime: 0.002, Maxrss: 3355443, Minflt: 120, Nvcsw: 3, Nivcsw: 1, Oublock: 8},
				Fds:    map[string]v1.FdStatus{"stdout": {Length: 24, Encoding: v1.EncodingUTF8, Mode: v1.CaptureMemory}},
			},
		},
		{
			Metadata: v1.ObjectMeta{Name: "nightly-report", CreationTimestamp: ago(3*time.Minute + 12*time.Second)},
			Spec: v1.ProcSpec{Exe: "/usr/bin/python3", Argv: []string{"python3", "report.py", "--day", "it's 2026"}, Cwd: "/srv/reports",
				Umask:     ptr("0027"),
				Env:       v1.EnvSpec{Inherit: &v1.EnvInherit{Names: []string{"HOME", "PATH"}}, Vars: map[string]*string{"MODE": ptr("full"), "DROP": nil}},
				Timeout:   &v1.Timeout{Seconds: 3600, Signal: "SIGINT", GracePeriodSeconds: ptr(10.0)},
				Resources: &v1.Resources{MemoryMax: ptr(v1.Quantity("2Gi")), TasksMax: ptr(int64(512))},
				Fds: []v1.FdSpec{
					{Fd: "stdout", Capture: &v1.CaptureFd{Mode: v1.CaptureTempfile, Encoding: v1.EncodingBase64, Attached: ptr(false), Limit: &v1.CaptureLimit{Head: 100, Tail: 200}}},
					{Fd: "3", File: &v1.FileFd{Path: "/tmp/out", Flags: v1.OpenAppend}},
				}},
			Status: v1.ProcStatus{Phase: v1.PhaseRunning, Pid: 777, RestartCount: 2,
				Conditions: []v1.Condition{{Type: v1.ConditionStarted, Status: v1.ConditionTrue, Reason: v1.ReasonExec, LastTransitionTime: *ago(3 * time.Minute)}},
				Times:      &v1.ProcTimes{Start: ago(3 * time.Minute), Elapsed: 180},
				Fds:        map[string]v1.FdStatus{"stdout": {Length: 1 << 20, Encoding: v1.EncodingBase64, Mode: v1.CaptureTempfile, Dropped: 5}, "3": {Length: 0, Encoding: v1.EncodingBase64}},
			},
		},
		{
			Metadata: v1.ObjectMeta{Name: "killed", CreationTimestamp: ago(50 * time.Hour), DeletionTimestamp: ago(time.Second)},
			Spec:     v1.ProcSpec{Argv: []string{"/bin/sleep", "infinity"}, KillTree: ptr(false), PerfCounters: true},
			Status: v1.ProcStatus{Phase: v1.PhaseFailed, Pid: 99, Signal: "SIGKILL", WaitStatus: ptr(9),
				Conditions: []v1.Condition{{Type: v1.ConditionTerminated, Status: v1.ConditionTrue, Reason: v1.ReasonKilled}},
				Agent:      &v1.AgentRef{Hostname: "host1", GroupID: "default", ConnID: "c1"},
				Resources:  &v1.ResourceStatus{Backend: "cgroup", Cgroup: "/system.slice/procstar.service/proc-killed-3", Enforced: true, TreeKill: "cgroup"},
				CgroupAccounting: &v1.CgroupAccounting{
					CPUStat: &v1.CgroupCPUStat{UsageUsec: 1500000, UserUsec: 1000000, SystemUsec: 500000},
					Memory:  &v1.CgroupMemory{Peak: 10 << 20, OOMKills: 1},
					Pids:    &v1.CgroupPids{Peak: 4},
				},
				PerfCounters: &v1.PerfCounters{TaskClockNs: ptr(uint64(1_250_000_000)), Unsupported: map[string]string{"instructions": "no PMU", "cycles": "no PMU"}},
			},
		},
		{
			Metadata: v1.ObjectMeta{Name: "broken"},
			Spec:     v1.ProcSpec{Argv: []string{"/nonexistent"}},
			Status: v1.ProcStatus{Phase: v1.PhaseError, Errors: []string{"execve failed: No such file or directory"},
				Resources: &v1.ResourceStatus{Backend: "none", TreeKill: "processGroup", Message: "limits are not enforced: no resource control is available"}},
		},
		{
			Metadata: v1.ObjectMeta{Name: "pending", CreationTimestamp: ago(400 * 24 * time.Hour)},
			Spec:     v1.ProcSpec{Argv: []string{"true"}, Placement: &v1.Placement{Group: "gpu", Selector: map[string]string{"disk": "ssd"}}},
		},
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from %s:\n--- got\n%s--- want\n%s", name, path, got, want)
	}
}

func TestGoldenList(t *testing.T) {
	noAgent := fixtures()
	noAgent[2].Status.Agent = nil
	for _, tc := range []struct {
		name   string
		format string
		procs  []v1.Proc
		single bool
	}{
		{"table", "", noAgent, false},
		{"table-agent", "", fixtures(), false},
		{"wide", "wide", fixtures(), false},
		{"yaml-list", "yaml", fixtures()[:2], false},
		{"yaml-single", "yaml", fixtures()[:1], true},
		{"json-list", "json", fixtures()[:2], false},
		{"json-single", "json", fixtures()[:1], true},
		{"name", "name", fixtures(), false},
		{"jsonpath-list", `jsonpath={range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}`, fixtures(), false},
		{"jsonpath-single", "jsonpath={.status.pid}", fixtures()[:1], true},
		{"jsonpath-missing", "jsonpath={.status.nothing}", fixtures()[:1], true},
		{"table-empty", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := ParseFormat(tc.format)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			if err := PrintList(&b, f, tc.procs, tc.single, now); err != nil {
				t.Fatal(err)
			}
			golden(t, tc.name, b.Bytes())
		})
	}
}

func TestGoldenDescribe(t *testing.T) {
	for _, p := range fixtures() {
		t.Run(p.Metadata.Name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Describe(&b, &p, now); err != nil {
				t.Fatal(err)
			}
			golden(t, "describe-"+p.Metadata.Name, b.Bytes())
		})
	}
}

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"", true}, {"wide", true}, {"yaml", true}, {"json", true}, {"name", true},
		{"jsonpath={.metadata.name}", true}, {"jsonpath='{.x}'", true},
		{"jsonpath=", false}, {"jsonpath={.x", false}, {"xml", false}, {"YAML", false},
	} {
		_, err := ParseFormat(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ParseFormat(%q) = %v, want ok %v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadFormat) {
			t.Errorf("ParseFormat(%q) error does not match ErrBadFormat", tc.in)
		}
	}
}

// TestTableWatchRows checks that later rows keep the header's widths.
func TestTableWatchRows(t *testing.T) {
	var b bytes.Buffer
	tab := NewTable(&b, false, false)
	tab.Header()
	ps := fixtures()
	tab.Row(&ps[1], now)
	tab.Flush()
	tab.Row(&ps[0], now)
	tab.Flush()
	want := "NAME             PHASE     PID   EXIT     AGE\n" +
		"nightly-report   Running   777   <none>   3m12s\n" +
		"hello            Succeeded   4242   0        5s\n"
	// The second row's PHASE is wider than the first table's column: it
	// widens, the earlier line stays as printed.
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestEvents checks the EVENT column and the event objects of
// --output-watch-events.
func TestEvents(t *testing.T) {
	ps := fixtures()
	var b bytes.Buffer
	tab := NewTable(&b, false, false).WithEvents()
	tab.Header()
	tab.EventRow(v1.Added, &ps[1], now)
	tab.EventRow(v1.Deleted, &ps[1], now)
	tab.Flush()
	want := "EVENT     NAME             PHASE     PID   EXIT     AGE\n" +
		"ADDED     nightly-report   Running   777   <none>   3m12s\n" +
		"DELETED   nightly-report   Running   777   <none>   3m12s\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	if err := PrintEvent(&b, Format{Kind: KindName}, v1.Modified, &ps[1]); err != nil || b.String() != "MODIFIED proc/nightly-report\n" {
		t.Errorf("name: %q, %v", b.String(), err)
	}
	b.Reset()
	if err := PrintEvent(&b, Format{Kind: KindJSON}, v1.Deleted, &ps[1]); err != nil {
		t.Fatal(err)
	}
	var ev v1.WatchEvent
	if err := json.Unmarshal(b.Bytes(), &ev); err != nil || ev.Type != v1.Deleted || ev.Object.Metadata.Name != "nightly-report" || ev.Object.Kind != v1.KindProc {
		t.Errorf("json: %s (%v)", b.String(), err)
	}
	f, err := ParseFormat("jsonpath={.type} {.object.metadata.name}")
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := PrintEvent(&b, f, v1.Added, &ps[0]); err != nil || b.String() != "ADDED hello" {
		t.Errorf("jsonpath: %q, %v", b.String(), err)
	}
}

func TestAge(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "<invalid>"},
		{-500 * time.Millisecond, "0s"},
		{0, "0s"},
		{5 * time.Second, "5s"},
		{119 * time.Second, "119s"},
		{2 * time.Minute, "2m"},
		{3*time.Minute + 12*time.Second, "3m12s"},
		{10 * time.Minute, "10m"},
		{179 * time.Minute, "179m"},
		{3 * time.Hour, "3h"},
		{3*time.Hour + 5*time.Minute, "3h5m"},
		{8 * time.Hour, "8h"},
		{47 * time.Hour, "47h"},
		{48 * time.Hour, "2d"},
		{50 * time.Hour, "2d2h"},
		{8 * 24 * time.Hour, "8d"},
		{400 * 24 * time.Hour, "400d"},
		{3 * 365 * 24 * time.Hour, "3y"},
		{(3*365 + 10) * 24 * time.Hour, "3y10d"},
		{9 * 365 * 24 * time.Hour, "9y"},
	} {
		if got := Age(tc.d); got != tc.want {
			t.Errorf("Age(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {3355443, "3.2 MiB"}, {1 << 40, "1.0 TiB"}} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

// FuzzDescribe checks that no proc makes the printers fail or panic.
func FuzzDescribe(f *testing.F) {
	f.Add(`{"metadata":{"name":"x"},"spec":{"argv":["a"]}}`)
	f.Add(`{"metadata":{"name":"x"},"spec":{"argv":["a"]},"status":{"phase":"Running","conditions":[{"type":"Started","status":"True"}],"fds":{"stdout":{"length":3,"encoding":"utf-8"}}}}`)
	f.Fuzz(func(t *testing.T, s string) {
		procs, err := v1.Decode([]byte(s))
		if err != nil {
			return
		}
		for i := range procs {
			var b bytes.Buffer
			if err := Describe(&b, &procs[i], now); err != nil {
				t.Fatal(err)
			}
			for _, f := range []string{"", "wide", "yaml", "json", "name"} {
				pf, _ := ParseFormat(f)
				if err := PrintList(&b, pf, procs, false, now); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// TestControlCharacters: table cells and commands never carry a raw
// control character, so a row stays one line and a terminal runs no
// escape sequence; commands are quoted as bash reads them back.
func TestControlCharacters(t *testing.T) {
	for _, tc := range []struct{ in, cell, quoted string }{
		{"plain", "plain", "plain"},
		{"two words", "two words", "'two words'"},
		{"a\nb", `a\nb`, `$'a\nb'`},
		{"tab\there", `tab\there`, `$'tab\there'`},
		{"it's\n", `it's\n`, `$'it\'s\n'`},
		{`back\slash` + "\r", `back\slash\r`, `$'back\\slash\r'`},
		{"\x1b[31mred", `\x1b[31mred`, `$'\x1b[31mred'`},
		{"nel\u0085sep\u2028", `nel\u0085sep\u2028`, `$'nel\u0085sep\u2028'`},
		{"bad\xffutf8", `bad\xffutf8`, `$'bad\xffutf8'`},
		{"héllo wörld", "héllo wörld", "'héllo wörld'"},
	} {
		if got := cell(tc.in); got != tc.cell {
			t.Errorf("cell(%q) = %q, want %q", tc.in, got, tc.cell)
		}
		if got := quote(tc.in); got != tc.quoted {
			t.Errorf("quote(%q) = %q, want %q", tc.in, got, tc.quoted)
		}
	}
	p := v1.Proc{Metadata: v1.ObjectMeta{Name: "p"}, Spec: v1.ProcSpec{Argv: []string{"/bin/sh", "-c", "echo a\necho b"}}}
	p.Status.Conditions = []v1.Condition{{Type: v1.ConditionStarted, Status: v1.ConditionTrue, Reason: "Weird\nReason"}}
	var b bytes.Buffer
	tbl := NewTable(&b, true, false)
	tbl.Header()
	tbl.Row(&p, time.Time{})
	if err := tbl.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != 2 || !bytes.HasSuffix(lines[1], []byte(`Weird\nReason   /bin/sh -c $'echo a\necho b'`)) {
		t.Errorf("wide table:\n%s", b.String())
	}
}
