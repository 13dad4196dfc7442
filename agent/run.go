package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/runtime"
	"procstar.dev/procstar/wire"
)

// Exit codes of the agent process, as procstar 0.7.5 uses them.
const (
	ExitOK      = 0
	ExitFailure = 1  // a start-up failure outside the specs
	ExitUsage   = 2  // a bad spec file or a usage error
	ExitDataErr = 65 // EX_DATAERR: no mode, or the INPUT specs failed to start
	ExitOSFile  = 72 // EX_OSFILE: printing or writing results failed
)

// Log verbosity. procstar's levels are error, warn, info, debug and trace;
// logr has only errors and V-levels, so warnings go at V(0) and each finer
// procstar level one V-level below. cmd/procstar maps them back to names.
const (
	LevelWarn  = 0
	LevelInfo  = 1
	LevelDebug = 2
	LevelTrace = 3
)

// Config is what the agent runs with. The zero value of each duration
// means procstar's default.
type Config struct {
	// Input is the spec file: a path, "-" for Stdin, or "" for none. It may
	// hold procstar JSON ({"specs": …}) or procstar.dev/v1 YAML or JSON.
	Input string
	// Print writes the results to Stdout when no proc is running, then
	// exits. It implies Exit.
	Print bool
	// Output writes the results to this path when no proc is running,
	// then exits. It implies Exit.
	Output string
	// Exit ends the agent once no proc is running.
	Exit bool
	// Wait ends the agent once every proc has been deleted.
	Wait bool
	// RestrictExe, when set, is the only executable procs may run.
	RestrictExe string
	// TempDir holds tempfile captures; "" means $TMPDIR or /tmp.
	TempDir string

	// TermGrace is how long SIGTERM waits for procs before SIGKILL (60 s).
	TermGrace time.Duration
	// DeleteGrace is how long shutdown waits for clients to collect and
	// delete finished procs (5 s).
	DeleteGrace time.Duration

	// Stdin, Stdout and Stderr default to the process's own.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Signals, if set, replaces the process's own signal delivery (tests).
	Signals <-chan os.Signal
}

func (c *Config) setDefaults() {
	if c.Print || c.Output != "" {
		c.Exit = true
	}
	if c.TermGrace == 0 {
		c.TermGrace = 60 * time.Second
	}
	if c.DeleteGrace == 0 {
		c.DeleteGrace = 5 * time.Second
	}
	if c.Stdin == nil {
		c.Stdin = os.Stdin
	}
	if c.Stdout == nil {
		c.Stdout = os.Stdout
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
}

// agent is one run of the agent: the table, the shutdown state and the
// runtime they share.
type agent struct {
	cfg      Config
	log      logr.Logger
	rt       *runtime.Runtime
	table    *Table
	shutdown *Shutdown
}

// Run runs the agent until its shutdown state reaches done and returns the
// process exit code. The logger travels in ctx.
func Run(ctx context.Context, cfg Config) int {
	cfg.setDefaults()
	log := logr.FromContextOrDiscard(ctx)

	if cfg.Exit && cfg.Wait {
		// procstar prints this and goes on with both modes.
		fmt.Fprintln(cfg.Stderr, "Specify only one of --exit or --wait.")
	}
	if !cfg.Exit && !cfg.Wait {
		fmt.Fprintln(cfg.Stderr, "Usage: Specify at least one of --exit, --wait, --serve, or --agent.")
		return ExitDataErr
	}

	// Catch the shutdown signals from here on, before anything is started.
	sigs := cfg.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 8)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1)
		defer signal.Stop(ch)
		sigs = ch
	}

	var procs []v1.Proc
	if cfg.Input != "" {
		var err error
		procs, err = loadInput(cfg.Input, cfg.Stdin)
		if err != nil {
			fmt.Fprintf(cfg.Stderr, "failed to load %s: %v\n", cfg.Input, err)
			return ExitUsage
		}
	}

	rt, err := runtime.New(runtime.Options{Logger: log, RestrictExe: cfg.RestrictExe, TempDir: cfg.TempDir})
	if err != nil {
		log.Error(err, "cannot start the runtime")
		return ExitFailure
	}
	defer rt.Close()

	a := &agent{cfg: cfg, log: log, rt: rt, table: NewTable(), shutdown: NewShutdown()}
	if len(procs) > 0 {
		if err := a.start(ctx, procs); err != nil {
			log.Error(err, "failed to start processes")
			return ExitDataErr
		}
		log.V(LevelInfo).Info("started processes from specs", "count", len(procs))
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go a.handleSignals(ctx, sigs)

	code := make(chan int, 1)
	if cfg.Exit {
		go func() { code <- a.exitMode(ctx) }()
	}
	if cfg.Wait {
		go a.waitMode(ctx)
	}
	a.waitDone(ctx)
	if cfg.Exit {
		return <-code
	}
	return ExitOK
}

