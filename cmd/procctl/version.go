package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"procstar.dev/procstar/internal/version"
)

// clientVersion is "VERSION (commit COMMIT, GOVERSION, OS/ARCH)", from
// the same link-time version as procstar's (internal/version, which falls
// back to the Go build information's vcs.revision when the commit was not
// stamped with -ldflags).
func clientVersion() string {
	v := version.Get()
	return formatVersion(v.Version, v.GitCommit, v.GoVersion, v.Platform)
}

// formatVersion is "VERSION (commit COMMIT, GOVERSION, OS/ARCH)", with
// "unknown" for what a build does not say: a binary built with plain
// `go build -buildvcs=false` (or outside a git tree) has no commit.
func formatVersion(ver, commit, goVersion, platform string) string {
	orUnknown := func(s string) string {
		if s == "" {
			return "unknown"
		}
		return s
	}
	return fmt.Sprintf("%s (commit %s, %s, %s)", orUnknown(ver), orUnknown(commit), orUnknown(goVersion), orUnknown(platform))
}

func (a *app) versionCmd() *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the client and server versions",
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(a.stdout, "Client Version: %s\n", clientVersion())
			if clientOnly {
				return nil
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.Version(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "Server Version: %s\n", formatVersion(v.Version, v.GitCommit, v.GoVersion, v.Platform))
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "print the client version only")
	return cmd
}

func (a *app) completionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a completion script for the shell. For example:

  source <(procctl completion bash)
  procctl completion zsh > "${fpath[1]}/_procctl"
  procctl completion fish > ~/.config/fish/completions/procctl.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("name the shell: procctl completion bash|zsh|fish")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(a.stdout, true)
			case "zsh":
				return root.GenZshCompletion(a.stdout)
			case "fish":
				return root.GenFishCompletion(a.stdout, true)
			}
			return usageErrorf("unknown shell %q: procctl completes bash, zsh and fish", args[0])
		},
	}
}
