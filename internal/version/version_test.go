package version

import (
	"runtime"
	"testing"
)

func TestGet(t *testing.T) {
	old := Version
	defer func() { Version = old }()
	Version = "v9.9.9"
	info := Get()
	if info.Version != "v9.9.9" || info.GoVersion != runtime.Version() || info.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Fatalf("Get() = %+v", info)
	}
	Version = ""
	if Get().Version == "" {
		t.Fatal("empty version without ldflags")
	}
}
