package wire

// This file declares the messages of procstar 0.7.5's WebSocket agent
// protocol (reference §4). On the wire each is one binary frame holding a
// MessagePack map: a "type" key naming the message, and the fields below
// beside it, exactly these and no others. EncodeMessage and DecodeMessage
// (msgpack.go) are the only way in and out.

// Message is one message of the agent protocol.
type Message interface {
	// MessageType is the value of the "type" key.
	MessageType() string
}

// ConnInfo is Register.conn: which connection and group this agent is.
type ConnInfo struct {
	ConnID        string  `msgpack:"conn_id"`
	GroupID       string  `msgpack:"group_id"`
	RestrictedExe *string `msgpack:"restricted_exe"`
}

// ProcInfo is Register.proc: the agent process itself. Username and
// Groupname belong to the effective ids and are nil when unknown.
type ProcInfo struct {
	Pid       int     `msgpack:"pid"`
	Ppid      int     `msgpack:"ppid"`
	UID       int     `msgpack:"uid"`
	EUID      int     `msgpack:"euid"`
	Username  *string `msgpack:"username"`
	GID       int     `msgpack:"gid"`
	EGID      int     `msgpack:"egid"`
	Groupname *string `msgpack:"groupname"`
	Hostname  string  `msgpack:"hostname"`
}

// Register is the agent's first message on a connection.
type Register struct {
	Conn ConnInfo `msgpack:"conn"`
	Proc ProcInfo `msgpack:"proc"`
	// ProcIDs lists every proc in the agent's table, sorted; never nil.
	ProcIDs     []string `msgpack:"proc_ids"`
	AccessToken string   `msgpack:"access_token"`
	// ShutdownState is "active", "idling" or "done".
	ShutdownState string `msgpack:"shutdown_state"`
	// Labels are the agent's labels. They are sent only when the server
	// accepted the "labels" extension (see extensions.md); a plain
	// procstar server never sees the key.
	Labels map[string]string `msgpack:"labels,omitempty"`
	// Resources says how the agent controls its procs' resources. It is
	// sent only when the server accepted the "resources" extension; a
	// plain procstar server never sees the key.
	Resources *AgentResources `msgpack:"resources,omitempty"`
}

// AgentResources describes how an agent controls its procs' resources:
// Register.resources under the "resources" extension. Every field is
// required on the wire and no other key is allowed.
type AgentResources struct {
	// Backend is "systemd", "cgroup" or "none".
	Backend string `json:"backend" msgpack:"backend"`
	// Detail is the cgroup root, the systemd bus, or why nothing is
	// available.
	Detail string `json:"detail" msgpack:"detail"`
	// Controllers are the cgroup controllers enabled for procs; never
	// nil on the wire (an empty array).
	Controllers []string `json:"controllers" msgpack:"controllers"`
	// BestEffort: limits that cannot be enforced are skipped, not
	// refused.
	BestEffort bool `json:"bestEffort" msgpack:"best_effort"`
	// PerfCounters is "available", or why perf counters are not.
	PerfCounters string `json:"perfCounters" msgpack:"perf_counters"`
}

// Registered is the server's answer to Register.
type Registered struct{}

// ProcStartRequest asks the agent to start a batch of procs.
type ProcStartRequest struct {
	Specs map[string]ProcSpec `msgpack:"specs"`
}

// ProcidListRequest asks for the agent's proc IDs.
type ProcidListRequest struct{}

// ProcResultRequest asks for a proc's current result.
type ProcResultRequest struct {
	ProcID string `msgpack:"proc_id"`
}

// ProcSignalRequest asks the agent to signal a proc.
type ProcSignalRequest struct {
	ProcID string `msgpack:"proc_id"`
	Signum int    `msgpack:"signum"`
}

