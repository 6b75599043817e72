package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/bkcache/bkcache/solver"
	"github.com/bkcache/bkcache/solver/daemon"
	"github.com/bkcache/bkcache/solver/engine"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/spf13/cobra"
)

func newDaemonCmd(pf *projectFlags) *cobra.Command {
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
  bkcache daemon stop

  # a local pool of three nodes, to try spreading services over them
  eval "$(sudo bkcache daemon start --nodes 3 | grep ^BUILDKIT_HOST=)"; export BUILDKIT_HOST
  bkcache build --push`,
	}
	d := &daemonCmds{pf: pf}
	cmd.PersistentFlags().IntVar(&d.nodes, "nodes", 1, "how many private daemons (a local pool: buildkitd, buildkitd-2, ...)")
	cmd.AddCommand(&cobra.Command{
		Use: "start", Short: "Start the private buildkitd, or reuse the running one", Args: cobra.NoArgs,
		Example: "  sudo bkcache daemon start\n  BKCACHE_BUILDKITD=/opt/buildkit/bin/buildkitd sudo -E bkcache daemon start",
		RunE:    d.start,
	}, &cobra.Command{
		Use: "stop", Short: "Stop the private buildkitd", Args: cobra.NoArgs,
		Example: "  sudo bkcache daemon stop",
		RunE:    d.stop,
	}, &cobra.Command{
		Use: "status", Short: "Say whether the private buildkitd runs (exit 1 when it does not)", Args: cobra.NoArgs,
		Example: "  bkcache daemon status || sudo bkcache daemon start",
		RunE:    d.status,
	})
	return cmd
}

// daemonCmds are the daemon subcommands, over --nodes private daemons.
type daemonCmds struct {
	pf    *projectFlags
	nodes int
}

// dirs are the private daemons' directories, one per node.
func (c *daemonCmds) dirs() ([]daemon.Dirs, error) {
	if c.nodes < 1 {
		return nil, usageError{fmt.Errorf("--nodes must be at least 1")}
	}
	d, err := daemon.DefaultDirs()
	if err != nil {
		return nil, err
	}
	var out []daemon.Dirs
	for i := 1; i <= c.nodes; i++ {
		out = append(out, d.Node(i))
	}
	return out, nil
}

func logf(w io.Writer) func(string, ...any) {
	return func(f string, a ...any) { fmt.Fprintf(w, "bkcache: "+f+"\n", a...) }
}

func (c *daemonCmds) start(cmd *cobra.Command, _ []string) error {
	ds, err := c.dirs()
	if err != nil {
		return err
	}
	flags, err := c.pf.parse()
	if err != nil {
		return err
	}
	var addrs []string
	for _, d := range ds {
		before := daemon.Get(cmd.Context(), d)
		st, err := daemon.Start(cmd.Context(), d, daemon.StartOptions{Logf: logf(cmd.ErrOrStderr()), Mirrors: flags.mirrors})
		if err != nil {
			return err
		}
		state := "running"
		if before.Running {
			state = "already running"
		}
		fmt.Fprintf(cmd.OutOrStdout(), "%s: buildkitd %s (pid %d) at %s\n", state, st.Version, st.PID, st.Addr)
		addrs = append(addrs, st.Addr)
	}
	if len(addrs) > 1 {
		fmt.Fprintf(cmd.OutOrStdout(), "BUILDKIT_HOST=%s\n", strings.Join(addrs, ","))
	}
	return nil
}

func (c *daemonCmds) stop(cmd *cobra.Command, _ []string) error {
	ds, err := c.dirs()
	if err != nil {
		return err
	}
	for _, d := range ds {
		stopped, err := daemon.Stop(cmd.Context(), d)
		if err != nil {
			return err
		}
		if stopped {
			fmt.Fprintf(cmd.OutOrStdout(), "stopped %s\n", d.Addr())
		} else {
			fmt.Fprintf(cmd.OutOrStdout(), "not running: %s\n", d.Addr())
		}
	}
	return nil
}

func (c *daemonCmds) status(cmd *cobra.Command, _ []string) error {
	ds, err := c.dirs()
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range ds {
		st := daemon.Get(cmd.Context(), d)
		switch {
		case st.Running:
			fmt.Fprintf(cmd.OutOrStdout(), "running: buildkitd %s (pid %d) at %s\nlog: %s\n", st.Version, st.PID, st.Addr, d.Log())
			if st.Debug != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "cache-key debug information: %s\n", st.Debug)
			}
		case st.Stale:
			errs = append(errs, fmt.Errorf("%s: not running (stale pid file for pid %d; `bkcache daemon start` replaces it)", d.Addr(), st.PID))
		case st.PID != 0:
			errs = append(errs, fmt.Errorf("%s: pid %d is alive but does not answer: see %s", d.Addr(), st.PID, d.Log()))
		default:
			errs = append(errs, fmt.Errorf("%s: not running", d.Addr()))
		}
	}
	return errors.Join(errs...)
}

// defaultDaemon is the buildkitd to use when none was named: the
// default socket when a daemon answers there, else the private daemon,
// started when needed.
func defaultDaemon(ctx context.Context, stderr io.Writer, mirrors registry.Mirrors) (engine.Target, error) {
	if c, _, err := solver.Connect(ctx, solver.DefaultAddr, engine.TLS{}); err == nil {
		c.Close()
		return engine.Target{Addr: solver.DefaultAddr}, nil
	}
	d, err := daemon.DefaultDirs()
	if err != nil {
		return engine.Target{}, err
	}
	st, err := daemon.Start(ctx, d, daemon.StartOptions{Mirrors: mirrors, Logf: logf(stderr)})
	if err != nil {
		return engine.Target{}, fmt.Errorf("no buildkitd at %s, and %w", solver.DefaultAddr, err)
	}
	return engine.Target{Addr: st.Addr, Debug: st.Debug}, nil
}
