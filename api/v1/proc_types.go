package v1

import "time"

// Proc is one Linux process to run, described declaratively, with its
// observed status. Its spec is immutable once created.
type Proc struct {
	TypeMeta `json:",inline"`
	// metadata names the proc; metadata.name is the proc ID.
	// +required
	Metadata ObjectMeta `json:"metadata"`
	// spec is what to run and how.
	// +required
	Spec ProcSpec `json:"spec"`
	// status is what has been observed. It is written by the system.
	// +optional
	Status ProcStatus `json:"status,omitzero"`
}

// ProcList is a list of Procs. A YAML file may hold a ProcList.
type ProcList struct {
	TypeMeta `json:",inline"`
	// metadata of the list.
	// +optional
	Metadata ListMeta `json:"metadata,omitzero"`
	// items are the procs.
	Items []Proc `json:"items"`
}

// ProcSpec says what to run and how. It covers everything procstar 0.7.5's
// spec can say, and more. Every field is optional except argv (or exe).
type ProcSpec struct {
	// exe is the path handed to execve. It defaults to argv[0]. PATH is
	// searched only when pathSearch is true and exe has no slash.
	// +optional
	Exe string `json:"exe,omitempty"`
	// pathSearch makes a slash-less exe (or argv[0]) be looked up in the
	// child's PATH, as execvp does. procstar 0.7.5 never searches.
	// +optional
	PathSearch bool `json:"pathSearch,omitempty"`
	// argv is the argument vector, argv[0] included. It may be empty only
	// when exe is set.
	// +optional
	Argv []string `json:"argv,omitempty"`
	// cwd is the child's working directory. It defaults to the agent's.
	// +optional
	Cwd string `json:"cwd,omitempty"`
	// umask is the child's file mode creation mask as an octal string, e.g.
	// "0027". It defaults to the agent's umask.
	// +optional
	Umask *string `json:"umask,omitempty"`
	// pdeathSignal is sent to the child when the agent thread that started
	// it dies (prctl PR_SET_PDEATHSIG). A name or a number.
	// +optional
	PdeathSignal *Signal `json:"pdeathSignal,omitempty"`
	// env says which variables the child gets.
	// +optional
	Env EnvSpec `json:"env,omitzero"`
	// fds lists the child's file descriptors, applied in order.
	// +optional
	Fds []FdSpec `json:"fds,omitempty"`
	// closeOtherFds, true by default, closes every fd of the child that is
	// not in fds, except 0, 1 and 2, which are inherited from the agent
	// unless listed. false inherits whatever the agent itself inherited
	// when it started, as procstar 0.7.5 does.
	// +optional
	CloseOtherFds *bool `json:"closeOtherFds,omitempty"`
	// recordEnv records the child's environment in status.env, with values
	// of secret-looking names masked.
	// +optional
	RecordEnv bool `json:"recordEnv,omitempty"`
	// systemdProperties are procstar's systemd unit settings. Under
	// systemd they become the proc's unit properties; on the cgroup
	// backend the slice's memory and tasks settings become the same
	// cgroup limits, and scope.runtimeMaxUSec a timeout. resources win
	// where both say something.
	// +optional
	SystemdProperties *SystemdProperties `json:"systemdProperties,omitempty"`
	// resources limits what the proc may use.
	// +optional
	Resources *Resources `json:"resources,omitempty"`
	// killTree, true by default, kills every process left in the proc's
	// cgroup once the main process has exited, and makes stop, timeout and
	// delete signal the whole tree. false leaves leftovers running; their
	// cgroup is removed once they are gone.
	// +optional
	KillTree *bool `json:"killTree,omitempty"`
	// perfCounters counts instructions, cycles and task-clock for the proc
	// and everything it starts, where the kernel allows it.
	// +optional
	PerfCounters bool `json:"perfCounters,omitempty"`
	// timeout ends the proc after a while.
	// +optional
	Timeout *Timeout `json:"timeout,omitempty"`
	// restartPolicy says whether the proc is started again after it ends:
	// Never (the default), OnFailure (after anything but exit code 0) or
	// Always. Restarts back off exponentially. A proc with pipeRead or
	// pipeWrite fds must use Never, since its batch cannot be restarted
	// piecemeal.
	// +optional
	RestartPolicy RestartPolicy `json:"restartPolicy,omitempty"`
	// placement chooses an agent. It is used by the control plane only.
	// +optional
	Placement *Placement `json:"placement,omitempty"`
}

