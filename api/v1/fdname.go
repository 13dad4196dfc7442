package v1

import (
	"fmt"
	"strconv"
)

// Number returns the fd number an FdName stands for: 0, 1 and 2 for stdin,
// stdout and stderr, or the decimal value. Negative numbers parse, as in
// procstar; Validate rejects them. The error reads "bad fd: NAME".
func (n FdName) Number() (int, error) {
	switch n {
	case Stdin:
		return 0, nil
	case Stdout:
		return 1, nil
	case Stderr:
		return 2, nil
	}
	v, err := strconv.ParseInt(string(n), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("bad fd: %s", string(n))
	}
	return int(v), nil
}

// FdNameOf returns the canonical name of fd number fd: "stdin", "stdout",
// "stderr" or the decimal number.
func FdNameOf(fd int) FdName {
	switch fd {
	case 0:
		return Stdin
	case 1:
		return Stdout
	case 2:
		return Stderr
	}
	return FdName(strconv.Itoa(fd))
}

// Canonical returns the canonical spelling of n ("1" becomes "stdout"), or
// n itself if it does not parse.
func (n FdName) Canonical() FdName {
	fd, err := n.Number()
	if err != nil {
		return n
	}
	return FdNameOf(fd)
}
