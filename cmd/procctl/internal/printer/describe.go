package printer

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	v1 "procstar.dev/procstar/api/v1"
)

// Describe writes the human view of p: metadata, a spec summary, status,
// conditions, times, resource usage and output lengths per fd.
func Describe(w io.Writer, p *v1.Proc, now time.Time) error {
	d := &describer{now: now}
	d.tw = tabwriter.NewWriter(&d.buf, 0, 8, 2, ' ', 0)
	d.proc(p)
	if err := d.tw.Flush(); err != nil {
		return err
	}
	lines := strings.Split(d.buf.String(), "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " ")
	}
	_, err := io.WriteString(w, strings.Join(lines, "\n"))
	return err
}

type describer struct {
	buf strings.Builder
	tw  *tabwriter.Writer
	now time.Time
}

func (d *describer) line(indent int, key, format string, args ...any) {
	pad := strings.Repeat("  ", indent)
	if key == "" {
		fmt.Fprintf(d.tw, "%s"+format+"\n", append([]any{pad}, args...)...)
		return
	}
	fmt.Fprintf(d.tw, "%s%s:\t"+format+"\n", append([]any{pad, key}, args...)...)
}

func (d *describer) section(indent int, title string) {
	d.tw.Flush()
	fmt.Fprintf(d.tw, "%s%s:\n", strings.Repeat("  ", indent), title)
}

func (d *describer) when(t *time.Time) string {
	if t == nil {
		return "<none>"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(time.RFC3339), Age(d.now.Sub(*t)))
}

func mapString(m map[string]string) string {
	if len(m) == 0 {
		return "<none>"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}

func orNone(s string) string {
	if s == "" {
		return "<none>"
	}
	return s
}

// seconds formats f seconds to the millisecond: "0.001s", "1.25s".
func seconds(f float64) string {
	return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64) + "s"
}

func (d *describer) proc(p *v1.Proc) {
	m := &p.Metadata
	d.line(0, "Name", "%s", m.Name)
	d.line(0, "Labels", "%s", mapString(m.Labels))
	d.line(0, "Annotations", "%s", mapString(m.Annotations))
	d.line(0, "UID", "%s", orNone(m.UID))
	d.line(0, "Generation", "%d", m.Generation)
	d.line(0, "Resource Version", "%s", orNone(m.ResourceVersion))
	d.line(0, "Created", "%s", d.when(m.CreationTimestamp))
	if m.DeletionTimestamp != nil {
		d.line(0, "Deletion Requested", "%s", d.when(m.DeletionTimestamp))
	}
	d.spec(&p.Spec)
	d.status(&p.Status)
}

func (d *describer) spec(s *v1.ProcSpec) {
	d.section(0, "Spec")
	d.line(1, "Command", "%s", Command(s))
	if s.Exe != "" {
		d.line(1, "Exe", "%s", s.Exe)
	}
	if s.PathSearch {
		d.line(1, "Path Search", "true")
	}
	d.line(1, "Cwd", "%s", orNone(s.Cwd))
	if s.Umask != nil {
		d.line(1, "Umask", "%s", *s.Umask)
	}
	d.line(1, "Env", "%s", envSummary(&s.Env))
	if t := s.Timeout; t != nil {
		sig := string(t.Signal)
		if sig == "" {
			sig = string(v1.DefaultTimeoutSignal)
		}
		d.line(1, "Timeout", "%s, then %s, grace %s", seconds(t.Seconds), sig, t.GracePeriod())
	}
	if r := s.Resources; r != nil {
		d.line(1, "Resources", "%s", resourcesSummary(r))
	}
	if s.KillTree != nil && !*s.KillTree {
		d.line(1, "Kill Tree", "false")
	}
	if s.PerfCounters {
		d.line(1, "Perf Counters", "true")
	}
	if pl := s.Placement; pl != nil {
		d.line(1, "Placement", "group=%s selector=%s", orNone(pl.Group), mapString(pl.Selector))
	}
	if len(s.Fds) > 0 {
		d.section(1, "Fds")
		for i := range s.Fds {
			d.line(2, string(s.Fds[i].Fd.Canonical()), "%s", fdSummary(&s.Fds[i]))
		}
	}
}

