package systemd

// SetOwner has m name another process, pid and start (clock ticks after
// boot), in the Description of the slices it makes; pid 0 names none.
func SetOwner(m *Manager, pid int, start uint64) { m.self = owner{pid: pid, start: start} }
