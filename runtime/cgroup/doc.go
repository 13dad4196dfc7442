// Package cgroup is the direct cgroup v2 backend of the runtime: it opens a
// delegated cgroup2 directory as a Root (enabling the cpu, memory and pids
// controllers for its children), creates one child cgroup per proc with the
// proc's limits written in, hands out a directory fd for clone3's
// CgroupFD, kills or signals the whole tree, waits for it to empty, reads
// its accounting (procstar 0.7.5's cgroup_accounting rules) and removes it.
//
// It has no policy: it does not decide which limits a spec asks for (the
// runtime converts spec resources to Limits), does not start or reap
// processes, and does not talk to systemd. It must not touch any cgroup
// outside the Root it was given, except for moving this process into the
// Root's "agent" leaf when the no-internal-process rule requires it, and it
// must not kill anything that is not inside a Group it created.
//
// Known limits: without cgroup.kill (kernels before 5.14) Kill falls back
// to a bounded loop of kill(2) by pid, which a fast fork loop can outrun
// unless the cgroup freezer is present; pids read from cgroup.procs may be
// reused between the read and the kill (only for processes that left the
// cgroup in between).
package cgroup
