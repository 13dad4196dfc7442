// Command procstar is the node agent. It runs processes from specs and
// looks after them; its command line is compatible with procstar 0.7.5.
//
// This file is wiring only: flags, logging and exit codes. The agent
// itself is package agent.
package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"procstar.dev/procstar/agent"
	v1 "procstar.dev/procstar/api/v1"
	"procstar.dev/procstar/runtime"
)

// errUsage marks a command-line error, which exits 2 as clap's do.
var errUsage = errors.New("usage error")

func main() {
	// Before anything else: an agent started with signals blocked starts
	// again without them, or each spawn pays for the trampoline.
	runtime.ReexecUnblocked()
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var cfg agent.Config
	var logLevel string
	var lf linkFlags
	code := agent.ExitOK

	cmd := &cobra.Command{
		Use:   "procstar [OPTIONS] [INPUT]",
		Short: "Run processes from specs and look after them",
		Long: `procstar runs Linux processes from declarative specs and looks after them:
fd wiring, output capture, signals, reaping and accounting.

INPUT is a spec file (procstar JSON {"specs": {...}} or procstar.dev/v1 YAML)
or - for standard input.`,
		Args:          cobra.MaximumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			level, ok := levels[logLevel]
			if !ok {
				return fmt.Errorf("%w: invalid value %q for '--log-level <LOG_LEVEL>' [possible values: trace, debug, info, warn, error]", errUsage, logLevel)
			}
			// 0 is any free port, as procstar's u16 allows; the log
			// says which.
			if cfg.Listen.Port < 0 || cfg.Listen.Port > 65535 {
				return fmt.Errorf("%w: --serve-port %d is not a port number (0-65535)", errUsage, cfg.Listen.Port)
			}
			if cfg.Listen.Port == 0 && cfg.Listen.Addr == "" {
				cfg.Listen.Addr = "127.0.0.1:0" // Config takes a Port of 0 as the default
			}
			if err := lf.apply(cmd, &cfg); err != nil {
				return err
			}
			if len(args) == 1 {
				cfg.Input = args[0]
			}
			log := newLogger(level)
			code = agent.Run(logr.NewContext(context.Background(), log), cfg)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&logLevel, "log-level", "warn", "log level: trace, debug, info, warn or error")
	f.StringVar(&cfg.RestrictExe, "restrict-exe", "", "only this executable path may be run")
	f.BoolVarP(&cfg.Print, "print", "p", false, "when no process is running, print the results JSON and exit (implies --exit)")
	f.StringVarP(&cfg.Output, "output", "o", "", "when no process is running, write the results JSON to `PATH` and exit (implies --exit)")
	f.BoolVarP(&cfg.Exit, "exit", "x", false, "exit once no process is running")
	f.BoolVarP(&cfg.Wait, "wait", "w", false, "exit once every process has been deleted")
	f.BoolVarP(&cfg.Serve, "serve", "s", false, "serve the HTTP API (procstar's routes and the procstar.dev/v1 API)")
	f.IntVar(&cfg.Listen.Port, "serve-port", 3000, "HTTP API port on 127.0.0.1")
	f.StringVar(&cfg.Listen.Addr, "serve-addr", "", "HTTP API address, `HOST:PORT` or unix:/path (overrides --serve-port)")
	f.StringVar(&cfg.Listen.TLSCert, "tls-cert", "", "serve HTTPS with this PEM certificate `file`")
	f.StringVar(&cfg.Listen.TLSKey, "tls-key", "", "PEM private key `file` for --tls-cert")
	f.StringVar(&cfg.Listen.AuthTokenFile, "auth-token-file", "", "require this bearer token (read from `file`) on the HTTP API")
	f.BoolVar(&cfg.Listen.InsecureNoAuth, "insecure-no-auth", false, "allow a non-loopback --serve-addr without --auth-token-file")
	f.BoolVar(&cfg.Listen.InsecureNoTLS, "insecure-no-tls", false, "allow a non-loopback --serve-addr without --tls-cert and --tls-key")
	f.StringVar(&cfg.GroupID, "group-id", "default", "agent group ID")
	f.StringVar(&cfg.ConnID, "conn-id", "", "connection ID (default: a random UUID; for debugging only)")
	_ = f.MarkHidden("conn-id")
	f.DurationVar(&cfg.TermGrace, "term-grace", 60*time.Second, "on SIGTERM, how long procs get before SIGKILL")
	f.DurationVar(&cfg.DeleteGrace, "delete-grace", 5*time.Second, "at shutdown, how long clients get to collect and delete finished procs")
	f.StringVar(&cfg.TempDir, "capture-dir", "", "directory for tempfile captures (default $TMPDIR or /tmp)")
	f.StringVar(&cfg.Resources.Backend, "resource-backend", agent.BackendAuto, "how procs' resources are controlled: auto (systemd, else a delegated cgroup v2 subtree, else none), systemd, cgroup or none")
	f.StringVar(&cfg.Resources.CgroupRoot, "cgroup-root", "", "cgroup v2 `DIR` to make procs' cgroups in; implies the cgroup backend under auto (default: the agent's own cgroup, when delegated with Delegate=yes)")
	f.StringVar(&lf.resourceLimits, "resource-limits", "enforce", "enforce: refuse procs whose spec.resources limits cannot be enforced; best-effort: run them, with condition ResourcesEnforced=False (limits from procstar's systemd_properties alone are always best effort, as procstar ignores them without systemd)")
	f.StringVar(&cfg.Resources.SystemdAddress, "systemd-address", "", "D-Bus `ADDRESS` of the systemd manager (default: the system bus as root, else the user bus)")
	_ = f.MarkHidden("systemd-address")
	f.BoolVarP(&cfg.Agent, "agent", "a", false, "connect out to a control plane as an agent")
	f.StringVar(&cfg.Link.Host, "agent-host", "", "agent server `HOST` (default $"+agent.EnvAgentHost+")")
	f.IntVar(&lf.port, "agent-port", 59789, "agent server `PORT` ($"+agent.EnvAgentPort+" when not given)")
	f.StringVar(&cfg.Link.URL, "agent-url", "", "agent server `URL`, ws://… or wss://… (overrides --agent-host and --agent-port)")
	f.StringVar(&cfg.Link.TokenFile, "agent-token-file", "", "read the access token from `file` (default $"+agent.EnvAgentToken+")")
	f.StringVar(&cfg.Link.CertFile, "agent-cert", "", "TLS client certificate PEM `file` for the agent server")
	f.StringVar(&cfg.Link.KeyFile, "agent-key", "", "TLS client key PEM `file` for --agent-cert")
	f.StringArrayVar(&lf.labels, "label", nil, "agent label `key=value` (repeatable; sent to servers that accept labels)")
	f.Float64Var(&lf.statusInterval, "status-interval", 5, "`SECS` between pushed status and output updates (servers that accept them)")
	f.Float64Var(&lf.intervalStart, "connect-interval-start", 1, "`SECS` to wait after the first failed connection attempt")
	f.Float64Var(&lf.intervalMult, "connect-interval-mult", 2, "`FAC`tor by which the wait grows after each further failure")
	f.Float64Var(&lf.intervalMax, "connect-interval-max", 60, "most `SECS` to wait between connection attempts")
	f.Uint64Var(&lf.countMax, "connect-count-max", 0, "exit 1 after this many consecutive failed connection attempts (0 acts as 1, as in procstar; default: no limit)")
	f.Float64Var(&lf.readTimeout, "agent-read-timeout", 60, "reconnect if no frame arrives for `SECS` (for testing only)")
	_ = f.MarkHidden("agent-read-timeout")
	f.Uint64Var(&lf.waitTimeout, "wait-timeout", 600, "with --wait --agent: shut down if no work is assigned within `SECS`")
	cmd.SetArgs(args)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %v", errUsage, err) })

	if err := cmd.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "error: %v\n", err)
		return agent.ExitUsage
	}
	return code
}

