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
