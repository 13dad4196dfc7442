package wire

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
)

func TestFormatTime(t *testing.T) {
	base := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		t    time.Time
		want string
	}{
		{base, "2025-01-02T03:04:05+00:00"},
		{base.Add(123456789), "2025-01-02T03:04:05.123456789+00:00"},
		{base.Add(500 * time.Millisecond), "2025-01-02T03:04:05.500+00:00"},
		{base.Add(1234 * time.Microsecond), "2025-01-02T03:04:05.001234+00:00"},
		{base.Add(1 * time.Millisecond), "2025-01-02T03:04:05.001+00:00"},
		{base.Add(1), "2025-01-02T03:04:05.000000001+00:00"},
		{base.Add(10 * time.Microsecond), "2025-01-02T03:04:05.000010+00:00"},
		{base.In(time.FixedZone("X", 3600)), "2025-01-02T03:04:05+00:00"},
	}
	for _, tt := range tests {
		got := FormatTime(tt.t)
		if got != tt.want {
			t.Errorf("FormatTime(%v) = %s, want %s", tt.t, got, tt.want)
		}
		back, err := ParseTime(got)
		if err != nil || !back.Equal(tt.t) || back.Location() != time.UTC {
			t.Errorf("ParseTime(%s) = %v, %v", got, back, err)
		}
	}
	for _, s := range []string{"2025-01-02T03:04:05Z", "2025-01-02T04:04:05.5+01:00"} {
		if _, err := ParseTime(s); err != nil {
			t.Errorf("ParseTime(%s): %v", s, err)
		}
	}
	if _, err := ParseTime("yesterday"); !errors.Is(err, ErrBadTime) {
		t.Errorf("bad time err %v", err)
	}
}

func TestFloat(t *testing.T) {
	pointOne, pointTwo := 0.1, 0.2
	pointThree := pointOne + pointTwo
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0.0"}, {math.Copysign(0, -1), "-0.0"}, {1, "1.0"}, {-2, "-2.0"}, {0.877, "0.877"},
		{0.25, "0.25"}, {1.5, "1.5"}, {123456.789, "123456.789"}, {1e15, "1000000000000000.0"},
		{1e16, "1e16"}, {1.5e16, "1.5e16"}, {1234567890123456.7, "1234567890123456.8"},
		{0.0001, "0.0001"}, {0.00001, "0.00001"}, {0.000015, "0.000015"}, {1e-6, "1e-6"}, {1.5e-6, "1.5e-6"}, {1e-7, "1e-7"},
		{1e300, "1e300"}, {5e-324, "5e-324"}, {math.MaxFloat64, "1.7976931348623157e308"},
		{pointThree, "0.30000000000000004"}, {math.NaN(), "null"}, {math.Inf(1), "null"},
	}
	for _, tt := range tests {
		got, _ := Float(tt.v).MarshalJSON()
		if string(got) != tt.want {
			t.Errorf("Float(%v) = %s, want %s", tt.v, got, tt.want)
		}
		if tt.want != "null" {
			var back float64
			if err := json.Unmarshal(got, &back); err != nil || back != tt.v {
				t.Errorf("%s reads back as %v, %v", got, back, err)
			}
		}
	}
}

type fakeOutput map[int]string

func (f fakeOutput) Output(fd int) ([]byte, error) {
	s, ok := f[fd]
	if !ok {
		return nil, errors.New("no such capture")
	}
	return []byte(s), nil
}

var (
	t0 = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	t1 = time.Date(2025, 1, 2, 3, 4, 6, 1234000, time.UTC)
	t2 = time.Date(2025, 1, 2, 3, 4, 6, 500000000, time.UTC)
)

func goldenSpec() *v1.ProcSpec {
	return &v1.ProcSpec{
		Argv: []string{"/bin/sh", "-c", "exit 42"},
		Fds: []v1.FdSpec{
			{Fd: "stdin", Null: &v1.NullFd{}},
			{Fd: "1", Capture: &v1.CaptureFd{Encoding: v1.EncodingUTF8}},
			{Fd: "stderr", Capture: &v1.CaptureFd{}},
			{Fd: "3", Capture: &v1.CaptureFd{Encoding: v1.EncodingUTF8, Attached: ptr(false)}},
			{Fd: "4", Capture: &v1.CaptureFd{Encoding: v1.EncodingBase2048}},
			{Fd: "5", Capture: &v1.CaptureFd{}},
			{Fd: "6", Dup: &v1.DupFd{Fd: 1}},
		},
	}
}

