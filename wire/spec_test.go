package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func ptr[T any](v T) *T { return &v }

func mustDecode(t *testing.T, data string) []v1.Proc {
	t.Helper()
	procs, err := DecodeSpecs([]byte(data))
	if err != nil {
		t.Fatalf("DecodeSpecs: %v", err)
	}
	return procs
}

func TestDecodeSpecsReference(t *testing.T) {
	data, err := os.ReadFile("testdata/spec_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	procs := mustDecode(t, string(data))
	var names []string
	for _, p := range procs {
		names = append(names, p.Metadata.Name)
		if p.APIVersion != v1.APIVersion || p.Kind != v1.KindProc {
			t.Errorf("%s: TypeMeta %+v", p.Metadata.Name, p.TypeMeta)
		}
	}
	if strings.Join(names, ",") != "empty,example,minimal" {
		t.Fatalf("names %v, want sorted", names)
	}
	want := v1.ProcSpec{
		Exe:  "/usr/bin/bash",
		Argv: []string{"my-argv0", "-c", "echo hi"},
		Env: v1.EnvSpec{
			Inherit: &v1.EnvInherit{Names: []string{"HOME", "USER"}},
			Vars:    map[string]*string{"FOO": ptr("1"), "DROPME": nil},
		},
		Fds: []v1.FdSpec{
			{Fd: "stdin", Null: &v1.NullFd{Flags: v1.OpenDefault}},
			{Fd: "stdout", Capture: &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8, Attached: ptr(true)}},
			{Fd: "stderr", Dup: &v1.DupFd{Fd: 1}},
		},
		SystemdProperties: &v1.SystemdProperties{
			Scope: v1.SystemdScope{OOMPolicy: ptr("kill"), RuntimeMaxUSec: ptr(uint64(60000000))},
			Slice: v1.SystemdSlice{MemoryAccounting: ptr(true), MemoryMax: ptr(uint64(268435456)),
				MemorySwapMax: ptr(uint64(0)), TasksAccounting: ptr(true), TasksMax: ptr(uint64(512))},
		},
		CloseOtherFds: ptr(false),
	}
	if !reflect.DeepEqual(procs[1].Spec, want) {
		t.Errorf("example:\n got %+v\nwant %+v", procs[1].Spec, want)
	}
	empty := v1.ProcSpec{Env: v1.EnvSpec{Inherit: &v1.EnvInherit{All: true}}, CloseOtherFds: ptr(false)}
	if !reflect.DeepEqual(procs[0].Spec, empty) {
		t.Errorf("empty: %+v", procs[0].Spec)
	}
	// procstar's child inherits every fd it does not list.
	if c := procs[2].Spec.CloseOtherFds; c == nil || *c {
		t.Error("closeOtherFds must be false")
	}
}

