// Package printer is procctl's presentation of Procs: kubectl-like tables
// (plain and wide), YAML, JSON, names, JSONPath templates and the describe
// view, with kubectl's age format.
//
// It writes to an io.Writer and takes the current time as an argument, so
// that its output is a pure function of its input (golden-tested). It must
// not talk to a server or read flags.
package printer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"k8s.io/client-go/util/jsonpath"
	"sigs.k8s.io/yaml"

	v1 "procstar.dev/procstar/api/v1"
)

// ErrBadFormat is matched by every error ParseFormat returns.
var ErrBadFormat = errors.New("bad output format")

// Kind is an output kind.
type Kind string

// Output kinds.
const (
	KindTable    Kind = ""
	KindWide     Kind = "wide"
	KindYAML     Kind = "yaml"
	KindJSON     Kind = "json"
	KindName     Kind = "name"
	KindJSONPath Kind = "jsonpath"
)

// Format is a parsed -o value.
type Format struct {
	Kind Kind
	// Template is the JSONPath template of KindJSONPath.
	Template string
	jp       *jsonpath.JSONPath
}

// ParseFormat reads an -o value: "", wide, yaml, json, name or
// jsonpath=TEMPLATE.
func ParseFormat(s string) (Format, error) {
	switch Kind(s) {
	case KindTable, KindWide, KindYAML, KindJSON, KindName:
		return Format{Kind: Kind(s)}, nil
	}
	if tmpl, ok := strings.CutPrefix(s, "jsonpath="); ok {
		tmpl = strings.Trim(tmpl, "'")
		if tmpl == "" {
			return Format{}, fmt.Errorf("%w: jsonpath= needs a template, e.g. jsonpath='{.status.phase}'", ErrBadFormat)
		}
		jp := jsonpath.New("output").AllowMissingKeys(true)
		if err := jp.Parse(tmpl); err != nil {
			return Format{}, fmt.Errorf("%w: jsonpath template %q: %s", ErrBadFormat, tmpl, oneLine(err.Error()))
		}
		return Format{Kind: KindJSONPath, Template: tmpl, jp: jp}, nil
	}
	return Format{}, fmt.Errorf("%w %q: use wide, yaml, json, name or jsonpath=TEMPLATE", ErrBadFormat, s)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// IsTable reports whether f is the plain or wide table.
func (f Format) IsTable() bool { return f.Kind == KindTable || f.Kind == KindWide }

// PrintList writes procs in format f. With single, one proc is written as
// an object rather than a list (yaml, json, jsonpath).
func PrintList(w io.Writer, f Format, procs []v1.Proc, single bool, now time.Time) error {
	switch f.Kind {
	case KindTable, KindWide:
		if len(procs) == 0 {
			return nil
		}
		t := NewTable(w, f.Kind == KindWide, HasAgent(procs))
		t.Header()
		for i := range procs {
			t.Row(&procs[i], now)
		}
		return t.Flush()
	case KindName:
		for i := range procs {
			if _, err := fmt.Fprintf(w, "proc/%s\n", procs[i].Metadata.Name); err != nil {
				return err
			}
		}
		return nil
	}
	var obj any
	if single && len(procs) == 1 {
		obj = withKind(&procs[0])
	} else {
		items := make([]v1.Proc, len(procs))
		for i := range procs {
			items[i] = *withKind(&procs[i])
		}
		obj = &v1.ProcList{TypeMeta: v1.TypeMeta{APIVersion: v1.APIVersion, Kind: v1.KindProcList}, Items: items}
	}
	return PrintObject(w, f, obj)
}

func withKind(p *v1.Proc) *v1.Proc {
	q := *p
	if q.APIVersion == "" {
		q.APIVersion = v1.APIVersion
	}
	if q.Kind == "" {
		q.Kind = v1.KindProc
	}
	return &q
}

// PrintObject writes one object (a Proc, ProcList or, but for name,
// WatchEvent) in yaml, json, jsonpath or name form. A watch prints each event's proc with it; YAML
// documents are then separated by "---".
func PrintObject(w io.Writer, f Format, obj any) error {
	if p, ok := obj.(*v1.Proc); ok {
		obj = withKind(p)
	}
	switch f.Kind {
	case KindYAML:
		b, err := yaml.Marshal(obj)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case KindJSON:
		b, err := json.MarshalIndent(obj, "", "    ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case KindJSONPath:
		b, err := json.Marshal(obj)
		if err != nil {
			return err
		}
		var data any
		if err := json.Unmarshal(b, &data); err != nil {
			return err
		}
		var buf bytes.Buffer
		if err := f.jp.Execute(&buf, data); err != nil {
			return fmt.Errorf("jsonpath %s: %s", f.Template, oneLine(err.Error()))
		}
		_, err = w.Write(buf.Bytes())
		return err
	case KindName:
		if p, ok := obj.(*v1.Proc); ok {
			_, err := fmt.Fprintf(w, "proc/%s\n", p.Metadata.Name)
			return err
		}
		if l, ok := obj.(*v1.ProcList); ok {
			return PrintList(w, f, l.Items, false, time.Time{})
		}
	}
	return fmt.Errorf("%w: %q cannot print an object", ErrBadFormat, f.Kind)
}

// PrintEvent writes one watch event in yaml, json or jsonpath form as the
// object {type, object}, as kubectl's --output-watch-events does, and in
// name form as "TYPE proc/NAME".
func PrintEvent(w io.Writer, f Format, typ v1.WatchEventType, p *v1.Proc) error {
	if f.Kind == KindName {
		_, err := fmt.Fprintf(w, "%s proc/%s\n", typ, p.Metadata.Name)
		return err
	}
	return PrintObject(w, f, &v1.WatchEvent{Type: typ, Object: *withKind(p)})
}

// HasAgent reports whether any proc has status.agent, which adds the AGENT
// column.
func HasAgent(procs []v1.Proc) bool {
	for i := range procs {
		if procs[i].Status.Agent != nil {
			return true
		}
	}
	return false
}

// Table writes a kubectl-like table. Column widths only grow, so rows
// printed later (a watch) line up with the header when they fit.
type Table struct {
	w      io.Writer
	wide   bool
	agent  bool
	events bool
	widths []int
	rows   [][]string
}

// NewTable returns a table; wide adds columns, agent adds AGENT (always
// there when wide).
func NewTable(w io.Writer, wide, agent bool) *Table {
	return &Table{w: w, wide: wide, agent: agent || wide}
}

// WithEvents adds an EVENT column in front, for a watch's event types
// (kubectl's --output-watch-events); rows then come from EventRow.
func (t *Table) WithEvents() *Table {
	t.events = true
	return t
}

func (t *Table) columns() []string {
	var c []string
	if t.events {
		c = append(c, "EVENT")
	}
	c = append(c, "NAME", "PHASE", "PID", "EXIT", "AGE")
	if t.agent {
		c = append(c, "AGENT")
	}
	if t.wide {
		c = append(c, "RESTARTS", "REASON", "COMMAND")
	}
	return c
}

// Header queues the header row.
func (t *Table) Header() { t.add(t.columns()) }

// Row queues the row of p.
func (t *Table) Row(p *v1.Proc, now time.Time) { t.EventRow("", p, now) }

// EventRow queues the row of p, with typ in the EVENT column if the table
// has one.
func (t *Table) EventRow(typ v1.WatchEventType, p *v1.Proc, now time.Time) {
	s := &p.Status
	var row []string
	if t.events {
		row = append(row, string(typ))
	}
	row = append(row, p.Metadata.Name, Phase(p), pid(s.Pid), Exit(s), age(p.Metadata.CreationTimestamp, now))
	if t.agent {
		row = append(row, agent(s.Agent))
	}
	if t.wide {
		row = append(row, strconv.Itoa(int(s.RestartCount)), Reason(s), truncate(Command(&p.Spec), 60))
	}
	t.add(row)
}

func (t *Table) add(row []string) {
	for i, c := range row {
		c = cell(c)
		row[i] = c
		n := utf8.RuneCountInString(c)
		if i >= len(t.widths) {
			t.widths = append(t.widths, n)
		} else if n > t.widths[i] {
			t.widths[i] = n
		}
	}
	t.rows = append(t.rows, row)
}

// Flush writes the queued rows, padded to the column widths, and empties
// the queue.
func (t *Table) Flush() error {
	var b strings.Builder
	for _, row := range t.rows {
		for i, c := range row {
			b.WriteString(c)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", t.widths[i]-utf8.RuneCountInString(c)+3))
			}
		}
		b.WriteByte('\n')
	}
	t.rows = t.rows[:0]
	_, err := io.WriteString(t.w, b.String())
	return err
}

// Phase is the PHASE column: status.phase, or Terminating once deletion
// has been asked for and the proc has not ended.
func Phase(p *v1.Proc) string {
	ph := p.Status.Phase
	if p.Metadata.DeletionTimestamp != nil && !Terminal(ph) {
		return "Terminating"
	}
	if ph == "" {
		return "<none>"
	}
	return string(ph)
}

// Terminal reports whether a proc in phase ph has ended for good.
func Terminal(ph v1.ProcPhase) bool {
	return ph == v1.PhaseSucceeded || ph == v1.PhaseFailed || ph == v1.PhaseError
}

func pid(n int) string {
	if n == 0 {
		return "<none>"
	}
	return strconv.Itoa(n)
}

// Exit is the EXIT column: the exit code, else the signal's name.
func Exit(s *v1.ProcStatus) string {
	switch {
	case s.ExitCode != nil:
		return strconv.Itoa(*s.ExitCode)
	case s.Signal != "":
		return s.Signal
	}
	return "<none>"
}

func agent(a *v1.AgentRef) string {
	switch {
	case a == nil:
		return "<none>"
	case a.Hostname != "":
		return a.Hostname
	case a.ConnID != "":
		return a.ConnID
	case a.GroupID != "":
		return a.GroupID
	}
	return "<none>"
}

// Reason is the reason of the Terminated condition when it is True, else
// of the Started condition, else "<none>".
func Reason(s *v1.ProcStatus) string {
	if c := v1.FindCondition(s.Conditions, v1.ConditionTerminated); c != nil && c.Status == v1.ConditionTrue && c.Reason != "" {
		return c.Reason
	}
	if c := v1.FindCondition(s.Conditions, v1.ConditionStarted); c != nil && c.Reason != "" {
		return c.Reason
	}
	return "<none>"
}

// Command is the argv, shell-quoted where needed, or the exe when argv is
// empty.
func Command(s *v1.ProcSpec) string {
	if len(s.Argv) == 0 {
		return quote(s.Exe)
	}
	parts := make([]string, len(s.Argv))
	for i, a := range s.Argv {
		parts[i] = quote(a)
	}
	return strings.Join(parts, " ")
}

func quote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=:,+@%", r))
	}) < 0 {
		return s
	}
	if needsEscape(s) {
		return ansiCQuote(s)
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// isControl reports whether r would break a line or drive the terminal:
// C0 and C1 controls, DEL and the Unicode line and paragraph separators.
func isControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// needsEscape reports whether s has a control character or is not UTF-8.
func needsEscape(s string) bool {
	return !utf8.ValidString(s) || strings.IndexFunc(s, isControl) >= 0
}

// escapeTo writes r as an escape: \n, \t and the like, else \xHH or
// \uHHHH.
func escapeTo(b *strings.Builder, r rune) {
	switch r {
	case '\a':
		b.WriteString(`\a`)
	case '\b':
		b.WriteString(`\b`)
	case '\f':
		b.WriteString(`\f`)
	case '\n':
		b.WriteString(`\n`)
	case '\r':
		b.WriteString(`\r`)
	case '\t':
		b.WriteString(`\t`)
	case '\v':
		b.WriteString(`\v`)
	default:
		if r < 0x80 {
			fmt.Fprintf(b, `\x%02x`, r)
		} else {
			fmt.Fprintf(b, `\u%04x`, r)
		}
	}
}

// cell keeps a table cell on one line: control characters become escapes
// (a newline "\n"), and bytes that are not UTF-8 "\xHH". Anything else is
// left as it is.
func cell(s string) string {
	if !needsEscape(s) {
		return s
	}
	return escape(s, false)
}

// ansiCQuote quotes s the way bash's $'…' reads it back, for an argument
// with control characters or bytes that are not UTF-8.
func ansiCQuote(s string) string {
	return "$'" + escape(s, true) + "'"
}

// escape writes control characters of s as escapes and bytes that are not
// UTF-8 as \xHH; inQuote also escapes the backslash and the single quote,
// for $'…'.
func escape(s string, inQuote bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case inQuote && (r == '\\' || r == '\''):
			b.WriteByte('\\')
			b.WriteRune(r)
		case isControl(r):
			escapeTo(&b, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func age(t *time.Time, now time.Time) string {
	if t == nil {
		return "<unknown>"
	}
	return Age(now.Sub(*t))
}

// Age formats d the way kubectl's AGE column does: "5s", "3m12s", "2d".
func Age(d time.Duration) string {
	if d < -time.Second {
		return "<invalid>"
	}
	if d < 0 {
		return "0s"
	}
	if s := int(d.Round(time.Second) / time.Second); s < 60*2 {
		return fmt.Sprintf("%ds", s)
	}
	m := int(d / time.Minute)
	if m < 10 {
		if s := int(d/time.Second) % 60; s != 0 {
			return fmt.Sprintf("%dm%ds", m, s)
		}
		return fmt.Sprintf("%dm", m)
	}
	if m < 60*3 {
		return fmt.Sprintf("%dm", m)
	}
	h := int(d / time.Hour)
	if h < 8 {
		if m := m % 60; m != 0 {
			return fmt.Sprintf("%dh%dm", h, m)
		}
		return fmt.Sprintf("%dh", h)
	}
	if h < 48 {
		return fmt.Sprintf("%dh", h)
	}
	if h < 24*8 {
		if hh := h % 24; hh != 0 {
			return fmt.Sprintf("%dd%dh", h/24, hh)
		}
		return fmt.Sprintf("%dd", h/24)
	}
	if h < 24*365*2 {
		return fmt.Sprintf("%dd", h/24)
	}
	if h < 24*365*8 {
		if dd := (h / 24) % 365; dd != 0 {
			return fmt.Sprintf("%dy%dd", h/24/365, dd)
		}
		return fmt.Sprintf("%dy", h/24/365)
	}
	return fmt.Sprintf("%dy", h/24/365)
}
