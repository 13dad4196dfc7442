package v1_test

import (
	"os"
	"path/filepath"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

// TestSamples decodes, defaults and validates every config/samples file.
func TestSamples(t *testing.T) {
	files, err := filepath.Glob("../../config/samples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("found %d samples, want at least 3", len(files))
	}
	for _, name := range files {
		t.Run(filepath.Base(name), func(t *testing.T) {
			data, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			procs, err := v1.Decode(data)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(procs) == 0 {
				t.Fatal("no procs")
			}
			for i := range procs {
				if err := procs[i].Validate(); err != nil {
					t.Errorf("Validate before defaults: %v", err)
				}
				procs[i].SetDefaults()
			}
			if err := v1.ValidateProcs(procs); err != nil {
				t.Errorf("ValidateProcs: %v", err)
			}
			for _, p := range procs {
				exe := p.Spec.Exe
				if exe == "" {
					exe = p.Spec.Argv[0]
				}
				if _, err := os.Stat(exe); err != nil {
					t.Errorf("%s: executable: %v", p.Metadata.Name, err)
				}
			}
		})
	}
}

// TestSampleHello pins the shape the task asks of hello.yaml.
func TestSampleHello(t *testing.T) {
	data, err := os.ReadFile("../../config/samples/hello.yaml")
	if err != nil {
		t.Fatal(err)
	}
	procs, err := v1.Decode(data)
	if err != nil || len(procs) != 1 {
		t.Fatalf("Decode: %v, %d procs", err, len(procs))
	}
	p := procs[0]
	if p.Metadata.Name != "hello" {
		t.Errorf("name = %q", p.Metadata.Name)
	}
	var out *v1.CaptureFd
	var errDup *v1.DupFd
	for _, f := range p.Spec.Fds {
		switch f.Fd.Canonical() {
		case v1.Stdout:
			out = f.Capture
		case v1.Stderr:
			errDup = f.Dup
		}
	}
	if out == nil || out.Mode != v1.CaptureMemory || out.Encoding != v1.EncodingUTF8 {
		t.Errorf("stdout capture = %+v", out)
	}
	if errDup == nil || errDup.Fd != 1 {
		t.Errorf("stderr dup = %+v", errDup)
	}
}