func TestDecodeSpecsAllFds(t *testing.T) {
	data, err := os.ReadFile("testdata/spec_all_fds.json")
	if err != nil {
		t.Fatal(err)
	}
	procs := mustDecode(t, string(data))
	reader, writer := procs[0], procs[1]
	if writer.Metadata.Name != "writer" || reader.Metadata.Name != "reader" {
		t.Fatalf("order %s %s", reader.Metadata.Name, writer.Metadata.Name)
	}
	wantW := []v1.FdSpec{
		{Fd: "stdin", Inherit: &v1.InheritFd{}},
		{Fd: "3", Close: &v1.CloseFd{}},
		{Fd: "4", Null: &v1.NullFd{Flags: v1.OpenRead}},
		{Fd: "5", File: &v1.FileFd{Path: "/tmp/out", Flags: v1.OpenCreateAppend, Mode: ptr(uint32(0o600))}},
		{Fd: "6", File: &v1.FileFd{Path: "rel/path", Flags: v1.OpenDefault, Mode: ptr(uint32(0o666))}},
		{Fd: "7", Dup: &v1.DupFd{Fd: 2}},
		{Fd: "8", Capture: &v1.CaptureFd{Mode: v1.CaptureTempfile, Encoding: v1.EncodingBase64, Attached: ptr(true)}},
		{Fd: "9", Capture: &v1.CaptureFd{Mode: v1.CaptureTempfile, Encoding: v1.EncodingBase64, Attached: ptr(false)}},
		{Fd: "stdout", PipeWrite: &v1.PipeWriteFd{}},
		{Fd: "stderr", Capture: &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8, Attached: ptr(true)}},
		{Fd: "10", Null: &v1.NullFd{Flags: v1.OpenDefault}},
		{Fd: "11", File: &v1.FileFd{Path: "/dev/null", Flags: v1.OpenWrite, Mode: ptr(uint32(0o666))}},
		{Fd: "12", File: &v1.FileFd{Path: "/x", Flags: v1.OpenCreate, Mode: ptr(uint32(0o666))}},
		{Fd: "13", File: &v1.FileFd{Path: "/x", Flags: v1.OpenReplace, Mode: ptr(uint32(0o666))}},
		{Fd: "14", File: &v1.FileFd{Path: "/x", Flags: v1.OpenAppend, Mode: ptr(uint32(0o666))}},
		{Fd: "15", File: &v1.FileFd{Path: "/x", Flags: v1.OpenReadWrite, Mode: ptr(uint32(0o666))}},
	}
	if !reflect.DeepEqual(writer.Spec.Fds, wantW) {
		for i := range max(len(wantW), len(writer.Spec.Fds)) {
			if i >= len(wantW) || i >= len(writer.Spec.Fds) || !reflect.DeepEqual(wantW[i], writer.Spec.Fds[i]) {
				t.Errorf("fds[%d] differ", i)
			}
		}
	}
	if !reflect.DeepEqual(writer.Spec.Env, v1.EnvSpec{Inherit: &v1.EnvInherit{}, Vars: map[string]*string{"A": ptr("x")}}) {
		t.Errorf("env %+v", writer.Spec.Env)
	}
	wantR := []v1.FdSpec{
		{Fd: "stdin", PipeRead: &v1.PipeReadFd{ProcID: "writer", Fd: "stdout"}},
		{Fd: "1", Capture: &v1.CaptureFd{Mode: v1.CaptureTempfile, Encoding: v1.EncodingBase64, Attached: ptr(true)}},
	}
	if !reflect.DeepEqual(reader.Spec.Fds, wantR) {
		t.Errorf("reader fds %+v", reader.Spec.Fds)
	}
}

// TestSpecGolden checks EncodeSpecs(DecodeSpecs(x)) against a golden file
// and that decoding and re-encoding the golden file is stable.
func TestSpecGolden(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/spec_*.json")
	if len(inputs) == 0 {
		t.Fatal("no inputs")
	}
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			out, err := EncodeSpecs(mustDecode(t, string(data)))
			if err != nil {
				t.Fatal(err)
			}
			golden := strings.TrimSuffix(in, ".json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, append(out, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(append(out, '\n'), want) {
				t.Errorf("EncodeSpecs output differs from %s:\n%s", golden, out)
			}
			again, err := EncodeSpecs(mustDecode(t, string(out)))
			if err != nil || !bytes.Equal(again, out) {
				t.Errorf("not stable: %v\n%s\n%s", err, out, again)
			}
		})
	}
}

