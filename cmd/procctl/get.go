package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/client"
	"procstar.dev/procstar/cmd/procctl/internal/printer"
	"procstar.dev/procstar/internal/errdefs"
)

func (a *app) getCmd() *cobra.Command {
	var output, selector, fieldSelector string
	var watch, watchEvents bool
	cmd := &cobra.Command{
		Use:   "get procs [NAME…]",
		Short: "List procs as a table, YAML, JSON, names or a JSONPath template",
		Example: `  procctl get procs
  procctl get procs -l team=data -o wide
  procctl get procs --field-selector status.phase=Running
  procctl get proc/nightly-report -o yaml
  procctl get procs -o jsonpath='{range .items[*]}{.metadata.name} {.status.phase}{"\n"}{end}'
  procctl get procs -w
  procctl get procs -w --output-watch-events --field-selector status.phase=Running`,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("say what to get: procctl get procs [NAME…]")
			}
			return nil
		},
		ValidArgsFunction: a.completeTypedProcNames,
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := splitResourceArgs("get", args)
			if err != nil {
				return err
			}
			f, err := printer.ParseFormat(output)
			if err != nil {
				return usageErrorf("%s", err.Error())
			}
			if watchEvents && !watch {
				return usageErrorf("--output-watch-events shows a watch's events: add -w")
			}
			if (selector != "" || fieldSelector != "") && len(names) > 0 {
				return usageErrorf("pass either proc names or selectors (-l, --field-selector), not both")
			}
			if _, err := v1.ParseSelector(selector); err != nil {
				return usageErrorf("-l %q: %s", selector, oneLine(err.Error()))
			}
			if _, err := v1.ParseFieldSelector(fieldSelector); err != nil {
				return usageErrorf("--field-selector %q: %s", fieldSelector, oneLine(err.Error()))
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			// proc/NAME needs nothing but metadata.
			opts := client.ListOptions{LabelSelector: selector, FieldSelector: fieldSelector, MetadataOnly: f.Kind == printer.KindName}
			return a.get(cmd.Context(), c, names, opts, f, watch, watchEvents)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: wide, yaml, json, name or jsonpath=TEMPLATE")
	cmd.Flags().StringVarP(&selector, "selector", "l", "", "label selector, e.g. team=data,tier!=web")
	cmd.Flags().StringVar(&fieldSelector, "field-selector", "", "field selector on metadata.name, metadata.namespace or status.phase, e.g. status.phase!=Running")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "after listing, print a row (or object) per change until interrupted")
	cmd.Flags().BoolVar(&watchEvents, "output-watch-events", false, "with -w, show each change's event type (ADDED, MODIFIED, DELETED; a proc leaving a selection is DELETED): an EVENT column, {type, object} objects, or TYPE proc/NAME; procs listed first are ADDED")
	return cmd
}

