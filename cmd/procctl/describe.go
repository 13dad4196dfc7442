package main

import (
	"github.com/spf13/cobra"

	"procstar.dev/procstar/cmd/procctl/internal/printer"
)

func (a *app) describeCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "describe proc NAME…",
		Short:             "Show a proc in detail: spec, status, conditions, times, resource usage, output",
		Example:           "  procctl describe proc nightly-report",
		ValidArgsFunction: a.completeTypedProcNames,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("say what to describe: procctl describe proc NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := splitResourceArgs("describe", args)
			if err != nil {
				return err
			}
			if len(names) == 0 {
				return usageErrorf("name the proc to describe: procctl describe proc NAME")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			failed := 0
			for i, n := range names {
				p, err := c.Get(cmd.Context(), n)
				if err != nil {
					if fatal(err) {
						return err
					}
					failed = max(failed, a.report(procError(n, err)))
					continue
				}
				if i > 0 {
					a.stdout.Write([]byte("\n"))
				}
				if err := printer.Describe(a.stdout, p, a.now()); err != nil {
					return err
				}
			}
			if failed != 0 {
				return errReported
			}
			return nil
		},
	}
}
