package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"procstar.dev/procstar/client"
	"procstar.dev/procstar/internal/errdefs"
)

// env is everything a command touches outside itself, so that tests can
// run the whole CLI in-process.
type env struct {
	stdin      io.Reader
	stdout     io.Writer
	stderr     io.Writer
	now        func() time.Time
	getenv     func(string) string
	newClient  func(client.Config) (*client.Client, error)
	isTerminal func(io.Writer) bool
	// redraw is how often a progress line is redrawn; 0 means a second.
	redraw time.Duration
}

// globalOptions are the flags every command has.
type globalOptions struct {
	configPath     string
	context        string
	server         string
	token          string
	caFile         string
	insecure       bool
	requestTimeout time.Duration
}

// app is one invocation.
type app struct {
	env
	g    globalOptions
	conn connection
	c    *client.Client
}

// exitError ends procctl with a status and, unless msg is empty, one
// line "error: MSG" on stderr.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

func usageErrorf(format string, args ...any) error {
	return &exitError{code: 2, msg: fmt.Sprintf(format, args...)}
}

func failf(format string, args ...any) error {
	return &exitError{code: 1, msg: fmt.Sprintf(format, args...)}
}

// errReported: the command already printed its error lines.
var errReported = &exitError{code: 1}

// run executes procctl with args and returns the exit status.
func run(ctx context.Context, args []string, e env) int {
	a := &app{env: e}
	root := a.rootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if a.c != nil {
		a.c.Close()
	}
	if err == nil {
		return 0
	}
	code, msg := a.render(err)
	if msg != "" {
		fmt.Fprintf(a.stderr, "error: %s\n", msg)
	}
	return code
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "procctl",
		Short: "Manage procstar Procs the way kubectl manages pods",
		Long: `procctl talks to procstar's REST API (procstar --serve, or a control plane).

The server comes from --server, else $PROCSTAR_SERVER, else the current
context of ~/.config/procstar/config.yaml ($XDG_CONFIG_HOME is respected),
else ` + DefaultServer + `.

Exit status: 0 on success, 1 on an error, 2 on a usage error, 130 when
interrupted; run --wait exits with the proc's status.`,
		SilenceErrors:     true,
		SilenceUsage:      true,
		Args:              a.noArgs,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%s (see '%s --help')", oneLine(err.Error()), c.CommandPath())
	})
	pf := root.PersistentFlags()
	pf.StringVar(&a.g.configPath, "config", "", "config file (default $XDG_CONFIG_HOME/procstar/config.yaml or ~/.config/procstar/config.yaml)")
	pf.StringVar(&a.g.context, "context", "", "config context to use, with its server (default: currentContext of the config file)")
	pf.StringVar(&a.g.server, "server", "", "server address: http(s)://HOST:PORT or unix:/PATH (overrides $PROCSTAR_SERVER and the config; a context's token and CA go only to its own server)")
	pf.StringVar(&a.g.token, "token", "", "bearer token for the server")
	pf.StringVar(&a.g.caFile, "ca-file", "", "PEM file of CA certificates that verify an https server")
	pf.BoolVar(&a.g.insecure, "insecure-skip-tls-verify", false, "do not verify the server's certificate (insecure)")
	pf.DurationVar(&a.g.requestTimeout, "request-timeout", 30*time.Second, "bound on each request that is not a stream (0: none)")

	root.AddCommand(
		a.applyCmd(), a.createCmd(), a.getCmd(), a.describeCmd(), a.logsCmd(),
		a.deleteCmd(), a.killCmd(), a.waitCmd(), a.runCmd(), a.versionCmd(),
		a.completionCmd(),
	)
	for _, c := range root.Commands() {
		if c.Args == nil {
			c.Args = a.noArgs
		}
	}
	return root
}

// noArgs refuses arguments, and names an unknown command clearly (cobra
// calls a command's Args validator for an unknown subcommand too).
func (a *app) noArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.HasSubCommands() {
		return usageErrorf("unknown command %q (see 'procctl --help')", args[0])
	}
	return usageErrorf("%s takes no arguments (see '%s --help')", cmd.Name(), cmd.CommandPath())
}

// client returns the client of this invocation, made on first use.
func (a *app) client() (*client.Client, error) {
	if a.c != nil {
		return a.c, nil
	}
	conn, err := resolveConnection(&a.g, a.getenv)
	if err != nil {
		return nil, usageErrorf("%s", err.Error())
	}
	a.conn = conn
	c, err := a.newClient(client.Config{
		Server:             conn.Server,
		Token:              conn.Token,
		CAFile:             conn.CAFile,
		InsecureSkipVerify: conn.InsecureSkipVerify,
		Timeout:            a.g.requestTimeout,
		UserAgent:          "procctl",
	})
	if err != nil {
		return nil, usageErrorf("%s (check --server or your config context)", oneLine(err.Error()))
	}
	a.c = c
	return c, nil
}

// progress reports whether progress lines go to stderr (a terminal).
func (a *app) progress() bool {
	return a.isTerminal != nil && a.isTerminal(a.stderr)
}

