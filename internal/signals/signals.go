// Package signals names Linux signals and parses signal names.
//
// It is a leaf package of pure functions (no I/O, no global state) so that
// api/v1, wire and runtime can share one table. It covers every signal the
// kernel can deliver, 1 to 64, including SIGSTKFLT and the real-time range,
// which procstar 0.7.5's table lacks. It must not grow any policy.
package signals

import (
	"fmt"
	"strconv"
	"strings"
)

// Real-time signal bounds as glibc exposes them: the kernel reserves 32 and
// 33 for the C library's own threads, so SIGRTMIN is 34.
const (
	RTMin = 34
	RTMax = 64
	// Max is the largest signal number on Linux (_NSIG - 1).
	Max = 64
)

var names = [...]string{
	1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP",
	6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1",
	11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
	16: "SIGSTKFLT", 17: "SIGCHLD", 18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP",
	21: "SIGTTIN", 22: "SIGTTOU", 23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ",
	26: "SIGVTALRM", 27: "SIGPROF", 28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR",
	31: "SIGSYS",
}

// aliases are other names that Parse accepts for the same numbers.
var aliases = map[string]int{"SIGIOT": 6, "SIGPOLL": 29, "SIGCLD": 17}

// Name returns the canonical name of signal n: "SIGTERM", "SIGRTMIN",
// "SIGRTMIN+3", "SIGRTMAX". Signals 32 and 33 are "SIG32" and "SIG33". A
// number outside 1..64 gives "SIG<n>", so Name never fails.
func Name(n int) string {
	switch {
	case n > 0 && n < len(names):
		return names[n]
	case n == RTMin:
		return "SIGRTMIN"
	case n > RTMin && n < RTMax:
		return "SIGRTMIN+" + strconv.Itoa(n-RTMin)
	case n == RTMax:
		return "SIGRTMAX"
	}
	return "SIG" + strconv.Itoa(n)
}

// Valid reports whether n is a signal number Linux can deliver.
func Valid(n int) bool { return n >= 1 && n <= Max }

// Parse accepts a decimal number, a name with or without the "SIG" prefix in
// any case ("SIGTERM", "term"), or a real-time name ("SIGRTMIN+3",
// "SIGRTMAX-2", "RTMIN"). The result is always in 1..64.
func Parse(s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty signal")
	}
	if n, err := strconv.Atoi(s); err == nil {
		if !Valid(n) {
			return 0, fmt.Errorf("signal number out of range 1..%d: %d", Max, n)
		}
		return n, nil
	}
	u := strings.ToUpper(s)
	if !strings.HasPrefix(u, "SIG") {
		u = "SIG" + u
	}
	for i := 1; i < len(names); i++ {
		if names[i] == u {
			return i, nil
		}
	}
	if n, ok := aliases[u]; ok {
		return n, nil
	}
	if n, ok := parseRT(u); ok {
		return n, nil
	}
	if rest, ok := strings.CutPrefix(u, "SIG"); ok {
		if n, err := strconv.Atoi(rest); err == nil && Valid(n) {
			return n, nil
		}
	}
	return 0, fmt.Errorf("unknown signal: %q", s)
}

func parseRT(u string) (int, bool) {
	for _, base := range []struct {
		prefix string
		at     int
	}{{"SIGRTMIN", RTMin}, {"SIGRTMAX", RTMax}} {
		rest, ok := strings.CutPrefix(u, base.prefix)
		if !ok {
			continue
		}
		if rest == "" {
			return base.at, true
		}
		off, err := strconv.Atoi(rest) // "+3" or "-2"
		if err != nil || (rest[0] != '+' && rest[0] != '-') {
			return 0, false
		}
		n := base.at + off
		if n < RTMin || n > RTMax {
			return 0, false
		}
		return n, true
	}
	return 0, false
}

// Set decodes a signal bitmap as /proc/PID/stat and /proc/PID/status print
// it, where bit n-1 stands for signal n, into the names of its signals in
// ascending order. It returns an empty, non-nil slice for an empty mask.
func Set(mask uint64) []string {
	out := []string{}
	for n := 1; n <= Max; n++ {
		if mask&(1<<(n-1)) != 0 {
			out = append(out, Name(n))
		}
	}
	return out
}