// levels maps procstar's log level names to zap levels. The agent logs
// warnings at logr V(0) (zap's Info), procstar's info at V(1), and so on;
// see agent.LevelWarn.
var levels = map[string]zapcore.Level{
	"error": zapcore.ErrorLevel,
	"warn":  -agent.LevelWarn,
	"info":  -agent.LevelInfo,
	"debug": -agent.LevelDebug,
	"trace": -agent.LevelTrace,
}

// levelName prints zap levels under procstar's names.
func levelName(l zapcore.Level, enc zapcore.PrimitiveArrayEncoder) {
	switch {
	case l >= zapcore.ErrorLevel:
		enc.AppendString("ERROR")
	case l >= zapcore.WarnLevel:
		enc.AppendString("WARN")
	case l == -agent.LevelWarn:
		enc.AppendString("WARN")
	case l == -agent.LevelInfo:
		enc.AppendString("INFO")
	case l == -agent.LevelDebug:
		enc.AppendString("DEBUG")
	default:
		enc.AppendString("TRACE")
	}
}

// newLogger logs to stderr, one line per entry, with millisecond times.
func newLogger(level zapcore.Level) logr.Logger {
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeTime = zapcore.TimeEncoderOfLayout("2006-01-02T15:04:05.000Z07:00")
	enc.EncodeLevel = levelName
	enc.StacktraceKey = ""
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), level)
	return zapr.NewLogger(zap.New(core))
}

