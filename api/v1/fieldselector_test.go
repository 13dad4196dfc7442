package v1

import (
	"errors"
	"strings"
	"testing"
)

func TestFieldSelector(t *testing.T) {
	run := &Proc{Metadata: ObjectMeta{Name: "a,b=c", Namespace: "ns"}, Status: ProcStatus{Phase: PhaseRunning}}
	done := &Proc{Metadata: ObjectMeta{Name: "web"}, Status: ProcStatus{Phase: PhaseSucceeded}}
	for _, tt := range []struct {
		in, canon string
		run, done bool
	}{
		{"", "", true, true},
		{"  ", "", true, true},
		{"status.phase=Running", "status.phase=Running", true, false},
		{"status.phase==Succeeded", "status.phase=Succeeded", false, true},
		{"status.phase!=Succeeded", "status.phase!=Succeeded", true, false},
		{" status.phase =Running", "status.phase=Running", true, false},
		{`metadata.name=a\,b\=c`, `metadata.name=a\,b\=c`, true, false},
		{"metadata.name=web,status.phase=Succeeded", "metadata.name=web,status.phase=Succeeded", false, true},
		{"status.phase=Succeeded,metadata.name=web", "metadata.name=web,status.phase=Succeeded", false, true},
		{"metadata.namespace=ns", "metadata.namespace=ns", true, false},
		{"metadata.namespace=", "metadata.namespace=", false, true},
		{`metadata.name=x\!`, `metadata.name=x\!`, false, false},
	} {
		s, err := ParseFieldSelector(tt.in)
		if err != nil {
			t.Fatalf("%q: %v", tt.in, err)
		}
		if got := s.String(); got != tt.canon {
			t.Errorf("%q: canonical %q, want %q", tt.in, got, tt.canon)
		}
		if s.Matches(run) != tt.run || s.Matches(done) != tt.done {
			t.Errorf("%q: matches running %v, done %v", tt.in, s.Matches(run), s.Matches(done))
		}
		if s.Empty() != (tt.canon == "") {
			t.Errorf("%q: Empty %v", tt.in, s.Empty())
		}
		again, err := ParseFieldSelector(s.String())
		if err != nil || again.String() != s.String() {
			t.Errorf("%q: canonical form does not parse back: %v %q", tt.in, err, again.String())
		}
	}
}

func TestFieldSelectorErrors(t *testing.T) {
	for in, want := range map[string]string{
		"spec.exe=/bin/true":     "field label not supported: spec.exe",
		"status.phase":           "expected field=value",
		"=Running":               "no field",
		"status.phase=a=b":       `"=" in a value must be escaped`,
		`status.phase=a\`:        "trailing backslash",
		`status.phase=a\x`:       "is not an escape",
		"status.phase=Running,,": "expected field=value",
	} {
		_, err := ParseFieldSelector(in)
		if err == nil || !errors.Is(err, ErrBadFieldSelector) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one with %q", in, err, want)
		}
	}
}

func FuzzParseFieldSelector(f *testing.F) {
	for _, s := range []string{
		"", "status.phase=Running", "metadata.name==a\\,b", "metadata.namespace!=x",
		"status.phase!=Succeeded, metadata.name=web", "metadata.name=\\=x\\!", " metadata.name = x",
		"metadata.name=a=b", "metadata.name=\\q", "metadata.name=\\", "spec.argv=x", "=x", "a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseFieldSelector(in)
		if err != nil {
			if !errors.Is(err, ErrBadFieldSelector) {
				t.Fatalf("error %v does not match ErrBadFieldSelector", err)
			}
			return
		}
		// The canonical form is stable and selects the same procs: those
		// whose fields take each term's value, and one with none set.
		canon := s.String()
		s2, err := ParseFieldSelector(canon)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", canon, in, err)
		}
		if s2.String() != canon {
			t.Fatalf("canonical form not stable: %q then %q", canon, s2.String())
		}
		procs := []*Proc{{}}
		for _, r := range s.reqs {
			v := r.value
			procs = append(procs, &Proc{Metadata: ObjectMeta{Name: v, Namespace: v}, Status: ProcStatus{Phase: ProcPhase(v)}})
		}
		for _, p := range procs {
			if s.Matches(p) != s2.Matches(p) {
				t.Fatalf("%q and its canonical %q disagree on %+v", in, canon, p.Metadata)
			}
		}
	})
}
