// Package fakesystemd runs a fake systemd manager on a private dbus-daemon
// for tests: it answers the handful of org.freedesktop.systemd1.Manager
// methods procstar uses (StartTransientUnit, StopUnit, KillUnit, GetUnit,
// the Version property and units' ControlGroup), emits JobRemoved for every
// job, records every call, and can optionally act on a real cgroup2 tree.
//
// It is test support only: it must not be imported by non-test code of the
// agent, it must not touch cgroups outside Options.CgroupRoot, and it must
// not signal any process that is not in a cgroup it created.
package fakesystemd

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	sddbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/godbus/dbus/v5"
)

// D-Bus names the fake answers to.
const (
	BusName       = "org.freedesktop.systemd1"
	ManagerPath   = dbus.ObjectPath("/org/freedesktop/systemd1")
	ManagerIface  = "org.freedesktop.systemd1.Manager"
	unitPathRoot  = dbus.ObjectPath("/org/freedesktop/systemd1/unit")
	jobPathPrefix = "/org/freedesktop/systemd1/job/"
	propsIface    = "org.freedesktop.DBus.Properties"
	// Version is what the fake reports as the manager's Version property.
	Version = "257-fake"
)

// D-Bus error names systemd uses.
const (
	errNoSuchUnit  = "org.freedesktop.systemd1.NoSuchUnit"
	errUnitExists  = "org.freedesktop.systemd1.UnitExists"
	errInvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs"
	errUnknownIf   = "org.freedesktop.DBus.Error.UnknownInterface"
	errUnknownProp = "org.freedesktop.DBus.Error.UnknownProperty"
)

// Options configure a Fake.
type Options struct {
	// CgroupRoot, when set, makes the fake behave like systemd on a real
	// cgroup2 tree: a slice creates directory CgroupRoot/<slice>, a scope
	// creates CgroupRoot/<slice>/<scope> and moves its PIDs into it,
	// KillUnit signals every pid in the unit's cgroup.procs, StopUnit of a
	// slice kills everything in its tree (cgroup.kill), waits until it is
	// empty (bounded) and removes the directories. It must lie under
	// CgroupMount.
	CgroupRoot string
	// CgroupMount is the cgroup2 mount point; ControlGroup is reported
	// relative to it (e.g. "/procstar-test-x/procstarNN.slice").
	CgroupMount string
	// FailUnit, when it matches a unit name suffix (".scope" or ".slice"),
	// makes that unit's start job end with result "failed".
	FailUnit string
	// HangUnit, when it matches a unit name suffix, makes that unit's
	// start job never finish: the unit is created but JobRemoved is never
	// emitted for it.
	HangUnit string
	// NoManager runs the bus without the fake manager on it, like a
	// session bus with no systemd user instance.
	NoManager bool
}

// Prop is one unit property as received.
type Prop struct {
	Name  string
	Value any
}

// AuxUnit is one auxiliary unit of StartTransientUnit.
type AuxUnit struct {
	Name  string
	Props []Prop
}

// Call is one method call the fake received. Args hold the decoded
// arguments: StartTransientUnit (name string, mode string, props []Prop,
// aux []AuxUnit), StopUnit (name, mode), KillUnit (name, who string,
// signal int32), GetUnit (name), Get (interface, property), GetAll
// (interface).
type Call struct {
	Method string
	Path   string
	Args   []any
}

// UnitInfo describes a live unit.
type UnitInfo struct {
	Name         string
	Properties   map[string]any
	ControlGroup string
	PIDs         []uint32
}

// Fake is a running fake systemd manager. Its methods are safe for
// concurrent use.
type Fake struct {
	t       testing.TB
	opts    Options
	addr    string
	cmd     *exec.Cmd
	conn    *dbus.Conn
	pending sync.WaitGroup // job goroutines not yet finished

	mu      sync.Mutex // guards everything below
	calls   []Call
	units   map[string]*unit
	nextJob uint32
	closed  bool
}

// unit is a live unit. Its fields are written under Fake.mu.
type unit struct {
	name  string
	props map[string]any
	cg    string // ControlGroup, relative to the cgroup mount
	dir   string // directory under CgroupRoot, "" without one
	pids  []uint32
	slice string // scope only: its slice
}

