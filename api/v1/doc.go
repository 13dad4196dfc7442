// Package v1 is the procstar.dev/v1 object model: Proc, ProcList and the
// types they are made of, with their pure functions (validation, defaults,
// deep copy and decoding from YAML or JSON).
//
// The JSON shapes follow Kubernetes conventions (camelCase field names,
// metadata/spec/status, conditions) without importing k8s.io/apimachinery.
// The procstar 0.7.5 wire formats live in package wire, which converts to and
// from these types.
//
// This package holds types and pure functions only. It must not do I/O,
// spawn processes or hold global mutable state, and it imports nothing from
// this module except internal leaf packages (internal/signals). Outside the
// standard library it uses sigs.k8s.io/yaml and, for Decode, the YAML
// parser underneath it (go.yaml.in/yaml/v2), because sigs.k8s.io/yaml
// cannot read a YAML "null:" key, which the null fd variant needs.
//
// Reading input: Decode (YAML or JSON, strict: unknown fields are errors
// naming their path). Checking it: Validate, which returns an ErrorList of
// every problem, each a FieldError with a path such as
// "spec.fds[2].dup.fd". Then SetDefaults fills procstar's defaults.
//
// +groupName=procstar.dev
package v1

const (
	// Group is the API group of every kind in this package.
	Group = "procstar.dev"
	// Version is the API version of this package.
	Version = "v1"
	// APIVersion is the apiVersion field value of every object here.
	APIVersion = Group + "/" + Version

	// KindProc is the kind of a Proc.
	KindProc = "Proc"
	// KindProcList is the kind of a ProcList.
	KindProcList = "ProcList"
)
