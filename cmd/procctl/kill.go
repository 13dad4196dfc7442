package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"procstar.dev/procstar/client"
	"procstar.dev/procstar/cmd/procctl/internal/printer"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/internal/signals"
)

func (a *app) killCmd() *cobra.Command {
	var sig string
	var group bool
	cmd := &cobra.Command{
		Use:               "kill NAME… [-s SIGNAL]",
		Short:             "Send a signal to procs (SIGTERM by default)",
		Example:           "  procctl kill nightly-report\n  procctl kill -s KILL nightly-report\n  procctl kill -s HUP --group web",
		ValidArgsFunction: a.completeProcNames,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("name the proc to signal: procctl kill NAME [-s SIGNAL]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := signals.Parse(sig)
			if err != nil {
				return usageErrorf("unknown signal %q: use a name such as TERM, KILL, HUP, RTMIN+1 or a number", sig)
			}
			name := signals.Name(n)
			c, err := a.client()
			if err != nil {
				return err
			}
			failed := 0
			for _, arg := range args {
				p := trimProcPrefix(arg)
				if err := c.Signal(cmd.Context(), p, name, group); err != nil {
					if fatal(err) {
						return err
					}
					if errors.Is(err, errdefs.ErrConflict) || errors.Is(err, errdefs.ErrFailedPrecondition) {
						err = a.notRunning(cmd.Context(), c, p)
					}
					failed = max(failed, a.report(procError(p, err)))
					continue
				}
				fmt.Fprintf(a.stdout, "proc/%s signaled (%s)\n", p, name)
			}
			if failed != 0 {
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&sig, "signal", "s", "SIGTERM", "signal name or number")
	cmd.Flags().BoolVar(&group, "group", false, "signal the proc's whole process group")
	return cmd
}

// notRunning words a signal refused because the proc called name has no
// process (the server's 409 "no process"), saying why from one get.
func (a *app) notRunning(ctx context.Context, c *client.Client, name string) error {
	p, err := c.Get(ctx, name)
	if err != nil {
		if fatal(err) {
			return err
		}
		return failf("proc %q is not running; nothing to signal", name)
	}
	ph, detail, isErr := phaseParts(&p.Status)
	if printer.Terminal(p.Status.Phase) {
		switch {
		case detail == "":
		case isErr:
			ph += ": " + detail
		default:
			ph += ", " + detail
		}
		return failf("proc %q is not running (it ended %s); nothing to signal", name, ph)
	}
	return failf("proc %q has no process to signal now (it is %s); try again once it is Running", name, phaseSummary(&p.Status))
}

// trimProcPrefix accepts "proc/NAME" and "procs/NAME" for NAME.
func trimProcPrefix(arg string) string {
	if typ, name, ok := strings.Cut(arg, "/"); ok && isProcType(typ) {
		return name
	}
	return arg
}
