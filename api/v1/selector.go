package v1

// This file holds label selectors in Kubernetes' syntax, as used by the
// labelSelector parameter of list and watch.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrBadSelector is matched (errors.Is) by every error ParseSelector
// returns.
var ErrBadSelector = errors.New("bad label selector")

// Selector decides whether a set of labels matches. It is immutable and safe
// for concurrent use.
type Selector interface {
	// Matches reports whether labels satisfy every requirement.
	Matches(labels map[string]string) bool
	// Empty reports whether the selector has no requirements (it matches
	// everything).
	Empty() bool
	// String returns the selector in canonical syntax: requirements sorted
	// by key, "=" for equality, set values sorted. ParseSelector of it
	// gives an equivalent selector.
	String() string
}

// Everything returns the selector that matches every set of labels.
func Everything() Selector { return labelSelector(nil) }

// selectorOp is a requirement's operator.
type selectorOp int

const (
	opEquals selectorOp = iota
	opNotEquals
	opIn
	opNotIn
	opExists
	opDoesNotExist
)

// requirement is one comma-separated part of a selector.
type requirement struct {
	key    string
	op     selectorOp
	values []string // sorted, deduplicated; one value for = and !=
}

func (r requirement) matches(labels map[string]string) bool {
	v, ok := labels[r.key]
	switch r.op {
	case opEquals, opIn:
		return ok && slices.Contains(r.values, v)
	case opNotEquals, opNotIn:
		return !ok || !slices.Contains(r.values, v)
	case opExists:
		return ok
	case opDoesNotExist:
		return !ok
	}
	return false
}

func (r requirement) String() string {
	switch r.op {
	case opEquals:
		return r.key + "=" + r.values[0]
	case opNotEquals:
		return r.key + "!=" + r.values[0]
	case opIn:
		return r.key + " in (" + strings.Join(r.values, ",") + ")"
	case opNotIn:
		return r.key + " notin (" + strings.Join(r.values, ",") + ")"
	case opExists:
		return r.key
	case opDoesNotExist:
		return "!" + r.key
	}
	return ""
}

// labelSelector is the AND of its requirements, sorted by key.
type labelSelector []requirement

func (s labelSelector) Matches(labels map[string]string) bool {
	for _, r := range s {
		if !r.matches(labels) {
			return false
		}
	}
	return true
}

func (s labelSelector) Empty() bool { return len(s) == 0 }

func (s labelSelector) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		parts[i] = r.String()
	}
	return strings.Join(parts, ",")
}

// ParseSelector parses a Kubernetes label selector: comma-separated
// requirements, all of which must hold:
//
//	key=value  key==value  key!=value
//	key in (v1,v2)  key notin (v1,v2)
//	key  !key
//
// Whitespace around tokens is ignored. The values of in and notin must be
// non-empty (use key= or key!= for the empty value). Keys are Kubernetes qualified names
// (an optional DNS-subdomain prefix and "/", then a name of at most 63
// characters of [A-Za-z0-9-_.] beginning and ending with an alphanumeric);
// values are empty or such a name. An empty or all-blank string gives
// Everything. Errors wrap ErrBadSelector and say what was expected where.
func ParseSelector(s string) (Selector, error) {
	p := selectorParser{in: s}
	reqs, err := p.parse()
	if err != nil {
		return nil, fmt.Errorf("%w %q: %s", ErrBadSelector, s, err)
	}
	slices.SortStableFunc(reqs, func(a, b requirement) int { return strings.Compare(a.key, b.key) })
	return labelSelector(reqs), nil
}

// selectorParser is a hand-written recursive-descent parser over in.
type selectorParser struct {
	in  string
	pos int
}

// isSpecial reports whether c ends an identifier.
func isSpecial(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\f', '\v', ',', '=', '!', '(', ')':
		return true
	}
	return false
}

func (p *selectorParser) skipSpace() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.pos++
		default:
			return
		}
	}
}

// ident reads an identifier (possibly empty) at pos.
func (p *selectorParser) ident() string {
	start := p.pos
	for p.pos < len(p.in) && !isSpecial(p.in[p.pos]) {
		p.pos++
	}
	return p.in[start:p.pos]
}

// where describes the current position for error messages.
func (p *selectorParser) where() string {
	if p.pos >= len(p.in) {
		return "at end of input"
	}
	return fmt.Sprintf("at position %d (%q)", p.pos+1, p.in[p.pos:p.pos+1])
}

func (p *selectorParser) parse() ([]requirement, error) {
	var reqs []requirement
	p.skipSpace()
	if p.pos == len(p.in) {
		return nil, nil
	}
	for {
		r, err := p.requirement()
		if err != nil {
			return nil, err
		}
		reqs = append(reqs, r)
		p.skipSpace()
		if p.pos == len(p.in) {
			return reqs, nil
		}
		if p.in[p.pos] != ',' {
			return nil, fmt.Errorf("expected \",\" or end of input %s", p.where())
		}
		p.pos++
	}
}

