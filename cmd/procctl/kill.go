package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

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

// trimProcPrefix accepts "proc/NAME" and "procs/NAME" for NAME.
func trimProcPrefix(arg string) string {
	if typ, name, ok := strings.Cut(arg, "/"); ok && isProcType(typ) {
		return name
	}
	return arg
}
