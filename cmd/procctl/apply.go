package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/client"
	"procstar.dev/procstar/internal/errdefs"
)

// maxManifest bounds one file or stdin.
const maxManifest = 64 << 20

// sourcedProc is a proc and where it was read from.
type sourcedProc struct {
	proc   v1.Proc
	source string
}

// readManifests reads every -f source: a file, a directory (its *.yaml,
// *.yml and *.json files, sorted, not recursive) or "-" for stdin. It
// decodes and validates everything before anything is sent, so one bad
// document sends nothing.
func (a *app) readManifests(files []string) ([]sourcedProc, error) {
	if len(files) == 0 {
		return nil, usageErrorf("no input: pass -f FILE, -f DIR or -f -")
	}
	var out []sourcedProc
	stdinUsed := false
	for _, f := range files {
		var paths []string
		switch {
		case f == "-":
			if stdinUsed {
				return nil, usageErrorf("-f - given twice")
			}
			stdinUsed = true
			b, err := io.ReadAll(io.LimitReader(a.stdin, maxManifest+1))
			if err != nil {
				return nil, failf("cannot read stdin: %s", oneLine(err.Error()))
			}
			procs, err := decodeManifest("stdin", b)
			if err != nil {
				return nil, err
			}
			out = append(out, procs...)
			continue
		default:
			st, err := os.Stat(f)
			if err != nil {
				return nil, usageErrorf("cannot read %s", pathErr(err))
			}
			if !st.IsDir() {
				paths = []string{f}
				break
			}
			ents, err := os.ReadDir(f)
			if err != nil {
				return nil, usageErrorf("cannot read directory %s", pathErr(err))
			}
			for _, e := range ents {
				switch strings.ToLower(filepath.Ext(e.Name())) {
				case ".yaml", ".yml", ".json":
					if !e.IsDir() {
						paths = append(paths, filepath.Join(f, e.Name()))
					}
				}
			}
			sort.Strings(paths)
			if len(paths) == 0 {
				return nil, usageErrorf("directory %s has no *.yaml, *.yml or *.json files", f)
			}
		}
		for _, p := range paths {
			b, err := readLimited(p)
			if err != nil {
				return nil, err
			}
			procs, err := decodeManifest(p, b)
			if err != nil {
				return nil, err
			}
			out = append(out, procs...)
		}
	}
	seen := map[string]string{}
	for _, sp := range out {
		if prev, ok := seen[sp.proc.Metadata.Name]; ok {
			return nil, usageErrorf("proc %q is defined twice (%s and %s)", sp.proc.Metadata.Name, prev, sp.source)
		}
		seen[sp.proc.Metadata.Name] = sp.source
	}
	if len(out) == 0 {
		return nil, usageErrorf("no procs found in %s", strings.Join(files, ", "))
	}
	return out, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErrorf("cannot read %s", pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxManifest+1))
	if err != nil {
		return nil, usageErrorf("cannot read %s", pathErr(err))
	}
	return b, nil
}

// decodeManifest decodes and validates the procs of one source.
func decodeManifest(source string, b []byte) ([]sourcedProc, error) {
	if len(b) > maxManifest {
		return nil, usageErrorf("%s: larger than %d MiB", source, maxManifest>>20)
	}
	procs, err := v1.Decode(b)
	if err != nil {
		return nil, usageErrorf("%s: %s", source, oneLine(err.Error()))
	}
	out := make([]sourcedProc, 0, len(procs))
	for i := range procs {
		p := procs[i]
		if err := p.Validate(); err != nil {
			name := p.Metadata.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			return nil, usageErrorf("%s: proc %s is invalid: %s", source, name, oneLine(err.Error()))
		}
		if p.APIVersion == "" {
			p.APIVersion, p.Kind = v1.APIVersion, v1.KindProc
		}
		out = append(out, sourcedProc{proc: p, source: source})
	}
	return out, nil
}

