package agent

import (
	"context"
	"errors"
	"os"
	"syscall"
	"time"

	"procstar.dev/procstar/runtime"
)

// handleSignals carries out procstar's shutdown signals (reference §7.2),
// with its bugs fixed: every handler stays in force after the first
// signal, a second SIGTERM or SIGINT repeats the TERM to procs that are
// still running, and SIGQUIT during a graceful stop still kills at once.
func (a *agent) handleSignals(ctx context.Context, sigs <-chan os.Signal) {
	stopping := false
	for {
		var sig os.Signal
		select {
		case sig = <-sigs:
		case <-ctx.Done():
			return
		}
		a.log.V(LevelInfo).Info("signal received", "signal", sig.String())
		switch sig {
		case syscall.SIGTERM, syscall.SIGINT:
			if stopping {
				a.signalRunning(syscall.SIGTERM)
				continue
			}
			stopping = true
			go a.stop(ctx)
		case syscall.SIGQUIT:
			go a.kill(ctx)
		case syscall.SIGUSR1:
			a.setShutdown(Idling)
		}
	}
}

// stop sends SIGTERM to every running proc's process group, waits for them
// to end, SIGKILLs what is left after the grace period, gives clients a
// moment to collect results, and ends the agent.
func (a *agent) stop(ctx context.Context) {
	a.signalRunning(syscall.SIGTERM)
	if !a.waitExited(ctx, a.cfg.TermGrace) {
		a.log.Info("procs still running after grace period; killing them", "grace", a.cfg.TermGrace.String())
		a.signalRunning(syscall.SIGKILL)
		a.waitExited(ctx, a.cfg.TermGrace)
	}
	a.finish(ctx)
}

// kill SIGKILLs every running proc and ends the agent.
func (a *agent) kill(ctx context.Context) {
	a.signalRunning(syscall.SIGKILL)
	a.waitExited(ctx, a.cfg.TermGrace)
	a.finish(ctx)
}

// finish waits a short while for clients to delete finished procs, then
// sets done.
func (a *agent) finish(ctx context.Context) {
	a.waitEmpty(ctx, a.cfg.DeleteGrace)
	a.setShutdown(Done)
}

// waitEmpty waits up to d for the table to become empty.
func (a *agent) waitEmpty(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		n, changed := a.table.Len()
		if n == 0 {
			return
		}
		select {
		case <-changed:
		case <-timer.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// signalRunning sends sig to the process group of every proc not yet
// reaped, so helpers the proc started in its group get it too.
func (a *agent) signalRunning(sig syscall.Signal) {
	for _, p := range a.table.List() {
		err := p.SignalGroup(int(sig))
		if err != nil && !errors.Is(err, runtime.ErrNotRunning) {
			a.log.Error(err, "cannot signal proc", "proc", p.ID(), "signal", sig.String())
		}
	}
}

// waitExited waits up to d for every proc in the table to be reaped. It
// reports whether they all were.
func (a *agent) waitExited(ctx context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for _, p := range a.table.List() {
		select {
		case <-p.Exited():
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
	return true
}
