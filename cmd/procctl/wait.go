package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/client"
	"procstar.dev/procstar/cmd/procctl/internal/printer"
	"procstar.dev/procstar/internal/signals"
)

// waitCond is a parsed --for.
type waitCond struct {
	terminal bool
	cond     string             // condition type, for condition=X
	status   v1.ConditionStatus // condition status wanted
	phase    v1.ProcPhase
}

var phases = []v1.ProcPhase{v1.PhasePending, v1.PhaseRunning, v1.PhaseSucceeded, v1.PhaseFailed, v1.PhaseError, v1.PhaseUnknown}

// parseFor reads terminal, condition=TYPE[=STATUS] or phase=PHASE.
func parseFor(s string) (waitCond, error) {
	if s == "terminal" {
		return waitCond{terminal: true}, nil
	}
	if rest, ok := strings.CutPrefix(s, "condition="); ok {
		typ, st, hasStatus := strings.Cut(rest, "=")
		if typ == "" {
			return waitCond{}, usageErrorf("--for=condition= needs a condition type, e.g. --for=condition=Started")
		}
		status := v1.ConditionTrue
		if hasStatus {
			switch strings.ToLower(st) {
			case "true":
			case "false":
				status = v1.ConditionFalse
			case "unknown":
				status = v1.ConditionUnknown
			default:
				return waitCond{}, usageErrorf("--for=condition=%s: status must be True, False or Unknown", rest)
			}
		}
		return waitCond{cond: typ, status: status}, nil
	}
	if rest, ok := strings.CutPrefix(s, "phase="); ok {
		for _, p := range phases {
			if strings.EqualFold(rest, string(p)) {
				return waitCond{phase: p}, nil
			}
		}
		return waitCond{}, usageErrorf("--for=phase=%s: the phases are Pending, Running, Succeeded, Failed, Error and Unknown", rest)
	}
	return waitCond{}, usageErrorf("--for=%s: use --for=terminal, --for=condition=TYPE[=STATUS] or --for=phase=PHASE", s)
}

func (w waitCond) met(p *v1.Proc) bool {
	switch {
	case w.terminal:
		return printer.Terminal(p.Status.Phase)
	case w.cond != "":
		c := v1.FindCondition(p.Status.Conditions, w.cond)
		return c != nil && c.Status == w.status
	}
	return p.Status.Phase == w.phase
}

// never returns an error when p, not meeting w, never will: it has ended
// and w wants something else than an end.
func (w waitCond) never(p *v1.Proc) error {
	if w.terminal || !printer.Terminal(p.Status.Phase) {
		return nil
	}
	return failf("proc %q ended %s and will never have %s", p.Metadata.Name, phaseSummary(&p.Status), w)
}

func (w waitCond) String() string {
	switch {
	case w.terminal:
		return "terminal"
	case w.cond != "":
		return fmt.Sprintf("condition %s=%s", w.cond, w.status)
	}
	return "phase " + string(w.phase)
}

// phaseSummary is "Failed (exit code 3)", "Failed (signal SIGKILL)",
// "Error: execve failed: …" and the like.
func phaseSummary(s *v1.ProcStatus) string {
	ph, detail, isErr := phaseParts(s)
	switch {
	case detail == "":
		return ph
	case isErr:
		return ph + ": " + detail
	}
	return ph + " (" + detail + ")"
}

// phaseParts splits what phaseSummary says: the phase ("Pending" when
// unset), and (isErr) the first error, or else the exit code or signal.
func phaseParts(s *v1.ProcStatus) (phase, detail string, isErr bool) {
	phase = string(s.Phase)
	if phase == "" {
		phase = "Pending"
	}
	switch {
	case len(s.Errors) > 0:
		// A proc that never ran also has exit code 63: the error says why.
		return phase, oneLine(s.Errors[0]), true
	case s.ExitCode != nil:
		return phase, fmt.Sprintf("exit code %d", *s.ExitCode), false
	case s.Signal != "":
		return phase, "signal " + s.Signal, false
	}
	return phase, "", false
}