func (p *selectorParser) requirement() (requirement, error) {
	p.skipSpace()
	if p.pos < len(p.in) && p.in[p.pos] == '!' {
		p.pos++
		p.skipSpace()
		key, err := p.key()
		if err != nil {
			return requirement{}, err
		}
		return requirement{key: key, op: opDoesNotExist}, nil
	}
	key, err := p.key()
	if err != nil {
		return requirement{}, err
	}
	p.skipSpace()
	if p.pos == len(p.in) || p.in[p.pos] == ',' {
		return requirement{key: key, op: opExists}, nil
	}
	rest := p.in[p.pos:]
	switch {
	case strings.HasPrefix(rest, "=="):
		p.pos += 2
		return p.single(key, opEquals)
	case strings.HasPrefix(rest, "="):
		p.pos++
		return p.single(key, opEquals)
	case strings.HasPrefix(rest, "!="):
		p.pos += 2
		return p.single(key, opNotEquals)
	}
	start := p.pos
	switch word := p.ident(); word {
	case "in":
		return p.set(key, opIn)
	case "notin":
		return p.set(key, opNotIn)
	default:
		p.pos = start
		return requirement{}, fmt.Errorf("expected an operator (=, ==, !=, in, notin), \",\" or end of input after key %q %s", key, p.where())
	}
}

func (p *selectorParser) key() (string, error) {
	start := p.pos
	k := p.ident()
	if k == "" {
		return "", fmt.Errorf("expected a label key %s", p.where())
	}
	if err := validateLabelKey(k); err != nil {
		p.pos = start
		return "", fmt.Errorf("label key %q %s", k, err)
	}
	return k, nil
}

func (p *selectorParser) value() (string, error) {
	p.skipSpace()
	v := p.ident()
	if err := validateLabelValue(v); err != nil {
		return "", fmt.Errorf("label value %q %s", v, err)
	}
	return v, nil
}

func (p *selectorParser) single(key string, op selectorOp) (requirement, error) {
	if p.pos < len(p.in) && (p.in[p.pos] == '=' || p.in[p.pos] == '!') {
		return requirement{}, fmt.Errorf("unexpected %q after operator for key %q", p.in[p.pos:p.pos+1], key)
	}
	v, err := p.value()
	if err != nil {
		return requirement{}, err
	}
	return requirement{key: key, op: op, values: []string{v}}, nil
}

func (p *selectorParser) set(key string, op selectorOp) (requirement, error) {
	p.skipSpace()
	if p.pos >= len(p.in) || p.in[p.pos] != '(' {
		return requirement{}, fmt.Errorf("expected \"(\" after in/notin for key %q %s", key, p.where())
	}
	p.pos++
	var values []string
	for {
		v, err := p.value()
		if err != nil {
			return requirement{}, err
		}
		p.skipSpace()
		if p.pos >= len(p.in) {
			return requirement{}, fmt.Errorf("expected \")\" to close the values of key %q %s", key, p.where())
		}
		c := p.in[p.pos]
		if c != ',' && c != ')' {
			return requirement{}, fmt.Errorf("expected \",\" or \")\" in the values of key %q %s", key, p.where())
		}
		if v == "" {
			return requirement{}, fmt.Errorf("the values of in/notin for key %q must be non-empty label values %s", key, p.where())
		}
		values = append(values, v)
		p.pos++
		if c == ')' {
			break
		}
	}
	slices.Sort(values)
	return requirement{key: key, op: op, values: slices.Compact(values)}, nil
}

// Label syntax limits, as Kubernetes has them.
const (
	labelNameMaxLen   = 63
	labelPrefixMaxLen = 253
)

// validateLabelKey checks a qualified name: [prefix/]name.
func validateLabelKey(k string) error {
	name := k
	if i := strings.IndexByte(k, '/'); i >= 0 {
		prefix := k[:i]
		name = k[i+1:]
		if err := validateDNSSubdomain(prefix); err != nil {
			return fmt.Errorf("has a bad prefix: %s", err)
		}
	}
	if name == "" {
		return errors.New("must have a name")
	}
	if err := validateLabelName(name); err != nil {
		return err
	}
	return nil
}

// validateLabelValue checks a label value: empty, or a label name.
func validateLabelValue(v string) error {
	if v == "" {
		return nil
	}
	return validateLabelName(v)
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// validateLabelName checks at most 63 characters of [A-Za-z0-9-_.],
// beginning and ending with an alphanumeric.
func validateLabelName(n string) error {
	if len(n) > labelNameMaxLen {
		return fmt.Errorf("must be at most %d characters", labelNameMaxLen)
	}
	if !isAlnum(n[0]) || !isAlnum(n[len(n)-1]) {
		return errors.New("must begin and end with a letter or digit")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return fmt.Errorf("must consist of letters, digits, '-', '_' or '.', not %q", string(rune(c)))
		}
	}
	return nil
}

// validateDNSSubdomain checks a lower-case RFC 1123 subdomain.
func validateDNSSubdomain(s string) error {
	if s == "" {
		return errors.New("must not be empty")
	}
	if len(s) > labelPrefixMaxLen {
		return fmt.Errorf("must be at most %d characters", labelPrefixMaxLen)
	}
	for _, part := range strings.Split(s, ".") {
		if part == "" {
			return errors.New("must not have empty dot-separated parts")
		}
		lower := func(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }
		if !lower(part[0]) || !lower(part[len(part)-1]) {
			return errors.New("must be lower-case letters, digits, '-' and '.', each part beginning and ending with a letter or digit")
		}
		for i := 0; i < len(part); i++ {
			if c := part[i]; !lower(c) && c != '-' {
				return errors.New("must be lower-case letters, digits, '-' and '.', each part beginning and ending with a letter or digit")
			}
		}
	}
	return nil
}
