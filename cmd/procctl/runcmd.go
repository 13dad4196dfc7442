package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/client"
	"procstar.dev/procstar/internal/errdefs"
)

func (a *app) runCmd() *cobra.Command {
	var wait, rm bool
	var labels, envs []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "run NAME [--wait] [--rm] -- CMD [ARGS…]",
		Short: "Create a proc from a command line; optionally wait and print its output",
		Long: `Run creates a proc that runs CMD ARGS… with stdin from /dev/null and stdout
and stderr captured in memory as UTF-8. A CMD without a slash is looked up in
PATH. With --wait it waits for the proc to end, prints its stdout and stderr,
and exits with the proc's exit status (128+N for signal N); --rm then
deletes it.`,
		Example: "  procctl run hello --wait --rm -- echo hello\n  procctl run backup -l team=ops -- /usr/local/bin/backup --full",
		Args: func(cmd *cobra.Command, args []string) error {
			dash := cmd.ArgsLenAtDash()
			switch {
			case len(args) == 0:
				return usageErrorf("name the proc and its command: procctl run NAME -- CMD [ARGS…]")
			case dash < 0 && len(args) > 1 || dash > 1:
				return usageErrorf("put the command after --: procctl run NAME -- CMD [ARGS…]")
			case len(args) < 2:
				return usageErrorf("no command: procctl run NAME -- CMD [ARGS…]")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if rm && !wait {
				return usageErrorf("--rm needs --wait (procctl cannot delete a proc it does not wait for)")
			}
			p, err := buildRunProc(args[0], args[1:], labels, envs, timeout)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			name := p.Metadata.Name
			if _, err := c.Create(ctx, p); err != nil {
				if errors.Is(err, errdefs.ErrAlreadyExists) {
					return failf("proc %q already exists (delete it first, or pick another name)", name)
				}
				return applyError(p, err)
			}
			if !wait {
				fmt.Fprintf(a.stdout, "proc/%s created\n", name)
				return nil
			}
			procs, err := a.waitFor(ctx, c, []string{name}, waitCond{terminal: true}, 0)
			if err != nil {
				return err
			}
			st := procs[name].Status
			for _, out := range []struct {
				fd string
				w  io.Writer
			}{{"stdout", a.stdout}, {"stderr", a.stderr}} {
				if _, ok := st.Fds[out.fd]; !ok {
					continue
				}
				rc, err := c.Logs(ctx, name, client.LogOptions{Fd: out.fd})
				if err != nil {
					return logsError(name, err)
				}
				_, err = io.Copy(out.w, rc)
				rc.Close()
				if err != nil {
					return err
				}
			}
			if rm {
				if _, err := c.Delete(ctx, name, v1.DeleteOptions{}); err != nil && !errors.Is(err, errdefs.ErrNotFound) {
					a.report(procError(name, err))
				}
			}
			if st.Phase == v1.PhaseError {
				return failf("proc %q could not start: %s", name, phaseSummary(&st))
			}
			code := exitStatus(&st)
			if c := v1.FindCondition(st.Conditions, v1.ConditionTerminated); c != nil && c.Reason == v1.ReasonTimedOut {
				// Its status alone would read as any other signal.
				_, how, _ := phaseParts(&st)
				return &exitError{code: max(code, 1), msg: fmt.Sprintf("proc %q timed out after %s and was stopped (%s)", name, timeout, how)}
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the proc to end, print its output and exit with its status")
	cmd.Flags().BoolVar(&rm, "rm", false, "delete the proc after --wait")
	cmd.Flags().StringArrayVarP(&labels, "label", "l", nil, "label KEY=VALUE; repeatable")
	cmd.Flags().StringArrayVarP(&envs, "env", "e", nil, "environment variable KEY=VALUE; repeatable")
	cmd.Flags().DurationVar(&timeout, "timeout", 0, "spec.timeout: stop the proc after this long (0: none)")
	return cmd
}

// buildRunProc makes the Proc of `procctl run`.
func buildRunProc(name string, argv, labels, envs []string, timeout time.Duration) (*v1.Proc, error) {
	p := &v1.Proc{
		TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProc},
		Metadata: v1.ObjectMeta{Name: name},
		Spec: v1.ProcSpec{
			Argv:       argv,
			PathSearch: !strings.Contains(argv[0], "/"),
			Fds: []v1.FdSpec{
				{Fd: v1.Stdin, Null: &v1.NullFd{}},
				{Fd: v1.Stdout, Capture: &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8}},
				{Fd: v1.Stderr, Capture: &v1.CaptureFd{Mode: v1.CaptureMemory, Encoding: v1.EncodingUTF8}},
			},
		},
	}
	for _, l := range labels {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, usageErrorf("-l %q: want KEY=VALUE", l)
		}
		if p.Metadata.Labels == nil {
			p.Metadata.Labels = map[string]string{}
		}
		p.Metadata.Labels[k] = v
	}
	for _, e := range envs {
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, usageErrorf("-e %q: want KEY=VALUE", e)
		}
		if p.Spec.Env.Vars == nil {
			p.Spec.Env.Vars = map[string]*string{}
		}
		p.Spec.Env.Vars[k] = &v
	}
	if timeout > 0 {
		p.Spec.Timeout = &v1.Timeout{Seconds: timeout.Seconds()}
	}
	if err := p.Validate(); err != nil {
		return nil, usageErrorf("cannot run proc %q: %s", name, oneLine(err.Error()))
	}
	return p, nil
}
