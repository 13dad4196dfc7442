package controller

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/rawspawn"
)

const (
	benchProcs       = 2000
	benchConcurrency = 2
)

// runParallel runs f(i) for i in [0, n) on conc goroutines and returns the
// elapsed time.
func runParallel(b *testing.B, n, conc int, f func(i int) error) time.Duration {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return elapsed
}

// BenchmarkCreateWait creates 2,000 /bin/true procs through the controller
// (on the real runtime) at concurrency 2 and waits for each to reach a
// terminal phase, against a raw ForkExec+pidfd loop in the same run.
// ratio is controller throughput over raw throughput.
func BenchmarkCreateWait(b *testing.B) {
	c, ctx := newReal(b, nil)
	// The raw children get the environment the procs inherit.
	env := os.Environ()
	var rawTotal, ctlTotal time.Duration
	for iter := 0; b.Loop(); iter++ {
		rawTotal += runParallel(b, benchProcs, benchConcurrency, func(int) error { return rawspawn.Run("/bin/true", env) })

		var waiters sync.Map // name -> chan struct{}
		wctx, cancel := context.WithCancel(ctx)
		watch, err := c.Watch(wctx, nil, v1.FieldSelector{}, "")
		if err != nil {
			b.Fatal(err)
		}
		var dispatch sync.WaitGroup
		dispatch.Go(func() {
			for ev := range watch {
				if terminal(&ev.Object) {
					if ch, ok := waiters.LoadAndDelete(ev.Object.Metadata.Name); ok {
						close(ch.(chan struct{}))
					}
				}
			}
		})
		ctlTotal += runParallel(b, benchProcs, benchConcurrency, func(i int) error {
			name := fmt.Sprintf("b%d-%d", iter, i)
			done := make(chan struct{})
			waiters.Store(name, done)
			if _, err := c.Create(ctx, []v1.Proc{newProc(name)}); err != nil {
				return err
			}
			select {
			case <-done:
				return nil
			case <-time.After(10 * time.Second):
				return fmt.Errorf("%s never ended", name)
			}
		})
		cancel()
		dispatch.Wait()
		c.CollectAndDelete()
	}
	raw := float64(b.N*benchProcs) / rawTotal.Seconds()
	ctl := float64(b.N*benchProcs) / ctlTotal.Seconds()
	b.ReportMetric(raw, "raw-procs/s")
	b.ReportMetric(ctl, "ctl-procs/s")
	b.ReportMetric(ctl/raw, "ratio")
}
