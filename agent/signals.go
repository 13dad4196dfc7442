package agent

import (
	"context"
	"os"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// handleSignals carries out procstar's shutdown signals (reference §7.2),
// with its bugs fixed: every handler stays in force after the first
// signal; SIGTERM and SIGINT stop new procs (the state goes to idling)
// instead of accepting work while they drain; a repeated SIGTERM repeats
// the TERM to procs still running; SIGQUIT during a graceful stop still
// kills at once.
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
				a.ctl.SignalAll(int(syscall.SIGTERM))
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
	a.sdNotify(daemon.SdNotifyStopping)
	a.setShutdown(Idling)
	a.ctl.SignalAll(int(syscall.SIGTERM))
	if !a.waitExited(ctx, a.cfg.TermGrace) {
		a.log.Info("procs still running after grace period; killing them", "grace", a.cfg.TermGrace.String())
		a.ctl.SignalAll(int(syscall.SIGKILL))
		a.waitKilled(ctx)
	}
	a.finish(ctx)
}

// kill SIGKILLs every running proc and ends the agent.
func (a *agent) kill(ctx context.Context) {
	a.sdNotify(daemon.SdNotifyStopping)
	a.setShutdown(Idling)
	a.ctl.SignalAll(int(syscall.SIGKILL))
	a.waitKilled(ctx)
	a.finish(ctx)
}

// killWait bounds the wait for SIGKILLed procs to be reaped, so that
// their results are final before finish. Only a process stuck in the
// kernel (state D) takes longer; the agent does not wait for it.
const killWait = 5 * time.Second

// waitKilled waits up to killWait for SIGKILLed procs to end.
func (a *agent) waitKilled(ctx context.Context) {
	if !a.waitExited(ctx, killWait) {
		a.log.Info("procs still running after SIGKILL; leaving them", "waited", killWait.String())
	}
}

// finish waits a short while for clients to collect and delete finished
// procs, then sets done. Procs left undeleted are dropped with the agent.
func (a *agent) finish(ctx context.Context) {
	timer := time.NewTimer(a.cfg.DeleteGrace)
	defer timer.Stop()
	a.waitEmpty(ctx, timer.C)
	a.setShutdown(Done)
}

// waitExited waits up to d for every proc's process to end. It reports
// whether they all did.
func (a *agent) waitExited(ctx context.Context, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return a.ctl.WaitAllExited(ctx) == nil
}