// Start launches a private dbus-daemon and a fake manager on it. It skips
// the test if dbus-daemon is not installed. Cleanup stops every unit, kills
// the daemon and waits for it.
func Start(t testing.TB, opts Options) *Fake {
	t.Helper()
	daemon, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skipf("fakesystemd: dbus-daemon not installed: %v", err)
	}
	if opts.CgroupRoot != "" && opts.CgroupMount == "" {
		t.Fatalf("fakesystemd: CgroupRoot %q needs CgroupMount", opts.CgroupRoot)
	}
	dir := t.TempDir()
	if len(dir) > 80 { // unix socket paths are limited to 108 bytes
		d, err := os.MkdirTemp("", "fsd")
		if err != nil {
			t.Fatalf("fakesystemd: %v", err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	sock := filepath.Join(dir, "bus")
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(busConfig(sock)), 0o600); err != nil {
		t.Fatalf("fakesystemd: %v", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatalf("fakesystemd: %v", err)
	}
	cmd := exec.Command(daemon, "--nofork", "--nopidfile", "--print-address=3", "--config-file="+conf)
	cmd.ExtraFiles = []*os.File{w}
	// The daemon's complaints (it cannot raise its fd limit in a
	// container) are shown only when the test fails.
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		t.Fatalf("fakesystemd: starting dbus-daemon: %v", err)
	}
	w.Close()
	f := &Fake{t: t, opts: opts, cmd: cmd, units: map[string]*unit{}}
	t.Cleanup(func() { // runs after f.close has waited for the daemon
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("dbus-daemon stderr:\n%s", stderr.String())
		}
	})
	t.Cleanup(f.close)

	addrc := make(chan string, 1)
	go func() {
		defer r.Close()
		line, _ := bufio.NewReader(r).ReadString('\n')
		addrc <- strings.TrimSpace(line)
	}()
	select {
	case f.addr = <-addrc:
	case <-time.After(10 * time.Second):
		t.Fatal("fakesystemd: dbus-daemon printed no address within 10s")
	}
	if f.addr == "" {
		t.Fatal("fakesystemd: dbus-daemon exited without printing its address")
	}

	conn, err := dbus.Dial(f.addr)
	if err != nil {
		t.Fatalf("fakesystemd: dial %s: %v", f.addr, err)
	}
	f.conn = conn
	if err := conn.Auth(nil); err != nil {
		t.Fatalf("fakesystemd: auth: %v", err)
	}
	if err := conn.Hello(); err != nil {
		t.Fatalf("fakesystemd: hello: %v", err)
	}
	if opts.NoManager {
		return f
	}
	for _, e := range []struct {
		v       any
		path    dbus.ObjectPath
		iface   string
		subtree bool
	}{
		{(*managerObj)(f), ManagerPath, ManagerIface, false},
		{(*managerProps)(f), ManagerPath, propsIface, false},
		{(*unitProps)(f), unitPathRoot, propsIface, true},
	} {
		var err error
		if e.subtree {
			err = conn.ExportSubtree(e.v, e.path, e.iface)
		} else {
			err = conn.Export(e.v, e.path, e.iface)
		}
		if err != nil {
			t.Fatalf("fakesystemd: export %s %s: %v", e.path, e.iface, err)
		}
	}
	reply, err := conn.RequestName(BusName, dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("fakesystemd: request name %s: reply %v, %v", BusName, reply, err)
	}
	return f
}

func busConfig(sock string) string {
	return `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=` + sock + `</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
`
}

// Address is the D-Bus address of the private bus.
func (f *Fake) Address() string { return f.addr }

// Calls returns every method call received so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ResetCalls forgets the calls received so far.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Units returns the live units by name.
func (f *Fake) Units() map[string]UnitInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]UnitInfo, len(f.units))
	for name, u := range f.units {
		props := make(map[string]any, len(u.props))
		for k, v := range u.props {
			props[k] = v
		}
		out[name] = UnitInfo{Name: name, Properties: props, ControlGroup: u.cg, PIDs: slices.Clone(u.pids)}
	}
	return out
}

func (f *Fake) record(c Call) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	f.mu.Unlock()
}

