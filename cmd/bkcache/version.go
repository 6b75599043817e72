package main

import (
	"context"
	"fmt"
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

func newVersionCmd() *cobra.Command {
	var addr, format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print bkcache's version, its BuildKit client's, and the daemon's when one answers",
		Example: `  bkcache version
  BUILDKIT_HOST=tcp://buildkitd:1234 bkcache version --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(format, "text", "json"); err != nil {
				return err
			}
			v := struct {
				Version       string `json:"version"`
				Buildkit      string `json:"buildkitClient"`
				DaemonAddr    string `json:"daemonAddress"`
				DaemonVersion string `json:"daemonVersion,omitempty"`
				DaemonError   string `json:"daemonError,omitempty"`
			}{Version: version, Buildkit: buildkitClientVersion(), DaemonAddr: solver.Addr(addr)}
			ctx, cancel := context.WithTimeout(cmd.Context(), 5*time.Second)
			defer cancel()
			c, info, err := solver.Connect(ctx, solver.Daemon{Addr: v.DaemonAddr})
			if err != nil {
				v.DaemonError = "not reachable"
			} else {
				v.DaemonVersion = info.BuildkitVersion.Version
				c.Close()
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			daemon := v.DaemonVersion
			if daemon == "" {
				daemon = v.DaemonError
			}
			fmt.Fprintf(cmd.OutOrStdout(), "bkcache          %s\nbuildkit client  %s\nbuildkitd        %s (%s)\n", v.Version, v.Buildkit, daemon, v.DaemonAddr)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "buildkitd address (default $BUILDKIT_HOST)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
