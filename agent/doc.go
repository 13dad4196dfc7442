// Package agent is the node agent: it owns the process table, the shutdown
// state machine and the agent's modes (--exit, --wait, and later --serve
// and --agent), and wires them to the runtime.
//
// It decides nothing about how a process is spawned or reaped (that is
// package runtime) and holds no wire format of its own (that is package
// wire). Binaries call Run; tests drive the same entry point.
package agent