// close stops every unit, closes the connection and kills the daemon.
func (f *Fake) close() {
	f.mu.Lock()
	f.closed = true
	var slicesLeft []*unit
	for _, u := range f.units {
		if u.slice == "" {
			slicesLeft = append(slicesLeft, u)
		}
	}
	f.mu.Unlock()
	f.pending.Wait()
	for _, u := range slicesLeft {
		if err := f.stopSlice(u.name); err != nil {
			f.t.Errorf("fakesystemd: cleanup of %s: %v", u.name, err)
		}
	}
	if f.conn != nil {
		f.conn.Close()
	}
	if f.cmd.Process != nil {
		_ = f.cmd.Process.Kill()
		_ = f.cmd.Wait()
	}
}

// newJob returns the next job id and path.
func (f *Fake) newJob() (uint32, dbus.ObjectPath) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextJob++
	return f.nextJob, dbus.ObjectPath(jobPathPrefix + strconv.FormatUint(uint64(f.nextJob), 10))
}

// runJob runs work in the background and then emits JobRemoved with its
// result, as systemd does once a job finishes.
func (f *Fake) runJob(id uint32, job dbus.ObjectPath, name string, work func() string) {
	f.pending.Add(1)
	go func() {
		defer f.pending.Done()
		result := work()
		_ = f.conn.Emit(ManagerPath, ManagerIface+".JobRemoved", id, job, name, result)
	}()
}

// unitPath is where systemd exports the unit object of name.
func unitPath(name string) dbus.ObjectPath {
	return unitPathRoot + "/" + dbus.ObjectPath(sddbus.PathBusEscape(name))
}

func dbusErr(name, format string, a ...any) *dbus.Error {
	return dbus.NewError(name, []any{fmt.Sprintf(format, a...)})
}

// managerObj implements org.freedesktop.systemd1.Manager.
type managerObj Fake

// propSigs are the properties the fake accepts, with their D-Bus
// signatures, and the unit types that accept them.
var propSigs = map[string]struct {
	sig   string
	slice bool
	scope bool
}{
	"Description":                {"s", true, true},
	"CollectMode":                {"s", true, true},
	"MemoryAccounting":           {"b", true, true},
	"MemoryMin":                  {"t", true, true},
	"MemoryLow":                  {"t", true, true},
	"MemoryHigh":                 {"t", true, true},
	"MemoryMax":                  {"t", true, true},
	"MemorySwapMax":              {"t", true, true},
	"TasksAccounting":            {"b", true, true},
	"TasksMax":                   {"t", true, true},
	"CPUAccounting":              {"b", true, true},
	"CPUQuotaPerSecUSec":         {"t", true, true},
	"CPUWeight":                  {"t", true, true},
	"OOMPolicy":                  {"s", false, true},
	"RuntimeMaxUSec":             {"t", false, true},
	"RuntimeRandomizedExtraUSec": {"t", false, true},
	"PIDs":                       {"au", false, true},
	"Slice":                      {"s", false, true},
}

type wireProp struct {
	Name  string
	Value dbus.Variant
}

type wireAux struct {
	Name  string
	Props []wireProp
}