func (a *app) applyCmd() *cobra.Command {
	var files []string
	var force, dryRun bool
	cmd := &cobra.Command{
		Use:   "apply -f FILE|DIR|-",
		Short: "Create procs from YAML or JSON, or leave them alone when unchanged",
		Long: `Apply creates each proc of the input, or leaves it alone when a proc of that
name exists with the same spec. A proc's spec is immutable: a changed spec is
refused unless --force, which deletes the proc and creates it again.

Procs joined by pipes (a pipeRead naming another proc of the input) start
together: when none of them exists they are created in one batch; when all
exist each is applied as above; when only some exist, apply refuses.

Input is multi-document YAML, JSON, or a ProcList; a directory means its
*.yaml, *.yml and *.json files.`,
		Example: "  procctl apply -f proc.yaml\n  procctl apply -f config/samples/\n  cat proc.yaml | procctl apply -f -\n  procctl apply -f proc.yaml --dry-run",
		RunE: func(cmd *cobra.Command, _ []string) error {
			procs, err := a.readManifests(files)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			suffix := ""
			if dryRun {
				suffix = " (dry run)"
			}
			failed := 0
			for _, g := range pipeGroups(procs) {
				var err error
				if len(g) == 1 {
					err = a.applyOne(ctx, c, &g[0].proc, force, dryRun, suffix)
				} else {
					err = a.applyGroup(ctx, c, g, force, dryRun, suffix)
				}
				if err != nil {
					if fatal(err) {
						return err
					}
					failed = max(failed, a.report(err))
				}
			}
			if failed != 0 {
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) to read procs from; repeatable")
	cmd.Flags().BoolVar(&force, "force", false, "replace a proc whose spec changed (delete and re-create it)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "change nothing: compare the input with the server's procs and print what apply would do")
	return cmd
}

// applyOne applies one proc that no pipe joins to another of the input,
// or with dryRun says what that would do, and prints the result.
func (a *app) applyOne(ctx context.Context, c *client.Client, p *v1.Proc, force, dryRun bool, suffix string) error {
	name := p.Metadata.Name
	var res v1.ApplyResult
	var err error
	if dryRun {
		res, err = c.DryRunApply(ctx, p, force)
	} else {
		_, res, err = c.Apply(ctx, p, force)
	}
	if err != nil {
		if fatal(err) {
			return err
		}
		return applyError(p, err)
	}
	fmt.Fprintf(a.stdout, "proc/%s %s%s\n", name, res, suffix)
	return nil
}

// applyGroup applies procs joined by pipes, which must start in one
// batch: when none exists it creates them with one request; when all
// exist it applies each; when only some do it refuses.
func (a *app) applyGroup(ctx context.Context, c *client.Client, g []sourcedProc, force, dryRun bool, suffix string) error {
	live := make([]*v1.Proc, len(g))
	var existing, missing []string
	for i := range g {
		name := g[i].proc.Metadata.Name
		p, err := c.Get(ctx, name)
		switch {
		case err == nil:
			live[i] = p
			existing = append(existing, name)
		case errors.Is(err, errdefs.ErrNotFound):
			missing = append(missing, name)
		default:
			return procError(name, err)
		}
	}
	all := groupNames(g)
	switch {
	case len(existing) == 0:
		if !dryRun {
			if err := a.createGroup(ctx, c, g); err != nil {
				return err
			}
		}
		for i := range g {
			fmt.Fprintf(a.stdout, "proc/%s created%s\n", g[i].proc.Metadata.Name, suffix)
		}
		return nil
	case len(missing) > 0:
		return failf("procs %s are joined by pipes and must start together, but only %s %s: delete %s (procctl delete proc %s) and apply again",
			quotedList(all), quotedList(existing), existVerb(existing), themOrIt(existing), strings.Join(existing, " "))
	}
	// All exist: apply each, unless --force would replace some, which
	// would start a proc without the other end of its pipes.
	if force {
		var changed []string
		for i := range g {
			if !v1.SameSpec(&live[i].Spec, &g[i].proc.Spec) || live[i].Metadata.DeletionTimestamp != nil {
				changed = append(changed, g[i].proc.Metadata.Name)
			}
		}
		if len(changed) > 0 {
			return failf("procs %s are joined by pipes and %s changed: --force cannot replace part of a pipe group; delete them (procctl delete proc %s) and apply again",
				quotedList(all), quotedList(changed), strings.Join(all, " "))
		}
	}
	var firstErr error
	for i := range g {
		p := &g[i].proc
		var res v1.ApplyResult
		var err error
		if dryRun {
			res, err = client.PreviewApply(live[i], p, force)
		} else {
			_, res, err = c.Apply(ctx, p, force)
		}
		if err != nil {
			if fatal(err) {
				return err
			}
			err = applyError(p, err)
			if firstErr == nil {
				firstErr = err
			} else {
				a.report(err)
			}
			continue
		}
		fmt.Fprintf(a.stdout, "proc/%s %s%s\n", p.Metadata.Name, res, suffix)
	}
	return firstErr
}

// createGroup creates procs joined by pipes with one request.
func (a *app) createGroup(ctx context.Context, c *client.Client, g []sourcedProc) error {
	procs := make([]v1.Proc, len(g))
	for i := range g {
		procs[i] = g[i].proc
	}
	_, err := c.CreateBatch(ctx, procs)
	switch {
	case err == nil:
		return nil
	case fatal(err):
		return err
	case errors.Is(err, errdefs.ErrAlreadyExists):
		return failf("procs %s (joined by pipes, created together) were not created: one exists already (%s); use apply to leave identical procs alone, or delete them first",
			quotedList(groupNames(g)), oneLine(err.Error()))
	case errors.Is(err, errdefs.ErrInvalidArgument), errors.Is(err, errdefs.ErrConflict):
		return failf("procs %s (joined by pipes, created together) rejected by the server: %s", quotedList(groupNames(g)), oneLine(err.Error()))
	}
	return err
}

// pipeGroups splits procs into groups, in input order: a proc is in the
// group of every proc of the input its pipeRead fds name (procId), and
// so on transitively. A proc joined to no other is a group of one.
func pipeGroups(procs []sourcedProc) [][]sourcedProc {
	parent := make([]int, len(procs))
	index := make(map[string]int, len(procs))
	for i := range procs {
		parent[i] = i
		index[procs[i].proc.Metadata.Name] = i
	}
	find := func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	for i := range procs {
		for _, f := range procs[i].proc.Spec.Fds {
			if f.PipeRead == nil {
				continue
			}
			if j, ok := index[f.PipeRead.ProcID]; ok {
				ri, rj := find(i), find(j)
				if ri != rj {
					parent[max(ri, rj)] = min(ri, rj)
				}
			}
		}
	}
	var groups [][]sourcedProc
	at := map[int]int{} // root → index in groups
	for i := range procs {
		r := find(i)
		k, ok := at[r]
		if !ok {
			k = len(groups)
			at[r] = k
			groups = append(groups, nil)
		}
		groups[k] = append(groups[k], procs[i])
	}
	return groups
}

func groupNames(g []sourcedProc) []string {
	names := make([]string, len(g))
	for i := range g {
		names[i] = g[i].proc.Metadata.Name
	}
	return names
}

// quotedList is `"a"`, `"a" and "b"` or `"a", "b" and "c"`.
func quotedList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	if len(q) <= 1 {
		return strings.Join(q, "")
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}

func existVerb(names []string) string {
	if len(names) == 1 {
		return "exists"
	}
	return "exist"
}

func themOrIt(names []string) string {
	if len(names) == 1 {
		return "it"
	}
	return "them"
}

// hasPipes reports whether p reads or writes a pipe to another proc.
func hasPipes(p *v1.Proc) bool {
	for _, f := range p.Spec.Fds {
		if f.PipeRead != nil || f.PipeWrite != nil {
			return true
		}
	}
	return false
}

// fatal reports whether err ends a multi-object command at once: the
// server cannot be reached, refuses us, or is not a procstar API, so the
// next object would fail the same way.
func fatal(err error) bool {
	return errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, errdefs.ErrUnauthorized) ||
		errors.Is(err, client.ErrNotAPI) || errors.Is(err, client.ErrBadResponse) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// applyError words an apply failure for p.
func applyError(p *v1.Proc, err error) error {
	name := p.Metadata.Name
	switch {
	case errors.Is(err, errdefs.ErrConflict) && strings.Contains(err.Error(), "being deleted"):
		return failf("proc %q is being deleted: wait for it to go and apply again, or pass --force", name)
	case errors.Is(err, errdefs.ErrConflict):
		return failf("proc %q exists with a different spec, and a proc's spec is immutable: pass --force to delete and re-create it", name)
	case errors.Is(err, errdefs.ErrInvalidArgument):
		hint := ""
		if hasPipes(p) {
			hint = " (procs joined by pipes must be applied together, from one input)"
		}
		return failf("proc %q rejected by the server: %s%s", name, oneLine(err.Error()), hint)
	}
	return procError(name, err)
}

func (a *app) createCmd() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:   "create -f FILE|DIR|-",
		Short: "Create procs from YAML or JSON; fail for a proc that exists",
		Long: `Create creates each proc of the input, and fails for a proc that exists.
Procs joined by pipes (a pipeRead naming another proc of the input) are
created together in one batch, all or nothing.`,
		Example: "  procctl create -f proc.yaml",
		RunE: func(cmd *cobra.Command, _ []string) error {
			procs, err := a.readManifests(files)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			failed := 0
			for _, g := range pipeGroups(procs) {
				if len(g) > 1 {
					if err := a.createGroup(cmd.Context(), c, g); err != nil {
						if fatal(err) {
							return err
						}
						failed = max(failed, a.report(err))
						continue
					}
					for i := range g {
						fmt.Fprintf(a.stdout, "proc/%s created\n", g[i].proc.Metadata.Name)
					}
					continue
				}
				p := &g[0].proc
				name := p.Metadata.Name
				if _, err := c.Create(cmd.Context(), p); err != nil {
					if fatal(err) {
						return err
					}
					if errors.Is(err, errdefs.ErrAlreadyExists) {
						err = failf("proc %q already exists (use apply to leave an identical proc alone, or delete it first)", name)
					} else {
						err = applyError(p, err)
					}
					failed = max(failed, a.report(err))
					continue
				}
				fmt.Fprintf(a.stdout, "proc/%s created\n", name)
			}
			if failed != 0 {
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) to read procs from; repeatable")
	return cmd
}
