package structure_test

// Tests of deploy/ and hack/package.sh: the systemd unit says what the
// agent needs (Type=notify, delegation, an ordered stop), its command line
// and the env file only use flags and variables that exist, systemd accepts
// the unit, and the release tarball holds working binaries.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"procstar.dev/procstar/agent"
)

const (
	unitPath = "../deploy/procstar.service"
	envPath  = "../deploy/procstar.env"
	// The agent's defaults for --term-grace and --delete-grace, which
	// TimeoutStopSec must exceed. TestPackage checks them against --help.
	defaultTermGrace   = 60 * time.Second
	defaultDeleteGrace = 5 * time.Second
)

// unitEntry is one KEY=VALUE line of a unit file.
type unitEntry struct {
	section, key, value string
	line                int
}

// errUnitSyntax marks a line parseUnit does not understand.
var errUnitSyntax = errors.New("unit file syntax error")

// parseUnit reads a systemd unit file: [Section] headers, KEY=VALUE lines,
// # and ; comments, and a trailing backslash continuing a line. Values keep
// their quotes; specifiers and variables are not expanded.
func parseUnit(text string) ([]unitEntry, error) {
	var entries []unitEntry
	section := ""
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		start := i + 1
		line := strings.TrimSpace(lines[i])
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			next := strings.TrimSpace(lines[i])
			if next != "" && (next[0] == '#' || next[0] == ';') {
				continue // comments inside a continued line are skipped
			}
			line = strings.TrimSuffix(line, `\`) + " " + next
		}
		if strings.HasPrefix(line, "[") {
			if !strings.HasSuffix(line, "]") || len(line) < 3 {
				return nil, fmt.Errorf("%w: line %d: bad section header %q", errUnitSyntax, start, line)
			}
			section = line[1 : len(line)-1]
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("%w: line %d: want KEY=VALUE, got %q", errUnitSyntax, start, line)
		}
		if section == "" {
			return nil, fmt.Errorf("%w: line %d: %s outside any section", errUnitSyntax, start, key)
		}
		entries = append(entries, unitEntry{section: section, key: key, value: strings.TrimSpace(value), line: start})
	}
	return entries, nil
}

// values returns every value of section.key, in order.
func values(entries []unitEntry, section, key string) []string {
	var vs []string
	for _, e := range entries {
		if e.section == section && e.key == key {
			vs = append(vs, e.value)
		}
	}
	return vs
}

func TestParseUnit(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []unitEntry
		wantErr bool
	}{
		{name: "basic", text: "# c\n[Unit]\nA=1\n; c\n\n[Service]\nB = two words \nB=3\n",
			want: []unitEntry{{"Unit", "A", "1", 3}, {"Service", "B", "two words", 7}, {"Service", "B", "3", 8}}},
		{name: "continuation", text: "[Service]\nExecStart=/bin/x \\\n  --a \\\n# skipped\n  --b\nC=d\n",
			want: []unitEntry{{"Service", "ExecStart", "/bin/x  --a  --b", 2}, {"Service", "C", "d", 6}}},
		{name: "empty value", text: "[S]\nE=\n", want: []unitEntry{{"S", "E", "", 2}}},
		{name: "equals in value", text: "[S]\nEnvironment=A=1 B=2\n", want: []unitEntry{{"S", "Environment", "A=1 B=2", 2}}},
		{name: "no section", text: "A=1\n", wantErr: true},
		{name: "no equals", text: "[S]\nfoo\n", wantErr: true},
		{name: "bad header", text: "[S\nA=1\n", wantErr: true},
		{name: "empty header", text: "[]\nA=1\n", wantErr: true},
		{name: "space in key", text: "[S]\nA B=1\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseUnit(tt.text)
			if tt.wantErr {
				if !errors.Is(err, errUnitSyntax) {
					t.Fatalf("parseUnit: err = %v, want errUnitSyntax", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("parseUnit = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// splitExec splits a systemd command line into words: white space
// separates, double and single quotes group, backslash escapes.
func splitExec(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote = r
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("%w: unterminated quote in %q", errUnitSyntax, s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// parseSystemdTime parses a systemd time span such as "90", "90s",
// "1min 30s" or "2min".
func parseSystemdTime(s string) (time.Duration, error) {
	units := map[string]time.Duration{"": time.Second, "s": time.Second, "sec": time.Second,
		"m": time.Minute, "min": time.Minute, "ms": time.Millisecond, "h": time.Hour, "hr": time.Hour}
	re := regexp.MustCompile(`^(\d+)\s*([a-z]*)$`)
	var total time.Duration
	fields := strings.Fields(s)
	if len(fields) == 0 {
		return 0, fmt.Errorf("empty time span")
	}
	for _, f := range fields {
		m := re.FindStringSubmatch(f)
		if m == nil {
			return 0, fmt.Errorf("bad time span %q", s)
		}
		u, ok := units[m[2]]
		if !ok {
			return 0, fmt.Errorf("bad unit %q in %q", m[2], s)
		}
		n, _ := strconv.Atoi(m[1])
		total += time.Duration(n) * u
	}
	return total, nil
}

// envAssignments parses Environment= values: space-separated KEY=VALUE.
func envAssignments(t *testing.T, vs []string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, v := range vs {
		words, err := splitExec(v)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range words {
			k, val, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("Environment=%s: %q is not KEY=VALUE", v, w)
			}
			env[k] = val
		}
	}
	return env
}

// loadUnit reads and parses deploy/procstar.service.
func loadUnit(t *testing.T) []unitEntry {
	t.Helper()
	data, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := parseUnit(string(data))
	if err != nil {
		t.Fatalf("%s: %v", unitPath, err)
	}
	return entries
}

// execStart returns the unit's ExecStart words.
func execStart(t *testing.T, entries []unitEntry) []string {
	t.Helper()
	vs := values(entries, "Service", "ExecStart")
	if len(vs) != 1 {
		t.Fatalf("want one ExecStart=, got %q", vs)
	}
	words, err := splitExec(vs[0])
	if err != nil {
		t.Fatal(err)
	}
	return words
}

// flagValue returns the word after --name (or the part after --name=).
func flagValue(words []string, name string) (string, bool) {
	for i, w := range words {
		if w == "--"+name && i+1 < len(words) {
			return words[i+1], true
		}
		if v, ok := strings.CutPrefix(w, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

func TestUnitFile(t *testing.T) {
	entries := loadUnit(t)
	single := func(section, key string) string {
		t.Helper()
		vs := values(entries, section, key)
		if len(vs) != 1 {
			t.Fatalf("[%s] %s: want exactly one value, got %q", section, key, vs)
		}
		return vs[0]
	}

	t.Run("required settings", func(t *testing.T) {
		for _, want := range []struct{ section, key, value string }{
			{"Service", "Type", "notify"},
			{"Service", "NotifyAccess", "main"},
			{"Service", "Delegate", "yes"},
			{"Service", "KillMode", "process"},
			{"Service", "KillSignal", "SIGTERM"},
			{"Service", "EnvironmentFile", "-/etc/procstar/procstar.env"},
			{"Service", "Restart", "on-failure"},
			{"Service", "OOMPolicy", "continue"},
			{"Service", "TasksMax", "infinity"},
			{"Service", "IgnoreSIGPIPE", "no"},
			{"Service", "RuntimeDirectory", "procstar"},
			{"Install", "WantedBy", "multi-user.target"},
		} {
			if got := single(want.section, want.key); got != want.value {
				t.Errorf("[%s] %s=%s, want %s", want.section, want.key, got, want.value)
			}
		}
		for _, key := range []string{"RestartSec", "LimitNOFILE", "TimeoutStartSec", "User"} {
			single("Service", key)
		}
		for _, key := range []string{"StartLimitIntervalSec", "StartLimitBurst", "After", "Wants"} {
			single("Unit", key)
		}
	})

	t.Run("no hardening that breaks jobs", func(t *testing.T) {
		// Each of these is inherited by every job; the unit explains why
		// they are left out. Only the commented-out stricter set has them.
		for _, key := range []string{"NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome",
			"PrivateDevices", "ProtectControlGroups", "DevicePolicy", "DeviceAllow", "ProtectClock",
			"ProtectKernelTunables", "ProtectKernelModules", "ProtectKernelLogs", "MemoryMax",
			"SystemCallFilter", "RestrictNamespaces", "ReadOnlyPaths", "InaccessiblePaths", "DynamicUser"} {
			if vs := values(entries, "Service", key); len(vs) > 0 {
				t.Errorf("[Service] %s=%s is set; it would apply to every job", key, vs[0])
			}
		}
	})

	t.Run("ExecStart", func(t *testing.T) {
		words := execStart(t, entries)
		if words[0] != "/usr/local/bin/procstar" {
			t.Errorf("ExecStart binary %q, want /usr/local/bin/procstar", words[0])
		}
		for _, f := range []string{"--agent", "--serve"} {
			if !slices.Contains(words, f) {
				t.Errorf("ExecStart lacks %s: %q", f, words)
			}
		}
		addr, ok := flagValue(words, "serve-addr")
		if !ok {
			t.Fatalf("ExecStart has no --serve-addr: %q", words)
		}
		sock, ok := strings.CutPrefix(addr, "unix:")
		if !ok {
			t.Fatalf("--serve-addr %s: want a unix socket (no TCP port on the host)", addr)
		}
		if want := "/run/" + single("Service", "RuntimeDirectory") + "/"; !strings.HasPrefix(sock, want) {
			t.Errorf("socket %s is not in the RuntimeDirectory %s", sock, want)
		}
		// Every ${VAR} (one word) and $VAR (split) has a default in
		// Environment=, so a missing or partial env file still gives a
		// valid command line.
		env := envAssignments(t, values(entries, "Service", "Environment"))
		refs := regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`).FindAllStringSubmatch(strings.Join(words, " "), -1)
		if len(refs) == 0 {
			t.Fatal("ExecStart uses no variables; the env file could not set flags")
		}
		for _, m := range refs {
			if _, ok := env[m[1]]; !ok {
				t.Errorf("ExecStart uses $%s, which has no default in Environment=", m[1])
			}
		}
		if env["PROCSTAR_LOG_LEVEL"] == "" {
			t.Error("PROCSTAR_LOG_LEVEL has no non-empty default: --log-level would get an empty value")
		}
	})

	t.Run("TimeoutStopSec exceeds the agent's stop", func(t *testing.T) {
		stop, err := parseSystemdTime(single("Service", "TimeoutStopSec"))
		if err != nil {
			t.Fatal(err)
		}
		words := execStart(t, entries)
		grace := defaultTermGrace + defaultDeleteGrace
		for _, f := range []string{"term-grace", "delete-grace"} {
			if v, ok := flagValue(words, f); ok {
				t.Fatalf("ExecStart sets --%s %s; this test assumes the defaults", f, v)
			}
		}
		if stop < grace+10*time.Second {
			t.Errorf("TimeoutStopSec=%v, want at least term grace + delete grace + 10s = %v", stop, grace+10*time.Second)
		}
	})

	t.Run("sections", func(t *testing.T) {
		allowed := []string{"Unit", "Service", "Install"}
		for _, e := range entries {
			if !slices.Contains(allowed, e.section) {
				t.Errorf("line %d: unexpected section [%s]", e.line, e.section)
			}
		}
	})
}