func envSummary(e *v1.EnvSpec) string {
	var parts []string
	switch {
	case e.Inherit == nil || (e.Inherit.Names == nil && e.Inherit.All):
		parts = append(parts, "inherit all")
	case e.Inherit.Names != nil:
		parts = append(parts, "inherit "+strings.Join(e.Inherit.Names, ","))
	default:
		parts = append(parts, "inherit none")
	}
	if len(e.Vars) > 0 {
		keys := make([]string, 0, len(e.Vars))
		for k, v := range e.Vars {
			if v == nil {
				k = "-" + k
			}
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts = append(parts, "set "+strings.Join(keys, ","))
	}
	return strings.Join(parts, "; ")
}

func fdSummary(f *v1.FdSpec) string {
	switch {
	case f.Inherit != nil:
		return "inherit"
	case f.Close != nil:
		return "close"
	case f.Null != nil:
		return strings.TrimSpace("null " + string(f.Null.Flags))
	case f.File != nil:
		return strings.TrimSpace("file " + f.File.Path + " " + string(f.File.Flags))
	case f.Dup != nil:
		return "dup " + string(v1.FdNameOf(f.Dup.Fd))
	case f.Capture != nil:
		c := f.Capture
		s := "capture"
		for _, x := range []string{string(c.Mode), string(c.Encoding), c.Path} {
			if x != "" {
				s += " " + x
			}
		}
		if c.Attached != nil && !*c.Attached {
			s += " detached"
		}
		if c.Limit != nil {
			s += fmt.Sprintf(" head=%d tail=%d", c.Limit.Head, c.Limit.Tail)
		}
		return s
	case f.PipeWrite != nil:
		return "pipe write"
	case f.PipeRead != nil:
		return "pipe read from " + f.PipeRead.ProcID + " fd " + string(f.PipeRead.Fd)
	}
	return "<none>"
}

func resourcesSummary(r *v1.Resources) string {
	var parts []string
	q := func(name string, v *v1.Quantity) {
		if v != nil {
			parts = append(parts, name+"="+string(*v))
		}
	}
	i := func(name string, v *int64) {
		if v != nil {
			parts = append(parts, name+"="+strconv.FormatInt(*v, 10))
		}
	}
	q("memoryMax", r.MemoryMax)
	q("memoryHigh", r.MemoryHigh)
	q("memorySwapMax", r.MemorySwapMax)
	i("tasksMax", r.TasksMax)
	q("cpuMax", r.CPUMax)
	i("cpuWeight", r.CPUWeight)
	if len(parts) == 0 {
		return "<none>"
	}
	return strings.Join(parts, " ")
}

func (d *describer) status(s *v1.ProcStatus) {
	d.section(0, "Status")
	ph := string(s.Phase)
	d.line(1, "Phase", "%s", orNone(ph))
	d.line(1, "PID", "%s", pid(s.Pid))
	d.line(1, "Exit", "%s", Exit(s))
	if s.WaitStatus != nil {
		d.line(1, "Wait Status", "%d", *s.WaitStatus)
	}
	if s.CoreDump {
		d.line(1, "Core Dumped", "true")
	}
	d.line(1, "Restarts", "%d", s.RestartCount)
	if s.ObservedGeneration != 0 {
		d.line(1, "Observed Generation", "%d", s.ObservedGeneration)
	}
	if a := s.Agent; a != nil {
		d.line(1, "Agent", "host=%s group=%s conn=%s", orNone(a.Hostname), orNone(a.GroupID), orNone(a.ConnID))
	}
	if s.Cwd != "" {
		d.line(1, "Cwd", "%s", s.Cwd)
	}
	if r := s.Resources; r != nil {
		d.line(1, "Resource Control", "%s", resourceControl(r))
		if r.Message != "" {
			d.line(1, "", "\t%s", oneLine(r.Message))
		}
	}
	for i, e := range s.Errors {
		key := ""
		if i == 0 {
			key = "Errors"
		}
		if key == "" {
			d.line(1, "", "\t%s", oneLine(e))
		} else {
			d.line(1, key, "%s", oneLine(e))
		}
	}
	d.conditions(s.Conditions)
	d.times(s.Times)
	d.usage(s)
	d.fds(s.Fds)
}

func (d *describer) conditions(cs []v1.Condition) {
	if len(cs) == 0 {
		d.tw.Flush()
		d.line(0, "Conditions", "<none>")
		return
	}
	d.section(0, "Conditions")
	d.line(1, "", "TYPE\tSTATUS\tREASON\tAGE\tMESSAGE")
	for _, c := range cs {
		a := "<unknown>"
		if !c.LastTransitionTime.IsZero() {
			a = Age(d.now.Sub(c.LastTransitionTime))
		}
		d.line(1, "", "%s\t%s\t%s\t%s\t%s", c.Type, c.Status, orNone(c.Reason), a, oneLine(c.Message))
	}
}

func (d *describer) times(t *v1.ProcTimes) {
	if t == nil {
		d.tw.Flush()
		d.line(0, "Times", "<none>")
		return
	}
	d.section(0, "Times")
	d.line(1, "Start", "%s", d.when(t.Start))
	d.line(1, "Stop", "%s", d.when(t.Stop))
	d.line(1, "Elapsed", "%s", seconds(t.Elapsed))
}

// Bytes formats n bytes for people: "512 B", "3.2 MiB".
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func (d *describer) usage(s *v1.ProcStatus) {
	r := s.Rusage
	if r == nil && s.CgroupAccounting == nil {
		d.tw.Flush()
		d.line(0, "Resource Usage", "<none>")
		return
	}
	d.section(0, "Resource Usage")
	if r != nil {
		d.line(1, "User CPU", "%s", seconds(r.Utime))
		d.line(1, "System CPU", "%s", seconds(r.Stime))
		d.line(1, "Max RSS", "%s", Bytes(r.Maxrss))
		d.line(1, "Page Faults", "%d minor, %d major", r.Minflt, r.Majflt)
		d.line(1, "Block I/O", "%d in, %d out", r.Inblock, r.Oublock)
		d.line(1, "Context Switches", "%d voluntary, %d involuntary", r.Nvcsw, r.Nivcsw)
	}
	if a := s.CgroupAccounting; a != nil {
		if a.CPUStat != nil {
			d.line(1, "Cgroup CPU", "%s (user %s, system %s)", usec(a.CPUStat.UsageUsec), usec(a.CPUStat.UserUsec), usec(a.CPUStat.SystemUsec))
		}
		if a.Memory != nil {
			d.line(1, "Cgroup Memory Peak", "%s (swap %s)", Bytes(int64(a.Memory.Peak)), Bytes(int64(a.Memory.SwapPeak)))
		}
		if a.Pids != nil {
			d.line(1, "Cgroup Tasks Peak", "%d", a.Pids.Peak)
		}
		if a.Memory != nil && a.Memory.OOMKills > 0 {
			d.line(1, "Cgroup OOM Kills", "%d", a.Memory.OOMKills)
		}
	}
	if pc := s.PerfCounters; pc != nil {
		d.line(1, "Perf Counters", "%s", perfSummary(pc))
	}
}

// resourceControl says how a run's resources are controlled, in one line.
func resourceControl(r *v1.ResourceStatus) string {
	var b strings.Builder
	b.WriteString(r.Backend)
	switch {
	case r.Unit != "" && r.Cgroup != "":
		b.WriteString(" " + r.Unit + " (" + r.Cgroup + ")")
	case r.Unit != "":
		b.WriteString(" " + r.Unit)
	case r.Cgroup != "":
		b.WriteString(" " + r.Cgroup)
	}
	b.WriteString(", tree kill " + orNone(r.TreeKill))
	if !r.Enforced {
		b.WriteString(", limits not enforced")
	}
	return b.String()
}

// perfSummary lists the counts, then what could not be counted.
func perfSummary(pc *v1.PerfCounters) string {
	var parts []string
	for _, c := range []struct {
		name string
		v    *uint64
		f    func(uint64) string
	}{
		{"instructions", pc.Instructions, func(n uint64) string { return strconv.FormatUint(n, 10) }},
		{"cycles", pc.Cycles, func(n uint64) string { return strconv.FormatUint(n, 10) }},
		{"task-clock", pc.TaskClockNs, func(n uint64) string { return seconds(float64(n) / 1e9) }},
	} {
		if c.v != nil {
			parts = append(parts, c.name+" "+c.f(*c.v))
		}
	}
	if len(pc.Unsupported) > 0 {
		names := make([]string, 0, len(pc.Unsupported))
		for n := range pc.Unsupported {
			names = append(names, n)
		}
		sort.Strings(names)
		parts = append(parts, "not counted: "+strings.Join(names, ", "))
	}
	return orNone(strings.Join(parts, "; "))
}

func usec(u uint64) string {
	return seconds(float64(u) / 1e6)
}

func (d *describer) fds(fds map[string]v1.FdStatus) {
	if len(fds) == 0 {
		d.tw.Flush()
		d.line(0, "Output", "<none>")
		return
	}
	d.section(0, "Output")
	d.line(1, "", "FD\tLENGTH\tENCODING\tMODE\tNOTES")
	names := make([]string, 0, len(fds))
	for n := range fds {
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		a, _ := v1.FdName(names[i]).Number()
		b, _ := v1.FdName(names[j]).Number()
		return a < b || a == b && names[i] < names[j]
	})
	for _, n := range names {
		f := fds[n]
		var notes []string
		if f.Path != "" {
			notes = append(notes, "path="+f.Path)
		}
		if f.Dropped > 0 {
			notes = append(notes, fmt.Sprintf("dropped=%d", f.Dropped))
		}
		if f.DrainTimedOut {
			notes = append(notes, "drain timed out")
		}
		d.line(1, "", "%s\t%d\t%s\t%s\t%s", n, f.Length, orNone(string(f.Encoding)), orNone(string(f.Mode)), strings.Join(notes, " "))
	}
}
