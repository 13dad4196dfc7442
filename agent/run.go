package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"procstar.dev/procstar/agent/link"
	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/controller"
	"procstar.dev/procstar/internal/errdefs"
	"procstar.dev/procstar/internal/version"
	"procstar.dev/procstar/restapi"
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
	// Serve runs the HTTP API as Listen says.
	Serve bool
	// Agent connects out to a control plane as Link says.
	Agent bool
	// Link configures Agent.
	Link LinkConfig
	// Listen configures the HTTP API.
	Listen ServeConfig
	// RestrictExe, when set, is the only executable procs may run.
	RestrictExe string
	// TempDir holds tempfile captures; "" means $TMPDIR or /tmp.
	TempDir string
	// Resources says how procs' resources are controlled.
	Resources ResourceConfig
	// GroupID is the agent group this agent belongs to ("default").
	GroupID string
	// ConnID identifies this agent's connection; "" picks a random UUID.
	ConnID string

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
	// Ready, if set, receives the HTTP API's address once it listens.
	Ready chan<- net.Addr
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
	if c.GroupID == "" {
		c.GroupID = "default"
	}
	if c.Link.WaitTimeout == 0 {
		c.Link.WaitTimeout = DefaultWaitTimeout
	}
	if c.Listen.Port == 0 {
		c.Listen.Port = 3000
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

// agent is one run of the agent: the controller, the shutdown state and
// the runtime they share.
type agent struct {
	cfg      Config
	log      logr.Logger
	ctl      *controller.Controller
	shutdown *Shutdown
	identity Identity
	// link is the agent link, when Agent.
	link *link.Link
	// resources is how procs' resources are controlled.
	resources wire.AgentResources
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
	if !cfg.Exit && !cfg.Wait && !cfg.Serve && !cfg.Agent {
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

	var in input
	if cfg.Input != "" {
		var err error
		in, err = loadInput(cfg.Input, cfg.Stdin)
		if err != nil {
			fmt.Fprintf(cfg.Stderr, "failed to load %s: %v\n", cfg.Input, err)
			return ExitUsage
		}
	}

	res, err := setupResources(ctx, cfg.Resources, log)
	if err != nil {
		log.Error(err, "cannot set up resource control")
		fmt.Fprintf(cfg.Stderr, "cannot set up resource control: %v\n", err)
		return ExitFailure
	}
	defer res.close()
	ropts := res.opts
	ropts.Logger, ropts.RestrictExe, ropts.TempDir = log, cfg.RestrictExe, cfg.TempDir
	rt, err := runtime.New(ropts)
	if err != nil {
		log.Error(err, "cannot start the runtime")
		return ExitFailure
	}
	defer rt.Close()

	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ctl, err := controller.New(controller.Options{Runtime: controller.FromRuntime(rt), Logger: log, Registry: registry})
	if err != nil {
		log.Error(err, "cannot start the controller")
		return ExitFailure
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctlDone := make(chan struct{})
	go func() {
		defer close(ctlDone)
		_ = ctl.Run(ctx)
	}()
	defer func() {
		cancel()
		<-ctlDone
	}()

	a := &agent{cfg: cfg, log: log, ctl: ctl, shutdown: NewShutdown(), identity: newIdentity(cfg), resources: res.info}
	if cfg.Agent {
		lcfg, err := a.linkConfig()
		if err == nil {
			a.link, err = link.New(lcfg, ctl)
		}
		if err != nil {
			fmt.Fprintln(cfg.Stderr, err)
			return ExitUsage
		}
	}

	// The listener is bound before the input procs start, so that a bad
	// address fails before anything runs, but it serves only after they
	// have started, as procstar's services do: no client sees the table
	// without them.
	var srv *http.Server
	var startServing, abortServing func()
	if cfg.Serve {
		srv, startServing, abortServing, err = a.serve(registry)
		if err != nil {
			log.Error(err, "cannot serve the HTTP API")
			fmt.Fprintf(cfg.Stderr, "cannot serve the HTTP API: %v\n", err)
			return ExitFailure
		}
	}

	if n, err := a.startInput(ctx, in); err != nil {
		log.Error(err, "failed to start processes")
		fmt.Fprintf(cfg.Stderr, "failed to start processes: %v\n", err)
		if abortServing != nil {
			abortServing()
		}
		return ExitDataErr
	} else if n > 0 {
		log.V(LevelInfo).Info("started processes from specs", "count", n)
	}
	if startServing != nil {
		startServing()
	}

	go a.handleSignals(ctx, sigs)
	go a.idleLoop(ctx)
	var firstWork <-chan struct{}
	if cfg.Wait && cfg.Agent {
		firstWork = a.firstWork()
	}
	var linkDone <-chan error
	if a.link != nil {
		linkDone = a.startLink(ctx, a.link)
	}
	code := make(chan int, 1)
	if cfg.Exit {
		go func() { code <- a.exitMode(ctx) }()
	}
	if cfg.Wait {
		if cfg.Agent {
			go a.waitModeAgent(ctx, firstWork)
		} else {
			go a.waitMode(ctx)
		}
	}
	a.sdNotify(daemon.SdNotifyReady, "STATUS=running; resources: "+res.info.Backend)
	a.waitDone(ctx)
	if srv != nil {
		stopServer(srv, log)
	}
	exit := ExitOK
	if linkDone != nil {
		// Give the link a moment to push ShutDown{done} and close.
		select {
		case err := <-linkDone:
			if err != nil {
				exit = ExitFailure
			}
		case <-time.After(linkDoneGrace):
			log.Info("agent link did not close in time")
		}
	}
	if cfg.Exit {
		if c := <-code; c != ExitOK {
			return c
		}
	}
	return exit
}

// linkDoneGrace bounds how long Run waits, at done, for the link to tell
// the server and close.
const linkDoneGrace = 5 * time.Second

// serve starts the HTTP API. It stops accepting new procs once the agent
// leaves the active state, and stops serving at done (see Run).
// It binds the listener at once; start begins serving on it, and abort
// closes it unused (removing a unix socket).
func (a *agent) serve(registry *prometheus.Registry) (srv *http.Server, start, abort func(), err error) {
	token, err := a.cfg.Listen.token()
	if err != nil {
		return nil, nil, nil, err
	}
	if err := a.cfg.Listen.checkTLS(); err != nil {
		return nil, nil, nil, err
	}
	ln, err := a.cfg.Listen.listen()
	if err != nil {
		return nil, nil, nil, err
	}
	v := version.Get()
	handler := restapi.NewHandler(a.ctl, restapi.Options{
		Logger:    a.log,
		Token:     token,
		Version:   restapi.VersionInfo{Version: v.Version, GitCommit: v.GitCommit, GoVersion: v.GoVersion, Platform: v.Platform},
		Metrics:   promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
		AgentInfo: func() any { return a.info() },
		Ready:     a.ready,
	})
	// IdleTimeout closes keep-alive connections nobody uses, so that they
	// do not hold a goroutine and an fd for ever. No ReadTimeout or
	// WriteTimeout: they would cut followed logs and watches, which stream
	// for as long as the client wants.
	srv = &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	start = func() {
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error(err, "HTTP API stopped")
			}
		}()
		a.log.V(LevelInfo).Info("serving HTTP API", "addr", ln.Addr().String(), "auth", token != nil, "tls", a.cfg.Listen.TLSCert != "")
		if a.cfg.Ready != nil {
			a.cfg.Ready <- ln.Addr()
		}
	}
	abort = func() { _ = ln.Close() }
	return srv, start, abort, nil
}

// stopServer closes the listener and gives open requests a moment;
// streams (watches, followed logs) are then cut.
func stopServer(srv *http.Server, log logr.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
	log.V(LevelDebug).Info("HTTP API stopped")
}

// ready is the /readyz check: ready while accepting procs.
func (a *agent) ready() error {
	if st, _ := a.shutdown.State(); st != Active {
		return fmt.Errorf("agent shutting down: %s", st)
	}
	return nil
}

// input is what a spec file holds: procstar specs, which start as
// procstar starts them (see startInput), or v1 Procs, decoded, defaulted
// and validated.
type input struct {
	specs map[string]wire.ProcSpec
	procs []v1.Proc
}

// loadInput reads a spec file from path, or from stdin for "-". Like
// procstar's, a file that does not parse is an error (exit 2), and so is
// one that holds no procs at all (empty, or only comments), unless it is
// a procstar document with an empty "specs".
func loadInput(path string, stdin io.Reader) (input, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(stdin)
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return input{}, err
	}
	if isProcstarJSON(data) {
		specs, err := wire.DecodeSpecMap(data)
		return input{specs: specs}, err
	}
	procs, err := DecodeSpecs(data)
	if err == nil && len(procs) == 0 {
		err = errors.New("no procs in the input")
	}
	return input{procs: procs}, err
}

