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

Input is multi-document YAML, JSON, or a ProcList; a directory means its
*.yaml, *.yml and *.json files.`,
		Example: "  procctl apply -f proc.yaml\n  procctl apply -f config/samples/\n  cat proc.yaml | procctl apply -f -",
		RunE: func(cmd *cobra.Command, _ []string) error {
			procs, err := a.readManifests(files)
			if err != nil {
				return err
			}
			if dryRun {
				for _, sp := range procs {
					fmt.Fprintf(a.stdout, "proc/%s created (dry run)\n", sp.proc.Metadata.Name)
				}
				return nil
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			failed := 0
			for _, sp := range procs {
				name := sp.proc.Metadata.Name
				_, res, err := c.Apply(cmd.Context(), &sp.proc, force)
				if err != nil {
					if fatal(err) {
						return err
					}
					failed = max(failed, a.report(applyError(name, err)))
					continue
				}
				fmt.Fprintf(a.stdout, "proc/%s %s\n", name, res)
			}
			if failed != 0 {
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "file, directory or - (stdin) to read procs from; repeatable")
	cmd.Flags().BoolVar(&force, "force", false, "replace a proc whose spec changed (delete and re-create it)")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only decode and validate the input, and print what would be applied")
	return cmd
}

// fatal reports whether err ends a multi-object command at once: the
// server cannot be reached or refuses us, so the next object would fail
// the same way.
func fatal(err error) bool {
	return errors.Is(err, errdefs.ErrUnavailable) || errors.Is(err, errdefs.ErrUnauthorized) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// applyError words an apply failure for the proc called name.
func applyError(name string, err error) error {
	switch {
	case errors.Is(err, errdefs.ErrConflict):
		return failf("proc %q exists with a different spec, and a proc's spec is immutable: pass --force to delete and re-create it", name)
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return failf("proc %q rejected by the server: %s", name, oneLine(err.Error()))
	}
	return err
}

func (a *app) createCmd() *cobra.Command {
	var files []string
	cmd := &cobra.Command{
		Use:     "create -f FILE|DIR|-",
		Short:   "Create procs from YAML or JSON; fail for a proc that exists",
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
			for _, sp := range procs {
				name := sp.proc.Metadata.Name
				if _, err := c.Create(cmd.Context(), &sp.proc); err != nil {
					if fatal(err) {
						return err
					}
					if errors.Is(err, errdefs.ErrAlreadyExists) {
						err = failf("proc %q already exists (use apply to leave an identical proc alone, or delete it first)", name)
					} else {
						err = applyError(name, err)
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
