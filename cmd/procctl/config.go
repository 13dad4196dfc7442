package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"
)

// DefaultServer is where procstar --serve listens by default.
const DefaultServer = "http://127.0.0.1:3000"

// fileConfig is ~/.config/procstar/config.yaml.
type fileConfig struct {
	// currentContext names the context used when --context is not given.
	CurrentContext string `json:"currentContext,omitempty"`
	// contexts are the known servers.
	Contexts []configContext `json:"contexts,omitempty"`
}

// configContext is one server and how to authenticate to it.
type configContext struct {
	Name               string `json:"name"`
	Server             string `json:"server,omitempty"`
	Token              string `json:"token,omitempty"`
	TokenFile          string `json:"tokenFile,omitempty"`
	CAFile             string `json:"caFile,omitempty"`
	InsecureSkipVerify bool   `json:"insecureSkipVerify,omitempty"`
}

// defaultConfigPath is $XDG_CONFIG_HOME/procstar/config.yaml, else
// ~/.config/procstar/config.yaml; "" when neither is known.
func defaultConfigPath(getenv func(string) string) string {
	if x := getenv("XDG_CONFIG_HOME"); x != "" && filepath.IsAbs(x) {
		return filepath.Join(x, "procstar", "config.yaml")
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config", "procstar", "config.yaml")
	}
	return ""
}

// connection is what a command needs to build a client.
type connection struct {
	Server             string
	Token              string
	CAFile             string
	InsecureSkipVerify bool
}

// resolveConnection merges, strongest first: flags, PROCSTAR_SERVER, the
// chosen context of the config file, the default server.
func resolveConnection(g *globalOptions, getenv func(string) string) (connection, error) {
	path, explicit := g.configPath, g.configPath != ""
	if !explicit {
		path = defaultConfigPath(getenv)
	}
	var fc fileConfig
	if path != "" {
		b, err := os.ReadFile(path)
		switch {
		case err == nil:
			if err := yaml.UnmarshalStrict(b, &fc); err != nil {
				return connection{}, fmt.Errorf("config file %s: %s (fix the file or pass --config)", path, oneLine(err.Error()))
			}
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		default:
			return connection{}, fmt.Errorf("cannot read config file: %s", pathErr(err))
		}
	}
	var conn connection
	name := g.context
	if name == "" {
		name = fc.CurrentContext
	}
	if name != "" {
		var ctx *configContext
		for i := range fc.Contexts {
			if fc.Contexts[i].Name == name {
				ctx = &fc.Contexts[i]
			}
		}
		if ctx == nil {
			var names []string
			for _, c := range fc.Contexts {
				names = append(names, c.Name)
			}
			where := "no config file"
			if path != "" {
				where = path
			}
			return connection{}, fmt.Errorf("context %q is not in %s (known contexts: %s)", name, where, orNone(strings.Join(names, ", ")))
		}
		conn = connection{Server: ctx.Server, Token: ctx.Token, CAFile: ctx.CAFile, InsecureSkipVerify: ctx.InsecureSkipVerify}
		base := filepath.Dir(path)
		if ctx.TokenFile != "" && conn.Token == "" {
			tf := ctx.TokenFile
			if !filepath.IsAbs(tf) {
				tf = filepath.Join(base, tf)
			}
			b, err := os.ReadFile(tf)
			if err != nil {
				return connection{}, fmt.Errorf("context %q: cannot read token file: %s", name, pathErr(err))
			}
			conn.Token = strings.TrimSpace(string(b))
		}
		if conn.CAFile != "" && !filepath.IsAbs(conn.CAFile) {
			conn.CAFile = filepath.Join(base, conn.CAFile)
		}
	}
	if s := getenv("PROCSTAR_SERVER"); s != "" {
		conn.Server = s
	}
	if g.server != "" {
		conn.Server = g.server
	}
	if g.token != "" {
		conn.Token = g.token
	}
	if g.caFile != "" {
		conn.CAFile = g.caFile
	}
	if g.insecure {
		conn.InsecureSkipVerify = true
	}
	if conn.Server == "" {
		conn.Server = DefaultServer
	}
	return conn, nil
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// pathErr words an *fs.PathError as "PATH: no such file or directory".
func pathErr(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Path + ": " + pe.Err.Error()
	}
	return err.Error()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
