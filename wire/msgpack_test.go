package wire

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

var (
	mpT0 = time.Date(2025, 1, 2, 3, 4, 5, 123456789, time.UTC)
	mpT1 = time.Date(2025, 1, 2, 3, 4, 6, 500000000, time.UTC)
)

// mustSpec decodes a JSON proc spec, so that defaults are filled as on
// the wire.
func mustSpec(t testing.TB, js string) ProcSpec {
	t.Helper()
	var p ProcSpec
	if err := p.UnmarshalJSON([]byte(js)); err != nil {
		t.Fatalf("spec %s: %v", js, err)
	}
	return p
}

// typicalRes is a terminated proc's result with every part filled.
func typicalRes() ProcRes {
	stop := NewTime(mpT1)
	return ProcRes{
		State:  StateTerminated,
		Errors: []string{"failed to set up fd 3: EBADF"},
		Pid:    12345,
		ProcStat: &ProcStat{
			Pid: 12345, Comm: "sleep", State: "Z", Ppid: 1, Pgrp: 12345, Session: 12345, TtyNr: [2]uint32{136, 3},
			Tpgid: ptr(-0 + 7), Flags: 4194560, Minflt: 100, Cminflt: 0, Majflt: 1, Cmajflt: 0,
			Utime: 0.01, Stime: 0.02, Cutime: 0, Cstime: 0, Priority: 20, Nice: 0, NumThreads: 1,
			Starttime: NewTime(mpT0), Vsize: 8 << 20, Rss: 1 << 20, Rsslim: math.MaxUint64,
			Signal: []string{}, Blocked: []string{"SIGCHLD"}, Sigignore: []string{}, Sigcatch: []string{"SIGTERM", "SIGINT"},
			Wchan: 0, ExitSignal: ptr("SIGCHLD"), Processor: 1, RtPriority: 0, Policy: 0,
			DelayacctBlkioTicks: 0, GuestTime: 0, CguestTime: 0.5, ExitCode: 0,
		},
		ProcStatm: &ProcStatm{Size: 1 << 20, Resident: 1 << 19, Shared: 1 << 18, Text: 4096, Data: 8192},
		CgroupAccounting: &CgroupAccounting{
			Pids:    &CgroupPids{Current: 0, Peak: 3},
			CPUStat: CgroupCPUStat{UsageUsec: 1234, UserUsec: 1000, SystemUsec: 234, NrPeriods: ptr(uint64(5))},
			Memory:  &CgroupMemory{Current: 0, Peak: 352256},
		},
		Times:  Times{Start: NewTime(mpT0), Now: NewTime(mpT1), Stop: &stop, Elapsed: 1.376543211},
		Status: &Status{Status: 10752, ExitCode: ptr(42), CoreDump: false},
		Rusage: &Rusage{Utime: 0.25, Stime: 0.01, Maxrss: 1074790400, Minflt: 1, Oublock: 8, Nvcsw: 3, Nivcsw: 1},
		Fds: map[string]*FdRes{
			"stdin":  nil,
			"stdout": {Type: FdResText, Text: "hi\n", Encoding: "utf-8"},
			"stderr": {Type: FdResData, Data: "aGkK", Encoding: "base64"},
			"3":      {Type: FdResDetached, Length: 0, Encoding: "base64"},
			"4":      {Type: FdResError},
			"5":      {Type: FdResFile, Path: "/tmp/x"},
		},
	}
}

// runningRes is a typical result of a running proc with a small output.
func runningRes() ProcRes {
	r := typicalRes()
	r.State, r.Errors, r.Status, r.Rusage, r.CgroupAccounting, r.Times.Stop = StateRunning, []string{}, nil, nil, nil, nil
	r.Fds = map[string]*FdRes{"stdin": nil, "stdout": {Type: FdResText, Text: "hello, world\n", Encoding: "utf-8"},
		"stderr": {Type: FdResData, Data: "", Encoding: "base64"}}
	return r
}

// sampleMessages has one message of each type, every field set.
func sampleMessages(t testing.TB) []Message {
	spec := mustSpec(t, `{"exe":"/bin/sh","argv":["sh","-c","echo hi"],
		"env":{"inherit":["HOME"],"vars":{"A":"1","B":null}},
		"fds":[["stdin",{"null":{}}],["stdout",{"capture":{"mode":"memory","encoding":"utf-8"}}],
		       ["stderr",{"dup":{"fd":1}}],["3","close"],["4","inherit"],["5",{"file":{"path":"/tmp/f","flags":"Append"}}],
		       ["6","pipe-write"],["7",{"pipe-read":{"proc_id":"b","fd":"6"}}]],
		"systemd_properties":{"scope":{"oom_policy":"kill","runtime_max_usec":60000000},
		                      "slice":{"memory_accounting":true,"memory_max":268435456,"tasks_max":512}}}`)
	return []Message{
		Register{
			Conn:    ConnInfo{ConnID: "c1", GroupID: "default", RestrictedExe: ptr("/bin/true")},
			Proc:    ProcInfo{Pid: 4242, Ppid: 1, UID: 1000, EUID: 1000, Username: ptr("alice"), GID: 100, EGID: 100, Groupname: nil, Hostname: "h1"},
			ProcIDs: []string{"a", "b"}, AccessToken: "tok", ShutdownState: "active",
			Labels: map[string]string{"team": "data"},
			Resources: &AgentResources{Backend: "cgroup", Detail: "/sys/fs/cgroup/procstar", Controllers: []string{"cpu", "memory", "pids"},
				BestEffort: true, PerfCounters: "available"},
		},
		Registered{},
		ProcStartRequest{Specs: map[string]ProcSpec{"a": spec, "b": mustSpec(t, `{"argv":["/bin/true"]}`)}},
		ProcidListRequest{},
		ProcResultRequest{ProcID: "a"},
		ProcSignalRequest{ProcID: "a", Signum: 15},
		ProcFdDataRequest{ProcID: "a", Fd: "stdout", Start: 3, Stop: ptr(int64(10))},
		ProcFdDataRequest{ProcID: "a", Fd: "2", Start: 0, Stop: nil},
		ProcDeleteRequest{ProcID: "a"},
		RequestError{Msg: map[string]any{"type": "ProcDeleteRequest", "proc_id": "a", "n": int64(-3), "big": uint64(math.MaxUint64),
			"f": 1.5, "b": []byte{1, 2}, "l": []any{"x", nil, true}, "m": map[string]any{"k": "v"}}, Err: "process running: a"},
		ProcUnknown{ProcID: "zz"},
		ProcidList{ProcIDs: []string{"a", "b", "c"}},
		ProcResult{ProcID: "a", Res: typicalRes()},
		ProcResult{ProcID: "b", Res: runningRes()},
		ProcFdData{ProcID: "a", Fd: "stdout", Start: 0, Stop: 3, Encoding: ptr("utf-8"), Data: []byte("hi\n")},
		ProcFdData{ProcID: "a", Fd: "stderr", Start: 5, Stop: 5, Encoding: nil, Data: []byte{}},
		ProcDelete{ProcID: "a"},
		ShutDown{ShutdownState: "idling"},
	}
}