// ProcFdDataRequest asks for captured output in [Start, Stop), or from
// Start to the end when Stop is nil. Stop is a serde Option in procstar,
// so a missing "stop" decodes as nil; "start" is required.
type ProcFdDataRequest struct {
	ProcID string `msgpack:"proc_id"`
	Fd     string `msgpack:"fd"`
	Start  int64  `msgpack:"start"`
	Stop   *int64 `msgpack:"stop,optional"`
}

// ProcDeleteRequest asks the agent to delete a proc that is not running.
type ProcDeleteRequest struct {
	ProcID string `msgpack:"proc_id"`
}

// RequestError answers a request that failed. Msg is the request echoed
// in full as a map, its "type" key included.
type RequestError struct {
	Msg map[string]any `msgpack:"msg"`
	Err string         `msgpack:"err"`
}

// ProcUnknown answers a request about a proc the agent does not have.
type ProcUnknown struct {
	ProcID string `msgpack:"proc_id"`
}

// ProcidList answers ProcidListRequest; ProcIDs is sorted, never nil.
type ProcidList struct {
	ProcIDs []string `msgpack:"proc_ids"`
}

// ProcResult carries a proc's result, answered or pushed.
type ProcResult struct {
	ProcID string  `msgpack:"proc_id"`
	Res    ProcRes `msgpack:"res"`
}

// ProcFdData carries captured output: answered, or pushed under the
// "push-output" extension. Data travels as msgpack bin.
type ProcFdData struct {
	ProcID   string  `msgpack:"proc_id"`
	Fd       string  `msgpack:"fd"`
	Start    int64   `msgpack:"start"`
	Stop     int64   `msgpack:"stop"`
	Encoding *string `msgpack:"encoding"`
	Data     []byte  `msgpack:"data"`
}

// ProcDelete tells the server a proc has been deleted.
type ProcDelete struct {
	ProcID string `msgpack:"proc_id"`
}

// ShutDown tells the server the agent's shutdown state changed.
type ShutDown struct {
	ShutdownState string `msgpack:"shutdown_state"`
}

func (Register) MessageType() string          { return "Register" }
func (Registered) MessageType() string        { return "Registered" }
func (ProcStartRequest) MessageType() string  { return "ProcStartRequest" }
func (ProcidListRequest) MessageType() string { return "ProcidListRequest" }
func (ProcResultRequest) MessageType() string { return "ProcResultRequest" }
func (ProcSignalRequest) MessageType() string { return "ProcSignalRequest" }
func (ProcFdDataRequest) MessageType() string { return "ProcFdDataRequest" }
func (ProcDeleteRequest) MessageType() string { return "ProcDeleteRequest" }
func (RequestError) MessageType() string      { return "RequestError" }
func (ProcUnknown) MessageType() string       { return "ProcUnknown" }
func (ProcidList) MessageType() string        { return "ProcidList" }
func (ProcResult) MessageType() string        { return "ProcResult" }
func (ProcFdData) MessageType() string        { return "ProcFdData" }
func (ProcDelete) MessageType() string        { return "ProcDelete" }
func (ShutDown) MessageType() string          { return "ShutDown" }

// Extension names an optional protocol extension beyond procstar 0.7.5,
// offered by the agent in the ExtensionsHeader of the WebSocket handshake
// and used only when the server's handshake response lists it back.
type Extension string

// Extensions.
const (
	// ExtensionsHeader is the HTTP header, on the handshake request and
	// response, holding a comma-separated list of extension names.
	ExtensionsHeader = "Procstar-Extensions"
	// ExtPushStatus: the agent pushes an intermediate ProcResult on each
	// change of a proc's state, and at most once per status interval
	// while it runs.
	ExtPushStatus Extension = "push-status"
	// ExtPushOutput: the agent pushes new captured output as ProcFdData
	// chunks with increasing offsets, so the server never polls.
	ExtPushOutput Extension = "push-output"
	// ExtLabels: Register carries the agent's labels.
	ExtLabels Extension = "labels"
	// ExtResources: Register carries the agent's resource-control info
	// (AgentResources).
	ExtResources Extension = "resources"
)
