package agent

import (
	"os"
	"os/user"
	"strconv"

	"github.com/google/uuid"

	"procstar.dev/procstar/internal/version"
	"procstar.dev/procstar/wire"
)

// Identity describes this agent process, computed once at start-up. Its
// fields are those procstar's Register message carries in conn and proc.
type Identity struct {
	ConnID        string  `json:"connId"`
	GroupID       string  `json:"groupId"`
	RestrictedExe *string `json:"restrictedExe"`
	Pid           int     `json:"pid"`
	Ppid          int     `json:"ppid"`
	UID           int     `json:"uid"`
	EUID          int     `json:"euid"`
	Username      *string `json:"username"`
	GID           int     `json:"gid"`
	EGID          int     `json:"egid"`
	Groupname     *string `json:"groupname"`
	Hostname      string  `json:"hostname"`
}

func newIdentity(cfg Config) Identity {
	id := Identity{
		ConnID:  cfg.ConnID,
		GroupID: cfg.GroupID,
		Pid:     os.Getpid(),
		Ppid:    os.Getppid(),
		UID:     os.Getuid(),
		EUID:    os.Geteuid(),
		GID:     os.Getgid(),
		EGID:    os.Getegid(),
	}
	if id.ConnID == "" {
		id.ConnID = uuid.NewString()
	}
	if cfg.RestrictExe != "" {
		id.RestrictedExe = &cfg.RestrictExe
	}
	if u, err := user.LookupId(strconv.Itoa(id.EUID)); err == nil {
		id.Username = &u.Username
	}
	if g, err := user.LookupGroupId(strconv.Itoa(id.EGID)); err == nil {
		id.Groupname = &g.Name
	}
	id.Hostname, _ = os.Hostname()
	return id
}

// Info is what GET /agent serves: who this agent is, its shutdown state,
// and its link to a control plane (null until one exists).
type Info struct {
	Identity
	ShutdownState string              `json:"shutdownState"`
	Procs         int                 `json:"procs"`
	Link          any                 `json:"link"`
	Resources     wire.AgentResources `json:"resources"`
	Version       version.Info        `json:"version"`
}

func (a *agent) info() Info {
	st, _ := a.shutdown.State()
	return Info{
		Identity:      a.identity,
		ShutdownState: st.String(),
		Procs:         a.ctl.Len(),
		Link:          a.linkStatus(),
		Resources:     a.resources,
		Version:       version.Get(),
	}
}

// linkStatus is Info.Link: the link's status, or nil without --agent.
func (a *agent) linkStatus() any {
	if a.link == nil {
		return nil
	}
	return a.link.Status()
}
