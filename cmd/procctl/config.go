package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
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
// chosen context of the config file, the default server. An explicit
// --context picks its own server over PROCSTAR_SERVER. A context's token
// and CA go only to that context's server: when the server comes from
// elsewhere, pass --token (and --ca-file) for it.
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
				return connection{}, fmt.Errorf("config file %s: %s (fix the file or pass --config)", path, yamlError(err))
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
	if name == "" && len(fc.Contexts) > 0 && g.server == "" && getenv("PROCSTAR_SERVER") == "" {
		names := make([]string, len(fc.Contexts))
		for i, c := range fc.Contexts {
			names[i] = c.Name
		}
		return connection{}, fmt.Errorf("%s has contexts (%s) but no currentContext: pass --context NAME or set currentContext", path, strings.Join(names, ", "))
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
	server := g.server
	if s := getenv("PROCSTAR_SERVER"); server == "" && g.context == "" {
		server = s
	}
	if server != "" && server != conn.Server {
		conn = connection{Server: server}
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

// yamlError is a config file's decoding error without the wrapping of
// the YAML and JSON layers under sigs.k8s.io/yaml.
func yamlError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := map[reflect.Kind]string{reflect.Slice: "a list", reflect.Struct: "a map", reflect.Bool: "true or false"}[te.Type.Kind()]
		if want == "" {
			want = "a " + te.Type.Kind().String()
		}
		got := map[string]string{"object": "a map", "array": "a list", "bool": "true or false"}[te.Value]
		if got == "" {
			got = "a " + te.Value
		}
		return fmt.Sprintf("%s: want %s, not %s", te.Field, want, got)
	}
	msg := err.Error()
	for _, p := range []string{"error converting YAML to JSON: ", "error unmarshaling JSON: ", "while decoding JSON: ", "json: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return oneLine(msg)
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