func TestEnvFile(t *testing.T) {
	data, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	unitEnv := envAssignments(t, values(loadUnit(t), "Service", "Environment"))
	known := map[string]bool{agent.EnvAgentHost: true, agent.EnvAgentPort: true,
		agent.EnvAgentToken: true, agent.EnvAgentCert: true}
	for k := range unitEnv {
		known[k] = true
	}
	set := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") && !regexp.MustCompile(`^#[A-Z_]+=`).MatchString(line) {
			continue
		}
		commented := strings.HasPrefix(line, "#")
		line = strings.TrimPrefix(line, "#")
		if strings.HasPrefix(line, "export ") {
			t.Errorf("line %d: systemd env files take no 'export'", n)
		}
		k, _, ok := strings.Cut(line, "=")
		if !ok || !regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`).MatchString(k) {
			t.Errorf("line %d: %q is not KEY=VALUE", n, line)
			continue
		}
		if !known[k] {
			t.Errorf("line %d: %s is read neither by the agent nor by the unit", n, k)
		}
		if !commented {
			set[k] = true
		}
	}
	for _, k := range []string{agent.EnvAgentHost, agent.EnvAgentToken} {
		if !set[k] {
			t.Errorf("the example env file does not set %s", k)
		}
	}
	if !bytes.Contains(data, []byte("0600")) {
		t.Error("the env file does not say it must be mode 0600")
	}
}

// flagsIn returns every --long-flag named in text.
func flagsIn(text string) []string {
	var fs []string
	for _, m := range regexp.MustCompile(`(?:^|[\s'"(=\x60])--([a-z][a-z0-9-]+)`).FindAllStringSubmatch(text, -1) {
		if !slices.Contains(fs, m[1]) {
			fs = append(fs, m[1])
		}
	}
	return fs
}