// loadInput reads a spec file from path, or from stdin for "-".
func loadInput(path string, stdin io.Reader) ([]v1.Proc, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	return DecodeSpecs(data)
}

// DecodeSpecs decodes a spec file in either form: procstar JSON
// ({"specs": {id: spec}}) or procstar.dev/v1 YAML or JSON, one or many
// Procs. It applies defaults and validates every proc, so the error names
// the field at fault.
func DecodeSpecs(data []byte) ([]v1.Proc, error) {
	var procs []v1.Proc
	var err error
	if isProcstarJSON(data) {
		procs, err = wire.DecodeSpecs(data)
	} else {
		procs, err = v1.Decode(data)
	}
	if err != nil {
		return nil, err
	}
	for i := range procs {
		procs[i].SetDefaults()
	}
	if err := v1.ValidateProcs(procs); err != nil {
		return nil, err
	}
	return procs, nil
}

// isProcstarJSON reports whether data is a JSON object with a top-level
// "specs" key, which is how procstar's spec files look.
func isProcstarJSON(data []byte) bool {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return false
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return false
	}
	_, ok := top["specs"]
	return ok
}

// start starts a batch; nothing starts if the batch is bad.
func (a *agent) start(ctx context.Context, procs []v1.Proc) error {
	if st, _ := a.shutdown.State(); st != Active {
		return fmt.Errorf("agent shutting down: %s", st)
	}
	reqs := make([]runtime.Request, len(procs))
	ids := make([]string, len(procs))
	for i := range procs {
		reqs[i] = runtime.Request{ID: procs[i].Metadata.Name, Spec: &procs[i].Spec}
		ids[i] = procs[i].Metadata.Name
	}
	if err := a.table.CheckNew(ids); err != nil {
		return err
	}
	started, err := a.rt.Start(ctx, reqs)
	if err != nil {
		return err
	}
	return a.table.Add(started)
}

// waitDone blocks until the shutdown state is done.
func (a *agent) waitDone(ctx context.Context) {
	for {
		st, changed := a.shutdown.State()
		if st == Done {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// setShutdown moves the shutdown state and runs the idle check.
func (a *agent) setShutdown(st ShutdownState) {
	if a.shutdown.Set(st) {
		a.log.V(LevelInfo).Info("shutdown state", "state", st.String())
	}
	a.idleCheck()
}

// idleCheck ends an idling agent once its table is empty.
func (a *agent) idleCheck() {
	st, _ := a.shutdown.State()
	if n, _ := a.table.Len(); st == Idling && n == 0 {
		a.setShutdown(Done)
	}
}

// delete removes a finished proc and runs the idle check.
func (a *agent) delete(id string) error {
	if err := a.table.Delete(id); err != nil {
		return err
	}
	a.idleCheck()
	return nil
}

// exitMode waits until no proc is running (or the agent is done), then
// collects every result, deleting each proc, writes them out, and ends the
// agent. It returns the exit code.
func (a *agent) exitMode(ctx context.Context) int {
	done := a.doneChan(ctx)
	for _, p := range a.table.List() {
		select {
		case <-p.Done():
		case <-done:
		case <-ctx.Done():
			return ExitOK
		}
	}
	results := map[string]wire.ProcRes{}
	for _, p := range a.table.List() {
		results[p.ID()] = result(p)
		if err := a.delete(p.ID()); err != nil && !errors.Is(err, ErrRunning) {
			a.log.Error(err, "cannot delete proc", "proc", p.ID())
		}
	}
	code := a.writeResults(results)
	a.setShutdown(Done)
	return code
}

// doneChan returns a channel closed once the shutdown state is done or
// ctx ends.
func (a *agent) doneChan(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		a.waitDone(ctx)
		close(ch)
	}()
	return ch
}

// result builds procstar's result for p as it stands now.
func result(p *runtime.Proc) wire.ProcRes {
	st := p.Status()
	return wire.NewProcRes(p.Spec(), &st, time.Now(), p)
}

// writeResults prints the results and writes the --output file, as compact
// JSON. It returns ExitOSFile if either fails.
func (a *agent) writeResults(results map[string]wire.ProcRes) int {
	data, err := json.Marshal(results)
	if err != nil {
		a.log.Error(err, "cannot encode results")
		return ExitOSFile
	}
	code := ExitOK
	if a.cfg.Print {
		if _, err := a.cfg.Stdout.Write(append(data, '\n')); err != nil {
			a.log.Error(err, "cannot print results")
			code = ExitOSFile
		}
	}
	if a.cfg.Output != "" {
		if err := os.WriteFile(a.cfg.Output, data, 0o666); err != nil {
			a.log.Error(err, "cannot write results", "path", a.cfg.Output)
			code = ExitOSFile
		}
	}
	return code
}

// waitMode ends the agent once the table is empty.
func (a *agent) waitMode(ctx context.Context) {
	for {
		n, changed := a.table.Len()
		if n == 0 {
			a.setShutdown(Done)
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}