// StartTransientUnit creates a slice or scope.
func (m *managerObj) StartTransientUnit(name, mode string, props []wireProp, aux []wireAux) (dbus.ObjectPath, *dbus.Error) {
	f := (*Fake)(m)
	got := make([]Prop, len(props))
	for i, p := range props {
		got[i] = Prop{p.Name, p.Value.Value()}
	}
	gotAux := make([]AuxUnit, len(aux))
	for i, a := range aux {
		gotAux[i] = AuxUnit{Name: a.Name}
		for _, p := range a.Props {
			gotAux[i].Props = append(gotAux[i].Props, Prop{p.Name, p.Value.Value()})
		}
	}
	f.record(Call{Method: "StartTransientUnit", Path: string(ManagerPath), Args: []any{name, mode, got, gotAux}})

	isSlice := strings.HasSuffix(name, ".slice")
	isScope := strings.HasSuffix(name, ".scope")
	if !isSlice && !isScope {
		return "", dbusErr(errInvalidArgs, "fake supports only transient slices and scopes, not %q", name)
	}
	if !validMode(mode) {
		return "", dbusErr(errInvalidArgs, "Job mode %s invalid.", mode)
	}
	if len(aux) > 0 {
		return "", dbusErr(errInvalidArgs, "fake does not support auxiliary units")
	}
	u := &unit{name: name, props: map[string]any{}}
	for _, p := range props {
		want, ok := propSigs[p.Name]
		if !ok || (isSlice && !want.slice) || (isScope && !want.scope) {
			return "", dbusErr(errInvalidArgs, "Cannot set property %s, or unknown property.", p.Name)
		}
		if sig := p.Value.Signature().String(); sig != want.sig {
			return "", dbusErr(errInvalidArgs, "Property %s has type %s, want %s.", p.Name, sig, want.sig)
		}
		u.props[p.Name] = p.Value.Value()
	}
	if isScope {
		pids, _ := u.props["PIDs"].([]uint32)
		if len(pids) == 0 {
			return "", dbusErr(errInvalidArgs, "Scope has no PIDs. Refusing.")
		}
		u.pids = slices.Clone(pids)
		u.slice, _ = u.props["Slice"].(string)
		if u.slice == "" {
			return "", dbusErr(errInvalidArgs, "fake needs a Slice for scope %s", name)
		}
	}

	f.mu.Lock()
	if _, ok := f.units[name]; ok {
		f.mu.Unlock()
		return "", dbusErr(errUnitExists, "Unit %s was already loaded or has a fragment file.", name)
	}
	if isScope {
		s, ok := f.units[u.slice]
		if !ok || s.slice != "" {
			f.mu.Unlock()
			return "", dbusErr(errNoSuchUnit, "Slice %s not loaded.", u.slice)
		}
		u.cg = s.cg + "/" + name
		if s.dir != "" {
			u.dir = filepath.Join(s.dir, name)
		}
	} else {
		u.cg = "/" + name
		if f.opts.CgroupRoot != "" {
			u.dir = filepath.Join(f.opts.CgroupRoot, name)
			rel, err := filepath.Rel(f.opts.CgroupMount, u.dir)
			if err != nil || strings.HasPrefix(rel, "..") {
				f.mu.Unlock()
				return "", dbusErr(errInvalidArgs, "CgroupRoot %s is not under CgroupMount %s", f.opts.CgroupRoot, f.opts.CgroupMount)
			}
			u.cg = "/" + rel
		}
	}
	// Reserve the name now, so a second start of it fails at once.
	f.units[name] = u
	f.mu.Unlock()

	id, job := f.newJob()
	fail := f.opts.FailUnit != "" && strings.HasSuffix(name, f.opts.FailUnit)
	if f.opts.HangUnit != "" && strings.HasSuffix(name, f.opts.HangUnit) {
		return job, nil
	}
	f.runJob(id, job, name, func() string {
		err := error(nil)
		if fail {
			err = errors.New("FailUnit")
		} else if u.dir != "" {
			err = createCgroup(u.dir, u.pids)
		}
		if err != nil {
			if u.dir != "" {
				_ = os.Remove(u.dir)
			}
			f.mu.Lock()
			delete(f.units, name)
			f.mu.Unlock()
			return "failed"
		}
		return "done"
	})
	return job, nil
}

func validMode(mode string) bool {
	switch mode {
	case "replace", "fail", "isolate", "ignore-dependencies", "ignore-requirements", "replace-irreversibly", "flush", "triggering", "restart-dependencies":
		return true
	}
	return false
}

// createCgroup makes dir and moves pids into it.
func createCgroup(dir string, pids []uint32) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	for _, pid := range pids {
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.FormatUint(uint64(pid), 10)), 0); err != nil {
			return fmt.Errorf("move pid %d: %w", pid, err)
		}
	}
	return nil
}

// StopUnit stops a unit; stopping a slice stops its scopes too.
func (m *managerObj) StopUnit(name, mode string) (dbus.ObjectPath, *dbus.Error) {
	f := (*Fake)(m)
	f.record(Call{Method: "StopUnit", Path: string(ManagerPath), Args: []any{name, mode}})
	if !validMode(mode) {
		return "", dbusErr(errInvalidArgs, "Job mode %s invalid.", mode)
	}
	f.mu.Lock()
	u, ok := f.units[name]
	f.mu.Unlock()
	if !ok {
		return "", dbusErr(errNoSuchUnit, "Unit %s not loaded.", name)
	}
	id, job := f.newJob()
	f.runJob(id, job, name, func() string {
		var err error
		if u.slice == "" {
			err = f.stopSlice(name)
		} else {
			err = f.stopScope(name)
		}
		if err != nil {
			f.t.Logf("fakesystemd: stop %s: %v", name, err)
			return "failed"
		}
		return "done"
	})
	return job, nil
}

