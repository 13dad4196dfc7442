package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/internal/rawspawn"
)

// runtimeSpawnTrue starts spec and waits on Done for its status.
func runtimeSpawnTrue(rt *Runtime, spec *v1.ProcSpec) error {
	ps, err := rt.Start(context.Background(), []Request{{ID: "t", Spec: spec}})
	if err != nil {
		return err
	}
	<-ps[0].Done()
	return checkTrue(ps[0].Status())
}

// runtimeWaitTrue starts spec and waits with Wait.
func runtimeWaitTrue(rt *Runtime, spec *v1.ProcSpec) error {
	ps, err := rt.Start(context.Background(), []Request{{ID: "t", Spec: spec}})
	if err != nil {
		return err
	}
	return checkTrue(ps[0].Wait())
}

func checkTrue(st v1.ProcStatus) error {
	if exitCode(st) != 0 {
		return fmt.Errorf("status %+v", st)
	}
	return nil
}

// timeParallel runs f n times over conc goroutines and returns the wall
// time.
func timeParallel(b *testing.B, n, conc int, f func() error) time.Duration {
	var wg sync.WaitGroup
	errs := make(chan error, conc)
	start := time.Now()
	for g := 0; g < conc; g++ {
		k := n / conc
		if g < n%conc {
			k++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < k; i++ {
				if err := f(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	d := time.Since(start)
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return d
}

// interleave runs a and b n times each over conc goroutines, alternating
// blocks of 10 so that load changes on the machine hit both alike, and
// returns the total wall time of each.
func interleave(bt *testing.B, n, conc int, a, b func() error) (time.Duration, time.Duration) {
	d := interleaveAll(bt, n, conc, a, b)
	return d[0], d[1]
}

// interleaveAll is interleave for any number of functions.
func interleaveAll(bt *testing.B, n, conc int, fs ...func() error) []time.Duration {
	const block = 10
	d := make([]time.Duration, len(fs))
	for done := 0; done < n; done += block {
		k := min(block, n-done)
		for i, f := range fs {
			d[i] += timeParallel(bt, k, conc, f)
		}
	}
	return d
}

// BenchmarkSpawnTrue measures spawn+reap of /bin/true through Runtime.Start
// and Wait against the raw ForkExec+pidfd+poll+wait4 loop in the same run
// (ratio = runtime ops/s ÷ raw ops/s, target ≥ 0.9); done-ratio is the
// same through Done, the path of callers with many procs in flight, where
// the reaper loop reaps. It also measures the trampoline against the
// direct path (ratio = trampoline ops/s ÷ direct ops/s).
func BenchmarkSpawnTrue(b *testing.B) {
	env := os.Environ()
	spec := &v1.ProcSpec{Argv: []string{"/bin/true"}}
	for _, conc := range []int{1, 2} {
		b.Run("conc="+strconv.Itoa(conc), func(b *testing.B) {
			rt := newRT(b, Options{})
			// Measure the direct path even where this process inherited an
			// ignored or blocked signal, as the tests do (see modes).
			rt.trampoline = false
			raw := func() error { return rawspawn.Run("/bin/true", env) }
			viaWait := func() error { return runtimeWaitTrue(rt, spec) }
			viaDone := func() error { return runtimeSpawnTrue(rt, spec) }
			interleaveAll(b, 20, conc, raw, viaWait, viaDone) // warm up
			b.ResetTimer()
			d := interleaveAll(b, b.N, conc, raw, viaWait, viaDone)
			rawRate := float64(b.N) / d[0].Seconds()
			waitRate := float64(b.N) / d[1].Seconds()
			doneRate := float64(b.N) / d[2].Seconds()
			b.ReportMetric(rawRate, "raw-spawns/s")
			b.ReportMetric(waitRate, "runtime-spawns/s")
			b.ReportMetric(waitRate/rawRate, "ratio")
			b.ReportMetric(doneRate/rawRate, "done-ratio")
		})
	}
	b.Run("trampoline", func(b *testing.B) {
		direct := newRT(b, Options{})
		direct.trampoline = false
		tramp := newRT(b, Options{ForceTrampoline: true})
		d, tr := interleave(b, b.N, 1,
			func() error { return runtimeSpawnTrue(direct, spec) },
			func() error { return runtimeSpawnTrue(tramp, spec) })
		dRate := float64(b.N) / d.Seconds()
		tRate := float64(b.N) / tr.Seconds()
		b.ReportMetric(dRate, "direct-spawns/s")
		b.ReportMetric(tRate, "trampoline-spawns/s")
		b.ReportMetric(tRate/dRate, "ratio")
		b.ReportMetric(float64(tr-d)/float64(b.N)/1e3, "extra-µs/spawn")
	})
}

// rssResult is what an rss helper reports.
type rssResult struct {
	RSSBeforeKiB int64   `json:"rssBeforeKiB"`
	RSSAfterKiB  int64   `json:"rssAfterKiB"`
	HWMKiB       int64   `json:"hwmKiB"`
	StartSec     float64 `json:"startSec"`
	KillSec      float64 `json:"killSec"`
}

func readStatusKiB(field string) int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// rssHelper starts N `sleep 1000` children either through a Runtime or
// through os/exec, measures the agent's memory, then SIGKILLs and reaps
// them all and times that. Every child has pdeathsig SIGKILL, so none
// survives the helper.
func rssHelper(mode string, args []string) int {
	n, err := strconv.Atoi(args[0])
	if err != nil {
		return 2
	}
	goruntime.GC()
	res := rssResult{RSSBeforeKiB: readStatusKiB("VmRSS")}
	start := time.Now()
	var kill func() error
	switch mode {
	case "rss-runtime":
		rt, err := New(Options{})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer rt.Close()
		null := v1.FdSpec{Null: &v1.NullFd{}}
		spec := &v1.ProcSpec{Argv: []string{"/bin/sleep", "1000"}, PdeathSignal: ptr(v1.Signal("SIGKILL")),
			Fds: []v1.FdSpec{null, null, null}}
		spec.Fds[0].Fd, spec.Fds[1].Fd, spec.Fds[2].Fd = "0", "1", "2"
		reqs := make([]Request, n)
		for i := range reqs {
			reqs[i] = Request{ID: strconv.Itoa(i), Spec: spec}
		}
		ps, err := rt.Start(context.Background(), reqs)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// The start time is Start's; Status reads /proc of each child.
		res.StartSec = time.Since(start).Seconds()
		for _, p := range ps {
			if st := p.Status(); len(st.Errors) > 0 {
				fmt.Fprintln(os.Stderr, st.Errors)
			}
		}
		kill = func() error {
			for _, p := range ps {
				p.Signal(9)
			}
			for _, p := range ps {
				<-p.Done()
			}
			return nil
		}
	case "rss-exec":
		cmds := make([]*exec.Cmd, 0, n)
		kill = func() error {
			for _, c := range cmds {
				c.Process.Kill()
			}
			for _, c := range cmds {
				c.Wait()
			}
			return nil
		}
		for i := 0; i < n; i++ {
			c := exec.Command("/bin/sleep", "1000")
			c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL}
			if err := c.Start(); err != nil {
				fmt.Fprintln(os.Stderr, err)
				kill()
				return 1
			}
			cmds = append(cmds, c)
		}
		res.StartSec = time.Since(start).Seconds()
	default:
		return 2
	}
	goruntime.GC()
	res.RSSAfterKiB = readStatusKiB("VmRSS")
	res.HWMKiB = readStatusKiB("VmHWM")
	t0 := time.Now()
	kill()
	res.KillSec = time.Since(t0).Seconds()
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

func runRSSHelper(b *testing.B, mode string, n int) rssResult {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testExe(b), strconv.Itoa(n))
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("%s helper: %v", mode, err)
	}
	var r rssResult
	if err := json.Unmarshal(out, &r); err != nil {
		b.Fatalf("%s helper output %q: %v", mode, out, err)
	}
	return r
}

// BenchmarkTenThousandSleeps compares an agent holding 10,000 sleeping
// children through Runtime with one holding them through os/exec: memory
// (VmRSS delta, VmHWM; target ≤ 2× raw) and the time to SIGKILL and reap
// all of them (target ≤ 1.5× raw). Each side runs in its own re-exec'd
// helper process.
func BenchmarkTenThousandSleeps(b *testing.B) {
	if testing.Short() {
		b.Skip("10,000 processes")
	}
	n := 10000
	if s := os.Getenv("RUNTIME_BENCH_PROCS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	var raw, rt rssResult
	for i := 0; i < b.N; i++ {
		raw = runRSSHelper(b, "rss-exec", n)
		rt = runRSSHelper(b, "rss-runtime", n)
	}
	rawRSS := float64(raw.RSSAfterKiB-raw.RSSBeforeKiB) / 1024
	rtRSS := float64(rt.RSSAfterKiB-rt.RSSBeforeKiB) / 1024
	b.ReportMetric(rawRSS, "exec-rss-MiB")
	b.ReportMetric(rtRSS, "runtime-rss-MiB")
	b.ReportMetric(rtRSS/rawRSS, "rss-ratio")
	b.ReportMetric(float64(rt.HWMKiB)/float64(raw.HWMKiB), "hwm-ratio")
	b.ReportMetric(raw.StartSec, "exec-start-s")
	b.ReportMetric(rt.StartSec, "runtime-start-s")
	b.ReportMetric(raw.KillSec, "exec-kill-s")
	b.ReportMetric(rt.KillSec, "runtime-kill-s")
	b.ReportMetric(rt.KillSec/raw.KillSec, "kill-ratio")
}
