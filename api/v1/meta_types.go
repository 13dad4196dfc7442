package v1

import "time"

// TypeMeta names the kind and API version of an object.
type TypeMeta struct {
	// apiVersion is "procstar.dev/v1".
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// kind is "Proc" or "ProcList".
	// +optional
	Kind string `json:"kind,omitempty"`
}

// ObjectMeta is the metadata every stored object has. Field names and
// meanings follow Kubernetes' ObjectMeta.
type ObjectMeta struct {
	// name identifies the object; for a Proc it is the proc ID on the
	// procstar wire.
	// +required
	Name string `json:"name,omitempty"`
	// namespace is accepted for Kubernetes tooling compatibility; procstar
	// has a single namespace, so it is informational only.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// uid is set by the server when the object is created.
	// +optional
	UID string `json:"uid,omitempty"`
	// resourceVersion changes on every write; watches resume from it.
	// +optional
	ResourceVersion string `json:"resourceVersion,omitempty"`
	// generation counts changes to the spec.
	// +optional
	Generation int64 `json:"generation,omitempty"`
	// creationTimestamp is when the server created the object.
	// +optional
	CreationTimestamp *time.Time `json:"creationTimestamp,omitempty"`
	// deletionTimestamp is set when deletion has been requested.
	// +optional
	DeletionTimestamp *time.Time `json:"deletionTimestamp,omitempty"`
	// labels are key/value pairs used for selection.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations are key/value pairs that carry non-identifying data.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// ListMeta is the metadata of a list.
type ListMeta struct {
	// resourceVersion is the version the list was read at.
	// +optional
	ResourceVersion string `json:"resourceVersion,omitempty"`
}

// ConditionStatus is "True", "False" or "Unknown".
type ConditionStatus string

// Condition status values.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition is one aspect of an object's state, in Kubernetes' shape.
type Condition struct {
	// type names the aspect, e.g. "Started".
	// +required
	Type string `json:"type"`
	// status is True, False or Unknown.
	// +required
	Status ConditionStatus `json:"status"`
	// reason is a CamelCase word for the last transition.
	// +optional
	Reason string `json:"reason,omitempty"`
	// message explains the reason for humans.
	// +optional
	Message string `json:"message,omitempty"`
	// lastTransitionTime is when status last changed.
	// +optional
	LastTransitionTime time.Time `json:"lastTransitionTime,omitzero"`
	// observedGeneration is the generation the condition was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}