// stopSlice kills and removes a slice and its scopes.
func (f *Fake) stopSlice(name string) error {
	f.mu.Lock()
	s, ok := f.units[name]
	var scopes []string
	for n, u := range f.units {
		if u.slice == name {
			scopes = append(scopes, n)
		}
	}
	f.mu.Unlock()
	if !ok {
		return nil
	}
	var errs []error
	if s.dir != "" {
		errs = append(errs, killCgroupTree(s.dir))
	}
	for _, n := range scopes {
		errs = append(errs, f.stopScope(n))
	}
	if s.dir != "" {
		if err := os.Remove(s.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	f.mu.Lock()
	delete(f.units, name)
	f.mu.Unlock()
	return errors.Join(errs...)
}

// stopScope kills and removes a scope.
func (f *Fake) stopScope(name string) error {
	f.mu.Lock()
	u, ok := f.units[name]
	f.mu.Unlock()
	if !ok {
		return nil
	}
	var errs []error
	if u.dir != "" {
		errs = append(errs, killCgroupTree(u.dir))
		if err := os.Remove(u.dir); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	f.mu.Lock()
	delete(f.units, name)
	f.mu.Unlock()
	return errors.Join(errs...)
}

// killCgroupTree kills everything in dir's tree with cgroup.kill and waits,
// up to 5s, for it to be empty.
func killCgroupTree(dir string) error {
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), []byte("1"), 0); err != nil {
		return fmt.Errorf("cgroup.kill: %w", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.events"))
		if err != nil {
			return fmt.Errorf("cgroup.events: %w", err)
		}
		if strings.Contains(string(b), "populated 0") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still populated after 5s", dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// KillUnit signals every process in the unit's cgroup. Without a
// CgroupRoot it only records the call: the fake never signals processes it
// did not put in a cgroup of its own.
func (m *managerObj) KillUnit(name, who string, signal int32) *dbus.Error {
	f := (*Fake)(m)
	f.record(Call{Method: "KillUnit", Path: string(ManagerPath), Args: []any{name, who, signal}})
	switch who {
	case "all", "main", "control":
	default:
		return dbusErr(errInvalidArgs, "Invalid who argument %s", who)
	}
	if signal < 1 || signal > 64 {
		return dbusErr(errInvalidArgs, "Signal number out of range.")
	}
	f.mu.Lock()
	u, ok := f.units[name]
	f.mu.Unlock()
	if !ok {
		return dbusErr(errNoSuchUnit, "Unit %s not loaded.", name)
	}
	if u.dir == "" {
		return nil
	}
	var dirs []string
	_ = filepath.WalkDir(u.dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(field); err == nil && pid > 0 {
				_ = syscall.Kill(pid, syscall.Signal(signal))
			}
		}
	}
	return nil
}

// unitStatus is one entry of ListUnitsByPatterns, a(ssssssouso).
type unitStatus struct {
	Name, Description, LoadState, ActiveState, SubState, Followed string
	Path                                                          dbus.ObjectPath
	JobID                                                         uint32
	JobType                                                       string
	JobPath                                                       dbus.ObjectPath
}

// ListUnitsByPatterns lists the live units whose names match one of the
// shell patterns (all when there are none). Every live unit is active, so
// states is checked only for "active".
func (m *managerObj) ListUnitsByPatterns(states, patterns []string) ([]unitStatus, *dbus.Error) {
	f := (*Fake)(m)
	f.record(Call{Method: "ListUnitsByPatterns", Path: string(ManagerPath), Args: []any{states, patterns}})
	if len(states) > 0 && !slices.Contains(states, "active") {
		return []unitStatus{}, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []unitStatus{}
	for name := range f.units {
		match := len(patterns) == 0
		for _, p := range patterns {
			if ok, _ := path.Match(p, name); ok {
				match = true
			}
		}
		if match {
			// As systemd, a unit without a Description is described by its name.
			desc, _ := f.units[name].props["Description"].(string)
			if desc == "" {
				desc = name
			}
			out = append(out, unitStatus{Name: name, Description: desc, LoadState: "loaded", ActiveState: "active", SubState: "running", Path: unitPath(name), JobPath: "/"})
		}
	}
	slices.SortFunc(out, func(a, b unitStatus) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// GetUnit returns the object path of a loaded unit.
func (m *managerObj) GetUnit(name string) (dbus.ObjectPath, *dbus.Error) {
	f := (*Fake)(m)
	f.record(Call{Method: "GetUnit", Path: string(ManagerPath), Args: []any{name}})
	f.mu.Lock()
	_, ok := f.units[name]
	f.mu.Unlock()
	if !ok {
		return "", dbusErr(errNoSuchUnit, "Unit %s not loaded.", name)
	}
	return unitPath(name), nil
}

// managerProps implements org.freedesktop.DBus.Properties on the manager.
type managerProps Fake

func (m *managerProps) managerProps(iface string) (map[string]dbus.Variant, *dbus.Error) {
	if iface != ManagerIface {
		return nil, dbusErr(errUnknownIf, "Unknown interface %s.", iface)
	}
	return map[string]dbus.Variant{"Version": dbus.MakeVariant(Version)}, nil
}

// Get returns one manager property.
func (m *managerProps) Get(iface, name string) (dbus.Variant, *dbus.Error) {
	(*Fake)(m).record(Call{Method: "Get", Path: string(ManagerPath), Args: []any{iface, name}})
	all, err := m.managerProps(iface)
	if err != nil {
		return dbus.Variant{}, err
	}
	v, ok := all[name]
	if !ok {
		return dbus.Variant{}, dbusErr(errUnknownProp, "Unknown property %s.", name)
	}
	return v, nil
}

// GetAll returns every manager property of iface.
func (m *managerProps) GetAll(iface string) (map[string]dbus.Variant, *dbus.Error) {
	(*Fake)(m).record(Call{Method: "GetAll", Path: string(ManagerPath), Args: []any{iface}})
	return m.managerProps(iface)
}

// unitProps implements org.freedesktop.DBus.Properties on unit objects.
type unitProps Fake

func (p *unitProps) unitProps(path dbus.ObjectPath, iface string) (map[string]dbus.Variant, *dbus.Error) {
	f := (*Fake)(p)
	f.mu.Lock()
	var u *unit
	for name, v := range f.units {
		if unitPath(name) == path {
			u = v
			break
		}
	}
	var cg, name, slice string
	if u != nil {
		cg, name, slice = u.cg, u.name, u.slice
	}
	f.mu.Unlock()
	if u == nil {
		return nil, dbusErr(errNoSuchUnit, "No unit at %s.", path)
	}
	typ := "org.freedesktop.systemd1.Slice"
	if strings.HasSuffix(name, ".scope") {
		typ = "org.freedesktop.systemd1.Scope"
	}
	switch iface {
	case typ:
		props := map[string]dbus.Variant{"ControlGroup": dbus.MakeVariant(cg)}
		if slice != "" {
			props["Slice"] = dbus.MakeVariant(slice)
		}
		return props, nil
	case "org.freedesktop.systemd1.Unit":
		return map[string]dbus.Variant{
			"Id":          dbus.MakeVariant(name),
			"ActiveState": dbus.MakeVariant("active"),
		}, nil
	}
	return nil, dbusErr(errUnknownIf, "Unknown interface %s.", iface)
}

// Get returns one property of a unit.
func (p *unitProps) Get(msg dbus.Message, iface, name string) (dbus.Variant, *dbus.Error) {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	(*Fake)(p).record(Call{Method: "Get", Path: string(path), Args: []any{iface, name}})
	all, err := p.unitProps(path, iface)
	if err != nil {
		return dbus.Variant{}, err
	}
	v, ok := all[name]
	if !ok {
		return dbus.Variant{}, dbusErr(errUnknownProp, "Unknown property %s.", name)
	}
	return v, nil
}

// GetAll returns every property of a unit's interface.
func (p *unitProps) GetAll(msg dbus.Message, iface string) (map[string]dbus.Variant, *dbus.Error) {
	path, _ := msg.Headers[dbus.FieldPath].Value().(dbus.ObjectPath)
	(*Fake)(p).record(Call{Method: "GetAll", Path: string(path), Args: []any{iface}})
	return p.unitProps(path, iface)
}
