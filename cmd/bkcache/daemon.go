package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/bkcache/bkcache/solver"
	"github.com/bkcache/bkcache/solver/daemon"
	"github.com/spf13/cobra"
)

func newDaemonCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run bkcache's private buildkitd on this machine",
		Long: `bkcache build starts a private buildkitd of the version it was built against
when neither --addr nor BUILDKIT_HOST is set and no daemon answers at the
default socket. These commands manage it. Its state, pid file and log live in
$XDG_STATE_HOME/bkcache/buildkitd (default ~/.local/state/bkcache/buildkitd).

It runs on Linux as root with runc. The buildkitd binary is taken from
$BKCACHE_BUILDKITD, beside bkcache or on PATH when its version matches, or
built once with the Go toolchain when one is present.`,
		Example: `  bkcache daemon start
  bkcache daemon status
  bkcache daemon stop`,
	}
	logf := func(w io.Writer) func(string, ...any) {
		return func(f string, a ...any) { fmt.Fprintf(w, "bkcache: "+f+"\n", a...) }
	}
	cmd.AddCommand(&cobra.Command{
		Use: "start", Short: "Start the private buildkitd, or reuse the running one", Args: cobra.NoArgs,
		Example: "  sudo bkcache daemon start\n  BKCACHE_BUILDKITD=/opt/buildkit/bin/buildkitd sudo -E bkcache daemon start",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := daemon.DefaultDirs()
			if err != nil {
				return err
			}
			before := daemon.Get(cmd.Context(), d)
			st, err := daemon.Start(cmd.Context(), d, logf(cmd.ErrOrStderr()))
			if err != nil {
				return err
			}
			if before.Running {
				fmt.Fprintf(cmd.OutOrStdout(), "already running: buildkitd %s (pid %d) at %s\n", st.Version, st.PID, st.Addr)
			} else {
				fmt.Fprintf(cmd.OutOrStdout(), "running: buildkitd %s (pid %d) at %s\n", st.Version, st.PID, st.Addr)
			}
			return nil
		},
	}, &cobra.Command{
		Use: "stop", Short: "Stop the private buildkitd", Args: cobra.NoArgs,
		Example: "  sudo bkcache daemon stop",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := daemon.DefaultDirs()
			if err != nil {
				return err
			}
			stopped, err := daemon.Stop(cmd.Context(), d)
			if err != nil {
				return err
			}
			if stopped {
				fmt.Fprintln(cmd.OutOrStdout(), "stopped")
			} else {
				fmt.Fprintln(cmd.OutOrStdout(), "not running")
			}
			return nil
		},
	}, &cobra.Command{
		Use: "status", Short: "Say whether the private buildkitd runs (exit 1 when it does not)", Args: cobra.NoArgs,
		Example: "  bkcache daemon status || sudo bkcache daemon start",
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := daemon.DefaultDirs()
			if err != nil {
				return err
			}
			st := daemon.Get(cmd.Context(), d)
			switch {
			case st.Running:
				fmt.Fprintf(cmd.OutOrStdout(), "running: buildkitd %s (pid %d) at %s\nlog: %s\n", st.Version, st.PID, st.Addr, d.Log())
				return nil
			case st.Stale:
				return fmt.Errorf("not running (stale pid file for pid %d; `bkcache daemon start` replaces it)", st.PID)
			case st.PID != 0:
				return fmt.Errorf("pid %d is alive but does not answer at %s: see %s", st.PID, st.Addr, d.Log())
			}
			return fmt.Errorf("not running")
		},
	})
	return cmd
}

// daemonAddr picks the buildkitd to use: --addr, BUILDKIT_HOST, the
// default socket when a daemon answers there, else the private daemon,
// started when needed.
func daemonAddr(ctx context.Context, stderr io.Writer, flag string) (string, error) {
	if flag != "" || os.Getenv("BUILDKIT_HOST") != "" {
		return solver.Addr(flag), nil
	}
	if c, _, err := solver.Connect(ctx, solver.Daemon{Addr: solver.DefaultAddr}); err == nil {
		c.Close()
		return solver.DefaultAddr, nil
	}
	d, err := daemon.DefaultDirs()
	if err != nil {
		return "", err
	}
	st, err := daemon.Start(ctx, d, func(f string, a ...any) { fmt.Fprintf(stderr, "bkcache: "+f+"\n", a...) })
	if err != nil {
		return "", fmt.Errorf("no buildkitd at %s, and %w", solver.DefaultAddr, err)
	}
	return st.Addr, nil
}