// RestartPolicy says when a proc that has ended is started again.
type RestartPolicy string

// Restart policies.
const (
	// RestartNever never restarts the proc. It is the default.
	RestartNever RestartPolicy = "Never"
	// RestartOnFailure restarts the proc unless it exited with code 0.
	RestartOnFailure RestartPolicy = "OnFailure"
	// RestartAlways restarts the proc whenever it ends.
	RestartAlways RestartPolicy = "Always"
)

// Signal is a signal given by name ("SIGTERM", "TERM", "SIGRTMIN+1") or by
// number. In YAML and JSON it may be a string or an integer.
type Signal string

// EnvSpec says which environment variables the child gets. Evaluation
// order: the inherit filter, then removal of PROCSTAR_AGENT_CERT, _KEY and
// _TOKEN, then vars.
type EnvSpec struct {
	// inherit is true (every agent variable, the default), false (none) or
	// a list of names to inherit where present.
	// +optional
	Inherit *EnvInherit `json:"inherit,omitempty"`
	// vars sets variables; a null value removes the variable.
	// +optional
	Vars map[string]*string `json:"vars,omitempty"`
}

// EnvInherit is true, false or a list of variable names. In JSON it is a
// boolean or an array of strings.
type EnvInherit struct {
	// All is the boolean form; it is ignored when Names is non-nil.
	All bool
	// Names is the list form. A non-nil empty list inherits nothing.
	Names []string
}

// FdName is an fd as procstar names it: "stdin", "stdout", "stderr" or a
// decimal number.
type FdName string

// Canonical fd names.
const (
	Stdin  FdName = "stdin"
	Stdout FdName = "stdout"
	Stderr FdName = "stderr"
)

// FdSpec is one entry of the child's fd table. Exactly one of the variant
// fields must be set.
type FdSpec struct {
	// fd is the child's fd: stdin, stdout, stderr or a number.
	// +required
	Fd FdName `json:"fd"`
	// inherit keeps the agent's fd of the same number.
	// +optional
	Inherit *InheritFd `json:"inherit,omitempty"`
	// close closes the fd in the child.
	// +optional
	Close *CloseFd `json:"close,omitempty"`
	// null opens /dev/null.
	// +optional
	Null *NullFd `json:"null,omitempty"`
	// file opens a file.
	// +optional
	File *FileFd `json:"file,omitempty"`
	// dup makes the fd a duplicate of another of the child's fds, as the
	// table stands after the entries before this one.
	// +optional
	Dup *DupFd `json:"dup,omitempty"`
	// capture collects what the child writes to the fd.
	// +optional
	Capture *CaptureFd `json:"capture,omitempty"`
	// pipeWrite makes the fd the write end of a pipe read by another proc
	// of the same batch.
	// +optional
	PipeWrite *PipeWriteFd `json:"pipeWrite,omitempty"`
	// pipeRead makes the fd the read end of a pipe written by another proc
	// of the same batch.
	// +optional
	PipeRead *PipeReadFd `json:"pipeRead,omitempty"`
}

// InheritFd keeps the agent's fd.
type InheritFd struct{}

// CloseFd closes the fd.
type CloseFd struct{}

// OpenFlag is procstar's PascalCase open mode.
type OpenFlag string