// linkFlags are the --agent flags that need checking or converting.
type linkFlags struct {
	port                                       int
	labels                                     []string
	statusInterval, intervalStart, intervalMax float64
	intervalMult, readTimeout                  float64
	countMax, waitTimeout                      uint64
	resourceLimits                             string
}

// apply checks the flags and sets them in cfg.
func (lf *linkFlags) apply(cmd *cobra.Command, cfg *agent.Config) error {
	if cmd.Flags().Changed("agent-port") {
		if lf.port < 1 || lf.port > 65535 {
			return fmt.Errorf("%w: --agent-port %d is not a port number (1-65535)", errUsage, lf.port)
		}
		cfg.Link.Port = lf.port
	}
	for name, v := range map[string]float64{"status-interval": lf.statusInterval,
		"connect-interval-mult": lf.intervalMult, "agent-read-timeout": lf.readTimeout} {
		if !(v > 0) || v > 1e9 {
			return fmt.Errorf("%w: --%s %v must be a positive number", errUsage, name, v)
		}
	}
	// procstar takes a wait of 0 as "retry at once".
	for name, v := range map[string]float64{"connect-interval-start": lf.intervalStart, "connect-interval-max": lf.intervalMax} {
		if !(v >= 0) || v > 1e9 {
			return fmt.Errorf("%w: --%s %v must be 0 or a positive number", errUsage, name, v)
		}
	}
	switch lf.resourceLimits {
	case "enforce":
	case "best-effort":
		cfg.Resources.BestEffort = true
	default:
		return fmt.Errorf("%w: --resource-limits must be enforce or best-effort, not %q", errUsage, lf.resourceLimits)
	}
	switch b := cfg.Resources.Backend; b {
	case agent.BackendAuto, agent.BackendSystemd, agent.BackendCgroup, agent.BackendNone:
	default:
		return fmt.Errorf("%w: --resource-backend must be auto, systemd, cgroup or none, not %q", errUsage, b)
	}
	cfg.Link.StatusInterval = seconds(lf.statusInterval)
	cfg.Link.ConnectIntervalStart = max(seconds(lf.intervalStart), time.Nanosecond) // 0 is the default to link
	cfg.Link.ConnectIntervalMult = lf.intervalMult
	cfg.Link.ConnectIntervalMax = max(seconds(lf.intervalMax), time.Nanosecond)
	cfg.Link.ReadTimeout = seconds(lf.readTimeout)
	if cmd.Flags().Changed("connect-count-max") {
		// procstar exits once failures >= the max, so 0 exits after the
		// first failure, as 1 does; link's 0 means no limit.
		cfg.Link.ConnectCountMax = int(min(max(lf.countMax, 1), math.MaxInt32))
	}
	cfg.Link.WaitTimeout = seconds(float64(min(lf.waitTimeout, 1e9)))
	if lf.waitTimeout == 0 {
		cfg.Link.WaitTimeout = time.Nanosecond // at once, not the default
	}
	for _, kv := range lf.labels {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("%w: --label %q: want key=value", errUsage, kv)
		}
		if err := v1.ValidateLabel(k, v); err != nil {
			return fmt.Errorf("%w: --label %q: %s", errUsage, kv, err)
		}
		if cfg.Link.Labels == nil {
			cfg.Link.Labels = map[string]string{}
		}
		cfg.Link.Labels[k] = v
	}
	return nil
}

// seconds converts procstar's float seconds.
func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second))
}
