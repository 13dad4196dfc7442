package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"procstar.dev/procstar/client"
	"procstar.dev/procstar/internal/errdefs"
)

func (a *app) logsCmd() *cobra.Command {
	var opts client.LogOptions
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print the captured output of a proc",
		Long: `Logs prints the captured output of a proc's fd (stdout by default) as raw
bytes. With -f it keeps printing until the proc has exited and its output has
drained.`,
		Example: "  procctl logs hello\n  procctl logs -f nightly-report --fd stderr\n  procctl logs big --tail-bytes 4096",
		ValidArgsFunction: func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp // one name only
			}
			return a.completeProcNames(cmd, args, toComplete)
		},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("logs takes one proc name: procctl logs NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := trimProcPrefix(args[0])
			if opts.Start < 0 || opts.TailBytes < 0 {
				return usageErrorf("--start and --tail-bytes must be 0 or more")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			rc, err := c.Logs(ctx, name, opts)
			if err != nil {
				return logsError(name, err)
			}
			defer rc.Close()
			if opts.Follow && a.progress() {
				fmt.Fprintf(a.stderr, "following %s of proc %q until it ends (Ctrl-C to stop)…\n", fdOrStdout(opts.Fd), name)
			}
			n, err := io.Copy(a.stdout, rc)
			if err != nil {
				return err
			}
			if opts.Follow && a.progress() {
				msg := ""
				if p, err := c.Get(ctx, name); err == nil {
					msg = fmt.Sprintf(": %s", phaseSummary(&p.Status))
				}
				fmt.Fprintf(a.stderr, "proc %q ended after %d bytes%s\n", name, n, msg)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing until the proc has exited and its output has drained")
	f.StringVar(&opts.Fd, "fd", "stdout", "captured fd: stdout, stderr or a number")
	f.Int64Var(&opts.Start, "start", 0, "first byte offset")
	f.Int64Var(&opts.TailBytes, "tail-bytes", 0, "print only the last N bytes written so far (then follow, with -f)")
	return cmd
}

func fdOrStdout(fd string) string {
	if fd == "" {
		return "stdout"
	}
	return fd
}

func logsError(name string, err error) error {
	var ae *client.APIError
	switch {
	case errors.As(err, &ae) && errors.Is(err, errdefs.ErrNotFound):
		return failf("proc %q not found", name)
	case errors.Is(err, errdefs.ErrNotFound):
		return failf("%s (see 'procctl describe proc %s' for its captured fds)", oneLine(err.Error()), name)
	case errors.As(err, &ae) && errors.Is(err, errdefs.ErrInvalidArgument):
		return failf("cannot read the output of proc %q: %s", name, ae.Message)
	}
	return err
}