func (a *app) waitCmd() *cobra.Command {
	var forFlag string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "wait NAME… --for=terminal|condition=TYPE|phase=PHASE",
		Short: "Wait until procs are terminal, have a condition, or are in a phase",
		Long: `Wait watches the procs until each meets --for, then prints "proc/NAME
condition met" for each. It exits 1 on --timeout, and with --for=terminal
also when a proc ended Failed or Error.`,
		Example:           "  procctl wait nightly-report --for=terminal --timeout=1h\n  procctl wait web --for=condition=Started\n  procctl wait a b --for=phase=Running",
		ValidArgsFunction: a.completeProcNames,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("name the procs to wait for: procctl wait NAME… --for=terminal")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			cond, err := parseFor(forFlag)
			if err != nil {
				return err
			}
			if timeout < 0 {
				return usageErrorf("--timeout must be 0 (wait forever) or more")
			}
			names := make([]string, len(args))
			for i, arg := range args {
				names[i] = trimProcPrefix(arg)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			procs, err := a.waitFor(cmd.Context(), c, names, cond, timeout)
			if err != nil {
				return err
			}
			failed := 0
			for _, n := range names {
				p := procs[n]
				if cond.terminal && p.Status.Phase != v1.PhaseSucceeded {
					failed = max(failed, a.report(failf("proc %q ended %s", n, phaseSummary(&p.Status))))
					continue
				}
				fmt.Fprintf(a.stdout, "proc/%s condition met\n", n)
			}
			if failed != 0 {
				return errReported
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&forFlag, "for", "terminal", "terminal, condition=TYPE[=STATUS] or phase=PHASE")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up after this long (0: wait forever)")
	return cmd
}

// waitFor watches until every named proc meets cond and returns them.
func (a *app) waitFor(parent context.Context, c *client.Client, names []string, cond waitCond, timeout time.Duration) (map[string]*v1.Proc, error) {
	ctx := parent
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(parent, timeout)
		defer cancel()
	}
	start := a.now()
	l, err := c.List(ctx, client.ListOptions{})
	if err != nil {
		return nil, a.waitErr(ctx, parent, err, timeout, cond, names, nil)
	}
	procs := map[string]*v1.Proc{}
	for i := range l.Items {
		procs[l.Items[i].Metadata.Name] = &l.Items[i]
	}
	pending := map[string]bool{}
	for _, n := range names {
		p, ok := procs[n]
		if !ok {
			return nil, failf("proc %q not found", n)
		}
		if cond.met(p) {
			continue
		}
		if err := cond.never(p); err != nil {
			return nil, err
		}
		pending[n] = true
	}
	if len(pending) == 0 {
		return procs, nil
	}
	// On a terminal, a progress line, redrawn on each change and each
	// second; mu guards procs and pending against the redraw.
	var mu sync.Mutex
	progress := a.progress()
	show := func() {
		if !progress || len(pending) == 0 {
			return
		}
		var parts []string
		for _, n := range names {
			if pending[n] {
				parts = append(parts, fmt.Sprintf("%s is %s", n, printer.Phase(procs[n])))
			}
		}
		fmt.Fprintf(a.stderr, "\r\033[Kwaiting %s for %s: %s…", printer.Age(a.now().Sub(start)), cond, strings.Join(parts, ", "))
	}
	if progress {
		show()
		every := a.redraw
		if every <= 0 {
			every = time.Second
		}
		tick := time.NewTicker(every)
		done := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-tick.C:
					mu.Lock()
					show()
					mu.Unlock()
				case <-done:
					return
				}
			}
		})
		defer func() {
			close(done)
			wg.Wait()
			tick.Stop()
			fmt.Fprint(a.stderr, "\r\033[K")
		}()
	}
	err = a.watchEvents(ctx, c, client.ListOptions{}, l.Metadata.ResourceVersion, func(ev v1.WatchEvent) error {
		n := ev.Object.Metadata.Name
		mu.Lock()
		defer mu.Unlock()
		if _, ok := procs[n]; !ok {
			return nil
		}
		p := ev.Object
		procs[n] = &p
		if !pending[n] {
			return nil
		}
		if ev.Type == v1.Deleted {
			return failf("proc %q was deleted before it was %s (it was %s)", n, cond, phaseSummary(&p.Status))
		}
		if cond.met(&p) {
			delete(pending, n)
			if len(pending) == 0 {
				return errStopWatch
			}
		} else if err := cond.never(&p); err != nil {
			return err
		}
		show()
		return nil
	})
	if err != nil {
		return nil, a.waitErr(ctx, parent, err, timeout, cond, names, procs)
	}
	return procs, nil
}

// waitErr words err, which ended a wait: ctx is the wait's, with its
// --timeout, under parent. A request that timed out on its own
// (--request-timeout) is the server's failure, not the wait's.
func (a *app) waitErr(ctx, parent context.Context, err error, timeout time.Duration, cond waitCond, names []string, procs map[string]*v1.Proc) error {
	if errors.Is(err, context.DeadlineExceeded) && errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil {
		var parts []string
		for _, n := range names {
			if p := procs[n]; p != nil && !cond.met(p) {
				parts = append(parts, fmt.Sprintf("%s is %s", n, phaseSummary(&p.Status)))
			}
		}
		state := ""
		if len(parts) > 0 {
			state = " (" + strings.Join(parts, ", ") + ")"
		}
		return failf("timed out after %s waiting for %s%s; raise --timeout to wait longer", timeout, cond, state)
	}
	return err
}

// exitStatus is the shell-style status of a terminal proc: its exit
// code, 128+N for signal N, 1 otherwise.
func exitStatus(s *v1.ProcStatus) int {
	switch {
	case s.ExitCode != nil:
		return *s.ExitCode & 0xff
	case s.Signal != "":
		if n, err := signals.Parse(s.Signal); err == nil {
			return 128 + n
		}
	case s.Phase == v1.PhaseSucceeded:
		return 0
	}
	return 1
}
