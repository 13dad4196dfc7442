package signals

import "testing"

func TestNameParseRoundTrip(t *testing.T) {
	for n := 1; n <= Max; n++ {
		name := Name(n)
		got, err := Parse(name)
		if err != nil || got != n {
			t.Errorf("Parse(Name(%d)=%q) = %d, %v", n, name, got, err)
		}
	}
}

func TestParse(t *testing.T) {
	cases := []struct {
		in   string
		want int
		ok   bool
	}{
		{"SIGTERM", 15, true}, {"term", 15, true}, {"15", 15, true}, {"KILL", 9, true},
		{"SIGRTMIN", 34, true}, {"SIGRTMIN+1", 35, true}, {"sigrtmax-2", 62, true},
		{"SIGRTMAX", 64, true}, {"SIGIOT", 6, true}, {"SIG40", 40, true},
		{"SIGSTKFLT", 16, true},
		{"", 0, false}, {"0", 0, false}, {"65", 0, false}, {"-1", 0, false},
		{"SIGRTMIN+31", 0, false}, {"SIGRTMIN3", 0, false}, {"SIGFOO", 0, false},
		{"SIG65", 0, false},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("Parse(%q) = %d, %v; want %d, ok=%v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestName(t *testing.T) {
	for n, want := range map[int]string{9: "SIGKILL", 16: "SIGSTKFLT", 32: "SIG32", 35: "SIGRTMIN+1", 63: "SIGRTMIN+29", 64: "SIGRTMAX", 0: "SIG0", 99: "SIG99"} {
		if got := Name(n); got != want {
			t.Errorf("Name(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestSet(t *testing.T) {
	// Bit n-1 is signal n: 0x4002 has bits 1 and 14, so SIGINT and SIGTERM.
	got := Set(0x4002 | 1<<(35-1))
	want := []string{"SIGINT", "SIGTERM", "SIGRTMIN+1"}
	if len(got) != len(want) {
		t.Fatalf("Set = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Set = %v, want %v", got, want)
		}
	}
	if s := Set(0); s == nil || len(s) != 0 {
		t.Fatalf("Set(0) = %#v, want empty non-nil", s)
	}
}
