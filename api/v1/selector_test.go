package v1

import (
	"errors"
	"strings"
	"testing"
)

func TestParseSelectorMatches(t *testing.T) {
	labels := map[string]string{"team": "data", "tier": "batch", "example.com/owner": "ann", "empty": ""}
	tests := []struct {
		sel   string
		canon string
		match bool
	}{
		{"", "", true},
		{"   ", "", true},
		{"team=data", "team=data", true},
		{"team==data", "team=data", true},
		{"team = data", "team=data", true},
		{"team=web", "team=web", false},
		{"team!=web", "team!=web", true},
		{"team!=data", "team!=data", false},
		{"missing!=x", "missing!=x", true},
		{"team in (data, web)", "team in (data,web)", true},
		{"team in (web,ops)", "team in (ops,web)", false},
		{"team in(web,data,web)", "team in (data,web)", true},
		{"team notin (web)", "team notin (web)", true},
		{"team notin (data)", "team notin (data)", false},
		{"missing notin (data)", "missing notin (data)", true},
		{"missing in (data)", "missing in (data)", false},
		{"team", "team", true},
		{"missing", "missing", false},
		{"!missing", "!missing", true},
		{"! team", "!team", false},
		{"tier=batch,team=data", "team=data,tier=batch", true},
		{" tier = batch , team in ( data ) , !x ", "team in (data),tier=batch,!x", true},
		{"tier=batch,team=web", "team=web,tier=batch", false},
		{"example.com/owner=ann", "example.com/owner=ann", true},
		{"empty=", "empty=", true},
		{"team=", "team=", false},
		{"a.b-c_d=A.b-9", "a.b-c_d=A.b-9", false},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			s, err := ParseSelector(tt.sel)
			if err != nil {
				t.Fatalf("ParseSelector: %v", err)
			}
			if got := s.String(); got != tt.canon {
				t.Errorf("String() = %q, want %q", got, tt.canon)
			}
			if got := s.Matches(labels); got != tt.match {
				t.Errorf("Matches = %v, want %v", got, tt.match)
			}
			if s.Empty() != (tt.canon == "") {
				t.Errorf("Empty() = %v", s.Empty())
			}
			// The canonical form parses to the same selector.
			s2, err := ParseSelector(s.String())
			if err != nil || s2.String() != s.String() {
				t.Errorf("round trip: %v %q", err, s2)
			}
		})
	}
}

func TestParseSelectorErrors(t *testing.T) {
	tests := []struct{ sel, want string }{
		{"team=data,", "expected a label key at end of input"},
		{",team", "expected a label key at position 1"},
		{"team==", ""}, // empty value is valid; handled below as success
		{"team===data", `unexpected "="`},
		{"team=!data", `unexpected "!"`},
		{"team data", `expected an operator`},
		{"team in data", `expected "(" after in/notin`},
		{"team in (a", `expected ")" to close`},
		{"team in (a b)", `expected "," or ")"`},
		{"team in ()", "must be non-empty"},
		{"team notin ()", "must be non-empty"},
		{"team in (,x)", "must be non-empty"},
		{"team in (x,)", "must be non-empty"},
		{"team=(x)", `expected "," or end of input`},
		{"team=data)", `expected "," or end of input`},
		{"-team=x", `label key "-team" must begin and end`},
		{"team-=x", `label key "team-"`},
		{"te@m=x", `must consist of letters`},
		{"team=d@ta", `label value "d@ta"`},
		{"team=-x", `label value "-x"`},
		{strings.Repeat("k", 64) + "=x", "at most 63"},
		{"team=" + strings.Repeat("v", 64), "at most 63"},
		{"Example.com/x=y", "bad prefix"},
		{"/x=y", "bad prefix"},
		{"a..b/x=y", "bad prefix"},
		{"example.com/=y", "must have a name"},
		{strings.Repeat("a", 254) + "/x", "bad prefix: must be at most 253"},
		{"!", "expected a label key at end of input"},
		{"!a=b", `expected "," or end of input`},
		{"a!b", "expected an operator"},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			s, err := ParseSelector(tt.sel)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseSelector(%q) = %q, want an error", tt.sel, s)
			}
			if !errors.Is(err, ErrBadSelector) {
				t.Errorf("error %v does not match ErrBadSelector", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q is not one line", err)
			}
		})
	}
}

func TestEverything(t *testing.T) {
	s := Everything()
	if !s.Empty() || s.String() != "" || !s.Matches(nil) || !s.Matches(map[string]string{"a": "b"}) {
		t.Errorf("Everything() = %q does not match everything", s)
	}
}

func FuzzParseSelector(f *testing.F) {
	for _, s := range []string{
		"", "a=b", "a==b,c!=d", "a in (x,y)", "a notin (x)", "!a", "a", "x.y/z=w",
		"a in (", "a=,b", "a in (,)", " a , b ", "a=b)", "!!a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSelector(in)
		if err != nil {
			if !errors.Is(err, ErrBadSelector) {
				t.Fatalf("error %v does not match ErrBadSelector", err)
			}
			return
		}
		// Canonical form is stable and equivalent.
		canon := s.String()
		s2, err := ParseSelector(canon)
		if err != nil {
			t.Fatalf("canonical %q of %q does not parse: %v", canon, in, err)
		}
		if s2.String() != canon {
			t.Fatalf("canonical form not stable: %q then %q", canon, s2.String())
		}
		_ = s.Matches(map[string]string{"a": "b", "x.y/z": ""})
	})
}