func TestEncodeSpecsDefaults(t *testing.T) {
	procs := []v1.Proc{{Metadata: v1.ObjectMeta{Name: "p"}, Spec: v1.ProcSpec{
		Argv: []string{"/bin/echo", "<&>"},
		Fds: []v1.FdSpec{
			{Fd: "stdout", Capture: &v1.CaptureFd{}},
			{Fd: "stdin", Null: &v1.NullFd{}},
			{Fd: "5", File: &v1.FileFd{Path: "/f"}},
		},
	}}}
	got, err := EncodeSpecs(procs)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"specs":{"p":{"id":null,"exe":null,"argv":["/bin/echo","<&>"],"env":{"inherit":true,"vars":{}},` +
		`"fds":[["stdout",{"capture":{"mode":"tempfile","encoding":null,"attached":true}}],["stdin",{"null":{"flags":"Default"}}],` +
		`["5",{"file":{"path":"/f","flags":"Default","mode":438}}]],` +
		`"systemd_properties":{"scope":{"oom_policy":null,"runtime_max_usec":null,"runtime_randomized_extra_usec":null},` +
		`"slice":{"memory_accounting":null,"memory_min":null,"memory_low":null,"memory_high":null,"memory_max":null,"memory_swap_max":null,"tasks_accounting":null,"tasks_max":null}}}}}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestEncodeSpecsNotExpressible(t *testing.T) {
	base := func() v1.ProcSpec { return v1.ProcSpec{Argv: []string{"/bin/true"}} }
	tests := []struct {
		field string
		mod   func(*v1.ProcSpec)
	}{
		{"spec.cwd", func(s *v1.ProcSpec) { s.Cwd = "/tmp" }},
		{"spec.umask", func(s *v1.ProcSpec) { s.Umask = ptr("0022") }},
		{"spec.pathSearch", func(s *v1.ProcSpec) { s.PathSearch = true }},
		{"spec.pdeathSignal", func(s *v1.ProcSpec) { s.PdeathSignal = ptr(v1.Signal("TERM")) }},
		{"spec.recordEnv", func(s *v1.ProcSpec) { s.RecordEnv = true }},
		{"spec.resources", func(s *v1.ProcSpec) { s.Resources = &v1.Resources{} }},
		{"spec.timeout", func(s *v1.ProcSpec) { s.Timeout = &v1.Timeout{Seconds: 1} }},
		{"spec.placement", func(s *v1.ProcSpec) { s.Placement = &v1.Placement{} }},
		{"spec.fds[0].capture.limit", func(s *v1.ProcSpec) {
			s.Fds = []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{Limit: &v1.CaptureLimit{Head: 1}}}}
		}},
		{"spec.fds[0].capture.mode", func(s *v1.ProcSpec) {
			s.Fds = []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{Mode: v1.CaptureFile, Path: "/x"}}}
		}},
		{"spec.fds[0].capture.path", func(s *v1.ProcSpec) {
			s.Fds = []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{Path: "/x"}}}
		}},
		{"spec.fds[0].capture.encoding", func(s *v1.ProcSpec) {
			s.Fds = []v1.FdSpec{{Fd: "stdout", Capture: &v1.CaptureFd{Encoding: v1.EncodingBase2048}}}
		}},
		{"spec.fds[0].file.mode", func(s *v1.ProcSpec) {
			s.Fds = []v1.FdSpec{{Fd: "3", File: &v1.FileFd{Path: "/x", Mode: ptr(uint32(1 << 31))}}}
		}},
		{"spec.fds[0].null.flags", func(s *v1.ProcSpec) { s.Fds = []v1.FdSpec{{Fd: "3", Null: &v1.NullFd{Flags: "read"}}} }},
		{"spec.fds[1].fd", func(s *v1.ProcSpec) {
			s.Fds = []v1.FdSpec{{Fd: "3", Close: &v1.CloseFd{}}, {Fd: "4", Close: &v1.CloseFd{}, Inherit: &v1.InheritFd{}}}
		}},
		{"spec.systemdProperties.scope.oomPolicy", func(s *v1.ProcSpec) {
			s.SystemdProperties = &v1.SystemdProperties{Scope: v1.SystemdScope{OOMPolicy: ptr("Kill")}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			spec := base()
			tt.mod(&spec)
			_, err := EncodeSpecs([]v1.Proc{{Metadata: v1.ObjectMeta{Name: "p"}, Spec: spec}})
			if !errors.Is(err, ErrNotExpressible) || !strings.Contains(err.Error(), tt.field) || !strings.Contains(err.Error(), `"p"`) {
				t.Errorf("err = %v; want ErrNotExpressible naming %s", err, tt.field)
			}
		})
	}
	// Accepted: closeOtherFds in every form, written identically.
	var outs []string
	for _, c := range []*bool{nil, ptr(true), ptr(false)} {
		spec := base()
		spec.CloseOtherFds = c
		out, err := EncodeSpecs([]v1.Proc{{Metadata: v1.ObjectMeta{Name: "p"}, Spec: spec}})
		if err != nil {
			t.Errorf("closeOtherFds=%v: %v", c, err)
		}
		outs = append(outs, string(out))
	}
	if outs[0] != outs[1] || outs[1] != outs[2] {
		t.Errorf("closeOtherFds changes the output: %q", outs)
	}
	// A spec with v1's defaults filled encodes like the bare one.
	procs := mustDecode(t, `{"specs":{"p":{"argv":["/bin/true"],"fds":[["1",{"capture":{}}],["3",{"file":{"path":"/x"}}]]}}}`)
	bare, err := EncodeSpecs(procs)
	if err != nil {
		t.Fatal(err)
	}
	procs[0].Spec.SetDefaults()
	defaulted, err := EncodeSpecs(procs)
	if err != nil || string(defaulted) != string(bare) {
		t.Errorf("defaulted spec encodes differently (%v):\n%s\n%s", err, bare, defaulted)
	}
	for name, procs := range map[string][]v1.Proc{
		"empty name": {{Spec: base()}},
		"duplicate":  {{Metadata: v1.ObjectMeta{Name: "a"}, Spec: base()}, {Metadata: v1.ObjectMeta{Name: "a"}, Spec: base()}},
	} {
		if _, err := EncodeSpecs(procs); !errors.Is(err, ErrNotExpressible) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestDecodeSpecsAccepted(t *testing.T) {
	tests := map[string]struct {
		in    string
		check func(t *testing.T, p []v1.Proc)
	}{
		"no specs": {`{"specs":{}}`, func(t *testing.T, p []v1.Proc) {
			if len(p) != 0 {
				t.Error(p)
			}
		}},
		"unit variant as map with null": {`{"specs":{"a":{"fds":[["3",{"close":null}],["4",{"inherit":null}],["5",{"pipe-write":null}]]}}}`, func(t *testing.T, p []v1.Proc) {
			f := p[0].Spec.Fds
			if f[0].Close == nil || f[1].Inherit == nil || f[2].PipeWrite == nil {
				t.Errorf("%+v", f)
			}
		}},
		"nullable fields": {`{"specs":{"a":{"id":null,"exe":null,"fds":[["1",{"capture":{"encoding":null}}]],"systemd_properties":{"scope":{"oom_policy":null},"slice":{"tasks_max":null}}}}}`, func(t *testing.T, p []v1.Proc) {
			if p[0].Spec.SystemdProperties != nil || p[0].Spec.Fds[0].Capture.Encoding != v1.EncodingBase64 {
				t.Errorf("%+v", p[0].Spec)
			}
		}},
		"duplicate proc id: last wins": {`{"specs":{"a":{"argv":["1"]},"a":{"argv":["2"]}}}`, func(t *testing.T, p []v1.Proc) {
			if len(p) != 1 || p[0].Spec.Argv[0] != "2" {
				t.Errorf("%+v", p)
			}
		}},
		"duplicate var: last wins": {`{"specs":{"a":{"env":{"vars":{"X":"1","X":null}}}}}`, func(t *testing.T, p []v1.Proc) {
			if v, ok := p[0].Spec.Env.Vars["X"]; !ok || v != nil {
				t.Errorf("%+v", p[0].Spec.Env)
			}
		}},
		"empty inherit list": {`{"specs":{"a":{"env":{"inherit":[]}}}}`, func(t *testing.T, p []v1.Proc) {
			if in := p[0].Spec.Env.Inherit; in == nil || in.Names == nil || len(in.Names) != 0 {
				t.Errorf("%+v", in)
			}
		}},
		"whitespace and escapes": {" {\"specs\" : {\"a\\u00e9\" : {\"argv\" : [\"\\ud83c\\udf89\"]}}} \n", func(t *testing.T, p []v1.Proc) {
			if p[0].Metadata.Name != "aé" || p[0].Spec.Argv[0] != "🎉" {
				t.Errorf("%+v", p)
			}
		}},
		"negative fd names and dup": {`{"specs":{"a":{"fds":[["-1",{"dup":{"fd":-5}}],["bogus","close"]]}}}`, func(t *testing.T, p []v1.Proc) {
			if p[0].Spec.Fds[0].Dup.Fd != -5 || p[0].Spec.Fds[1].Fd != "bogus" {
				t.Errorf("%+v", p[0].Spec.Fds)
			}
		}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) { tt.check(t, mustDecode(t, tt.in)) })
	}
}

