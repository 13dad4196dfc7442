// Package controllertest runs a real controller over a real runtime, for
// the tests of the packages built on them (the HTTP API, the agent link,
// procctl). It must not be used outside tests.
package controllertest

import (
	"context"
	"testing"

	"procstar.dev/procstar/controller"
	"procstar.dev/procstar/runtime"
)

// New returns a running controller with opts over a runtime whose
// captures go to a test temp dir (opts.Runtime is set). Both stop when the
// test ends: the controller first, then the runtime.
func New(tb testing.TB, opts controller.Options) *controller.Controller {
	tb.Helper()
	rt, err := runtime.New(runtime.Options{TempDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rt.Close() })
	opts.Runtime = controller.FromRuntime(rt)
	c, err := controller.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = c.Run(ctx); close(done) }()
	tb.Cleanup(func() { cancel(); <-done })
	return c
}
