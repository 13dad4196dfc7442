package procfs

import (
	"fmt"

	v1 "procstar.dev/procstar/api/v1"
)

type v1ProcStat = v1.ProcStat

func fmtSscan(s string, v *float64) (int, error) { return fmt.Sscan(s, v) }
