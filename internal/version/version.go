// Package version reports what build of procstar is running. The Makefile
// stamps Version and GitCommit with -ldflags; without them the Go build
// information fills in what it can.
//
// It is a leaf package and must not import anything from this module.
package version

import (
	"runtime"
	"runtime/debug"
)

// Set at link time: -X procstar.dev/procstar/internal/version.Version=….
var (
	// Version is the release, e.g. "v0.1.0", or a git describe string.
	Version = ""
	// GitCommit is the commit the binary was built from.
	GitCommit = ""
)

// Info describes a build. Its JSON shape is the /version response.
type Info struct {
	Version   string `json:"version"`
	GitCommit string `json:"gitCommit"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// Get returns this binary's build information.
func Get() Info {
	info := Info{
		Version:   Version,
		GitCommit: GitCommit,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && info.GitCommit == "" {
				info.GitCommit = s.Value
			}
		}
	}
	if info.Version == "" {
		info.Version = "devel"
	}
	return info
}