func TestPackage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the release tarball; skipped with -short")
	}
	const version = "v0.0.0-deploytest"
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "../hack/package.sh", out)
	cmd.Env = append(os.Environ(), "ARCHES="+runtime.GOARCH, "VERSION="+version, "OFFLINE=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/package.sh: %v\n%s", err, b)
	}

	name := "procstar-" + version + "-linux-" + runtime.GOARCH
	tarball := filepath.Join(out, name+".tar.gz")
	data, err := os.ReadFile(tarball)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("SHA256SUMS", func(t *testing.T) {
		sums, err := os.ReadFile(filepath.Join(out, "SHA256SUMS"))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(data)
		if want := hex.EncodeToString(sum[:]) + "  " + name + ".tar.gz\n"; string(sums) != want {
			t.Errorf("SHA256SUMS = %q, want %q", sums, want)
		}
	})

	// Unpack into dir, checking names, modes and owners.
	dir := t.TempDir()
	want := map[string]int64{ // path -> mode
		name + "/bin/procstar": 0o755, name + "/bin/procctl": 0o755,
		name + "/deploy/procstar.service": 0o644, name + "/deploy/procstar.env": 0o644,
		name + "/deploy/README.md": 0o644,
	}
	for _, f := range []string{"LICENSE", "README.md"} {
		if _, err := os.Stat(filepath.Join("..", f)); err == nil {
			want[name+"/"+f] = 0o644
		}
	}
	deployFiles, err := filepath.Glob("../deploy/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range deployFiles {
		want[name+"/deploy/"+filepath.Base(f)] = 0o644
	}
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	got := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", h.Name, h.Uid, h.Gid)
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		got[h.Name] = true
		mode, ok := want[h.Name]
		if !ok {
			t.Errorf("unexpected file in tarball: %s", h.Name)
			continue
		}
		if h.Mode&0o777 != mode {
			t.Errorf("%s: mode %o, want %o", h.Name, h.Mode&0o777, mode)
		}
		dst := filepath.Join(dir, filepath.FromSlash(h.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, os.FileMode(mode)); err != nil {
			t.Fatal(err)
		}
	}
	for f := range want {
		if !got[f] {
			t.Errorf("tarball lacks %s", f)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	procstar := filepath.Join(dir, name, "bin", "procstar")
	procctl := filepath.Join(dir, name, "bin", "procctl")

	helpOut, err := exec.Command(procstar, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("packaged procstar --help: %v\n%s", err, helpOut)
	}
	help := string(helpOut)
	helpFlags := flagsIn(help)

	t.Run("static binaries", func(t *testing.T) {
		for _, bin := range []string{procstar, procctl} {
			b, err := exec.Command("go", "version", "-m", bin).Output()
			if err != nil {
				t.Fatalf("go version -m %s: %v", bin, err)
			}
			for _, s := range []string{"CGO_ENABLED=0", "-trimpath=true", "GOARCH=" + runtime.GOARCH} {
				if !bytes.Contains(b, []byte(s)) {
					t.Errorf("%s: build info lacks %s:\n%s", filepath.Base(bin), s, b)
				}
			}
		}
	})

	t.Run("procctl version", func(t *testing.T) {
		b, err := exec.Command(procctl, "version", "--client").CombinedOutput()
		if err != nil || !bytes.Contains(b, []byte(version)) {
			t.Errorf("procctl version --client = %q, %v; want it to contain %s", b, err, version)
		}
	})

	t.Run("ExecStart flags exist", func(t *testing.T) {
		words := execStart(t, loadUnit(t))
		n := 0
		for _, w := range words[1:] {
			if f, ok := strings.CutPrefix(w, "--"); ok {
				f, _, _ = strings.Cut(f, "=")
				n++
				if !slices.Contains(helpFlags, f) {
					t.Errorf("ExecStart uses --%s, which procstar --help does not list", f)
				}
			}
		}
		if n == 0 {
			t.Fatal("no flags found in ExecStart")
		}
	})

	t.Run("documented flags exist", func(t *testing.T) {
		// Flags the env file and README suggest for PROCSTAR_OPTS.
		for _, path := range []string{envPath, "../deploy/README.md"} {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range flagsIn(string(b)) {
				if strings.HasPrefix(f, "server") || f == "now" || f == "value" || f == "ignore-missing" ||
					f == "system" || f == "home-dir" || f == "create-home" || f == "shell" || f == "wait" || f == "rm" {
					continue // procctl, systemctl, useradd, sha256sum flags
				}
				if !slices.Contains(helpFlags, f) {
					t.Errorf("%s mentions --%s, which procstar --help does not list", filepath.Base(path), f)
				}
			}
		}
	})

	t.Run("stop defaults", func(t *testing.T) {
		// TestUnitFile assumes these defaults; --help shows them.
		for _, want := range []string{
			"--term-grace duration .*\\(default " + regexp.QuoteMeta(defaultTermGrace.String()) + "\\)",
			"--delete-grace duration .*\\(default " + regexp.QuoteMeta(defaultDeleteGrace.String()) + "\\)",
		} {
			if !regexp.MustCompile(want).MatchString(help) {
				t.Errorf("procstar --help does not match %q", want)
			}
		}
	})

	t.Run("systemd-analyze verify", func(t *testing.T) {
		sa, err := exec.LookPath("systemd-analyze")
		if err != nil {
			t.Skip("systemd-analyze is not installed")
		}
		unit, err := os.ReadFile(unitPath)
		if err != nil {
			t.Fatal(err)
		}
		// verify checks that ExecStart's binary exists: use the packaged one.
		text := strings.ReplaceAll(string(unit), "/usr/local/bin/procstar", procstar)
		tests := []struct{ name, text string }{
			{"as shipped", text},
			{"stricter set", text + "\n[Service]\n" + uncommented(text, "# Stricter set", "[Install]")},
			{"ExecStopPost", text + "\n[Service]\n" + uncommented(text, "# them itself.", "KillMode=")},
			{"README drop-in", text + "\n" + iniBlocks(t, "../deploy/README.md")},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if tt.name != "as shipped" && !strings.Contains(tt.text[len(text):], "=") {
					t.Fatal("found no commented-out settings to check")
				}
				path := filepath.Join(t.TempDir(), "procstar.service")
				if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
					t.Fatal(err)
				}
				// Unknown keys are only warnings (exit 0): any output fails.
				b, err := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
				if err != nil || len(bytes.TrimSpace(b)) > 0 {
					t.Errorf("systemd-analyze verify: %v\n%s", err, b)
				}
			})
		}
		t.Run("catches a bad key", func(t *testing.T) {
			// The check above must be able to fail.
			path := filepath.Join(t.TempDir(), "procstar.service")
			if err := os.WriteFile(path, []byte(text+"\n[Service]\nNoSuchSetting=1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			b, _ := exec.Command(sa, "verify", "--man=no", path).CombinedOutput()
			if !bytes.Contains(b, []byte("NoSuchSetting")) {
				t.Errorf("systemd-analyze verify did not report an unknown key: %q", b)
			}
		})
	})

	t.Run("runs as the unit starts it", func(t *testing.T) {
		runAsUnit(t, procstar, procctl, version)
	})
}

