// Package structure_test enforces the project's layout rules: the import
// direction of DESIGN.md and a doc comment on every package.
package structure_test

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "procstar.dev/procstar"

type listedPackage struct {
	ImportPath string
	Name       string
	Dir        string
	GoFiles    []string
	Imports    []string
}

func listPackages(t *testing.T) []listedPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	var pkgs []listedPackage
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p listedPackage
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) == 0 {
		t.Fatal("go list found no packages")
	}
	return pkgs
}

// allowed maps a package (by path relative to the module, matched as a
// prefix) to the module packages it may import. The first matching rule
// wins, so more specific prefixes come first. Imports point down only:
// api/v1 <- wire <- runtime <- controller <- agent <- cmd; restapi (the
// HTTP handlers, over a Backend interface) sits beside runtime so that both
// the agent and the control plane serve it; server and client never import
// runtime, controller or agent.
var allowed = []struct {
	pkg   string
	deps  []string
	third []string // third-party module prefixes allowed besides the stdlib
}{
	{"internal/", []string{"internal/"}, []string{"golang.org/x/sys/"}},
	{"api/v1", []string{"internal/"}, []string{"sigs.k8s.io/yaml", "go.yaml.in/yaml/v2"}},
	{"wire", []string{"internal/", "api/v1"}, []string{"sigs.k8s.io/yaml", "github.com/vmihailenco/msgpack/"}},
	{"runtime", []string{"internal/", "api/v1", "wire", "runtime"}, nil},
	{"controller", []string{"internal/", "api/v1", "wire", "runtime", "controller"}, nil},
	{"restapi", []string{"internal/", "api/v1", "wire", "restapi"}, nil},
	{"agent", []string{"internal/", "api/v1", "wire", "runtime", "controller", "restapi", "agent"}, nil},
	{"store", []string{"internal/", "api/v1", "wire", "store"}, nil},
	{"client", []string{"internal/", "api/v1", "wire", "client"}, nil},
	{"server", []string{"internal/", "api/v1", "wire", "store", "restapi", "server"}, nil},
	{"cmd/", nil, nil}, // wiring: anything
	{"test", nil, nil}, // tests and fakes: anything
	{"hack", nil, nil},
}

func hasPathPrefix(path, prefix string) bool {
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix)
	}
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

func TestImportDirection(t *testing.T) {
	for _, p := range listPackages(t) {
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		rule := -1
		for i, r := range allowed {
			if hasPathPrefix(rel, r.pkg) {
				rule = i
				break
			}
		}
		if rule < 0 {
			t.Errorf("%s: no import rule covers this package; add one to allowed", rel)
			continue
		}
		r := allowed[rule]
		if r.deps == nil {
			continue
		}
		for _, imp := range p.Imports {
			switch {
			case strings.HasPrefix(imp, module+"/"):
				dep := strings.TrimPrefix(imp, module+"/")
				ok := false
				for _, d := range r.deps {
					ok = ok || hasPathPrefix(dep, d)
				}
				if !ok {
					t.Errorf("%s imports %s, which points against the layering", rel, dep)
				}
			case !strings.Contains(strings.SplitN(imp, "/", 2)[0], "."):
				// The standard library.
			default:
				if r.third == nil {
					continue // third-party libraries are this layer's own choice
				}
				ok := false
				for _, d := range r.third {
					ok = ok || strings.HasPrefix(imp, d)
				}
				if !ok {
					t.Errorf("%s imports third-party %s; only %v are allowed here", rel, imp, r.third)
				}
			}
		}
	}
}

func TestEveryPackageHasDocComment(t *testing.T) {
	for _, p := range listPackages(t) {
		if len(p.GoFiles) == 0 {
			continue
		}
		documented := false
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(token.NewFileSet(), filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatalf("parse %s: %v", f, err)
			}
			if file.Doc == nil {
				continue
			}
			text := file.Doc.Text()
			want := "Package " + p.Name + " "
			if p.Name == "main" {
				want = "Command "
			}
			if !strings.HasPrefix(text, want) {
				t.Errorf("%s: package doc comment should start with %q, got %q", p.ImportPath, want, firstLine(text))
			}
			documented = true
		}
		if !documented {
			t.Errorf("%s: no file has a package doc comment", p.ImportPath)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