// render turns err into an exit status and one line.
func (a *app) render(err error) (int, string) {
	server := a.conn.Server
	var ee *exitError
	var ce *client.ConnError
	var ae *client.APIError
	var be *client.BadResponseError
	switch {
	case errors.As(err, &ee):
		return ee.code, ee.msg
	case errors.Is(err, context.Canceled):
		return 130, "interrupted"
	case errors.Is(err, context.DeadlineExceeded):
		return 1, fmt.Sprintf("server %s did not answer within %s (raise --request-timeout, or check the server)", server, a.g.requestTimeout)
	case errors.As(err, &ce):
		return 1, connMessage(ce)
	case errors.As(err, &ae):
		return 1, apiMessage(ae, server)
	case errors.As(err, &be):
		return 1, fmt.Sprintf("server %s did not answer %s %s as a procstar API does (its body is not the JSON procctl expects); check --server, and that the server is a procstar of a version procctl knows", server, be.Method, be.Path)
	case errors.Is(err, client.ErrBadResponse):
		return 1, fmt.Sprintf("server %s sent an answer procctl cannot read (%s); is it a procstar server of a matching version?", server, oneLine(err.Error()))
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return 2, oneLine(err.Error())
	}
	return 1, oneLine(err.Error())
}

// apiMessage words an error answer that no command handled itself.
func apiMessage(ae *client.APIError, server string) string {
	switch {
	case errors.Is(ae, errdefs.ErrUnauthorized):
		return fmt.Sprintf("server %s refused the credentials (%s): pass --token or set token/tokenFile in your config context", server, ae.Message)
	case errors.Is(ae, errdefs.ErrUnavailable):
		return fmt.Sprintf("server %s is unavailable: %s; try again later", server, ae.Message)
	case ae.NotAPI:
		return fmt.Sprintf("server %s did not answer as a procstar API (HTTP %d on %s); check --server", server, ae.Code, ae.Path)
	}
	return ae.Message
}

// connMessage words a failure to reach the server.
func connMessage(ce *client.ConnError) string {
	s := ce.Server
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var dns *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(ce, syscall.ECONNREFUSED):
		return fmt.Sprintf("cannot reach server %s: connection refused (is procstar --serve running?)", s)
	case errors.Is(ce, syscall.ENOENT):
		return fmt.Sprintf("cannot reach server %s: no such socket (is procstar --serve running?)", s)
	case errors.Is(ce, syscall.EACCES):
		return fmt.Sprintf("cannot reach server %s: permission denied on the socket", s)
	case errors.As(ce, &ua):
		return fmt.Sprintf("cannot verify the certificate of server %s: it is signed by an unknown authority (set caFile in your config context or pass --ca-file)", s)
	case errors.As(ce, &he):
		return fmt.Sprintf("cannot verify the certificate of server %s: %s (use the host name the certificate was issued for)", s, oneLine(he.Error()))
	case errors.As(ce, &ci):
		return fmt.Sprintf("cannot verify the certificate of server %s: %s", s, oneLine(ci.Error()))
	case errors.Is(ce, http.ErrSchemeMismatch), errors.As(ce, &rh):
		// Go's client turns a record header that reads "HTTP/" into
		// ErrSchemeMismatch.
		return fmt.Sprintf("server %s does not speak TLS (use http:// instead of https://?)", s)
	case errors.Is(ce, client.ErrServerWantsTLS):
		return fmt.Sprintf("server %s speaks TLS only (use https:// instead of http://)", s)
	case errors.As(ce, &dns):
		return fmt.Sprintf("cannot reach server %s: cannot resolve host %q (check --server)", s, dns.Name)
	case errors.As(ce, &ne) && ne.Timeout():
		return fmt.Sprintf("cannot reach server %s: timed out (check --server and the network)", s)
	case errors.Is(ce, client.ErrBadResponse):
		return fmt.Sprintf("server %s sent an answer procctl cannot read: %s", s, oneLine(ce.Err.Error()))
	}
	return fmt.Sprintf("lost or could not open the connection to server %s: %s", s, oneLine(ce.Err.Error()))
}

// procError words err about the proc called name: not found, and
// otherwise what render says.
func procError(name string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		var ae *client.APIError
		if errors.As(err, &ae) {
			return failf("proc %q not found", name)
		}
		return failf("%s", oneLine(err.Error()))
	}
	return err
}

// report prints err as one error line (for commands that go on with the
// next object) and returns the exit status it stands for.
func (a *app) report(err error) int {
	code, msg := a.render(err)
	if msg != "" {
		fmt.Fprintf(a.stderr, "error: %s\n", msg)
	}
	return code
}

// splitResourceArgs reads "procs NAME…", "proc NAME…", "proc/NAME…" and
// "procs/NAME…" into names. needType requires the type word when no
// proc/NAME form is given.
func splitResourceArgs(cmd string, args []string) ([]string, error) {
	if len(args) == 0 {
		return nil, nil
	}
	var names []string
	first := args[0]
	if isProcType(first) {
		args = args[1:]
	} else if typ, _, ok := strings.Cut(first, "/"); !ok || !isProcType(typ) {
		return nil, usageErrorf("unknown resource type %q: procctl knows procs (try 'procctl %s procs …')", typ, cmd)
	}
	for _, arg := range args {
		if typ, name, ok := strings.Cut(arg, "/"); ok {
			if !isProcType(typ) {
				return nil, usageErrorf("unknown resource type %q in %q: procctl knows procs", typ, arg)
			}
			arg = name
		}
		if arg == "" {
			return nil, usageErrorf("empty proc name")
		}
		names = append(names, arg)
	}
	return names, nil
}

// isProcType reports whether s names the proc resource.
func isProcType(s string) bool {
	switch strings.ToLower(s) {
	case "proc", "procs", "p":
		return true
	}
	return false
}