// iniBlocks returns the ```ini code blocks of a markdown file.
func iniBlocks(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, part := range strings.Split(string(data), "```ini\n")[1:] {
		block, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatalf("%s: unterminated ini block", path)
		}
		for _, line := range strings.Split(block, "\n") {
			b.WriteString(strings.TrimSpace(line) + "\n")
		}
	}
	return b.String()
}

// uncommented returns the "#Key=value" lines of text between the lines
// starting with from and to, without their '#'.
func uncommented(text, from, to string) string {
	var b strings.Builder
	in := false
	for _, line := range strings.Split(text, "\n") {
		switch {
		case strings.HasPrefix(line, from):
			in = true
		case in && strings.HasPrefix(line, to):
			in = false
		case in && regexp.MustCompile(`^#[A-Z][A-Za-z]*=`).MatchString(line):
			b.WriteString(line[1:] + "\n")
		}
	}
	return b.String()
}

// runAsUnit starts the packaged agent with the unit's ExecStart (variables
// from the unit's Environment= defaults, the socket moved to a temporary
// directory, the control plane a closed loopback port) and NOTIFY_SOCKET
// set, as systemd would: it must send READY=1, answer procctl on the unix
// socket with the packaged version, send STOPPING=1 on SIGTERM and exit 0.
func runAsUnit(t *testing.T, procstar, procctl, version string) {
	entries := loadUnit(t)
	env := envAssignments(t, values(entries, "Service", "Environment"))
	dir := t.TempDir()
	sock := filepath.Join(dir, "procstar.sock")
	var args []string
	for _, w := range execStart(t, entries)[1:] {
		switch {
		case strings.HasPrefix(w, "unix:/run/"):
			w = "unix:" + sock
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			w = env[w[2:len(w)-1]]
		case strings.HasPrefix(w, "$"):
			args = append(args, strings.Fields(env[w[1:]])...)
			continue
		}
		args = append(args, w)
	}

	// A closed port: the link retries, which must not stop start-up.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()

	notifyPath := filepath.Join(dir, "notify.sock")
	notify, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notifyPath, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer notify.Close()

	var stderr bytes.Buffer
	cmd := exec.Command(procstar, args...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notifyPath,
		agent.EnvAgentHost+"=127.0.0.1", agent.EnvAgentPort+"="+strconv.Itoa(port), "TMPDIR="+dir)
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() {
		if !stopped {
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("procstar %q stderr:\n%s", args, stderr.String())
		}
	}()

	await := func(state string) {
		t.Helper()
		buf := make([]byte, 4096)
		deadline := time.Now().Add(15 * time.Second)
		for {
			_ = notify.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			n, err := notify.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) && time.Now().Before(deadline) {
				select {
				case err := <-exited:
					stopped = true
					t.Fatalf("agent exited (%v) before sending %s", err, state)
				default:
					continue
				}
			}
			if err != nil {
				t.Fatalf("waiting for %s on NOTIFY_SOCKET: %v", state, err)
			}
			for _, l := range strings.Split(string(buf[:n]), "\n") {
				if l == state {
					return
				}
			}
		}
	}
	await("READY=1")

	b, err := exec.Command(procctl, "--server", "unix:"+sock, "version").CombinedOutput()
	if err != nil || !bytes.Contains(b, []byte("Server Version: "+version)) {
		t.Errorf("procctl version = %q, %v; want Server Version: %s", b, err, version)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	await("STOPPING=1")
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("agent exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(20 * time.Second):
		t.Error("agent did not exit within 20s of SIGTERM")
	}
}
