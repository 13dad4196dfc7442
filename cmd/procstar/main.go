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
	"os"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/zapr"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"procstar.dev/procstar/agent"
)

// errUsage marks a command-line error, which exits 2 as clap's do.
var errUsage = errors.New("usage error")

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	var cfg agent.Config
	var logLevel string
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
			if cfg.Listen.Port < 1 || cfg.Listen.Port > 65535 {
				return fmt.Errorf("%w: --serve-port %d is not a port number (1-65535)", errUsage, cfg.Listen.Port)
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
	f.StringVar(&cfg.GroupID, "group-id", "default", "agent group ID")
	f.StringVar(&cfg.ConnID, "conn-id", "", "connection ID (default: a random UUID; for debugging only)")
	_ = f.MarkHidden("conn-id")
	f.DurationVar(&cfg.TermGrace, "term-grace", 60*time.Second, "on SIGTERM, how long procs get before SIGKILL")
	f.DurationVar(&cfg.DeleteGrace, "delete-grace", 5*time.Second, "at shutdown, how long clients get to collect and delete finished procs")
	f.StringVar(&cfg.TempDir, "capture-dir", "", "directory for tempfile captures (default $TMPDIR or /tmp)")
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