func TestDecodeSpecsRejected(t *testing.T) {
	tests := map[string]string{
		"empty":                   ``,
		"not json":                `{`,
		"trailing":                `{"specs":{}} {}`,
		"array":                   `[]`,
		"missing specs":           `{}`,
		"procs key":               `{"procs":{}}`,
		"extra top key":           `{"specs":{},"x":1}`,
		"specs null":              `{"specs":null}`,
		"Specs case":              `{"Specs":{}}`,
		"duplicate specs":         `{"specs":{},"specs":{}}`,
		"unknown proc field":      `{"specs":{"a":{"cwd":"/"}}}`,
		"case-sensitive field":    `{"specs":{"a":{"Argv":[]}}}`,
		"duplicate proc field":    `{"specs":{"a":{"argv":[],"argv":[]}}}`,
		"proc null":               `{"specs":{"a":null}}`,
		"argv null":               `{"specs":{"a":{"argv":null}}}`,
		"argv element null":       `{"specs":{"a":{"argv":[null]}}}`,
		"argv number":             `{"specs":{"a":{"argv":[1]}}}`,
		"exe number":              `{"specs":{"a":{"exe":1}}}`,
		"env null":                `{"specs":{"a":{"env":null}}}`,
		"env unknown":             `{"specs":{"a":{"env":{"x":1}}}}`,
		"inherit null":            `{"specs":{"a":{"env":{"inherit":null}}}}`,
		"inherit string":          `{"specs":{"a":{"env":{"inherit":"HOME"}}}}`,
		"inherit list of null":    `{"specs":{"a":{"env":{"inherit":[null]}}}}`,
		"vars null":               `{"specs":{"a":{"env":{"vars":null}}}}`,
		"var number":              `{"specs":{"a":{"env":{"vars":{"X":1}}}}}`,
		"fds null":                `{"specs":{"a":{"fds":null}}}`,
		"fds object":              `{"specs":{"a":{"fds":{"stdin":"inherit"}}}}`,
		"fd pair short":           `{"specs":{"a":{"fds":[["stdin"]]}}}`,
		"fd pair long":            `{"specs":{"a":{"fds":[["stdin","inherit",1]]}}}`,
		"fd name number":          `{"specs":{"a":{"fds":[[0,"inherit"]]}}}`,
		"bare null":               `{"specs":{"a":{"fds":[["stdin","null"]]}}}`,
		"bare capture":            `{"specs":{"a":{"fds":[["stdin","capture"]]}}}`,
		"unknown variant":         `{"specs":{"a":{"fds":[["stdin","Inherit"]]}}}`,
		"pipe_write":              `{"specs":{"a":{"fds":[["stdin","pipe_write"]]}}}`,
		"two-key variant":         `{"specs":{"a":{"fds":[["stdin",{"null":{},"close":null}]]}}}`,
		"empty variant map":       `{"specs":{"a":{"fds":[["stdin",{}]]}}}`,
		"close with body":         `{"specs":{"a":{"fds":[["stdin",{"close":{}}]]}}}`,
		"null body null":          `{"specs":{"a":{"fds":[["stdin",{"null":null}]]}}}`,
		"null unknown field":      `{"specs":{"a":{"fds":[["stdin",{"null":{"mode":1}}]]}}}`,
		"flags lower case":        `{"specs":{"a":{"fds":[["stdin",{"null":{"flags":"read"}}]]}}}`,
		"flags null":              `{"specs":{"a":{"fds":[["stdin",{"null":{"flags":null}}]]}}}`,
		"file without path":       `{"specs":{"a":{"fds":[["3",{"file":{}}]]}}}`,
		"file mode float":         `{"specs":{"a":{"fds":[["3",{"file":{"path":"/x","mode":1.5}}]]}}}`,
		"file mode too big":       `{"specs":{"a":{"fds":[["3",{"file":{"path":"/x","mode":2147483648}}]]}}}`,
		"file mode negative":      `{"specs":{"a":{"fds":[["3",{"file":{"path":"/x","mode":-1}}]]}}}`,
		"file mode string":        `{"specs":{"a":{"fds":[["3",{"file":{"path":"/x","mode":"0644"}}]]}}}`,
		"file unknown":            `{"specs":{"a":{"fds":[["3",{"file":{"path":"/x","append":true}}]]}}}`,
		"dup fd name":             `{"specs":{"a":{"fds":[["3",{"dup":{"fd":"stdout"}}]]}}}`,
		"dup missing fd":          `{"specs":{"a":{"fds":[["3",{"dup":{}}]]}}}`,
		"dup fd 1.0":              `{"specs":{"a":{"fds":[["3",{"dup":{"fd":1.0}}]]}}}`,
		"capture mode":            `{"specs":{"a":{"fds":[["3",{"capture":{"mode":"file"}}]]}}}`,
		"capture mode null":       `{"specs":{"a":{"fds":[["3",{"capture":{"mode":null}}]]}}}`,
		"capture encoding base64": `{"specs":{"a":{"fds":[["3",{"capture":{"encoding":"base64"}}]]}}}`,
		"capture encoding UTF-8":  `{"specs":{"a":{"fds":[["3",{"capture":{"encoding":"UTF-8"}}]]}}}`,
		"capture attached null":   `{"specs":{"a":{"fds":[["3",{"capture":{"attached":null}}]]}}}`,
		"capture attached 1":      `{"specs":{"a":{"fds":[["3",{"capture":{"attached":1}}]]}}}`,
		"capture format":          `{"specs":{"a":{"fds":[["3",{"capture":{"format":"text"}}]]}}}`,
		"pipe-read missing fd":    `{"specs":{"a":{"fds":[["3",{"pipe-read":{"proc_id":"b"}}]]}}}`,
		"pipe-read fd number":     `{"specs":{"a":{"fds":[["3",{"pipe-read":{"proc_id":"b","fd":1}}]]}}}`,
		"pipe-read unknown":       `{"specs":{"a":{"fds":[["3",{"pipe-read":{"proc_id":"b","fd":"1","x":1}}]]}}}`,
		"systemd null":            `{"specs":{"a":{"systemd_properties":null}}}`,
		"systemd unknown":         `{"specs":{"a":{"systemd_properties":{"service":{}}}}}`,
		"scope unknown":           `{"specs":{"a":{"systemd_properties":{"scope":{"runtime_max_sec":1}}}}}`,
		"slice unknown":           `{"specs":{"a":{"systemd_properties":{"slice":{"cpu_weight":1}}}}}`,
		"slice negative":          `{"specs":{"a":{"systemd_properties":{"slice":{"memory_max":-1}}}}}`,
		"slice too big":           `{"specs":{"a":{"systemd_properties":{"slice":{"memory_max":18446744073709551616}}}}}`,
		"slice bool string":       `{"specs":{"a":{"systemd_properties":{"slice":{"memory_accounting":"yes"}}}}}`,
		"scope bad oom":           `{"specs":{"a":{"systemd_properties":{"scope":{"oom_policy":"Kill"}}}}}`,
		"scope null":              `{"specs":{"a":{"systemd_properties":{"scope":null}}}}`,
		"invalid utf-8":           "{\"specs\":{\"a\xff\":{}}}",
		"lone surrogate":          `{"specs":{"\ud800":{}}}`,
		"lone low surrogate":      `{"specs":{"\udc00x":{}}}`,
		"reversed surrogates":     `{"specs":{"\udc00\ud800":{}}}`,
	}
	for name, in := range tests {
		t.Run(name, func(t *testing.T) {
			procs, err := DecodeSpecs([]byte(in))
			if !errors.Is(err, ErrBadSpec) {
				t.Errorf("DecodeSpecs(%s) = %+v, %v; want ErrBadSpec", in, procs, err)
			}
		})
	}
}