func goldenStatus() *v1.ProcStatus {
	return &v1.ProcStatus{
		Pid:        12345,
		ExitCode:   ptr(42),
		WaitStatus: ptr(42 << 8),
		Times:      &v1.ProcTimes{Start: &t0, Stop: &t1, Elapsed: 0.877},
		Rusage:     &v1.Rusage{Utime: 0.25, Stime: 0.01, Maxrss: 1074790400, Minflt: 1, Oublock: 8, Nvcsw: 3, Nivcsw: 1},
		ProcStat: &v1.ProcStat{
			Pid: 12345, Comm: "sh <x>", State: "Z", Ppid: 1, Pgrp: 12345, Session: 12345,
			TtyNr: [2]uint32{136, 1}, Flags: 4194304, Minflt: 99, Utime: 0.07, Stime: 0.03,
			Priority: 20, NumThreads: 1, Starttime: t0.Add(-time.Millisecond * 10), Vsize: 3133440, Rss: 1675264,
			Rsslim: 18446744073709551615, Signal: []string{}, Blocked: []string{"SIGRTMIN+1"},
			Sigignore: []string{"SIGPIPE"}, Sigcatch: []string{"SIGSTKFLT", "SIGRTMAX"},
			ExitSignal: ptr("SIGCHLD"), Processor: 1, CguestTime: 1.5, ExitCode: 10752,
		},
		CgroupAccounting: &v1.CgroupAccounting{
			Pids:    &v1.CgroupPids{Current: 0, Peak: 1},
			CPUStat: &v1.CgroupCPUStat{UsageUsec: 1234, UserUsec: 1000, SystemUsec: 234, NrPeriods: ptr(uint64(0))},
		},
		Fds: map[string]v1.FdStatus{"3": {Length: 77, Encoding: v1.EncodingUTF8}},
	}
}

func TestProcResGolden(t *testing.T) {
	out := fakeOutput{1: "hi\n\xff<&>", 2: "\x00\x01binary", 4: "base2048!"}
	res := NewProcRes(goldenSpec(), goldenStatus(), t2, out)
	got, err := Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	const golden = "testdata/result.golden.json"
	if *update {
		if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(got, '\n'), want) {
		t.Errorf("result differs from %s:\n%s", golden, got)
	}
	// Field order is procstar's.
	order := []string{`"state"`, `"errors"`, `"pid"`, `"proc_stat"`, `"proc_statm"`, `"cgroup_accounting"`, `"times"`, `"status"`, `"rusage"`, `"fds"`}
	last := -1
	for _, k := range order {
		i := bytes.Index(got, []byte(k))
		if i <= last {
			t.Errorf("field %s out of order", k)
		}
		last = i
	}
	for _, s := range []string{
		`"state":"terminated","errors":[],"pid":12345,`,
		`"times":{"start":"2025-01-02T03:04:05.123456789+00:00","now":"2025-01-02T03:04:06.500+00:00","stop":"2025-01-02T03:04:06.001234+00:00","elapsed":0.877}`,
		`"status":{"status":10752,"exit_code":42,"signum":null,"signal":null,"core_dump":false}`,
		`"tty_nr":[136,1],"tpgid":null,`,
		`"proc_statm":null`,
		`"memory":null`,
		`"stdin":null`, `"6":null`,
		`"stdout":{"type":"text","text":"hi\n` + "\uFFFD" + `<&>","encoding":"utf-8"}`,
		`"stderr":{"type":"data","data":"AAFiaW5hcnk=","encoding":"base64"}`,
		`"3":{"type":"detached","length":77,"encoding":"utf-8"}`,
		`"5":{"type":"error"}`,
		`"utime":0.25,"stime":0.01,"maxrss":1074790400`,
		`"cguest_time":1.5,"exit_code":10752`,
		`"comm":"sh <x>"`,
	} {
		if !bytes.Contains(got, []byte(s)) {
			t.Errorf("result lacks %s", s)
		}
	}
	var back ProcRes
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, res) {
		t.Errorf("unmarshal differs:\n%+v\n%+v", back, res)
	}
	if txt := back.Fds["4"]; txt.Type != FdResText || txt.Encoding != "base2048" {
		t.Errorf("base2048 fd %+v", txt)
	} else if b, err := DecodeBase2048(txt.Text); err != nil || string(b) != "base2048!" {
		t.Errorf("base2048 text decodes to %q, %v", b, err)
	}
}

