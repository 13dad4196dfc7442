package wire

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestCheckFds: the first failure of a batch, in procstar's order and
// words (reference §2.4), with no field path.
func TestCheckFds(t *testing.T) {
	for _, tc := range []struct {
		name, specs, want string
	}{
		{"none", `{}`, ""},
		{"fine", `{"w":{"fds":[["stdout","pipe-write"],["stderr",{"dup":{"fd":1}}]]},"r":{"fds":[["stdin",{"pipe-read":{"proc_id":"w","fd":"1"}}]]}}`, ""},
		{"numbers and signs parse", `{"a":{"fds":[["+7","close"],["-1","close"],["2147483647","close"]]}}`, ""},
		{"bad fd", `{"a":{"fds":[["stdpot",{"null":{}}]]}}`, "bad fd: stdpot"},
		{"fd out of C int", `{"a":{"fds":[["2147483648","close"]]}}`, "bad fd: 2147483648"},
		{"empty fd name", `{"a":{"fds":[["","close"]]}}`, "bad fd: "},
		{"duplicate as written", `{"a":{"fds":[["stdout","close"],["1","close"]]}}`, "duplicate fd: 1"},
		{"duplicate number spellings", `{"a":{"fds":[["+3","close"],["3","close"]]}}`, "duplicate fd: 3"},
		{"same fd in two procs", `{"a":{"fds":[["1","close"]]},"b":{"fds":[["1","close"]]}}`, ""},
		{"first in list order", `{"a":{"fds":[["x","close"],["y","close"]]}}`, "bad fd: x"},
		{"first in proc order", `{"b":{"fds":[["x","close"]]},"a":{"fds":[["0","close"],["stdin","close"]]}}`, "duplicate fd: stdin"},
		{"names before pipes", `{"a":{"fds":[["stdin",{"pipe-read":{"proc_id":"z","fd":"1"}}]]},"b":{"fds":[["q","close"]]}}`, "bad fd: q"},
		{"bad pipe-read fd", `{"a":{"fds":[["stdin",{"pipe-read":{"proc_id":"b","fd":"bogus"}}]]}}`, "bad fd: bogus"},
		{"unmatched read", `{"a":{"fds":[["stdin",{"pipe-read":{"proc_id":"b","fd":"stdout"}}]]}}`, "unmatched read pipe: b stdout"},
		{"read of a non-pipe fd", `{"a":{"fds":[["stdin",{"pipe-read":{"proc_id":"b","fd":"stdout"}}]]},"b":{"fds":[["stdout","close"]]}}`, "unmatched read pipe: b stdout"},
		{"second reader", `{"w":{"fds":[["stdout","pipe-write"]]},"a":{"fds":[["stdin",{"pipe-read":{"proc_id":"w","fd":"stdout"}}]]},"b":{"fds":[["stdin",{"pipe-read":{"proc_id":"w","fd":"1"}}]]}}`, "unmatched read pipe: w 1"},
		{"reads before writes", `{"a":{"fds":[["stdout","pipe-write"]]},"b":{"fds":[["stdin",{"pipe-read":{"proc_id":"c","fd":"4"}}]]}}`, "unmatched read pipe: c 4"},
		{"unmatched write, by number", `{"a":{"fds":[["stdout","pipe-write"]]}}`, "unmatched write pipe: a 1"},
		{"unmatched writes, sorted", `{"b":{"fds":[["3","pipe-write"]]},"a":{"fds":[["5","pipe-write"],["4","pipe-write"]]}}`, "unmatched write pipe: a 4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var specs map[string]ProcSpec
			if err := json.Unmarshal([]byte(tc.specs), &specs); err != nil {
				t.Fatal(err)
			}
			err := CheckFds(specs)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckFds = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("CheckFds = %v, want %q", err, tc.want)
			}
			var ce *SpecCheckError
			if !errors.As(err, &ce) || !errors.Is(err, ErrBadSpec) {
				t.Errorf("error %T does not match *SpecCheckError and ErrBadSpec", err)
			}
		})
	}
}