// Open flags and their open(2) flags.
const (
	// OpenDefault is O_RDONLY for fd 0, O_WRONLY|O_CREAT|O_TRUNC for fds 1
	// and 2, and O_RDWR|O_CREAT|O_TRUNC for any other fd.
	OpenDefault      OpenFlag = "Default"
	OpenRead         OpenFlag = "Read"         // O_RDONLY
	OpenWrite        OpenFlag = "Write"        // O_WRONLY|O_CREAT|O_TRUNC
	OpenCreate       OpenFlag = "Create"       // O_WRONLY|O_CREAT|O_EXCL
	OpenReplace      OpenFlag = "Replace"      // O_WRONLY|O_TRUNC
	OpenAppend       OpenFlag = "Append"       // O_WRONLY|O_APPEND
	OpenCreateAppend OpenFlag = "CreateAppend" // O_WRONLY|O_CREAT|O_APPEND
	OpenReadWrite    OpenFlag = "ReadWrite"    // O_RDWR|O_CREAT|O_TRUNC
)

// NullFd opens /dev/null.
type NullFd struct {
	// flags is the open mode; it defaults to Default.
	// +optional
	Flags OpenFlag `json:"flags,omitempty"`
}

// FileFd opens a file. A relative path is relative to the child's cwd.
// The open behaves as the child's own, as in procstar: on a FIFO it waits
// for the other end, and the proc is Running meanwhile.
type FileFd struct {
	// path of the file.
	// +required
	Path string `json:"path"`
	// flags is the open mode; it defaults to Default.
	// +optional
	Flags OpenFlag `json:"flags,omitempty"`
	// mode is the permission of a created file; it defaults to 0666
	// (before the umask).
	// +optional
	Mode *uint32 `json:"mode,omitempty"`
}

// DupFd duplicates another fd of the child.
type DupFd struct {
	// fd is the number of the child's fd to duplicate.
	// +required
	Fd int `json:"fd"`
}

// CaptureMode says where captured output is kept.
type CaptureMode string

// Capture modes.
const (
	// CaptureTempfile keeps output in an unlinked temporary file. It is
	// procstar's default.
	CaptureTempfile CaptureMode = "tempfile"
	// CaptureMemory keeps output in the agent's memory, bounded by limit.
	CaptureMemory CaptureMode = "memory"
	// CaptureFile keeps output in the named file at path, which stays
	// after the proc is gone.
	CaptureFile CaptureMode = "file"
)

// Encoding says how captured bytes are turned into text in results.
type Encoding string

// Encodings.
const (
	// EncodingUTF8 is lossy UTF-8: each maximal invalid byte sequence
	// becomes one U+FFFD.
	EncodingUTF8 Encoding = "utf-8"
	// EncodingBase64 is standard padded base64. It is procstar's default.
	EncodingBase64 Encoding = "base64"
	// EncodingBase2048 packs 11 bits in each character. It is ours only
	// and cannot be asked for on the procstar wire.
	EncodingBase2048 Encoding = "base2048"
)

// CaptureFd collects output written to the fd.
type CaptureFd struct {
	// mode is tempfile (the default), memory or file.
	// +optional
	Mode CaptureMode `json:"mode,omitempty"`
	// encoding of the output in results; it defaults to base64.
	// +optional
	Encoding Encoding `json:"encoding,omitempty"`
	// attached, true by default, puts the whole output in every result;
	// false puts only its length there.
	// +optional
	Attached *bool `json:"attached,omitempty"`
	// limit bounds a memory capture. Without it, memory capture keeps
	// everything, as procstar does.
	// +optional
	Limit *CaptureLimit `json:"limit,omitempty"`
	// path is the file a file capture writes; required for mode file and
	// not allowed otherwise.
	// +optional
	Path string `json:"path,omitempty"`
}

// CaptureLimit keeps the first head bytes and the last tail bytes of the
// output and drops what lies between. Either may be zero.
type CaptureLimit struct {
	// head is how many bytes to keep from the start.
	// +optional
	Head int64 `json:"head,omitempty"`
	// tail is how many bytes to keep from the end.
	// +optional
	Tail int64 `json:"tail,omitempty"`
}

// PipeWriteFd is the write end of a pipe to another proc of the batch.
type PipeWriteFd struct{}