func TestRoundTripEveryMessage(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range sampleMessages(t) {
		seen[m.MessageType()] = true
		t.Run(m.MessageType(), func(t *testing.T) {
			b, err := EncodeMessage(m)
			if err != nil {
				t.Fatalf("encode: %v", err)
			}
			got, err := DecodeMessage(b)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, m) {
				t.Errorf("round trip:\n got %#v\nwant %#v", got, m)
			}
			// A pointer encodes the same.
			pv := reflect.New(reflect.TypeOf(m))
			pv.Elem().Set(reflect.ValueOf(m))
			b2, err := EncodeMessage(pv.Interface().(Message))
			if err != nil || !bytes.Equal(b, b2) {
				t.Errorf("pointer encoding differs: %v", err)
			}
			// The library reads it as a map whose "type" is the message's.
			var generic map[string]any
			if err := msgpack.Unmarshal(b, &generic); err != nil {
				t.Fatalf("vmihailenco/msgpack cannot decode: %v", err)
			}
			if generic["type"] != m.MessageType() {
				t.Errorf("type = %v", generic["type"])
			}
		})
	}
	for typ := range messageTypes {
		if !seen[typ] {
			t.Errorf("no sample of %s", typ)
		}
	}
}

// TestNilSlicesEncodeEmpty: never-nil lists and maps are written as
// empty ones, and Register's labels only when set.
func TestNilSlicesEncodeEmpty(t *testing.T) {
	for _, tc := range []struct {
		m    Message
		want Message
	}{
		{ProcidList{}, ProcidList{ProcIDs: []string{}}},
		{ProcResult{ProcID: "p", Res: ProcRes{State: "running"}},
			ProcResult{ProcID: "p", Res: ProcRes{State: "running", Errors: []string{}, Fds: map[string]*FdRes{}}}},
		{ProcFdData{ProcID: "p", Fd: "stdout"}, ProcFdData{ProcID: "p", Fd: "stdout", Data: []byte{}}},
		{Register{}, Register{ProcIDs: []string{}}},
	} {
		b, err := EncodeMessage(tc.m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %#v, want %#v", tc.m.MessageType(), got, tc.want)
		}
		if _, ok := tc.m.(Register); ok {
			if g := genericOf(t, b); g["labels"] != nil || len(g) != 6 {
				t.Errorf("Register keys %v, want 6 without labels", keys(g))
			}
		}
	}
}

func genericOf(t testing.TB, b []byte) map[string]any {
	t.Helper()
	r := &reader{b: b}
	m, err := r.anyMap()
	if err != nil {
		t.Fatalf("generic decode: %v", err)
	}
	return m
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

func TestGoldenBytes(t *testing.T) {
	cat := func(parts ...string) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		m    Message
		want []byte
	}{
		{"ProcDelete", ProcDelete{ProcID: "p1"},
			cat("\x82", "\xa4type", "\xaaProcDelete", "\xa7proc_id", "\xa2p1")},
		{"Registered", Registered{}, cat("\x81", "\xa4type", "\xaaRegistered")},
		{"ProcSignalRequest", ProcSignalRequest{ProcID: "p", Signum: 300},
			cat("\x83", "\xa4type", "\xb1ProcSignalRequest", "\xa7proc_id", "\xa1p", "\xa6signum", "\xcd\x01\x2c")},
		{"ProcFdDataRequest", ProcFdDataRequest{ProcID: "p", Fd: "stdout", Start: -1},
			cat("\x85", "\xa4type", "\xb1ProcFdDataRequest", "\xa7proc_id", "\xa1p", "\xa2fd", "\xa6stdout",
				"\xa5start", "\xff", "\xa4stop", "\xc0")},
		{"ProcFdData", ProcFdData{ProcID: "p", Fd: "stdout", Start: 0, Stop: 2, Encoding: ptr("utf-8"), Data: []byte("hi")},
			cat("\x87", "\xa4type", "\xaaProcFdData", "\xa7proc_id", "\xa1p", "\xa2fd", "\xa6stdout", "\xa5start", "\x00",
				"\xa4stop", "\x02", "\xa8encoding", "\xa5utf-8", "\xa4data", "\xc4\x02hi")},
		{"ShutDown", ShutDown{ShutdownState: "done"},
			cat("\x82", "\xa4type", "\xa8ShutDown", "\xaeshutdown_state", "\xa4done")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := EncodeMessage(tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tc.want) {
				t.Errorf("bytes\n got % x\nwant % x", got, tc.want)
			}
			// Key set, independent of order, through the library.
			var g, w map[string]any
			if err := msgpack.Unmarshal(got, &g); err != nil {
				t.Fatal(err)
			}
			if err := msgpack.Unmarshal(tc.want, &w); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(g) != fmt.Sprint(w) {
				t.Errorf("maps differ: %v vs %v", g, w)
			}
		})
	}
}

