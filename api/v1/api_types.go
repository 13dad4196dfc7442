package v1

// This file holds the types of the REST API's requests and responses that
// are not objects themselves: watch events, delete options, apply results
// and the Status body of errors. They follow Kubernetes' shapes.

// WatchEventType is ADDED, MODIFIED or DELETED, as in Kubernetes watches.
// ERROR carries a Status when a watch fails (a resourceVersion too old).
type WatchEventType string

// Watch event types.
const (
	Added    WatchEventType = "ADDED"
	Modified WatchEventType = "MODIFIED"
	Deleted  WatchEventType = "DELETED"
	// Bookmark carries only a resourceVersion in its object's metadata.
	Bookmark WatchEventType = "BOOKMARK"
	// WatchError carries a Status object instead of a Proc.
	WatchError WatchEventType = "ERROR"
)

// WatchEvent is one line of a watch stream: {"type": …, "object": …}.
type WatchEvent struct {
	// type of the change.
	Type WatchEventType `json:"type"`
	// object is the Proc after the change (before it, for DELETED).
	Object Proc `json:"object"`
}

// DeleteOptions say how to delete a proc.
type DeleteOptions struct {
	// gracePeriodSeconds between the stop signal and SIGKILL for a running
	// proc. Nil means the proc's timeout.gracePeriodSeconds, else 30.
	// +optional
	GracePeriodSeconds *float64 `json:"gracePeriodSeconds,omitempty"`
	// force kills a running proc at once with SIGKILL.
	// +optional
	Force bool `json:"force,omitempty"`
	// refuseRunning refuses to delete a proc that is still running, as
	// procstar 0.7.5's DELETE does ("process running: ID").
	// +optional
	RefuseRunning bool `json:"refuseRunning,omitempty"`
}

// ApplyResult says what an apply did, in kubectl's words.
type ApplyResult string

// Apply results.
const (
	// ApplyCreated: the proc did not exist and was created.
	ApplyCreated ApplyResult = "created"
	// ApplyUnchanged: the proc exists with an identical spec.
	ApplyUnchanged ApplyResult = "unchanged"
	// ApplyConfigured: the proc existed with another spec and was replaced
	// (only with force).
	ApplyConfigured ApplyResult = "configured"
)

// StatusReason is a CamelCase reason in a Status body, as Kubernetes
// spells them.
type StatusReason string

// Status reasons.
const (
	StatusReasonBadRequest          StatusReason = "BadRequest"
	StatusReasonInvalid             StatusReason = "Invalid"
	StatusReasonNotFound            StatusReason = "NotFound"
	StatusReasonAlreadyExists       StatusReason = "AlreadyExists"
	StatusReasonConflict            StatusReason = "Conflict"
	StatusReasonGone                StatusReason = "Expired"
	StatusReasonUnauthorized        StatusReason = "Unauthorized"
	StatusReasonMethodNotAllowed    StatusReason = "MethodNotAllowed"
	StatusReasonRequestTooLarge     StatusReason = "RequestEntityTooLarge"
	StatusReasonServiceUnavailable  StatusReason = "ServiceUnavailable"
	StatusReasonInternalError       StatusReason = "InternalError"
	StatusReasonRangeNotSatisfiable StatusReason = "RequestedRangeNotSatisfiable"
)

// Status is the body of every error response of the v1 API, shaped like
// Kubernetes' metav1.Status.
type Status struct {
	TypeMeta `json:",inline"`
	// status is "Failure" for errors.
	Status string `json:"status"`
	// message is one clear line for humans.
	Message string `json:"message"`
	// reason is a CamelCase word machines can switch on.
	Reason StatusReason `json:"reason"`
	// code is the HTTP status code.
	Code int `json:"code"`
}
