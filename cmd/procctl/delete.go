package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/errdefs"
)

func (a *app) deleteCmd() *cobra.Command {
	var files []string
	var grace float64
	var force bool
	cmd := &cobra.Command{
		Use:   "delete proc NAME… | delete -f FILE",
		Short: "Delete procs, stopping them first when running",
		Long: `Delete removes procs. A running proc is stopped first: its stop signal, the
grace period, then SIGKILL; --force kills it at once. The names come from
the arguments or from the procs of -f files.`,
		Example:           "  procctl delete proc hello\n  procctl delete -f proc.yaml\n  procctl delete proc stuck --force",
		ValidArgsFunction: a.completeTypedProcNames,
		Args:              cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := splitResourceArgs("delete", args)
			if err != nil {
				return err
			}
			if len(files) > 0 {
				procs, err := a.readManifests(files)
				if err != nil {
					return err
				}
				for _, sp := range procs {
					names = append(names, sp.proc.Metadata.Name)
				}
			}
			if len(names) == 0 {
				return usageErrorf("name the procs to delete: procctl delete proc NAME… or -f FILE")
			}
			var opts v1.DeleteOptions
			if cmd.Flags().Changed("grace-period") {
				if grace < 0 {
					return usageErrorf("--grace-period must be 0 or more seconds")
				}
				opts.GracePeriodSeconds = &grace
			}
			opts.Force = force
			c, err := a.client()
			if err != nil {
				return err
			}
			failed := 0
			for _, n := range names {
				if _, err := c.Delete(cmd.Context(), n, opts); err != nil {
					if fatal(err) || !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrInvalidArgument) && !errors.Is(err, errdefs.ErrFailedPrecondition) {
						return procError(n, err)
					}
					failed = max(failed, a.report(procError(n, err)))
					continue
				}
				fmt.Fprintf(a.stdout, "proc/%s deleted\n", n)
			}
			if failed != 0 {
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVarP(&files, "filename", "f", nil, "delete the procs named in this file, directory or - (stdin)")
	cmd.Flags().Float64Var(&grace, "grace-period", 0, "seconds between the stop signal and SIGKILL (default: the proc's timeout grace, else 30)")
	cmd.Flags().BoolVar(&force, "force", false, "kill a running proc at once with SIGKILL")
	return cmd
}
