package v1

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.yaml")

// encodeProcs writes procs as YAML documents separated by "---".
func encodeProcs(t testing.TB, procs []Proc) []byte {
	t.Helper()
	var buf bytes.Buffer
	for i := range procs {
		if i > 0 {
			buf.WriteString("---\n")
		}
		b, err := yaml.Marshal(&procs[i])
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		buf.Write(b)
	}
	return buf.Bytes()
}

// TestGolden decodes each testdata input, sets defaults, validates,
// encodes to YAML and compares with its .golden.yaml file. The golden file
// must itself decode to the same procs.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range inputs {
		if strings.HasSuffix(in, ".golden.yaml") {
			continue
		}
		n++
		t.Run(filepath.Base(in), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			procs, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(procs) == 0 {
				t.Fatal("no procs decoded")
			}
			for i := range procs {
				procs[i].SetDefaults()
			}
			if err := ValidateProcs(procs); err != nil {
				t.Fatalf("ValidateProcs: %v", err)
			}
			got := encodeProcs(t, procs)
			golden := strings.TrimSuffix(in, ".yaml") + ".golden.yaml"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (run go test -update after checking):\n--- got\n%s\n--- want\n%s", golden, got, want)
			}
			// The golden form decodes back to the same thing and is stable.
			again, err := Decode(want)
			if err != nil {
				t.Fatalf("Decode(golden): %v", err)
			}
			for i := range again {
				again[i].SetDefaults()
			}
			if got2 := encodeProcs(t, again); !bytes.Equal(got2, want) {
				t.Errorf("golden does not round-trip:\n%s", got2)
			}
		})
	}
	if n == 0 {
		t.Fatal("no inputs in testdata")
	}
}