// TestBinAndStrFormats checks that data is bin in each width and that
// strings are str.
func TestBinAndStrFormats(t *testing.T) {
	for _, tc := range []struct {
		n    int
		code byte
	}{{0, 0xc4}, {255, 0xc4}, {256, 0xc5}, {65535, 0xc5}, {65536, 0xc6}} {
		data := bytes.Repeat([]byte{'x'}, tc.n)
		b, err := EncodeMessage(ProcFdData{ProcID: "p", Fd: "stdout", Stop: int64(tc.n), Data: data})
		if err != nil {
			t.Fatal(err)
		}
		i := bytes.Index(b, []byte("\xa4data"))
		if i < 0 || b[i+5] != tc.code {
			t.Errorf("len %d: data code %#x, want %#x", tc.n, b[i+5], tc.code)
		}
		// Every other value of this message is a str, int or nil.
		r := &reader{b: b}
		n, _ := r.mapLen()
		for range n {
			if k, _ := r.peek(); k != kindStr {
				t.Fatalf("key kind %v", k)
			}
			key, _ := r.str()
			k, _ := r.peek()
			want := map[string]mpKind{"type": kindStr, "proc_id": kindStr, "fd": kindStr, "start": kindInt, "stop": kindInt,
				"encoding": kindNil, "data": kindBin}[key]
			if k != want {
				t.Errorf("%s: kind %v, want %v", key, k, want)
			}
			_ = r.skip()
		}
		m, err := DecodeMessage(b)
		if err != nil || !bytes.Equal(m.(ProcFdData).Data, data) {
			t.Errorf("len %d: decode: %v", tc.n, err)
		}
	}
}

// toJSON converts msgpack to JSON text keeping key order, writing floats
// as serde_json does, for comparison with the JSON form of a result.
func toJSON(t *testing.T, r *reader, b *bytes.Buffer) {
	t.Helper()
	k, err := r.peek()
	if err != nil {
		t.Fatal(err)
	}
	switch k {
	case kindFloat:
		f, _ := r.float()
		b.Write(AppendFloat(nil, f))
	case kindMap:
		n, _ := r.mapLen()
		b.WriteByte('{')
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			key, err := r.str()
			if err != nil {
				t.Fatal(err)
			}
			q, _ := Marshal(key)
			b.Write(q)
			b.WriteByte(':')
			toJSON(t, r, b)
		}
		b.WriteByte('}')
	case kindArray:
		n, _ := r.arrayLen()
		b.WriteByte('[')
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			toJSON(t, r, b)
		}
		b.WriteByte(']')
	case kindBin:
		t.Fatalf("bin in a result")
	default:
		out, err := r.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(out)
	}
}

// TestResultMatchesJSON: a result in msgpack has the JSON result's keys,
// order and values (nil for null, times as strings, floats as float64).
func TestResultMatchesJSON(t *testing.T) {
	for _, res := range []ProcRes{typicalRes(), runningRes()} {
		b, err := EncodeMessage(ProcResult{ProcID: "p", Res: res})
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		toJSON(t, &reader{b: b}, &got)
		resJSON, err := Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		want := `{"type":"ProcResult","proc_id":"p","res":` + string(resJSON) + `}`
		if got.String() != want {
			t.Errorf("msgpack as JSON\n got %s\nwant %s", got.String(), want)
		}
		// Floats are float64 (0xcb), never float32 or ints.
		if bytes.IndexByte(b, 0xca) >= 0 && !bytes.Contains(b, []byte{0xcb}) {
			t.Errorf("no float64 in result")
		}
	}
}

// entry builds one map entry for frame.
type kv struct {
	k string
	v any // msgpack.RawMessage for exact bytes
}

