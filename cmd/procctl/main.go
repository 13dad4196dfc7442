// Command procctl is the kubectl-like client of procstar's REST API: it
// applies YAML Procs, lists and describes them, follows their logs, waits
// for them, signals and deletes them, against `procstar --serve` or a
// control plane.
//
// This package is wiring and wording only: talking to the server is
// package client's job and formatting Procs is package printer's. Every
// error is one line on stderr that says what to do; the exit status is 0
// on success, 1 on an error, 2 on a usage error (bad flag, argument or
// file), 130 when interrupted, and for `run --wait` the proc's own exit
// status.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/term"

	"procstar.dev/procstar/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], osEnv())
	stop()
	os.Exit(code)
}

// osEnv is the environment of the real binary.
func osEnv() env {
	return env{
		stdin:      os.Stdin,
		stdout:     os.Stdout,
		stderr:     os.Stderr,
		now:        time.Now,
		getenv:     os.Getenv,
		newClient:  client.New,
		isTerminal: isTerminal,
	}
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