// PipeReadFd is the read end of a pipe from another proc of the batch.
type PipeReadFd struct {
	// procId is the writer's proc ID (metadata.name).
	// +required
	ProcID string `json:"procId"`
	// fd is the writer's pipeWrite fd.
	// +required
	Fd FdName `json:"fd"`
}

// SystemdProperties are procstar's per-proc systemd unit settings.
type SystemdProperties struct {
	// scope settings.
	// +optional
	Scope SystemdScope `json:"scope,omitzero"`
	// slice settings.
	// +optional
	Slice SystemdSlice `json:"slice,omitzero"`
}

// SystemdScope holds settings of the proc's transient scope unit. Nil
// means "don't set".
type SystemdScope struct {
	// oomPolicy is continue, stop or kill. Without systemd, on the cgroup
	// backend, kill and stop both set memory.oom.group: an OOM kill ends
	// the whole cgroup at once (stop gets no SIGTERM first).
	// +optional
	OOMPolicy *string `json:"oomPolicy,omitempty"`
	// runtimeMaxUSec is systemd's RuntimeMaxUSec.
	// +optional
	RuntimeMaxUSec *uint64 `json:"runtimeMaxUSec,omitempty"`
	// runtimeRandomizedExtraUSec is systemd's RuntimeRandomizedExtraUSec.
	// +optional
	RuntimeRandomizedExtraUSec *uint64 `json:"runtimeRandomizedExtraUSec,omitempty"`
}

// SystemdSlice holds settings of the proc's transient slice unit, in bytes
// and counts. Nil means "don't set".
type SystemdSlice struct {
	// memoryAccounting is systemd's MemoryAccounting.
	// +optional
	MemoryAccounting *bool `json:"memoryAccounting,omitempty"`
	// memoryMin is systemd's MemoryMin, in bytes.
	// +optional
	MemoryMin *uint64 `json:"memoryMin,omitempty"`
	// memoryLow is systemd's MemoryLow, in bytes.
	// +optional
	MemoryLow *uint64 `json:"memoryLow,omitempty"`
	// memoryHigh is systemd's MemoryHigh, in bytes.
	// +optional
	MemoryHigh *uint64 `json:"memoryHigh,omitempty"`
	// memoryMax is systemd's MemoryMax, in bytes.
	// +optional
	MemoryMax *uint64 `json:"memoryMax,omitempty"`
	// memorySwapMax is systemd's MemorySwapMax, in bytes.
	// +optional
	MemorySwapMax *uint64 `json:"memorySwapMax,omitempty"`
	// tasksAccounting is systemd's TasksAccounting.
	// +optional
	TasksAccounting *bool `json:"tasksAccounting,omitempty"`
	// tasksMax is systemd's TasksMax.
	// +optional
	TasksMax *uint64 `json:"tasksMax,omitempty"`
}

// Quantity is a Kubernetes-style quantity: an integer or decimal with an
// optional suffix, such as "2Gi", "512M", "500m" or "1.5". In YAML and JSON
// it may be a string or a number.
type Quantity string

// Resources limits what a proc may use. They are enforced through cgroups
// or systemd where available.
type Resources struct {
	// memoryMax is the hard memory limit in bytes (memory.max).
	// +optional
	MemoryMax *Quantity `json:"memoryMax,omitempty"`
	// memoryHigh is the memory throttling threshold (memory.high).
	// +optional
	MemoryHigh *Quantity `json:"memoryHigh,omitempty"`
	// memorySwapMax is the swap limit in bytes (memory.swap.max).
	// +optional
	MemorySwapMax *Quantity `json:"memorySwapMax,omitempty"`
	// tasksMax is the most tasks (pids.max).
	// +optional
	TasksMax *int64 `json:"tasksMax,omitempty"`
	// cpuMax is the CPU limit in cores, e.g. "500m" or "2" (cpu.max).
	// +optional
	CPUMax *Quantity `json:"cpuMax,omitempty"`
	// cpuWeight is the relative CPU weight, 1 to 10000 (cpu.weight).
	// +optional
	CPUWeight *int64 `json:"cpuWeight,omitempty"`
}