// frame encodes a map with keys in the given order.
func frame(t testing.TB, entries ...kv) []byte {
	t.Helper()
	var buf bytes.Buffer
	e := msgpack.NewEncoder(&buf)
	e.UseCompactInts(true)
	if err := e.EncodeMapLen(len(entries)); err != nil {
		t.Fatal(err)
	}
	for _, x := range entries {
		if err := e.EncodeString(x.k); err != nil {
			t.Fatal(err)
		}
		if err := e.Encode(x.v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

type raw = msgpack.RawMessage

func TestDecodeAccepts(t *testing.T) {
	typ := func(s string) kv { return kv{"type", s} }
	for _, tc := range []struct {
		name string
		data []byte
		want Message
	}{
		{"type not first", frame(t, kv{"proc_id", "p"}, typ("ProcDelete")), ProcDelete{ProcID: "p"}},
		{"int8 signum", frame(t, typ("ProcSignalRequest"), kv{"proc_id", "p"}, kv{"signum", raw{0xd0, 0x0f}}),
			ProcSignalRequest{ProcID: "p", Signum: 15}},
		{"uint64 signum", frame(t, typ("ProcSignalRequest"), kv{"proc_id", "p"}, kv{"signum", raw{0xcf, 0, 0, 0, 0, 0, 0, 0, 9}}),
			ProcSignalRequest{ProcID: "p", Signum: 9}},
		{"int64 negative start", frame(t, typ("ProcFdDataRequest"), kv{"proc_id", "p"}, kv{"fd", "stdout"},
			kv{"start", raw{0xd3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}}, kv{"stop", nil}),
			ProcFdDataRequest{ProcID: "p", Fd: "stdout", Start: -2}},
		{"ProcFdDataRequest without stop (serde Option)", frame(t, typ("ProcFdDataRequest"), kv{"proc_id", "p"}, kv{"fd", "stdout"}, kv{"start", 3}),
			ProcFdDataRequest{ProcID: "p", Fd: "stdout", Start: 3}},
		{"ProcFdDataRequest with stop", frame(t, typ("ProcFdDataRequest"), kv{"proc_id", "p"}, kv{"fd", "1"}, kv{"start", 3}, kv{"stop", 5}),
			ProcFdDataRequest{ProcID: "p", Fd: "1", Start: 3, Stop: ptr(int64(5))}},
		{"str8 proc id", frame(t, typ("ProcDelete"), kv{"proc_id", raw{0xd9, 1, 'q'}}), ProcDelete{ProcID: "q"}},
		{"Register extra key, no labels, nil proc_ids", frame(t, typ("Register"),
			kv{"conn", map[string]any{"conn_id": "c", "group_id": "g", "restricted_exe": nil}},
			kv{"proc", map[string]any{"pid": 1, "ppid": 0, "uid": 0, "euid": 0, "username": "root", "gid": 0, "egid": 0, "groupname": nil, "hostname": "h"}},
			kv{"proc_ids", nil}, kv{"access_token", ""}, kv{"shutdown_state", "active"}, kv{"future", []int{1}}, kv{"labels", nil}),
			Register{Conn: ConnInfo{ConnID: "c", GroupID: "g"}, Proc: ProcInfo{Pid: 1, Username: ptr("root"), Hostname: "h"}, ShutdownState: "active"}},
		{"Register nil resources", frame(t, typ("Register"),
			kv{"conn", map[string]any{"conn_id": "c", "group_id": "g", "restricted_exe": nil}},
			kv{"proc", map[string]any{"pid": 1, "ppid": 0, "uid": 0, "euid": 0, "username": nil, "gid": 0, "egid": 0, "groupname": nil, "hostname": "h"}},
			kv{"proc_ids", []string{}}, kv{"access_token", ""}, kv{"shutdown_state", "active"}, kv{"resources", nil}),
			Register{Conn: ConnInfo{ConnID: "c", GroupID: "g"}, Proc: ProcInfo{Pid: 1, Hostname: "h"}, ProcIDs: []string{}, ShutdownState: "active"}},
		{"Register resources, keys in any order", frame(t, typ("Register"),
			kv{"conn", map[string]any{"conn_id": "c", "group_id": "g", "restricted_exe": nil}},
			kv{"proc", map[string]any{"pid": 1, "ppid": 0, "uid": 0, "euid": 0, "username": nil, "gid": 0, "egid": 0, "groupname": nil, "hostname": "h"}},
			kv{"resources", raw(frame(t, kv{"perf_counters", "perf_event_paranoid is 3"}, kv{"best_effort", false}, kv{"controllers", []string{}},
				kv{"detail", "no cgroup v2"}, kv{"backend", "none"}))},
			kv{"access_token", ""}, kv{"shutdown_state", "active"}),
			Register{Conn: ConnInfo{ConnID: "c", GroupID: "g"}, Proc: ProcInfo{Pid: 1, Hostname: "h"}, ShutdownState: "active",
				Resources: &AgentResources{Backend: "none", Detail: "no cgroup v2", Controllers: []string{}, PerfCounters: "perf_event_paranoid is 3"}}},
		{"Register without proc_ids", frame(t, typ("Register"),
			kv{"conn", map[string]any{"conn_id": "c", "group_id": "g", "restricted_exe": nil}},
			kv{"proc", map[string]any{"pid": 1, "ppid": 0, "uid": 0, "euid": 0, "username": nil, "gid": 0, "egid": 0, "groupname": nil, "hostname": "h"}},
			kv{"access_token", "t"}, kv{"shutdown_state", "done"}),
			Register{Conn: ConnInfo{ConnID: "c", GroupID: "g"}, Proc: ProcInfo{Pid: 1, Hostname: "h"}, AccessToken: "t", ShutdownState: "done"}},
		{"spec defaults and env inherit false", frame(t, typ("ProcStartRequest"),
			kv{"specs", map[string]any{"p": map[string]any{"argv": []string{"/bin/true"}, "env": map[string]any{"inherit": false},
				"fds": []any{[]any{"stdout", map[string]any{"capture": map[string]any{}}}, []any{"stdin", map[string]any{"close": nil}}}}}}),
			ProcStartRequest{Specs: map[string]ProcSpec{"p": mustSpec(t,
				`{"argv":["/bin/true"],"env":{"inherit":false},"fds":[["stdout",{"capture":{}}],["stdin","close"]]}`)}}},
		{"integer cguest_time", nil, nil}, // filled below
	} {
		if tc.data == nil {
			res := runningRes()
			b, _ := EncodeMessage(ProcResult{ProcID: "p", Res: res})
			// Replace cguest_time's float64 0.5 with the integer 7.
			old := append([]byte("\xabcguest_time\xcb"), mustF64(0.5)...)
			b = bytes.Replace(b, old, []byte("\xabcguest_time\x07"), 1)
			res.ProcStat.CguestTime = 7
			tc.data, tc.want = b, ProcResult{ProcID: "p", Res: res}
		}
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeMessage(tc.data)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

func mustF64(f float64) []byte {
	var b bytes.Buffer
	_ = msgpack.NewEncoder(&b).EncodeFloat64(f)
	return b.Bytes()[1:]
}

func TestDecodeRejects(t *testing.T) {
	typ := func(s string) kv { return kv{"type", s} }
	okConn := map[string]any{"conn_id": "c", "group_id": "g", "restricted_exe": nil}
	okProc := map[string]any{"pid": 1, "ppid": 0, "uid": 0, "euid": 0, "username": nil, "gid": 0, "egid": 0, "groupname": nil, "hostname": "h"}
	spec := func(s any) []byte { return frame(t, typ("ProcStartRequest"), kv{"specs", map[string]any{"p": s}}) }
	// reg is a valid Register with extra entries.
	reg := func(extra ...kv) []byte {
		return frame(t, append([]kv{typ("Register"), {"conn", okConn}, {"proc", okProc}, {"proc_ids", []string{}},
			{"access_token", ""}, {"shutdown_state", "active"}}, extra...)...)
	}
	// withRes is a valid resources map changed by edit.
	withRes := func(edit func(map[string]any)) map[string]any {
		m := map[string]any{"backend": "cgroup", "detail": "/sys/fs/cgroup", "controllers": []string{"cpu"},
			"best_effort": true, "perf_counters": "available"}
		edit(m)
		return m
	}
	deep := bytes.Repeat([]byte{0x91}, 10000)
	deep = append(deep, 0xc0)
	dupType := frame(t, typ("ProcDelete"), kv{"proc_id", "p"}, typ("ProcDelete"))
	dupType[0] = 0x83
	resWith := func(from, to string) []byte {
		b, _ := EncodeMessage(ProcResult{ProcID: "p", Res: runningRes()})
		nb := bytes.Replace(b, []byte(from), []byte(to), 1)
		if bytes.Equal(nb, b) {
			t.Fatalf("replacement %q not found", from)
		}
		return nb
	}
	for _, tc := range []struct {
		name     string
		data     []byte
		typ      string // "" for a plain error
		wantSpec bool   // wraps ErrBadSpec
		rawKey   string // a key Raw must hold
	}{
		{"empty", nil, "", false, ""},
		{"nil", []byte{0xc0}, "", false, ""},
		{"array", []byte{0x91, 0xa1, 'x'}, "", false, ""},
		{"string", []byte{0xa4, 't', 'y', 'p', 'e'}, "", false, ""},
		{"truncated", []byte{0x82, 0xa4, 't'}, "", false, ""},
		{"no type", frame(t, kv{"proc_id", "p"}), "", false, ""},
		{"type not string", frame(t, kv{"type", 5}, kv{"proc_id", "p"}), "", false, ""},
		{"type bin", frame(t, kv{"type", []byte("ProcDelete")}, kv{"proc_id", "p"}), "", false, ""},
		{"huge map length", []byte{0xdf, 0xff, 0xff, 0xff, 0xff}, "", false, ""},
		{"deep nesting", append([]byte{0x82, 0xa4, 't', 'y', 'p', 'e', 0xa1, 'x', 0xa1, 'y'}, deep...), "x", false, "type"},
		{"unknown type", frame(t, typ("Bogus"), kv{"proc_id", "p"}), "Bogus", false, "proc_id"},
		{"extra key", frame(t, typ("ProcDelete"), kv{"proc_id", "p"}, kv{"x", 1}), "ProcDelete", false, "x"},
		{"missing key", frame(t, typ("ProcDelete")), "ProcDelete", false, "type"},
		{"duplicate key", frame(t, typ("ProcDelete"), kv{"proc_id", "p"}, kv{"proc_id", "q"}), "ProcDelete", false, "type"},
		{"duplicate type", dupType, "ProcDelete", false, "type"},
		{"trailing bytes", append(frame(t, typ("ProcDelete"), kv{"proc_id", "p"}), 0xc0), "ProcDelete", false, "type"},
		{"Registered with a field", frame(t, typ("Registered"), kv{"x", nil}), "Registered", false, "x"},
		{"proc_id nil", frame(t, typ("ProcDelete"), kv{"proc_id", nil}), "ProcDelete", false, "proc_id"},
		{"proc_id int", frame(t, typ("ProcDelete"), kv{"proc_id", 7}), "ProcDelete", false, "proc_id"},
		{"proc_id bin", frame(t, typ("ProcDelete"), kv{"proc_id", []byte("p")}), "ProcDelete", false, "proc_id"},
		{"proc_id invalid UTF-8", frame(t, typ("ProcDelete"), kv{"proc_id", raw{0xa2, 0xff, 0xfe}}), "ProcDelete", false, ""},
		{"signum string", frame(t, typ("ProcSignalRequest"), kv{"proc_id", "p"}, kv{"signum", "15"}), "ProcSignalRequest", false, "signum"},
		{"signum float", frame(t, typ("ProcSignalRequest"), kv{"proc_id", "p"}, kv{"signum", 15.0}), "ProcSignalRequest", false, "signum"},
		{"signum nil", frame(t, typ("ProcSignalRequest"), kv{"proc_id", "p"}, kv{"signum", nil}), "ProcSignalRequest", false, "signum"},
		{"signum bool", frame(t, typ("ProcSignalRequest"), kv{"proc_id", "p"}, kv{"signum", true}), "ProcSignalRequest", false, "signum"},
		{"signum too big", frame(t, typ("ProcSignalRequest"), kv{"proc_id", "p"}, kv{"signum", uint64(math.MaxUint64)}), "ProcSignalRequest", false, "signum"},
		{"start missing", frame(t, typ("ProcFdDataRequest"), kv{"proc_id", "p"}, kv{"fd", "stdout"}, kv{"stop", nil}), "ProcFdDataRequest", false, "stop"},
		{"ProcFdData encoding missing", frame(t, typ("ProcFdData"), kv{"proc_id", "p"}, kv{"fd", "stdout"}, kv{"start", 0}, kv{"stop", 2}, kv{"data", []byte("hi")}), "ProcFdData", false, "data"},
		{"conn restricted_exe missing", frame(t, typ("Register"),
			kv{"conn", map[string]any{"conn_id": "c", "group_id": "g"}},
			kv{"proc", map[string]any{"pid": 1, "ppid": 0, "uid": 0, "euid": 0, "username": nil, "gid": 0, "egid": 0, "groupname": nil, "hostname": "h"}},
			kv{"proc_ids", []string{}}, kv{"access_token", ""}, kv{"shutdown_state", "active"}), "Register", false, "conn"},
		{"stop string", frame(t, typ("ProcFdDataRequest"), kv{"proc_id", "p"}, kv{"fd", "stdout"}, kv{"start", 0}, kv{"stop", "9"}), "ProcFdDataRequest", false, "stop"},
		{"fd int", frame(t, typ("ProcFdDataRequest"), kv{"proc_id", "p"}, kv{"fd", 1}, kv{"start", 0}, kv{"stop", nil}), "ProcFdDataRequest", false, "fd"},
		{"data str", frame(t, typ("ProcFdData"), kv{"proc_id", "p"}, kv{"fd", "stdout"}, kv{"start", 0}, kv{"stop", 2}, kv{"encoding", nil}, kv{"data", "hi"}), "ProcFdData", false, "data"},
		{"proc_ids not list", frame(t, typ("ProcidList"), kv{"proc_ids", "a"}), "ProcidList", false, "proc_ids"},
		{"proc_ids nil", frame(t, typ("ProcidList"), kv{"proc_ids", nil}), "ProcidList", false, "proc_ids"},
		{"msg too deep", frame(t, typ("RequestError"), kv{"msg", map[string]any{"x": raw(deep)}}, kv{"err", "e"}), "RequestError", false, "type"},
		{"msg not map", frame(t, typ("RequestError"), kv{"msg", "x"}, kv{"err", "e"}), "RequestError", false, "msg"},
		{"msg int keys", frame(t, typ("RequestError"), kv{"msg", map[int]int{1: 2}}, kv{"err", "e"}), "RequestError", false, ""},
		{"Register conn extra key", frame(t, typ("Register"), kv{"conn", map[string]any{"conn_id": "c", "group_id": "g", "restricted_exe": nil, "x": 1}},
			kv{"proc", okProc}, kv{"proc_ids", []string{}}, kv{"access_token", ""}, kv{"shutdown_state", "active"}), "Register", false, "conn"},
		{"Register proc missing key", frame(t, typ("Register"), kv{"conn", okConn},
			kv{"proc", map[string]any{"pid": 1}}, kv{"proc_ids", []string{}}, kv{"access_token", ""}, kv{"shutdown_state", "active"}), "Register", false, "proc"},
		{"Register no access_token", frame(t, typ("Register"), kv{"conn", okConn}, kv{"proc", okProc}, kv{"shutdown_state", "active"}), "Register", false, "conn"},
		{"Register labels not strings", frame(t, typ("Register"), kv{"conn", okConn}, kv{"proc", okProc}, kv{"access_token", ""},
			kv{"shutdown_state", "active"}, kv{"labels", map[string]any{"a": 1}}), "Register", false, "labels"},
		{"Register resources not a map", reg(kv{"resources", "cgroup"}), "Register", false, "resources"},
		{"Register resources a list", reg(kv{"resources", []string{"cgroup"}}), "Register", false, "resources"},
		{"Register resources extra key", reg(kv{"resources", withRes(func(m map[string]any) { m["cpus"] = 4 })}), "Register", false, "resources"},
		{"Register resources missing backend", reg(kv{"resources", withRes(func(m map[string]any) { delete(m, "backend") })}), "Register", false, "resources"},
		{"Register resources missing best_effort", reg(kv{"resources", withRes(func(m map[string]any) { delete(m, "best_effort") })}), "Register", false, "resources"},
		{"Register resources backend int", reg(kv{"resources", withRes(func(m map[string]any) { m["backend"] = 1 })}), "Register", false, "resources"},
		{"Register resources backend nil", reg(kv{"resources", withRes(func(m map[string]any) { m["backend"] = nil })}), "Register", false, "resources"},
		{"Register resources detail bin", reg(kv{"resources", withRes(func(m map[string]any) { m["detail"] = []byte("x") })}), "Register", false, "resources"},
		{"Register resources controllers nil", reg(kv{"resources", withRes(func(m map[string]any) { m["controllers"] = nil })}), "Register", false, "resources"},
		{"Register resources controllers string", reg(kv{"resources", withRes(func(m map[string]any) { m["controllers"] = "cpu" })}), "Register", false, "resources"},
		{"Register resources controllers ints", reg(kv{"resources", withRes(func(m map[string]any) { m["controllers"] = []int{1} })}), "Register", false, "resources"},
		{"Register resources best_effort int", reg(kv{"resources", withRes(func(m map[string]any) { m["best_effort"] = 1 })}), "Register", false, "resources"},
		{"Register resources best_effort string", reg(kv{"resources", withRes(func(m map[string]any) { m["best_effort"] = "true" })}), "Register", false, "resources"},
		{"Register resources perf_counters bool", reg(kv{"resources", withRes(func(m map[string]any) { m["perf_counters"] = true })}), "Register", false, "resources"},
		{"Register resources bestEffort (JSON name)", reg(kv{"resources", withRes(func(m map[string]any) { m["bestEffort"] = m["best_effort"]; delete(m, "best_effort") })}),
			"Register", false, "resources"},
		{"Register resources duplicate key", reg(kv{"resources", raw(frame(t, kv{"backend", "none"}, kv{"detail", ""}, kv{"controllers", []string{}},
			kv{"best_effort", false}, kv{"perf_counters", "x"}, kv{"backend", "cgroup"}))}), "Register", false, "type"},
		{"spec unknown field", spec(map[string]any{"argv": []string{"x"}, "cwd": "/"}), "ProcStartRequest", true, "specs"},
		{"spec env inherit nil", spec(map[string]any{"env": map[string]any{"inherit": nil}}), "ProcStartRequest", true, "specs"},
		{"spec env inherit string", spec(map[string]any{"env": map[string]any{"inherit": "All"}}), "ProcStartRequest", true, "specs"},
		{"spec fd not a pair", spec(map[string]any{"fds": []any{[]any{"stdout"}}}), "ProcStartRequest", true, "specs"},
		{"spec bare null variant", spec(map[string]any{"fds": []any{[]any{"stdout", "null"}}}), "ProcStartRequest", true, "specs"},
		{"spec unknown variant", spec(map[string]any{"fds": []any{[]any{"stdout", map[string]any{"socket": map[string]any{}}}}}), "ProcStartRequest", true, "specs"},
		{"spec capture unknown field", spec(map[string]any{"fds": []any{[]any{"stdout", map[string]any{"capture": map[string]any{"limit": 5}}}}}), "ProcStartRequest", true, "specs"},
		{"spec float", spec(map[string]any{"fds": []any{[]any{"stdout", map[string]any{"dup": map[string]any{"fd": 1.0}}}}}), "ProcStartRequest", false, "specs"},
		{"spec bin", spec(map[string]any{"exe": []byte("/bin/true")}), "ProcStartRequest", false, "specs"},
		{"spec negative u64", spec(map[string]any{"systemd_properties": map[string]any{"slice": map[string]any{"tasks_max": -1}}}), "ProcStartRequest", true, "specs"},
		{"spec not map", spec("x"), "ProcStartRequest", true, "specs"},
		{"specs missing", frame(t, typ("ProcStartRequest")), "ProcStartRequest", false, "type"},
		{"fd result unknown type", resWith("\xa4type\xa4text", "\xa4type\xa4tixt"), "ProcResult", false, "res"},
		{"fd result extra field", resWith("\xa4type\xa4text\xa4text", "\xa4type\xa4text\xa4path"), "ProcResult", false, "res"},
		{"bad time", resWith("\xa5start\xd9\x232025", "\xa5start\xd9\x23x025"), "ProcResult", false, "res"},
		{"times.stop int", resWith("\xa4stop\xc0", "\xa4stop\x01"), "ProcResult", false, "res"},
		{"tty_nr wrong length", resWith("\xa6tty_nr\x92", "\xa6tty_nr\x91"), "ProcResult", false, ""},
		{"res state nil", resWith("\xa5state\xa7running", "\xa5state\xc0\xa6xxxxxx"), "ProcResult", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := DecodeMessage(tc.data)
			if err == nil {
				t.Fatalf("decoded %#v, want an error", m)
			}
			if !errors.Is(err, ErrBadMessage) {
				t.Errorf("error %v does not wrap ErrBadMessage", err)
			}
			if tc.wantSpec && !errors.Is(err, ErrBadSpec) {
				t.Errorf("error %v does not wrap ErrBadSpec", err)
			}
			var de *DecodeError
			isDE := errors.As(err, &de)
			if tc.typ == "" {
				if isDE {
					t.Errorf("got DecodeError %v, want a plain error", err)
				}
				return
			}
			if !isDE {
				t.Fatalf("error %v is not a DecodeError", err)
			}
			if de.Type != tc.typ || de.Raw["type"] != tc.typ {
				t.Errorf("Type %q, Raw[type] %v, want %q", de.Type, de.Raw["type"], tc.typ)
			}
			if tc.rawKey != "" {
				if _, ok := de.Raw[tc.rawKey]; !ok {
					t.Errorf("Raw %v lacks %q", de.Raw, tc.rawKey)
				}
			}
			// The agent answers with RequestError{msg: Raw}: it must encode.
			if _, err := EncodeMessage(RequestError{Msg: de.Raw, Err: err.Error()}); err != nil {
				t.Errorf("RequestError with Raw does not encode: %v", err)
			}
			t.Log(err)
		})
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
	}{
		{"nil", nil},
		{"nil pointer", (*ProcDelete)(nil)},
		{"foreign type", foreign{}},
		{"bad fd result", ProcResult{ProcID: "p", Res: ProcRes{Fds: map[string]*FdRes{"stdout": {Type: "bogus"}}}}},
		{"non-string map key", RequestError{Msg: map[string]any{"x": map[int]int{1: 1}}}},
		{"fd spec without variant", ProcStartRequest{Specs: map[string]ProcSpec{"p": {Fds: []FdEntry{{Name: "stdout"}}}}}},
	} {
		if _, err := EncodeMessage(tc.m); !errors.Is(err, ErrBadMessage) {
			t.Errorf("%s: error %v, want ErrBadMessage", tc.name, err)
		}
	}
}

type foreign struct{}

func (foreign) MessageType() string { return "ProcDelete" }

func TestEchoRequest(t *testing.T) {
	startSpec := func(js string) ProcStartRequest {
		return ProcStartRequest{Specs: map[string]ProcSpec{"p": mustSpec(t, js)}}
	}
	defaultSystemd := map[string]any{
		"scope": map[string]any{"oom_policy": nil, "runtime_max_usec": nil, "runtime_randomized_extra_usec": nil},
		"slice": map[string]any{"memory_accounting": nil, "memory_min": nil, "memory_low": nil, "memory_high": nil,
			"memory_max": nil, "memory_swap_max": nil, "tasks_accounting": nil, "tasks_max": nil},
	}
	specEcho := func(inherit any, fds []any) map[string]any {
		return map[string]any{"type": "ProcStartRequest", "specs": map[string]any{"p": map[string]any{
			"id": nil, "exe": nil, "argv": []any{"/bin/true"},
			"env": map[string]any{"inherit": inherit, "vars": map[string]any{}},
			"fds": fds, "systemd_properties": defaultSystemd,
		}}}
	}
	for _, tc := range []struct {
		name string
		m    Message
		want map[string]any
	}{
		{"Registered", Registered{}, map[string]any{"type": "Registered"}},
		{"ProcidListRequest", ProcidListRequest{}, map[string]any{"type": "ProcidListRequest"}},
		{"ProcResultRequest", ProcResultRequest{ProcID: "p"}, map[string]any{"type": "ProcResultRequest", "proc_id": "p"}},
		{"ProcSignalRequest", &ProcSignalRequest{ProcID: "p", Signum: 9}, map[string]any{"type": "ProcSignalRequest", "proc_id": "p", "signum": int64(9)}},
		{"ProcFdDataRequest", ProcFdDataRequest{ProcID: "p", Fd: "stdout", Start: 1, Stop: ptr(int64(4))},
			map[string]any{"type": "ProcFdDataRequest", "proc_id": "p", "fd": "stdout", "start": int64(1), "stop": int64(4)}},
		{"ProcFdDataRequest nil stop", ProcFdDataRequest{ProcID: "p", Fd: "1"},
			map[string]any{"type": "ProcFdDataRequest", "proc_id": "p", "fd": "1", "start": int64(0), "stop": nil}},
		{"ProcDeleteRequest", ProcDeleteRequest{ProcID: "p"}, map[string]any{"type": "ProcDeleteRequest", "proc_id": "p"}},
		{"inherit true", startSpec(`{"argv":["/bin/true"]}`), specEcho("All", []any{})},
		{"inherit false", startSpec(`{"argv":["/bin/true"],"env":{"inherit":false}}`), specEcho("None", []any{})},
		{"inherit list", startSpec(`{"argv":["/bin/true"],"env":{"inherit":["HOME","USER"]}}`),
			specEcho(map[string]any{"Vars": []any{"HOME", "USER"}}, []any{})},
		{"inherit empty list", startSpec(`{"argv":["/bin/true"],"env":{"inherit":[]}}`),
			specEcho(map[string]any{"Vars": []any{}}, []any{})},
		{"fd defaults", startSpec(`{"argv":["/bin/true"],"fds":[["stdin",{"null":{}}],["stdout",{"capture":{}}],
			["2",{"file":{"path":"/x"}}],["3","close"],["4",{"dup":{"fd":1}}],["5","inherit"],["6","pipe-write"],
			["7",{"pipe-read":{"proc_id":"q","fd":"1"}}]]}`),
			specEcho("All", []any{
				[]any{"stdin", map[string]any{"null": map[string]any{"flags": "Default"}}},
				[]any{"stdout", map[string]any{"capture": map[string]any{"mode": "tempfile", "encoding": nil, "attached": true}}},
				[]any{"2", map[string]any{"file": map[string]any{"path": "/x", "flags": "Default", "mode": int64(0o666)}}},
				[]any{"3", "close"},
				[]any{"4", map[string]any{"dup": map[string]any{"fd": int64(1)}}},
				[]any{"5", "inherit"},
				[]any{"6", "pipe-write"},
				[]any{"7", map[string]any{"pipe-read": map[string]any{"proc_id": "q", "fd": "1"}}},
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := EchoRequest(tc.m)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("echo\n got %#v\nwant %#v", got, tc.want)
			}
			// It travels in RequestError and comes back the same.
			b, err := EncodeMessage(RequestError{Msg: got, Err: "x"})
			if err != nil {
				t.Fatal(err)
			}
			back, err := DecodeMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back.(RequestError).Msg, tc.want) {
				t.Errorf("after the wire\n got %#v\nwant %#v", back.(RequestError).Msg, tc.want)
			}
		})
	}
	// The echo of a decoded request equals the generic decoding of its
	// frame for every request but ProcStartRequest (whose specs are
	// re-encoded with defaults).
	for _, m := range sampleMessages(t) {
		if _, ok := m.(ProcStartRequest); ok {
			continue
		}
		b, _ := EncodeMessage(m)
		if m.MessageType() == "Register" || m.MessageType() == "RequestError" {
			continue // not requests; their generic forms hold nested typed values
		}
		if got, want := EchoRequest(m), genericOf(t, b); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: echo %#v, generic %#v", m.MessageType(), got, want)
		}
	}
}

// TestBigFdData: 64 MiB of output is copied once on encode and once on
// decode.
func TestBigFdData(t *testing.T) {
	const size = 64 << 20
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(i * 7)
	}
	m := ProcFdData{ProcID: "p", Fd: "stdout", Start: 0, Stop: size, Data: data}
	var b []byte
	encAlloc := allocated(func() {
		var err error
		if b, err = EncodeMessage(m); err != nil {
			t.Fatal(err)
		}
	})
	if len(b) > size+100 || b[bytes.Index(b, []byte("\xa4data"))+5] != 0xc6 {
		t.Fatalf("frame of %d bytes, not a bin32", len(b))
	}
	var got Message
	decAlloc := allocated(func() {
		var err error
		if got, err = DecodeMessage(b); err != nil {
			t.Fatal(err)
		}
	})
	if !bytes.Equal(got.(ProcFdData).Data, data) {
		t.Fatal("data differs")
	}
	t.Logf("encode allocated %d bytes, decode %d, for %d", encAlloc, decAlloc, size)
	const slack = 1 << 20
	if encAlloc > size+slack {
		t.Errorf("encode allocated %d bytes: more than one copy of %d", encAlloc, size)
	}
	if decAlloc > size+slack {
		t.Errorf("decode allocated %d bytes: more than one copy of %d", decAlloc, size)
	}
	// Decoding copies: changing the frame leaves the message alone.
	b[len(b)-1] ^= 0xff
	if got.(ProcFdData).Data[size-1] != data[size-1] {
		t.Error("decoded data aliases the frame")
	}
}

func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func TestDecodeErrorMessage(t *testing.T) {
	_, err := DecodeMessage(frame(t, kv{"type", "ProcSignalRequest"}, kv{"proc_id", "p"}, kv{"signum", "x"}))
	for _, want := range []string{"ProcSignalRequest", "signum", "invalid type: string, expected integer"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func FuzzDecodeMessage(f *testing.F) {
	for _, m := range sampleMessages(f) {
		b, err := EncodeMessage(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x81, 0xa4, 't', 'y', 'p', 'e', 0xa8, 'R', 'e', 'g', 'i', 's', 't', 'e', 'r'})
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x82, 0xa4, 't', 'y', 'p', 'e', 0xaa, 'P', 'r', 'o', 'c', 'D', 'e', 'l', 'e', 't', 'e', 0xa7, 'p', 'r', 'o', 'c', '_', 'i', 'd', 0xc6, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := DecodeMessage(data)
		if err != nil {
			var de *DecodeError
			if errors.As(err, &de) && de.Raw == nil {
				t.Fatalf("DecodeError without Raw: %v", err)
			}
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("error %v does not wrap ErrBadMessage", err)
			}
			return
		}
		b1, err := EncodeMessage(m)
		if err != nil {
			t.Fatalf("decoded %#v does not encode: %v", m, err)
		}
		m2, err := DecodeMessage(b1)
		if err != nil {
			t.Fatalf("re-encoded %#v does not decode: %v", m, err)
		}
		b2, err := EncodeMessage(m2)
		if err != nil || !bytes.Equal(b1, b2) {
			t.Fatalf("not stable: %v\n% x\n% x", err, b1, b2)
		}
		_ = EchoRequest(m)
	})
}

func BenchmarkEncodeProcResult(b *testing.B) {
	m := ProcResult{ProcID: "proc-0001", Res: runningRes()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := EncodeMessage(m); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeProcResult(b *testing.B) {
	data, err := EncodeMessage(ProcResult{ProcID: "proc-0001", Res: runningRes()})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeMessage(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkJSONProcResult is the JSON encoding of the same result, for
// comparison.
func BenchmarkJSONProcResult(b *testing.B) {
	r := runningRes()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Marshal(r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeProcStart decodes a one-proc ProcStartRequest whose spec
// has every field, as a server that sends procstar's defaults writes it,
// and converts the spec to api/v1: the agent's work before it can fork.
func BenchmarkDecodeProcStart(b *testing.B) {
	data, err := EncodeMessage(ProcStartRequest{Specs: map[string]ProcSpec{"proc-0001": {Argv: []string{"/bin/true"}}}})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := DecodeMessage(data)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range m.(ProcStartRequest).Specs {
			if _, err := s.ToV1(); err != nil {
				b.Fatal(err)
			}
		}
	}
}
