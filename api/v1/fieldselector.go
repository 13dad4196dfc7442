package v1

// This file holds field selectors in Kubernetes' syntax, as used by the
// fieldSelector parameter of list and watch.

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrBadFieldSelector is matched (errors.Is) by every error
// ParseFieldSelector returns.
var ErrBadFieldSelector = errors.New("bad field selector")

// selectableFields are the fields a field selector may test, with the
// value each reads from a Proc.
var selectableFields = map[string]func(p *Proc) string{
	"metadata.name":      func(p *Proc) string { return p.Metadata.Name },
	"metadata.namespace": func(p *Proc) string { return p.Metadata.Namespace },
	"status.phase":       func(p *Proc) string { return string(p.Status.Phase) },
}

// fieldRequirement is one comma-separated term of a field selector.
type fieldRequirement struct {
	field string
	get   func(p *Proc) string
	not   bool // != rather than =
	value string
}

// FieldSelector decides whether a Proc's fields match: the AND of its
// terms. The zero value matches every Proc. It is immutable and safe for
// concurrent use.
type FieldSelector struct {
	reqs []fieldRequirement // sorted by field, then value
}

// Matches reports whether p satisfies every term.
func (s FieldSelector) Matches(p *Proc) bool {
	for _, r := range s.reqs {
		if (r.get(p) == r.value) == r.not {
			return false
		}
	}
	return true
}

// Empty reports whether the selector has no terms (it matches every Proc).
func (s FieldSelector) Empty() bool { return len(s.reqs) == 0 }

// String returns the selector in canonical syntax: terms sorted by field
// then value, "=" for equality, with ",", "=", "!" and "\" in values
// escaped by a backslash. ParseFieldSelector of it gives an equal selector.
func (s FieldSelector) String() string {
	parts := make([]string, len(s.reqs))
	for i, r := range s.reqs {
		op := "="
		if r.not {
			op = "!="
		}
		parts[i] = r.field + op + escapeFieldValue(r.value)
	}
	return strings.Join(parts, ",")
}

func escapeFieldValue(v string) string {
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\', ',', '=', '!':
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// ParseFieldSelector parses a Kubernetes field selector: comma-separated
// terms, all of which must hold, each "field=value", "field==value" or
// "field!=value", on metadata.name, metadata.namespace or status.phase. A
// backslash escapes the next character of a value (for a literal ",",
// "=", "!" or "\"). Whitespace around a field is ignored; a value is
// taken as it is.
// An empty or all-blank string gives the selector that matches every
// Proc. Errors wrap ErrBadFieldSelector; an unknown field is reported as
// Kubernetes does, "field label not supported: FIELD".
func ParseFieldSelector(s string) (FieldSelector, error) {
	if strings.TrimSpace(s) == "" {
		return FieldSelector{}, nil
	}
	var reqs []fieldRequirement
	for _, term := range splitUnescaped(s, ',') {
		r, err := parseFieldTerm(term)
		if err != nil {
			return FieldSelector{}, fmt.Errorf("%w %q: %s", ErrBadFieldSelector, s, err)
		}
		reqs = append(reqs, r)
	}
	slices.SortStableFunc(reqs, func(a, b fieldRequirement) int {
		if c := strings.Compare(a.field, b.field); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	return FieldSelector{reqs: reqs}, nil
}

func parseFieldTerm(term string) (fieldRequirement, error) {
	var r fieldRequirement
	i := indexUnescaped(term, '=')
	if i < 0 {
		return r, fmt.Errorf("invalid term %q: expected field=value, field==value or field!=value", term)
	}
	field, value := term[:i], term[i+1:]
	switch {
	case strings.HasSuffix(field, "!"):
		r.not = true
		field = field[:len(field)-1]
	case strings.HasPrefix(value, "="):
		value = value[1:]
	}
	r.field = strings.TrimSpace(field)
	if r.field == "" {
		return r, fmt.Errorf("invalid term %q: no field", term)
	}
	r.get = selectableFields[r.field]
	if r.get == nil {
		return r, fmt.Errorf("field label not supported: %s", r.field)
	}
	v, err := unescapeFieldValue(value)
	if err != nil {
		return r, fmt.Errorf("invalid term %q: %s", term, err)
	}
	r.value = v
	return r, nil
}

// splitUnescaped splits s at every sep not preceded by an escaping
// backslash.
func splitUnescaped(s string, sep byte) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// indexUnescaped is the index of the first sep in s not preceded by an
// escaping backslash, or -1.
func indexUnescaped(s string, sep byte) int {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case sep:
			return i
		}
	}
	return -1
}

// unescapeFieldValue resolves a value's escapes; an unescaped "=" is an
// error, as in Kubernetes.
func unescapeFieldValue(v string) (string, error) {
	if !strings.ContainsAny(v, `\=`) {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '=' {
			return "", errors.New("an \"=\" in a value must be escaped as \\=")
		}
		if c == '\\' {
			i++
			if i == len(v) {
				return "", errors.New("a trailing backslash escapes nothing")
			}
			switch v[i] {
			case '\\', ',', '=', '!':
			default:
				return "", fmt.Errorf("%q is not an escape (use \\\\, \\,, \\= or \\!)", v[i-1:i+1])
			}
			c = v[i]
		}
		b.WriteByte(c)
	}
	return b.String(), nil
}