// Timeout ends a proc that runs too long: signal, wait the grace period,
// then SIGKILL.
type Timeout struct {
	// seconds the proc may run.
	// +required
	Seconds float64 `json:"seconds"`
	// signal sent first; it defaults to SIGTERM.
	// +optional
	Signal Signal `json:"signal,omitempty"`
	// gracePeriodSeconds between the signal and SIGKILL; it defaults to 30.
	// +optional
	GracePeriodSeconds *float64 `json:"gracePeriodSeconds,omitempty"`
}

// Placement chooses the agent that runs a proc on a control plane.
type Placement struct {
	// group is the agent group; it defaults to "default".
	// +optional
	Group string `json:"group,omitempty"`
	// selector matches agent labels.
	// +optional
	Selector map[string]string `json:"selector,omitempty"`
}

// ProcPhase is a coarse summary of where a proc is in its life.
type ProcPhase string

// Phases.
const (
	PhasePending   ProcPhase = "Pending"
	PhaseRunning   ProcPhase = "Running"
	PhaseSucceeded ProcPhase = "Succeeded"
	PhaseFailed    ProcPhase = "Failed"
	PhaseError     ProcPhase = "Error"
	PhaseUnknown   ProcPhase = "Unknown"
)

// Condition types.
const (
	// ConditionStarted is True once the process has been exec'd.
	ConditionStarted = "Started"
	// ConditionTerminated is True once the process has been reaped and its
	// output drained.
	ConditionTerminated = "Terminated"
	// ConditionResourcesEnforced is True when the proc runs in its own
	// cgroup or systemd unit with its limits applied, and False (with a
	// message saying why) when limits or whole-tree kill are not enforced.
	ConditionResourcesEnforced = "ResourcesEnforced"
)

// Condition reasons (CamelCase).
const (
	ReasonExec          = "Exec"
	ReasonExited        = "Exited"
	ReasonSignaled      = "Signaled"
	ReasonExecFailed    = "ExecFailed"
	ReasonSetupFailed   = "SetupFailed"
	ReasonRestricted    = "RestrictedExe"
	ReasonTimedOut      = "TimedOut"
	ReasonKilled        = "Killed"
	ReasonOOMKilled     = "OOMKilled"
	ReasonAgentLost     = "AgentLost"
	ReasonDrainTimedOut = "DrainTimedOut"
	// ReasonCgroup and ReasonSystemd say which backend enforces resources.
	ReasonCgroup  = "Cgroup"
	ReasonSystemd = "Systemd"
	// ReasonNoResourceControl says no backend is available.
	ReasonNoResourceControl = "NoResourceControl"
	// ReasonControllerUnavailable says a limit's cgroup controller is not
	// enabled for the agent's subtree.
	ReasonControllerUnavailable = "ControllerUnavailable"
)

