package v1

import (
	"os"
	"testing"
)

func BenchmarkDecodeFull(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkValidateFull(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	procs, err := Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	p := &procs[0]
	p.SetDefaults()
	for b.Loop() {
		if err := p.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeepCopyFull(b *testing.B) {
	data, err := os.ReadFile("testdata/full.yaml")
	if err != nil {
		b.Fatal(err)
	}
	procs, err := Decode(data)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		_ = procs[0].DeepCopy()
	}
}

// BenchmarkDecodeSmallJSON decodes the one-object JSON body of a typical
// create (as agent's BenchmarkHTTPCreateAndWait sends).
func BenchmarkDecodeSmallJSON(b *testing.B) {
	data := []byte(`{"apiVersion":"procstar.dev/v1","kind":"Proc","metadata":{"name":"p0-1-2","labels":{"iter":"0"}},"spec":{"argv":["/bin/true"]},"status":{}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}
