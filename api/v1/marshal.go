package v1

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
)

// jsonNull is the JSON literal null.
var jsonNull = []byte("null")

// MarshalJSON writes the boolean form when Names is nil and the array form
// otherwise, so that what was read is written back the same way.
func (e EnvInherit) MarshalJSON() ([]byte, error) {
	if e.Names != nil {
		return json.Marshal(e.Names)
	}
	return json.Marshal(e.All)
}

// UnmarshalJSON reads a boolean or an array of strings. A null leaves e
// unchanged.
func (e *EnvInherit) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, jsonNull) {
		return nil
	}
	var b bool
	if err := json.Unmarshal(data, &b); err == nil {
		*e = EnvInherit{All: b}
		return nil
	}
	var names []string
	if err := json.Unmarshal(data, &names); err != nil {
		return errors.New("must be true, false or a list of names")
	}
	if names == nil {
		names = []string{}
	}
	*e = EnvInherit{Names: names}
	return nil
}

// UnmarshalJSON reads a string or an integer; an integer is kept as its
// decimal string, so the value is always written back as a string.
func (s *Signal) UnmarshalJSON(data []byte) error {
	v, err := stringOrInteger(data, "a signal name or number")
	if err != nil {
		return err
	}
	if v != nil {
		*s = Signal(*v)
	}
	return nil
}

// UnmarshalJSON reads a string or an integer; an integer is kept as its
// decimal string ("3").
func (n *FdName) UnmarshalJSON(data []byte) error {
	v, err := stringOrInteger(data, "an fd name or number")
	if err != nil {
		return err
	}
	if v != nil {
		*n = FdName(*v)
	}
	return nil
}

// UnmarshalJSON reads a string or a number; a number is kept as its JSON
// text, so the value is always written back as a string.
func (q *Quantity) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, jsonNull) {
		return nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		*q = Quantity(s)
		return nil
	}
	var num json.Number
	if err := json.Unmarshal(data, &num); err != nil {
		return errors.New("must be a quantity: a string or a number")
	}
	*q = Quantity(num.String())
	return nil
}

// stringOrInteger decodes a JSON string or integer into its string form. It
// returns nil for null.
func stringOrInteger(data []byte, what string) (*string, error) {
	data = bytes.TrimSpace(data)
	if bytes.Equal(data, jsonNull) {
		return nil, nil
	}
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return nil, err
		}
		return &s, nil
	}
	var num json.Number
	if err := json.Unmarshal(data, &num); err != nil {
		return nil, fmt.Errorf("must be %s", what)
	}
	s := num.String()
	if _, err := strconv.ParseInt(s, 10, 64); err != nil {
		return nil, fmt.Errorf("must be %s, not %s", what, s)
	}
	return &s, nil
}

// IsZero reports whether e says nothing, so that an empty env (or one with
// an empty vars map) is left out of JSON and YAML.
func (e EnvSpec) IsZero() bool {
	return e.Inherit == nil && len(e.Vars) == 0
}

// IsZero reports whether every field of s is zero or empty, so that an
// empty status is left out of JSON and YAML.
func (s ProcStatus) IsZero() bool {
	v := reflect.ValueOf(s)
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Slice, reflect.Map:
			if f.Len() != 0 {
				return false
			}
		default:
			if !f.IsZero() {
				return false
			}
		}
	}
	return true
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
