package v1

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

const head = "apiVersion: procstar.dev/v1\nkind: Proc\nmetadata: {name: p}\n"

// jsonProc is a valid Proc in JSON, 92 bytes long.
const jsonProc = `{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"j"},"spec":{"argv":["x"]}}`

// jsonHint ends the message of every JSON syntax error.
const jsonHint = `; input that starts with "{" or "[" is read as JSON`

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // exact error message
		unknown bool   // errors.Is(err, ErrUnknownField)
		kind    bool   // errors.Is(err, ErrWrongKind)
	}{
		{"unknown top", head + "spec: {argv: [x]}\nstatuz: {}\n", `unknown field "statuz"`, true, false},
		{"unknown spec field", head + "spec: {argv: [x], fdz: []}\n", `unknown field "spec.fdz"`, true, false},
		{"unknown nested", head + "spec:\n  fds:\n  - {fd: stdin, null: {flag: Read}}\n", `unknown field "spec.fds[0].null.flag"`, true, false},
		{"case matters", head + "Spec: {argv: [x]}\n", `unknown field "Spec"`, true, false},
		{"several unknown", head + "spec: {argv: [x], b: 1, a: 2}\n", `unknown field "spec.a"; unknown field "spec.b"`, true, false},
		{"unknown in second doc", head + "spec: {argv: [x]}\n---\n" + head + "spec: {fdz: 1}\n", `document 2: unknown field "spec.fdz"`, true, false},
		{"unknown in list item", "apiVersion: procstar.dev/v1\nkind: ProcList\nitems:\n- metadata: {name: a}\n  spec: {argv: [x], cwdd: /}\n", `unknown field "items[0].spec.cwdd"`, true, false},
		{"missing apiVersion", "kind: Proc\nmetadata: {name: p}\n", `apiVersion: required ("procstar.dev/v1")`, false, true},
		{"missing kind", "apiVersion: procstar.dev/v1\nmetadata: {name: p}\n", `kind: required ("Proc" or "ProcList")`, false, true},
		{"wrong apiVersion", "apiVersion: v1\nkind: Pod\n", `apiVersion: must be "procstar.dev/v1", not "v1"; kind: must be "Proc" or "ProcList", not "Pod"`, false, true},
		{"list item kind", "apiVersion: procstar.dev/v1\nkind: ProcList\nitems:\n- {kind: Pod, metadata: {name: a}}\n", `items[0].kind: must be "Proc", not "Pod"`, false, true},
		{"not an object", "- a\n- b\n", `must be an object with apiVersion and kind, not a list`, false, false},
		{"scalar doc", "hello\n", `must be an object with apiVersion and kind, not "hello"`, false, false},
		{"umask number", head + "spec: {argv: [x], umask: 0027}\n", `spec.umask: must be an octal string such as "0027" (quote it in YAML, where 0027 is the number 23)`, false, false},
		{"wrong type", head + "spec: {argv: x}\n", `spec.argv: must be a list, not "x"`, false, false},
		{"wrong type in list", head + "spec: {argv: [a, {b: c}]}\n", `spec.argv[1]: must be a string, not an object`, false, false},
		{"int overflow", head + "spec: {argv: [x], resources: {tasksMax: 99999999999999999999}}\n", `spec.resources.tasksMax: must be an integer that fits in 64 bits, not the number 1e+20`, false, false},
		{"negative uint", head + "spec: {argv: [x], fds: [{fd: 3, file: {path: x, mode: -1}}]}\n", `spec.fds[0].file.mode: must be an integer, 0 or more, that fits in 32 bits, not the number -1`, false, false},
		{"bool", head + "spec: {argv: [x], recordEnv: maybe}\n", `spec.recordEnv: must be true or false, not "maybe"`, false, false},
		{"env inherit", head + "spec: {argv: [x], env: {inherit: HOME}}\n", `spec.env.inherit: must be true, false or a list of names`, false, false},
		{"signal float", head + "spec: {argv: [x], pdeathSignal: 1.5}\n", `spec.pdeathSignal: must be a signal name or number, not 1.5`, false, false},
		{"quantity object", head + "spec: {argv: [x], resources: {memoryMax: {a: 1}}}\n", `spec.resources.memoryMax: must be a quantity: a string or a number`, false, false},
		{"nan", head + "spec: {argv: [x], timeout: {seconds: .nan}}\n", `spec.timeout.seconds: must be a finite number`, false, false},
		{"duplicate key", head + "spec: {argv: [x]}\nspec: {argv: [y]}\n", `yaml: unmarshal errors: line 5: key "spec" already set in map`, false, false},
		{"bad yaml", head + "spec: [\n", `yaml: line 4: did not find expected node content`, false, false},
		{"bad yaml second doc", head + "spec: {}\n---\nspec: [\n", `document 2: yaml: line 2: did not find expected node content`, false, false},
		{"bad time", head[:len(head)-len("metadata: {name: p}\n")] + "metadata: {name: p, creationTimestamp: yesterday}\n", `metadata.creationTimestamp: parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"`, false, false},
		{"json duplicate key", `{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p","name":"q"}}`, `metadata.name: duplicate key`, false, false},
		{"json too deep", strings.Repeat("[", 1002) + strings.Repeat("]", 1002), `[0][0][0]` + strings.Repeat("[0]", 998) + `: nested more than 1000 deep`, false, false},
		{"yaml too deep", head + "spec: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000), `yaml: line 4: exceeded max depth of 10000`, false, false},
		{"yaml self alias", head + "x: &a [*a]\n", `yaml: anchor 'a' value contains itself`, false, false},
		{"yaml alias bomb", aliasBomb(), `yaml: document contains excessive aliasing`, false, false},
		{"json unknown", `{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p"},"spec":{"argvv":[]}}`, `unknown field "spec.argvv"`, true, false},
		{"json array second", `[{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p"}}, {"kind":"Proc"}]`, `document 2: apiVersion: required ("procstar.dev/v1")`, false, true},
		// Input that starts with "{" or "[" is JSON, all of it: yaml.v2
		// would stop at the end of the first flow collection and drop the
		// rest.
		{"json trailing braces", jsonProc + `}}}`, `json: line 1, column 93: data after the JSON object` + jsonHint, false, false},
		{"json trailing garbage", jsonProc + ` garbage here`, `json: line 1, column 94: data after the JSON object` + jsonHint, false, false},
		{"json two objects", jsonProc + ` {"x":1}`, `json: line 1, column 94: data after the JSON object` + jsonHint, false, false},
		{"json two procs", jsonProc + "\n" + jsonProc, `json: line 2, column 1: data after the JSON object` + jsonHint, false, false},
		{"json array trailing", "[" + jsonProc + "]]", `json: line 1, column 95: data after the JSON array` + jsonHint, false, false},
		{"json truncated", `{"apiVersion":`, `json: line 1, column 15: unexpected end of input` + jsonHint, false, false},
		{"json bad token", "\n  {\"apiVersion\": procstar}", `json: line 2, column 18: invalid character 'p' looking for beginning of value` + jsonHint, false, false},
		{"json trailing comma", `{"apiVersion":"procstar.dev/v1",}`, `json: line 1, column 33: invalid character '}' looking for beginning of object key string` + jsonHint, false, false},
		{"flow yaml", "{apiVersion: procstar.dev/v1, kind: Proc, metadata: {name: f}}", `json: line 1, column 2: invalid character 'a' looking for beginning of object key string` + jsonHint, false, false},
		// As for YAML, lines count from the "---" line.
		{"json doc in yaml stream", head + "spec: {argv: [x]}\n---\n" + jsonProc + "}\n", `document 2: json: line 2, column 93: data after the JSON object` + jsonHint, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			procs, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded: %+v", procs)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got  %s\n want %s", err, tt.want)
			}
			if !errors.Is(err, ErrDecode) {
				t.Errorf("not ErrDecode")
			}
			if errors.Is(err, ErrUnknownField) != tt.unknown {
				t.Errorf("errors.Is(ErrUnknownField) = %v", !tt.unknown)
			}
			if errors.Is(err, ErrWrongKind) != tt.kind {
				t.Errorf("errors.Is(ErrWrongKind) = %v", !tt.kind)
			}
			if procs != nil {
				t.Errorf("procs = %v, want nil", procs)
			}
		})
	}
}

