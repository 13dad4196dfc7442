package wire

import (
	"errors"
	"fmt"
	"testing"

	v1 "procstar.dev/procstar/api/v1"
)

// TestStartErrorText covers the mapping of the backend's field paths to
// proc IDs.
func TestStartErrorText(t *testing.T) {
	var procs []v1.Proc
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"} {
		procs = append(procs, v1.Proc{Metadata: v1.ObjectMeta{Name: id}})
	}
	for _, tt := range []struct {
		err  error
		want string
	}{
		{v1.ErrorList{{Field: "items[1].spec.fds[0].dup.fd", Detail: "must be 0 or more"}, {Field: "items[0].spec", Detail: "x"}},
			"proc b: fds[0].dup.fd: must be 0 or more"},
		{v1.ErrorList{{Field: "items[10].metadata.name", Detail: `must not contain "/"`}}, `proc k: metadata.name: must not contain "/"`},
		{v1.ErrorList{{Field: "items[1]", Detail: "bad"}}, "proc b: bad"},
		{v1.ErrorList{{Field: "items[2].spec", Detail: "bad"}}, "proc c: bad"},
		{v1.ErrorList{{Field: "other", Detail: "bad"}}, "bad"},
		{fmt.Errorf("wrapped: %w", v1.ErrorList{{Field: "items[0].spec.exe", Detail: "must not contain NUL"}}), "proc a: exe: must not contain NUL"},
		{errors.New("duplicate proc id: a"), "duplicate proc id: a"},
	} {
		if got := StartErrorText(tt.err, procs); got != tt.want {
			t.Errorf("StartErrorText(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestPrepareStart checks the order of procstar's checks: conversion,
// proc IDs in use, then fds.
func TestPrepareStart(t *testing.T) {
	spec := func(js string) ProcSpec {
		var s ProcSpec
		if err := s.UnmarshalJSON([]byte(js)); err != nil {
			t.Fatal(err)
		}
		return s
	}
	inUse := func(ids ...string) func(string) (bool, error) {
		return func(id string) (bool, error) {
			for _, u := range ids {
				if u == id {
					return true, nil
				}
			}
			return false, nil
		}
	}
	good := spec(`{"argv": ["/bin/true"]}`)
	badFd := spec(`{"argv": ["/bin/true"], "fds": [["stdpot", {"null": {}}]]}`)
	procs, err := PrepareStart(map[string]ProcSpec{"b": good, "a": good}, inUse())
	if err != nil || len(procs) != 2 || procs[0].Metadata.Name != "a" || procs[1].Spec.Argv[0] != "/bin/true" {
		t.Fatalf("procs %+v, %v", procs, err)
	}
	if _, err := PrepareStart(map[string]ProcSpec{"a": badFd, "b": good}, inUse("b")); err == nil || err.Error() != "duplicate proc id: b" {
		t.Errorf("in use and bad fd: %v", err)
	}
	if _, err := PrepareStart(map[string]ProcSpec{"a": badFd}, inUse()); err == nil || err.Error() != "bad fd: stdpot" || !errors.Is(err, ErrBadSpec) {
		t.Errorf("bad fd: %v", err)
	}
	boom := errors.New("table unavailable")
	if _, err := PrepareStart(map[string]ProcSpec{"a": good}, func(string) (bool, error) { return false, boom }); !errors.Is(err, boom) {
		t.Errorf("lookup error: %v", err)
	}
}