// ProcStatus is what has been observed of a proc. Times are UTC.
type ProcStatus struct {
	// phase summarizes the proc's state.
	// +optional
	Phase ProcPhase `json:"phase,omitempty"`
	// conditions detail the state.
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// observedGeneration is the spec generation this status is for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// errors are failures to set up or start the process, with procstar's
	// wording ("execve failed: …", "failed to set up fd 1: …").
	// +optional
	Errors []string `json:"errors,omitempty"`
	// pid of the process; 0 if it was never forked.
	// +optional
	Pid int `json:"pid,omitempty"`
	// exitCode if the process exited normally.
	// +optional
	ExitCode *int `json:"exitCode,omitempty"`
	// signal that killed the process, by name.
	// +optional
	Signal string `json:"signal,omitempty"`
	// waitStatus is the raw wait(2) status.
	// +optional
	WaitStatus *int `json:"waitStatus,omitempty"`
	// coreDump is true if the process dumped core.
	// +optional
	CoreDump bool `json:"coreDump,omitempty"`
	// times of the process.
	// +optional
	Times *ProcTimes `json:"times,omitempty"`
	// rusage from wait4, once reaped.
	// +optional
	Rusage *Rusage `json:"rusage,omitempty"`
	// procStat is /proc/PID/stat: fresh while running, the zombie's last
	// snapshot once reaped.
	// +optional
	ProcStat *ProcStat `json:"procStat,omitempty"`
	// procStatm is /proc/PID/statm while running.
	// +optional
	ProcStatm *ProcStatm `json:"procStatm,omitempty"`
	// cgroupAccounting is read from the proc's cgroup before removal.
	// +optional
	CgroupAccounting *CgroupAccounting `json:"cgroupAccounting,omitempty"`
	// resources says how resources are controlled for this run.
	// +optional
	Resources *ResourceStatus `json:"resources,omitempty"`
	// perfCounters are the counts of spec.perfCounters, once reaped.
	// +optional
	PerfCounters *PerfCounters `json:"perfCounters,omitempty"`
	// fds describes each captured fd, keyed by canonical fd name.
	// +optional
	Fds map[string]FdStatus `json:"fds,omitempty"`
	// cwd is the child's working directory at start.
	// +optional
	Cwd string `json:"cwd,omitempty"`
	// env is the child's environment at start, when spec.recordEnv is set.
	// Values of names that look secret are masked.
	// +optional
	Env map[string]string `json:"env,omitempty"`
	// restartCount counts restarts under the restart policy.
	// +optional
	RestartCount int32 `json:"restartCount,omitempty"`
	// agent that runs the proc.
	// +optional
	Agent *AgentRef `json:"agent,omitempty"`
}

// ProcTimes are the wall-clock start and stop of a process and its elapsed
// time on the monotonic clock.
type ProcTimes struct {
	// start is just after fork.
	// +optional
	Start *time.Time `json:"start,omitempty"`
	// stop is just after reaping.
	// +optional
	Stop *time.Time `json:"stop,omitempty"`
	// elapsed seconds from start to stop, or to when the status was read.
	// +optional
	Elapsed float64 `json:"elapsed,omitempty"`
}

// Rusage is the resource usage wait4 reports. Times are seconds; maxrss is
// bytes.
type Rusage struct {
	// utime is user CPU time in seconds.
	Utime float64 `json:"utime"`
	// stime is system CPU time in seconds.
	Stime float64 `json:"stime"`
	// maxrss is the peak resident set size in bytes.
	Maxrss int64 `json:"maxrss"`
	// minflt counts page faults served without I/O.
	Minflt int64 `json:"minflt"`
	// majflt counts page faults that needed I/O.
	Majflt int64 `json:"majflt"`
	// nswap is unused on Linux (always 0).
	Nswap int64 `json:"nswap"`
	// inblock counts block input operations.
	Inblock int64 `json:"inblock"`
	// oublock counts block output operations.
	Oublock int64 `json:"oublock"`
	// nvcsw counts voluntary context switches.
	Nvcsw int64 `json:"nvcsw"`
	// nivcsw counts involuntary context switches.
	Nivcsw int64 `json:"nivcsw"`
}

