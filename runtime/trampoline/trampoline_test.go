package trampoline

import (
	"slices"
	"testing"
)

func TestFdOpEncoding(t *testing.T) {
	for _, op := range []FdOp{
		{Fd: 1, Path: "/tmp/a,b:c d", Flags: 577, Mode: 0o640},
		{Fd: 0, Path: "/x", Flags: 0, Mode: 0},
		{Fd: 7, Src: 3},
	} {
		got, ok := decodeOp(op.encode())
		if !ok || got != op {
			t.Errorf("%+v: encoded %q, decoded %+v, %t", op, op.encode(), got, ok)
		}
	}
	for _, bad := range []string{"", "x1,2", "d1", "d1,-2", "o1,2,3", "o1,2,3,", "o-1,0,0,/p", "oa,0,0,/p", "o1,0,-5,/p"} {
		if op, ok := decodeOp(bad); ok {
			t.Errorf("%q decoded as %+v", bad, op)
		}
	}
}

func TestArgvLayout(t *testing.T) {
	ops := []FdOp{{Fd: 1, Path: "/f", Flags: 1, Mode: 0o600}, {Fd: 2, Src: 1}}
	got := Argv(9, 0o22, []int{0, 2}, -1, ops, "/bin/echo", []string{"echo", "hi"})
	want := []string{Arg0, "9", "22:0,2:-:2", "o1,1,384,/f", "d2,1", "/bin/echo", "echo", "hi"}
	if !slices.Equal(got, want) {
		t.Fatalf("Argv = %q, want %q", got, want)
	}
	got = Argv(5, -1, nil, 6, nil, "/bin/true", []string{"true"})
	want = []string{Arg0, "5", "-:-:6:0", "/bin/true", "true"}
	if !slices.Equal(got, want) {
		t.Fatalf("Argv = %q, want %q", got, want)
	}
}
