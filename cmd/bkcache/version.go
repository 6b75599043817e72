package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver"
	"github.com/bkcache/bkcache/solver/daemon"
	"github.com/bkcache/bkcache/solver/engine"
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
	Addr       string `json:"address"`
	Version    string `json:"version,omitempty"`
	ImageStore string `json:"imageStore,omitempty"` // a Docker engine's: containerd or classic
	Error      string `json:"error,omitempty"`
}

// engineChoice is the engine bkcache would build on, and why.
type engineChoice struct {
	Kind  engine.Kind `json:"kind,omitempty"`
	Why   string      `json:"why,omitempty"`
	Error string      `json:"error,omitempty"`
}

func newVersionCmd() *cobra.Command {
	var ef engineFlags
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print bkcache's version, its BuildKit client's, the engine it would build on and why, and each daemon's version when it answers",
		Example: `  bkcache version
  bkcache version --builder ci
  BUILDKIT_HOST=tcp://buildkitd-1:1234,tcp://buildkitd-2:1234 bkcache version --format json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := struct {
				Version  string        `json:"version"`
				Buildkit string        `json:"buildkitClient"`
				Engine   engineChoice  `json:"engine"`
				Daemons  []nodeVersion `json:"daemons"`
			}{Version: version, Buildkit: buildkitClientVersion()}
			eng, err := ef.choose(cmd.Context())
			if eng.Kind == engine.Private {
				eng.Targets = []engine.Target{{Addr: solver.DefaultAddr}}
			}
			v.Engine = engineChoice{Kind: eng.Kind, Why: eng.Why}
			if err != nil {
				v.Engine.Error = err.Error()
			}
			v.Daemons = nodeVersions(cmd.Context(), eng.Targets)
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), v)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "bkcache          %s\nbuildkit client  %s\n", v.Version, v.Buildkit)
			fmt.Fprintf(w, "engine           %s\n", orDash(v.Engine.Why+v.Engine.Error))
			for _, d := range v.Daemons {
				fmt.Fprintf(w, "buildkitd        %s (%s)\n", orDash(strings.TrimSuffix(d.Version+", "+d.ImageStore, ", ")+d.Error), d.Addr)
			}
			return nil
		},
	}
	ef.bind(cmd.Flags())
	bindFormat(cmd, &format, "text", "json")
	return cmd
}

// nodeVersions asks every node at once, each for at most 5 seconds.
func nodeVersions(ctx context.Context, targets []engine.Target) []nodeVersion {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := make([]nodeVersion, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			out[i] = nodeVersionOf(ctx, t)
		})
	}
	wg.Wait()
	return out
}

func nodeVersionOf(ctx context.Context, t engine.Target) nodeVersion {
	pool, err := solver.Dial(ctx, []engine.Target{t})
	if err != nil {
		if t.Docker != nil {
			return nodeVersion{Addr: t.Docker.Host, Error: err.Error()}
		}
		return nodeVersion{Addr: solver.ShownAddr(t.Addr), Error: "not reachable"}
	}
	defer pool.Close()
	bk := pool.Buildkit(ctx)
	v := nodeVersion{Addr: bk.Address, Version: bk.Version}
	if e := pool.Engine(); e != nil {
		v.ImageStore = e.Store()
	}
	return v
}