// startInput starts the procs of the input file, and returns how many. A
// procstar document is refused as procstar would refuse it at start-up,
// with its first error in its words (wire.PrepareStart).
func (a *agent) startInput(ctx context.Context, in input) (int, error) {
	procs := in.procs
	if in.specs != nil {
		var err error
		procs, err = wire.PrepareStart(in.specs, func(id string) (bool, error) {
			_, err := a.ctl.Get(ctx, id)
			return errdefs.Found(err)
		})
		if err != nil {
			return 0, err
		}
		for i := range procs {
			procs[i].SetDefaults()
		}
	}
	if len(procs) == 0 {
		return 0, nil
	}
	if _, err := a.ctl.Create(ctx, procs); err != nil {
		if in.specs != nil {
			return 0, errors.New(wire.StartErrorText(err, procs))
		}
		return 0, err
	}
	return len(procs), nil
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

// setShutdown moves the shutdown state forward. Leaving active stops new
// procs, with procstar's error text.
func (a *agent) setShutdown(st ShutdownState) {
	if !a.shutdown.Set(st) {
		return
	}
	a.ctl.SetAccepting(false, st.String())
	a.log.V(LevelInfo).Info("shutdown state", "state", st.String())
	if st == Done {
		a.sdNotify(daemon.SdNotifyStopping, "STATUS=done")
	} else {
		// Not STOPPING=1: systemd takes it for a stop, starts
		// TimeoutStopSec and kills the agent when it runs out, and a
		// SIGUSR1 drain can take hours. stop and kill send it.
		a.sdNotify("STATUS=shutting down: " + st.String())
	}
	a.idleCheck()
}

// sdNotify tells systemd, when it started the agent as a Type=notify
// service (NOTIFY_SOCKET is set), about the agent's state.
func (a *agent) sdNotify(states ...string) {
	if _, err := daemon.SdNotify(false, strings.Join(states, "\n")); err != nil {
		a.log.Error(err, "sd_notify failed")
	}
}

// idleCheck ends an idling agent once its table is empty.
func (a *agent) idleCheck() {
	if st, _ := a.shutdown.State(); st == Idling && a.ctl.Len() == 0 {
		a.setShutdown(Done)
	}
}

// idleLoop runs the idle check after every change of the table, whoever
// made it (an HTTP delete, --exit collection).
func (a *agent) idleLoop(ctx context.Context) {
	for {
		changed := a.ctl.Changed()
		a.idleCheck()
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// exitMode waits until no proc is running (or the agent is done), then
// collects every result, deleting each proc, writes them out, and ends the
// agent. It returns the exit code.
func (a *agent) exitMode(ctx context.Context) int {
	waitCtx, cancel := context.WithCancel(ctx)
	go func() {
		a.waitDone(waitCtx)
		cancel()
	}()
	err := a.ctl.WaitAllExited(waitCtx)
	cancel()
	if err != nil && ctx.Err() != nil {
		return ExitOK
	}
	code := a.writeResults(a.ctl.CollectAndDelete())
	a.setShutdown(Done)
	return code
}

// writeResults prints the results and writes the --output file, as compact
// JSON. It returns ExitOSFile if either fails.
func (a *agent) writeResults(results map[string]wire.ProcRes) int {
	data, err := wire.Marshal(results)
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
	if a.waitEmpty(ctx, nil) {
		a.setShutdown(Done)
	}
}

// waitEmpty waits until the table is empty, and reports whether it is; it
// gives up when ctx ends or deadline fires (nil: no deadline).
func (a *agent) waitEmpty(ctx context.Context, deadline <-chan time.Time) bool {
	for {
		changed := a.ctl.Changed()
		if a.ctl.Len() == 0 {
			return true
		}
		select {
		case <-changed:
		case <-deadline:
			return false
		case <-ctx.Done():
			return false
		}
	}
}
