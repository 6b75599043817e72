package main

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver"
	"github.com/bkcache/bkcache/solver/daemon"
	"github.com/spf13/cobra"
)

// buildkitClientVersion is the BuildKit client library bkcache was built
// with: the daemon version bkcache is tested against.
func buildkitClientVersion() string {
	if v := daemon.Version(); v != "" {
		return v
	}
	return "unknown"
}

// nodeVersion is what one buildkitd said, or why it did not.
type nodeVersion struct {
	Addr    string `json:"address"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
}

func newVersionCmd() *cobra.Command {
	var addrs []string
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print bkcache's version, its BuildKit client's, and each daemon's when it answers",
		Example: `  bkcache version
  BUILDKIT_HOST=tcp://buildkitd-1:1234,tcp://buildkitd-2:1234 bkcache version --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(addrs) == 0 {
				addrs = solver.Addrs(os.Getenv("BUILDKIT_HOST"))
			}
			if len(addrs) == 0 {
				addrs = []string{solver.DefaultAddr}
			}
			v := struct {
				Version  string        `json:"version"`
				Buildkit string        `json:"buildkitClient"`
				Daemons  []nodeVersion `json:"daemons"`
			}{Version: version, Buildkit: buildkitClientVersion(), Daemons: nodeVersions(cmd.Context(), addrs)}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bkcache          %s\nbuildkit client  %s\n", v.Version, v.Buildkit)
			for _, d := range v.Daemons {
				fmt.Fprintf(cmd.OutOrStdout(), "buildkitd        %s (%s)\n", orDash(d.Version+d.Error), d.Addr)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&addrs, "addr", nil, "buildkitd address; repeatable (default $BUILDKIT_HOST, comma-separated for several)")
	bindFormat(cmd, &format, "text", "json")
	return cmd
}

// nodeVersions asks every daemon at once, each for at most 5 seconds.
func nodeVersions(ctx context.Context, addrs []string) []nodeVersion {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := make([]nodeVersion, len(addrs))
	var wg sync.WaitGroup
	for i, a := range addrs {
		wg.Go(func() {
			out[i].Addr = solver.ShownAddr(a)
			c, info, err := solver.Connect(ctx, a, solver.TLS{})
			if err != nil {
				out[i].Error = "not reachable"
				return
			}
			out[i].Version = info.BuildkitVersion.Version
			c.Close()
		})
	}
	wg.Wait()
	return out
}
