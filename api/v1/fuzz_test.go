package v1

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

// FuzzDecode checks that Decode never panics and that whatever it accepts
// survives Validate, SetDefaults, DeepCopy and a marshal/decode round trip.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	samples, _ := filepath.Glob("../../config/samples/*.yaml")
	for _, name := range append(files, samples...) {
		if data, err := os.ReadFile(name); err == nil {
			f.Add(data)
		}
	}
	for _, s := range []string{
		"", "---", "null", "[]", "{}", "- 1", head, head + "spec: {fdz: 1}",
		head + "spec: {env: {vars: {}}, fds: []}\nstatus: {conditions: []}",
		head + "spec: {argv: [x], umask: 0027, pdeathSignal: 9, resources: {memoryMax: 1e3}}",
		`{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p","creationTimestamp":"2026-01-01T00:00:00+01:00"}}`,
		"apiVersion: procstar.dev/v1\nkind: ProcList\nitems: [{metadata: {name: a}}, null]",
		head + "spec: {fds: [{fd: 1, null: {}}, {fd: stdout, null: null}]}",
		head + "a: &a [*a]",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(checkDecoded)
}

// checkDecoded is FuzzDecode's body.
func checkDecoded(t *testing.T, data []byte) {
	{
		procs, err := Decode(data)
		if err != nil {
			return
		}
		_ = ValidateProcs(procs)
		for i := range procs {
			p := &procs[i]
			_ = p.Validate()
			cp := p.DeepCopy()
			if !reflect.DeepEqual(cp, p) {
				t.Fatalf("DeepCopy differs")
			}
			cp.SetDefaults()
			once, _ := json.Marshal(cp)
			cp.SetDefaults()
			if twice, _ := json.Marshal(cp); !bytes.Equal(once, twice) {
				t.Fatalf("SetDefaults is not idempotent:\n%s\n%s", once, twice)
			}
			_ = cp.Validate()
			_, _, _ = cp.Spec.UmaskValue()
		}
		// Round trip through JSON always, and through YAML where the YAML
		// library can write the strings (it rejects some control
		// characters that JSON input may carry).
		roundTrip(t, "json", procs, func(ps []Proc) ([]byte, error) { return json.Marshal(ps) })
		roundTrip(t, "yaml", procs, encodeYAML)
	}
}

// encodeYAML writes procs as YAML documents separated by "---".
func encodeYAML(procs []Proc) ([]byte, error) {
	var buf bytes.Buffer
	for i := range procs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(&procs[i])
		if err != nil {
			return nil, err
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// roundTrip checks that procs encode, decode to as many procs, and encode
// to the same bytes again.
func roundTrip(t *testing.T, name string, procs []Proc, encode func([]Proc) ([]byte, error)) {
	t.Helper()
	b1, err := encode(procs)
	if err != nil {
		if name == "yaml" {
			return
		}
		t.Fatalf("%s: encode: %v", name, err)
	}
	if len(procs) == 0 {
		return
	}
	again, err := Decode(b1)
	if err != nil {
		t.Fatalf("%s: re-decode of\n%s\nfailed: %v", name, b1, err)
	}
	if len(again) != len(procs) {
		t.Fatalf("%s: re-decode gave %d procs, want %d", name, len(again), len(procs))
	}
	b2, err := encode(again)
	if err != nil || !bytes.Equal(b1, b2) {
		t.Fatalf("%s: round trip not stable (%v):\n%s\n---- vs\n%s", name, err, b1, b2)
	}
	third, err := Decode(b2)
	if err != nil || !reflect.DeepEqual(third, again) {
		t.Fatalf("%s: decode of stable form differs: %v", name, err)
	}
}
