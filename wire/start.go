package wire

import (
	"errors"
	"strconv"
	"strings"

	v1 "procstar.dev/procstar/api/v1"
)

// PrepareStart converts a batch of procstar specs to Procs sorted by proc
// ID, each named by its ID, and runs the checks procstar makes before it
// starts anything, in its order: each spec converts (ToV1), no proc ID is
// in use already (inUse says; its error is returned as it is), then the
// fds (CheckFds). A refusal's text is procstar's ("duplicate proc id: X",
// "bad fd: X", ...). procstar checks its shutdown state after these, and
// the caller's backend validates further (see StartErrorText).
func PrepareStart(specs map[string]ProcSpec, inUse func(id string) (bool, error)) ([]v1.Proc, error) {
	procs, err := toProcs(specs, func(string) string { return "" })
	if err != nil {
		return nil, err
	}
	for i := range procs {
		id := procs[i].Metadata.Name
		used, err := inUse(id)
		if err != nil {
			return nil, err
		}
		if used {
			return nil, checkErr("duplicate proc id: %s", id)
		}
	}
	if err := CheckFds(specs); err != nil {
		return nil, err
	}
	return procs, nil
}

// StartErrorText words an error from starting procs (in the order
// PrepareStart returned them) for a procstar client. The backend validates
// more than procstar, and reports each problem as a v1.FieldError with a
// path such as "items[3].spec.argv[1]"; a procstar client is told only the
// first, as procstar tells one, named by its proc ID and its path within
// the spec: "proc ID: argv[1]: must not contain NUL". Other errors
// (procstar's own wording, such as "duplicate proc id: X" after a race)
// are told as they are.
func StartErrorText(err error, procs []v1.Proc) string {
	var fe *v1.FieldError
	if !errors.As(err, &fe) {
		return err.Error()
	}
	for i := range procs {
		item := "items[" + strconv.Itoa(i) + "]"
		rest, ok := strings.CutPrefix(fe.Field, item+".")
		if !ok {
			if fe.Field != item {
				continue
			}
			rest = ""
		}
		if r, ok := strings.CutPrefix(rest, "spec."); ok {
			rest = r
		} else if rest == "spec" {
			rest = ""
		}
		id := procs[i].Metadata.Name
		if rest == "" {
			return "proc " + id + ": " + fe.Detail
		}
		return "proc " + id + ": " + rest + ": " + fe.Detail
	}
	return fe.Detail
}