// ProcStat is /proc/PID/stat decoded: times in seconds, sizes in bytes,
// signal sets as names.
type ProcStat struct {
	// pid is the process ID.
	Pid int `json:"pid"`
	// comm is the executable name, without the parentheses.
	Comm string `json:"comm"`
	// state is the one-letter state: R, S, D, Z, T and so on.
	State string `json:"state"`
	// ppid is the parent's process ID.
	Ppid int `json:"ppid"`
	// pgrp is the process group ID.
	Pgrp int `json:"pgrp"`
	// session is the session ID.
	Session int `json:"session"`
	// ttyNr is [major, minor] of the controlling terminal.
	TtyNr [2]uint32 `json:"ttyNr"`
	// tpgid is null when there is no terminal foreground group.
	Tpgid *int `json:"tpgid"`
	// flags are the kernel flags (PF_*).
	Flags uint32 `json:"flags"`
	// minflt counts minor page faults.
	Minflt uint64 `json:"minflt"`
	// cminflt counts minor page faults of waited-for children.
	Cminflt uint64 `json:"cminflt"`
	// majflt counts major page faults.
	Majflt uint64 `json:"majflt"`
	// cmajflt counts major page faults of waited-for children.
	Cmajflt uint64 `json:"cmajflt"`
	// utime is user CPU time in seconds.
	Utime float64 `json:"utime"`
	// stime is system CPU time in seconds.
	Stime float64 `json:"stime"`
	// cutime is user CPU time of waited-for children in seconds.
	Cutime float64 `json:"cutime"`
	// cstime is system CPU time of waited-for children in seconds.
	Cstime float64 `json:"cstime"`
	// priority is the kernel scheduling priority.
	Priority int64 `json:"priority"`
	// nice is the nice value, -20 to 19.
	Nice int64 `json:"nice"`
	// numThreads is the number of threads.
	NumThreads int64 `json:"numThreads"`
	// starttime is when the process started.
	Starttime time.Time `json:"starttime"`
	// vsize is the virtual memory size in bytes.
	Vsize uint64 `json:"vsize"`
	// rss is the resident set size in bytes.
	Rss int64 `json:"rss"`
	// rsslim is the RSS soft limit in bytes.
	Rsslim uint64 `json:"rsslim"`
	// signal names the pending signals.
	Signal []string `json:"signal"`
	// blocked names the blocked signals.
	Blocked []string `json:"blocked"`
	// sigignore names the ignored signals.
	Sigignore []string `json:"sigignore"`
	// sigcatch names the caught signals.
	Sigcatch []string `json:"sigcatch"`
	// wchan is the wait channel (0 unless privileged).
	Wchan uint64 `json:"wchan"`
	// exitSignal is null when 0.
	ExitSignal *string `json:"exitSignal"`
	// processor is the CPU the process last ran on.
	Processor int32 `json:"processor"`
	// rtPriority is the real-time priority, 0 for normal processes.
	RtPriority uint32 `json:"rtPriority"`
	// policy is the scheduling policy (SCHED_*).
	Policy uint32 `json:"policy"`
	// delayacctBlkioTicks is aggregated block I/O delay in seconds.
	DelayacctBlkioTicks float64 `json:"delayacctBlkioTicks"`
	// guestTime is time spent running a virtual CPU, in seconds.
	GuestTime float64 `json:"guestTime"`
	// cguestTime is guestTime of waited-for children, in seconds.
	CguestTime float64 `json:"cguestTime"`
	// exitCode is the raw wait status the kernel reports (0 while running).
	ExitCode int32 `json:"exitCode"`
}

// ProcStatm is /proc/PID/statm in bytes.
type ProcStatm struct {
	// size is the total program size.
	Size uint64 `json:"size"`
	// resident is the resident set size.
	Resident uint64 `json:"resident"`
	// shared is resident memory backed by files.
	Shared uint64 `json:"shared"`
	// text is the code size.
	Text uint64 `json:"text"`
	// data is data plus stack.
	Data uint64 `json:"data"`
}

// CgroupAccounting is what the proc's cgroup counted.
type CgroupAccounting struct {
	// pids is pids.current and pids.peak.
	// +optional
	Pids *CgroupPids `json:"pids,omitempty"`
	// cpuStat is cpu.stat.
	// +optional
	CPUStat *CgroupCPUStat `json:"cpuStat,omitempty"`
	// memory is the memory and swap counters.
	// +optional
	Memory *CgroupMemory `json:"memory,omitempty"`
}

// ResourceStatus says how a run's resources are controlled.
type ResourceStatus struct {
	// backend is "systemd", "cgroup" or "none".
	Backend string `json:"backend"`
	// cgroup is the run's cgroup, relative to the cgroup2 mount.
	// +optional
	Cgroup string `json:"cgroup,omitempty"`
	// unit is the run's systemd slice.
	// +optional
	Unit string `json:"unit,omitempty"`
	// enforced is true when every requested limit is applied.
	Enforced bool `json:"enforced"`
	// treeKill is how stop and exit reach the proc's descendants:
	// "cgroup", "systemd" or "processGroup" (only processes that stayed in
	// the process group), or "off" when spec.killTree is false.
	TreeKill string `json:"treeKill"`
	// message says what is not enforced and why.
	// +optional
	Message string `json:"message,omitempty"`
}