func (a *app) get(ctx context.Context, c *client.Client, names []string, opts client.ListOptions, f printer.Format, watch, watchEvents bool) error {
	var procs []v1.Proc
	var rv string
	failed := 0
	if len(names) == 0 {
		l, err := c.List(ctx, opts)
		if err != nil {
			return err
		}
		procs, rv = l.Items, l.Metadata.ResourceVersion
		sort.SliceStable(procs, func(i, j int) bool { return procs[i].Metadata.Name < procs[j].Metadata.Name })
		if len(procs) == 0 && f.IsTable() && !watch {
			fmt.Fprintln(a.stderr, "No procs found.")
		}
	} else {
		if watch {
			// Watch needs a resourceVersion from before the gets.
			l, err := c.List(ctx, client.ListOptions{})
			if err != nil {
				return err
			}
			rv = l.Metadata.ResourceVersion
		}
		for _, n := range names {
			p, err := c.Get(ctx, n)
			if err != nil {
				if fatal(err) || !errors.Is(err, errdefs.ErrNotFound) {
					return procError(n, err)
				}
				failed = max(failed, a.report(procError(n, err)))
				continue
			}
			procs = append(procs, *p)
		}
	}
	// emit writes one watched proc, or one listed first under
	// --output-watch-events (as ADDED).
	var emit func(typ v1.WatchEventType, p *v1.Proc) error
	if f.IsTable() {
		table := printer.NewTable(a.stdout, f.Kind == printer.KindWide, printer.HasAgent(procs))
		if watchEvents {
			table.WithEvents()
		}
		emit = func(typ v1.WatchEventType, p *v1.Proc) error {
			table.EventRow(typ, p, a.now())
			return table.Flush()
		}
		if len(procs) > 0 || watch {
			table.Header()
		}
		for i := range procs {
			table.EventRow(v1.Added, &procs[i], a.now())
		}
		if err := table.Flush(); err != nil {
			return err
		}
	} else {
		emit = func(typ v1.WatchEventType, p *v1.Proc) error {
			if f.Kind == printer.KindYAML {
				fmt.Fprintln(a.stdout, "---")
			}
			if watchEvents {
				return printer.PrintEvent(a.stdout, f, typ, p)
			}
			return printer.PrintObject(a.stdout, f, p)
		}
		if watchEvents {
			for i := range procs {
				if err := emit(v1.Added, &procs[i]); err != nil {
					return err
				}
			}
		} else if err := printer.PrintList(a.stdout, f, procs, len(names) == 1 && !watch, a.now()); err != nil {
			return err
		}
	}
	if failed != 0 && !watch {
		return errReported
	}
	if !watch {
		return nil
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	err := a.watchEvents(ctx, c, opts, rv, func(ev v1.WatchEvent) error {
		if len(want) > 0 && !want[ev.Object.Metadata.Name] {
			return nil
		}
		return emit(ev.Type, &ev.Object)
	})
	if errors.Is(err, context.Canceled) {
		return nil // interrupted: the normal end of a watch
	}
	return err
}

// errStopWatch ends watchEvents without an error.
var errStopWatch = errors.New("stop watch")

// watchEvents calls fn for each event (not BOOKMARK) after resourceVersion
// rv until fn returns an error or ctx ends. When the server ends the
// stream it watches again from the last resourceVersion seen; when that
// is too old (410) it returns the error.
func (a *app) watchEvents(ctx context.Context, c *client.Client, opts client.ListOptions, rv string, fn func(v1.WatchEvent) error) error {
	for {
		w, err := c.Watch(ctx, opts, rv)
		if err != nil {
			return err
		}
		var fnErr error
		seen := 0
		for ev := range w.Events() {
			seen++
			if v := ev.Object.Metadata.ResourceVersion; v != "" {
				rv = v
			}
			if ev.Type == v1.Bookmark {
				continue
			}
			if fnErr = fn(ev); fnErr != nil {
				break
			}
		}
		w.Stop()
		if errors.Is(fnErr, errStopWatch) {
			return nil
		}
		if fnErr != nil {
			return fnErr
		}
		if err := w.Err(); err != nil {
			if errors.Is(err, errdefs.ErrGone) {
				return failf("the watch fell too far behind the server (resourceVersion %s expired); run the command again", rv)
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if seen == 0 {
			// The server ended an empty stream: do not spin.
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
		}
	}
}

// completeProcNames completes proc names from the server, for shells.
func (a *app) completeProcNames(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	return a.procNames(cmd, args, ""), cobra.ShellCompDirectiveNoFileComp
}

// completeTypedProcNames completes the arguments of get, describe and
// delete, which name the type first: "procs" as the first word (or
// proc/NAME once "proc/" is typed), proc names after it.
func (a *app) completeTypedProcNames(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		if typ, _, ok := strings.Cut(toComplete, "/"); ok && isProcType(typ) {
			return a.procNames(cmd, nil, typ+"/"), cobra.ShellCompDirectiveNoFileComp
		}
		return []string{"procs"}, cobra.ShellCompDirectiveNoFileComp
	}
	first := args[0]
	if typ, _, ok := strings.Cut(first, "/"); !isProcType(first) && (!ok || !isProcType(typ)) {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return a.procNames(cmd, args, ""), cobra.ShellCompDirectiveNoFileComp
}

// procNames lists the procs on the server, prefixed, leaving out those
// already among args; nil when the server cannot be asked.
func (a *app) procNames(cmd *cobra.Command, args []string, prefix string) []string {
	c, err := a.client()
	if err != nil {
		return nil
	}
	l, err := c.List(cmd.Context(), client.ListOptions{})
	if err != nil {
		return nil
	}
	given := map[string]bool{}
	for _, arg := range args {
		given[trimProcPrefix(arg)] = true
	}
	names := make([]string, 0, len(l.Items))
	for _, p := range l.Items {
		if !given[p.Metadata.Name] {
			names = append(names, prefix+p.Metadata.Name)
		}
	}
	return names
}
