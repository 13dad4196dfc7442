package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"procstar.dev/procstar/runtime/cgroup"
	"procstar.dev/procstar/runtime/systemd/fakesystemd"
)

// e2eCgroupDir makes a directory under the cgroup2 mount for one agent,
// checked empty and removed at the end, or skips saying why it cannot.
func e2eCgroupDir(t *testing.T) string {
	t.Helper()
	mount, err := cgroup.Mount()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	dir := filepath.Join(mount, fmt.Sprintf("procstar-e2e-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skipf("cgroup2 at %s is not writable: %v", mount, err)
	}
	t.Cleanup(func() {
		if err := os.Remove(dir); err != nil {
			entries, _ := os.ReadDir(dir)
			var names []string
			for _, e := range entries {
				if e.IsDir() {
					names = append(names, e.Name())
				}
			}
			t.Errorf("agent left cgroups behind in %s: %v (%v)", dir, names, err)
		}
	})
	return dir
}

func agentInfo(t *testing.T, addr string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/agent")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatalf("GET /agent: %v: %s", err, body)
	}
	return info
}

func procJSON(t *testing.T, server, name string) map[string]any {
	t.Helper()
	r := procctl(t, server, "", "get", "procs", name, "-o", "json")
	mustOK(t, r, name)
	var p map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &p); err != nil {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	return p
}

func condition(p map[string]any, typ string) map[string]any {
	st, _ := p["status"].(map[string]any)
	conds, _ := st["conditions"].([]any)
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == typ {
			return m
		}
	}
	return nil
}

func processAlive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// TestCgroupBackend runs an agent with its own cgroup root: a proc's
// leftovers die at its exit, its accounting is reported, limits that the
// subtree's controllers cannot enforce are refused, and the agent leaves
// no cgroup behind.
func TestCgroupBackend(t *testing.T) {
	dir := e2eCgroupDir(t)
	a := startAgent(t, "--cgroup-root", dir)
	server := "http://" + a.addr

	res, _ := agentInfo(t, a.addr)["resources"].(map[string]any)
	if res["backend"] != "cgroup" || res["detail"] != dir {
		t.Fatalf("GET /agent resources %v", res)
	}

	// A second agent on the same root would remove the first one's proc
	// cgroups: it refuses to start, saying why, and the first goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	second, err := exec.CommandContext(ctx, procstarBin, "--serve", "--serve-addr", "127.0.0.1:0", "--cgroup-root", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(second), dir+": held by another procstar agent") {
		t.Fatalf("second agent on %s: %v\n%s", dir, err, second)
	}

	// The double-forked sleep outlives its parent; the cgroup does not let it.
	mustOK(t, procctl(t, server, procYAML("forker", "(sleep 300 & echo $!); exit 0"), "apply", "-f", "-"), "created")
	mustOK(t, procctl(t, server, "", "wait", "forker", "--for=terminal", "--timeout", "30s"), "")
	out := procctl(t, server, "", "logs", "forker")
	mustOK(t, out, "")
	pid, err := strconv.Atoi(strings.TrimSpace(out.stdout))
	if err != nil {
		t.Fatalf("logs %q", out.stdout)
	}
	for deadline := time.Now().Add(10 * time.Second); processAlive(pid); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("leftover %d survived its proc", pid)
		}
	}
	p := procJSON(t, server, "forker")
	st := p["status"].(map[string]any)
	rs, _ := st["resources"].(map[string]any)
	if rs["backend"] != "cgroup" || rs["treeKill"] != "cgroup" || rs["enforced"] != true {
		t.Fatalf("status.resources %v", rs)
	}
	acct, _ := st["cgroupAccounting"].(map[string]any)
	if cpu, _ := acct["cpuStat"].(map[string]any); cpu == nil || cpu["usageUsec"] == nil {
		t.Fatalf("status.cgroupAccounting %v", acct)
	}
	if c := condition(p, "ResourcesEnforced"); c == nil || c["status"] != "True" || c["reason"] != "Cgroup" {
		t.Fatalf("ResourcesEnforced %v", c)
	}

	// Limits this subtree cannot enforce are refused with the reason.
	if ctl, _ := res["controllers"].([]any); len(ctl) == 0 {
		limited := procYAML("limited", "exit 0") + "  resources: {memoryMax: 64Mi}\n"
		r := procctl(t, server, limited, "apply", "-f", "-")
		if r.code == 0 || !strings.Contains(r.stderr, "memory") || !strings.Contains(r.stderr, "best-effort") {
			t.Fatalf("apply with limits: exit %d, stderr %q", r.code, r.stderr)
		}
	}
	mustOK(t, procctl(t, server, "", "delete", "proc", "forker"), "deleted")
}