func TestDecodeErrorNamesPath(t *testing.T) {
	_, err := DecodeSpecs([]byte(`{"specs":{"job":{"fds":[["stdin","inherit"],["3",{"file":{"path":"/x","flags":"Bogus"}}]]}}}`))
	if err == nil || !strings.Contains(err.Error(), "specs.job.fds[1][1].file.flags") || !strings.Contains(err.Error(), `"Bogus"`) {
		t.Errorf("err %v", err)
	}
}

// TestWireTypesPlainJSON checks the exported types work with plain
// encoding/json in both directions (the msgpack layer will reuse them).
func TestWireTypesPlainJSON(t *testing.T) {
	data, err := os.ReadFile("testdata/spec_all_fds.json")
	if err != nil {
		t.Fatal(err)
	}
	var s Specs
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var s2 Specs
	if err := json.Unmarshal(out, &s2); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, s2) {
		t.Errorf("plain JSON round trip differs")
	}
	if err := json.Unmarshal([]byte(`{"specs":{"a":{"ARGV":[]}}}`), &s); !errors.Is(err, ErrBadSpec) {
		t.Errorf("plain json.Unmarshal not strict: %v", err)
	}
	var f FdSpec
	if _, err := json.Marshal(f); err == nil {
		t.Error("FdSpec with no variant marshalled")
	}
}

func FuzzDecodeSpecs(f *testing.F) {
	for _, p := range []string{"testdata/spec_reference.json", "testdata/spec_all_fds.json"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"specs":{"a":{"fds":[["3",{"close":null}]],"env":{"inherit":[]}}}}`))
	f.Add([]byte(`{"specs":{"":{"exe":"","argv":[""]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		procs, err := DecodeSpecs(data)
		if err != nil {
			if !errors.Is(err, ErrBadSpec) {
				t.Fatalf("error does not wrap ErrBadSpec: %v", err)
			}
			return
		}
		out, err := EncodeSpecs(procs)
		if err != nil {
			if procs[0].Metadata.Name == "" && errors.Is(err, ErrNotExpressible) {
				return // "" is a valid procstar proc ID but not a v1 name
			}
			t.Fatalf("EncodeSpecs of decoded specs: %v", err)
		}
		again, err := DecodeSpecs(out)
		if err != nil {
			t.Fatalf("DecodeSpecs of %s: %v", out, err)
		}
		if !reflect.DeepEqual(procs, again) {
			t.Fatalf("round trip differs:\n%+v\n%+v", procs, again)
		}
	})
}