func TestDecodeForms(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		names []string
	}{
		{"empty", "", nil},
		{"only separators and comments", "---\n# nothing\n---\n\n", nil},
		{"one", head + "spec: {argv: [x]}\n", []string{"p"}},
		{"crlf and marker with content", "--- " + strings.ReplaceAll(head, "\n", "\r\n") + "spec: {argv: [x]}\r\n---\r\n" + strings.Replace(head, "name: p", "name: q", 1), []string{"p", "q"}},
		{"empty list", "apiVersion: procstar.dev/v1\nkind: ProcList\nitems: []\n", []string{}},
		{"json object", `{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"j"}}`, []string{"j"}},
		{"json array", `[{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"a"}},{"apiVersion":"procstar.dev/v1","kind":"ProcList","items":[{"metadata":{"name":"b"}}]}]`, []string{"a", "b"}},
		{"json with white space", "\n\t " + jsonProc + "\r\n\n", []string{"j"}},
		{"json documents in a yaml stream", jsonProc + "\n---\n" + strings.Replace(jsonProc, `"j"`, `"k"`, 1) + "\n---\n" + head, []string{"j", "k", "p"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			procs, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range procs {
				names = append(names, p.Metadata.Name)
				if p.APIVersion != APIVersion || p.Kind != KindProc {
					t.Errorf("%s: TypeMeta = %+v", p.Metadata.Name, p.TypeMeta)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.names, ",") {
				t.Errorf("names = %q, want %q", names, tt.names)
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	procs, err := Decode([]byte(head + `spec:
  argv: [x]
  umask: "0027"
  pdeathSignal: 15
  env: {inherit: [], vars: {A: "1", B: null}}
  fds:
    - {fd: 3, dup: {fd: 1}}
    - {fd: stdin, null: {}}
    - {fd: 1, file: {path: /p, mode: 0640}}
  resources: {memoryMax: 1e3, cpuMax: 0.5, memoryHigh: 12345678901234}
  timeout: {seconds: 1.5}
`))
	if err != nil {
		t.Fatal(err)
	}
	s := procs[0].Spec
	one := "1"
	want := ProcSpec{
		Argv:         []string{"x"},
		Umask:        ptrTo("0027"),
		PdeathSignal: ptrTo(Signal("15")),
		Env:          EnvSpec{Inherit: &EnvInherit{Names: []string{}}, Vars: map[string]*string{"A": &one, "B": nil}},
		Fds: []FdSpec{
			{Fd: "3", Dup: &DupFd{Fd: 1}},
			{Fd: Stdin, Null: &NullFd{}},
			{Fd: "1", File: &FileFd{Path: "/p", Mode: ptrTo(uint32(0o640))}},
		},
		Resources: &Resources{MemoryMax: ptrTo(Quantity("1000")), CPUMax: ptrTo(Quantity("0.5")), MemoryHigh: ptrTo(Quantity("12345678901234"))},
		Timeout:   &Timeout{Seconds: 1.5},
	}
	if !reflect.DeepEqual(s, want) {
		got, _ := json.Marshal(s)
		w, _ := json.Marshal(want)
		t.Errorf("spec:\n got  %s\n want %s", got, w)
	}
}

func TestMarshalers(t *testing.T) {
	tests := []struct {
		name string
		in   string // JSON of an EnvSpec-holding Proc spec fragment
		out  string // re-marshaled JSON
	}{
		{"inherit true", `{"inherit":true}`, `{"inherit":true}`},
		{"inherit false", `{"inherit":false}`, `{"inherit":false}`},
		{"inherit list", `{"inherit":["A","B"]}`, `{"inherit":["A","B"]}`},
		{"inherit empty list", `{"inherit":[]}`, `{"inherit":[]}`},
		{"inherit null", `{"inherit":null}`, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e EnvSpec
			if err := json.Unmarshal([]byte(tt.in), &e); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(e)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.out {
				t.Errorf("got %s, want %s", b, tt.out)
			}
		})
	}
	for in, want := range map[string]Signal{`"SIGTERM"`: "SIGTERM", `9`: "9", `-1`: "-1"} {
		var s Signal
		if err := json.Unmarshal([]byte(in), &s); err != nil || s != want {
			t.Errorf("Signal from %s = %q, %v", in, s, err)
		}
		b, _ := json.Marshal(s)
		if string(b) != `"`+string(want)+`"` {
			t.Errorf("Signal marshal = %s", b)
		}
	}
	for _, in := range []string{`1.5`, `true`, `[]`, `{}`, `1e3`} {
		var s Signal
		if err := json.Unmarshal([]byte(in), &s); err == nil {
			t.Errorf("Signal from %s succeeded: %q", in, s)
		}
		var f FdName
		if err := json.Unmarshal([]byte(in), &f); err == nil {
			t.Errorf("FdName from %s succeeded: %q", in, f)
		}
	}
	for in, want := range map[string]Quantity{`"2Gi"`: "2Gi", `1024`: "1024", `1.5`: "1.5", `1e3`: "1e3"} {
		var q Quantity
		if err := json.Unmarshal([]byte(in), &q); err != nil || q != want {
			t.Errorf("Quantity from %s = %q, %v", in, q, err)
		}
		y, _ := yaml.Marshal(map[string]Quantity{"q": q})
		var back map[string]Quantity
		if err := yaml.Unmarshal(y, &back); err != nil || back["q"] != want {
			t.Errorf("Quantity YAML round trip of %q: %q, %v (%s)", want, back["q"], err, y)
		}
	}
	for _, in := range []string{`true`, `[]`, `{}`} {
		var q Quantity
		if err := json.Unmarshal([]byte(in), &q); err == nil {
			t.Errorf("Quantity from %s succeeded", in)
		}
	}
}

func TestIsZero(t *testing.T) {
	p := Proc{Spec: ProcSpec{Env: EnvSpec{Vars: map[string]*string{}}}, Status: ProcStatus{Conditions: []Condition{}}}
	b, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "env") || strings.Contains(string(b), "status") {
		t.Errorf("empty env/status not omitted: %s", b)
	}
	p.Status.Pid = 1
	p.Spec.Env.Vars["A"] = nil
	b, _ = json.Marshal(&p)
	if !strings.Contains(string(b), `"env":{"vars":{"A":null}}`) || !strings.Contains(string(b), `"status":{"pid":1}`) {
		t.Errorf("non-empty env/status omitted: %s", b)
	}
}

// aliasBomb is a "billion laughs" document: 10^9 strings through aliases.
func aliasBomb() string {
	b := head + "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
	for i := 1; i < 9; i++ {
		prev := "*a" + strconv.Itoa(i-1)
		b += "a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [" + strings.Repeat(prev+", ", 9) + prev + "]\n"
	}
	return b
}