func TestProcResStates(t *testing.T) {
	tests := []struct {
		name   string
		st     v1.ProcStatus
		state  string
		status string
	}{
		{"running", v1.ProcStatus{Pid: 1}, StateRunning, "null"},
		{"error beats running", v1.ProcStatus{Pid: 1, Errors: []string{"execve failed: ENOENT"}}, StateError, "null"},
		{"error beats terminated", v1.ProcStatus{Errors: []string{"x"}, WaitStatus: ptr(63 << 8), ExitCode: ptr(63)}, StateError,
			`{"status":16128,"exit_code":63,"signum":null,"signal":null,"core_dump":false}`},
		{"signaled from fields", v1.ProcStatus{WaitStatus: ptr(9), Signal: "SIGKILL"}, StateTerminated,
			`{"status":9,"exit_code":null,"signum":9,"signal":"SIGKILL","core_dump":false}`},
		{"signal name normalized", v1.ProcStatus{WaitStatus: ptr(15), Signal: "term"}, StateTerminated,
			`{"status":15,"exit_code":null,"signum":15,"signal":"SIGTERM","core_dump":false}`},
		{"rt signal and core from raw", v1.ProcStatus{WaitStatus: ptr(0x80 | 35)}, StateTerminated,
			`{"status":163,"exit_code":null,"signum":35,"signal":"SIGRTMIN+1","core_dump":true}`},
		{"exit from raw", v1.ProcStatus{WaitStatus: ptr(3 << 8)}, StateTerminated,
			`{"status":768,"exit_code":3,"signum":null,"signal":null,"core_dump":false}`},
		{"core dump from field", v1.ProcStatus{WaitStatus: ptr(0x80 | 11), Signal: "SIGSEGV", CoreDump: true}, StateTerminated,
			`{"status":139,"exit_code":null,"signum":11,"signal":"SIGSEGV","core_dump":true}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewProcRes(&v1.ProcSpec{}, &tt.st, t2, nil)
			if r.State != tt.state {
				t.Errorf("state %s, want %s", r.State, tt.state)
			}
			b, _ := Marshal(r.Status)
			if string(b) != tt.status {
				t.Errorf("status %s, want %s", b, tt.status)
			}
			all, _ := Marshal(r)
			if !bytes.Contains(all, []byte(`"errors":[`)) || !bytes.Contains(all, []byte(`"fds":{}`)) {
				t.Errorf("errors or fds not a collection: %s", all)
			}
			if tt.st.Times == nil && !bytes.Contains(all, []byte(`"start":"2025-01-02T03:04:06.500+00:00"`)) {
				t.Errorf("start should default to now: %s", all)
			}
		})
	}
	// A zero ProcRes still writes errors as [] and fds as {}.
	b, _ := Marshal(ProcRes{})
	if !bytes.Contains(b, []byte(`"errors":[]`)) || !bytes.Contains(b, []byte(`"fds":{}`)) || !bytes.Contains(b, []byte(`"stop":null`)) {
		t.Errorf("zero result %s", b)
	}
	// A nil OutputSource gives error entries for attached captures.
	spec := &v1.ProcSpec{Fds: []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{}}}}
	if r := NewProcRes(spec, &v1.ProcStatus{}, t2, nil); r.Fds["stdout"].Type != FdResError {
		t.Errorf("nil output: %+v", r.Fds["stdout"])
	}
}

// procstar 0.7.5's own output, with its quirks: off-by-one signal names,
// "???", cguest_time in ticks, u16 tty.
const rustResult = `{"state":"terminated","errors":[],"pid":4242,"proc_stat":{"pid":4242,"comm":"sleep","state":"Z",
"ppid":4200,"pgrp":4242,"session":4200,"tty_nr":[0,0],"tpgid":null,"flags":4227084,"minflt":84,"cminflt":0,"majflt":0,
"cmajflt":0,"utime":0.0,"stime":0.0,"cutime":0.0,"cstime":0.0,"priority":20,"nice":0,"num_threads":1,
"starttime":"2025-01-02T03:04:05.120+00:00","vsize":0,"rss":0,"rsslim":18446744073709551615,"signal":[],"blocked":["???"],
"sigignore":["SIGHUP","???"],"sigcatch":[],"wchan":0,"exit_signal":"SIGCHLD","processor":0,"rt_priority":0,"policy":0,
"delayacct_blkio_ticks":0.0,"guest_time":0.0,"cguest_time":7,"exit_code":0},"proc_statm":null,"cgroup_accounting":null,
"times":{"start":"2025-01-02T03:04:05.123+00:00","now":"2025-01-02T03:04:06+00:00","stop":"2025-01-02T03:04:06.000999+00:00",
"elapsed":0.877},"status":{"status":9,"exit_code":null,"signum":9,"signal":"SIGKILL","core_dump":false},
"rusage":{"utime":0.0,"stime":0.001,"maxrss":1916928,"minflt":84,"majflt":0,"nswap":0,"inblock":0,"oublock":0,"nvcsw":1,"nivcsw":0},
"fds":{"3":{"type":"error"},"stderr":{"type":"detached","length":5,"encoding":"base64"},"stdin":null,
"stdout":{"type":"text","text":"hi\n","encoding":"utf-8"}},"procstar":{"conn":{"conn_id":"x"}}}`

func TestDecodeRustResult(t *testing.T) {
	r, err := DecodeProcRes([]byte(rustResult))
	if err != nil {
		t.Fatal(err)
	}
	if r.State != StateTerminated || r.Pid != 4242 || r.ProcStat.CguestTime != 7 || r.ProcStat.Sigignore[1] != "???" {
		t.Errorf("%+v", r)
	}
	if !r.Times.Start.UTC().Equal(time.Date(2025, 1, 2, 3, 4, 5, 123000000, time.UTC)) || r.Times.Stop == nil {
		t.Errorf("times %+v", r.Times)
	}
	if *r.Status.Signal != "SIGKILL" || r.Status.ExitCode != nil {
		t.Errorf("status %+v", r.Status)
	}
	if r.Fds["stdout"].Text != "hi\n" || r.Fds["stderr"].Length != 5 || r.Fds["3"].Type != FdResError || r.Fds["stdin"] != nil {
		t.Errorf("fds %+v", r.Fds)
	}
	// Re-encoding gives the same JSON, apart from the server's extra key.
	b, err := Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.NewReplacer("\n", "", `,"procstar":{"conn":{"conn_id":"x"}}`, "", `"cguest_time":7`, `"cguest_time":7.0`).Replace(rustResult)
	if string(b) != want {
		t.Errorf("re-encoded:\n%s\nwant\n%s", b, want)
	}
	if _, err := DecodeProcRes([]byte(`{"times":{"start":"nope"}}`)); !errors.Is(err, ErrBadTime) {
		t.Errorf("bad time: %v", err)
	}
}

func TestFdResMarshalUnknown(t *testing.T) {
	if _, err := (FdRes{Type: "bogus"}).MarshalJSON(); err == nil {
		t.Error("unknown type marshalled")
	}
	b, _ := FdRes{Type: FdResFile, Path: "/p"}.MarshalJSON()
	if string(b) != `{"type":"file","path":"/p"}` {
		t.Errorf("file: %s", b)
	}
}

func TestTimeInterfaces(t *testing.T) {
	var v any = Time{}
	if _, ok := v.(encoding.BinaryMarshaler); ok {
		t.Error("Time implements BinaryMarshaler; msgpack would not write a string")
	}
	if _, ok := v.(encoding.TextMarshaler); !ok {
		t.Error("Time does not implement TextMarshaler")
	}
	tm := NewTime(t0)
	b, _ := tm.MarshalText()
	var back Time
	if err := back.UnmarshalText(b); err != nil || !back.UTC().Equal(t0) || tm.String() != string(b) {
		t.Errorf("text round trip %s: %v %v", b, back, err)
	}
}

// TestProcResV1RoundTrip: v1 status -> ProcRes -> v1 status keeps what
// the result carries.
func TestProcResV1RoundTrip(t *testing.T) {
	st := goldenStatus()
	out := fakeOutput{1: "hi\n", 2: "\x00\x01binary", 4: "base2048!"}
	res := NewProcRes(goldenSpec(), st, t2, out)
	data, err := Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeProcRes(data)
	if err != nil {
		t.Fatal(err)
	}
	got := back.ToV1Status()
	if got.Phase != v1.PhaseFailed || got.Pid != st.Pid || *got.ExitCode != 42 || *got.WaitStatus != 42<<8 {
		t.Errorf("status %+v", got)
	}
	if !got.Times.Start.Equal(*st.Times.Start) || !got.Times.Stop.Equal(*st.Times.Stop) || got.Times.Elapsed != st.Times.Elapsed {
		t.Errorf("times %+v", got.Times)
	}
	if !reflect.DeepEqual(got.ProcStat, st.ProcStat) {
		t.Errorf("proc stat\n%+v\n%+v", got.ProcStat, st.ProcStat)
	}
	if !reflect.DeepEqual(got.Rusage, st.Rusage) || !reflect.DeepEqual(got.CgroupAccounting, st.CgroupAccounting) {
		t.Errorf("rusage/cgroup differ")
	}
	wantFds := map[string]v1.FdStatus{
		"stdout": {Length: 3, Encoding: v1.EncodingUTF8},
		"stderr": {Length: 8, Encoding: v1.EncodingBase64},
		"3":      {Length: 77, Encoding: v1.EncodingUTF8},
		"4":      {Length: 9, Encoding: v1.EncodingBase2048},
	}
	if !reflect.DeepEqual(got.Fds, wantFds) {
		t.Errorf("fds %+v", got.Fds)
	}
	rust, err := DecodeProcRes([]byte(rustResult))
	if err != nil {
		t.Fatal(err)
	}
	if s := rust.ToV1Status(); s.Phase != v1.PhaseFailed || s.Signal != "SIGKILL" || s.ProcStat.CguestTime != 7 {
		t.Errorf("rust status %+v", s)
	}
}