// PerfCounters are hardware and software counts for a proc and every
// process it started. A counter the kernel does not allow is nil and named
// in unsupported.
type PerfCounters struct {
	// instructions retired.
	// +optional
	Instructions *uint64 `json:"instructions,omitempty"`
	// cycles of the CPU.
	// +optional
	Cycles *uint64 `json:"cycles,omitempty"`
	// taskClockNs is CPU time in nanoseconds.
	// +optional
	TaskClockNs *uint64 `json:"taskClockNs,omitempty"`
	// unsupported names each counter that could not be opened, with why.
	// +optional
	Unsupported map[string]string `json:"unsupported,omitempty"`
}

// CgroupPids is pids.current and pids.peak.
type CgroupPids struct {
	// current is pids.current.
	Current uint64 `json:"current"`
	// peak is pids.peak.
	Peak uint64 `json:"peak"`
}

// CgroupCPUStat is cpu.stat; the throttling fields are nil when absent.
type CgroupCPUStat struct {
	// usageUsec is total CPU time in microseconds.
	UsageUsec uint64 `json:"usageUsec"`
	// userUsec is user CPU time in microseconds.
	UserUsec uint64 `json:"userUsec"`
	// systemUsec is system CPU time in microseconds.
	SystemUsec uint64 `json:"systemUsec"`
	// nrPeriods counts enforcement periods.
	NrPeriods *uint64 `json:"nrPeriods"`
	// nrThrottled counts periods in which the cgroup was throttled.
	NrThrottled *uint64 `json:"nrThrottled"`
	// throttledUsec is total throttled time in microseconds.
	ThrottledUsec *uint64 `json:"throttledUsec"`
	// nrBursts counts periods in which a burst happened.
	NrBursts *uint64 `json:"nrBursts"`
	// burstUsec is total burst time in microseconds.
	BurstUsec *uint64 `json:"burstUsec"`
}

// CgroupMemory is memory.current, .peak, .swap.current and .swap.peak.
type CgroupMemory struct {
	// current is memory.current in bytes.
	Current uint64 `json:"current"`
	// peak is memory.peak in bytes.
	Peak uint64 `json:"peak"`
	// swapCurrent is memory.swap.current in bytes.
	SwapCurrent uint64 `json:"swapCurrent"`
	// swapPeak is memory.swap.peak in bytes.
	SwapPeak uint64 `json:"swapPeak"`
	// oomKills is the oom_kill count of memory.events.
	// +optional
	OOMKills uint64 `json:"oomKills,omitempty"`
}

// FdStatus describes a captured fd.
type FdStatus struct {
	// length is how many bytes the child wrote.
	Length int64 `json:"length"`
	// encoding of the output in results.
	Encoding Encoding `json:"encoding"`
	// mode of the capture.
	// +optional
	Mode CaptureMode `json:"mode,omitempty"`
	// path of a file capture.
	// +optional
	Path string `json:"path,omitempty"`
	// dropped counts bytes a capture limit discarded from the middle of
	// the output; the range [head, length-tail) is gone.
	// +optional
	Dropped int64 `json:"dropped,omitempty"`
	// drainTimedOut is true when the pipe was still held open by another
	// process after the proc exited, and reading stopped after a bounded
	// wait. Output written after that is lost.
	// +optional
	DrainTimedOut bool `json:"drainTimedOut,omitempty"`
}

// AgentRef names the agent that runs a proc.
type AgentRef struct {
	// connId is the agent's connection ID.
	// +optional
	ConnID string `json:"connId,omitempty"`
	// groupId is the agent's group.
	// +optional
	GroupID string `json:"groupId,omitempty"`
	// hostname is the agent's host name.
	// +optional
	Hostname string `json:"hostname,omitempty"`
}