// TestNoBackendBestEffort runs an agent with no resource control: limits
// are refused, or with best effort run with ResourcesEnforced=False.
func TestNoBackendBestEffort(t *testing.T) {
	limited := procYAML("limited", "exit 0") + "  resources: {memoryMax: 64Mi, tasksMax: 10}\n"

	a := startAgent(t, "--resource-backend", "none")
	r := procctl(t, "http://"+a.addr, limited, "apply", "-f", "-")
	if r.code == 0 || !strings.Contains(r.stderr, "no resource control") {
		t.Fatalf("apply with limits: exit %d, stderr %q", r.code, r.stderr)
	}

	b := startAgent(t, "--resource-backend", "none", "--resource-limits", "best-effort")
	server := "http://" + b.addr
	mustOK(t, procctl(t, server, limited, "apply", "-f", "-"), "created")
	mustOK(t, procctl(t, server, "", "wait", "limited", "--for=terminal", "--timeout", "30s"), "")
	p := procJSON(t, server, "limited")
	c := condition(p, "ResourcesEnforced")
	if c == nil || c["status"] != "False" || c["reason"] != "NoResourceControl" || !strings.Contains(fmt.Sprint(c["message"]), "not enforced") {
		t.Fatalf("ResourcesEnforced %v", c)
	}
	if res, _ := agentInfo(t, b.addr)["resources"].(map[string]any); res["backend"] != "none" || res["bestEffort"] != true {
		t.Fatalf("GET /agent resources %v", res)
	}
}

// TestSystemdBackendThroughAgent runs the agent against a fake systemd
// manager on a private bus that backs units with real cgroups: each proc
// runs in its own slice and scope, and nothing is left after delete.
func TestSystemdBackendThroughAgent(t *testing.T) {
	mount, err := cgroup.Mount()
	if err != nil {
		t.Skipf("no cgroup2 mount: %v", err)
	}
	dir := e2eCgroupDir(t)
	f := fakesystemd.Start(t, fakesystemd.Options{CgroupRoot: dir, CgroupMount: mount})
	a := startAgent(t, "--resource-backend", "systemd", "--systemd-address", f.Address())
	server := "http://" + a.addr
	if res, _ := agentInfo(t, a.addr)["resources"].(map[string]any); res["backend"] != "systemd" {
		t.Fatalf("GET /agent resources %v", res)
	}
	mustOK(t, procctl(t, server, procYAML("unit", "cat /proc/self/cgroup; (sleep 300 &); exit 0"), "apply", "-f", "-"), "created")
	mustOK(t, procctl(t, server, "", "wait", "unit", "--for=terminal", "--timeout", "30s"), "")
	p := procJSON(t, server, "unit")
	rs, _ := p["status"].(map[string]any)["resources"].(map[string]any)
	unit, _ := rs["unit"].(string)
	if rs["backend"] != "systemd" || !strings.HasPrefix(unit, "procstar") || !strings.HasSuffix(unit, ".slice") {
		t.Fatalf("status.resources %v", rs)
	}
	if out := procctl(t, server, "", "logs", "unit"); !strings.Contains(out.stdout, unit+"/") {
		t.Fatalf("the proc ran in %q, not under %s", out.stdout, unit)
	}
	if c := condition(p, "ResourcesEnforced"); c == nil || c["reason"] != "Systemd" {
		t.Fatalf("ResourcesEnforced %v", c)
	}
	mustOK(t, procctl(t, server, "", "delete", "proc", "unit"), "deleted")
	for deadline := time.Now().Add(10 * time.Second); len(f.Units()) != 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("units left after delete: %v", f.Units())
		}
	}
}
