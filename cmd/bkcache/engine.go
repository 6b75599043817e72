package main

import (
	"context"
	"fmt"
	"io"

	"github.com/bkcache/bkcache/solver"
	"github.com/bkcache/bkcache/solver/engine"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/spf13/pflag"
)

// engineFlags say which BuildKit to build on; engine.Select decides from
// them and the environment.
type engineFlags struct {
	addrs   []string
	builder string
	tls     engine.TLS // for every address
}

func (e *engineFlags) bind(f *pflag.FlagSet) {
	f.StringArrayVar(&e.addrs, "addr", nil, "buildkitd address; repeat it to spread services over several nodes (default $BUILDKIT_HOST, comma-separated for several; see --builder)")
	f.StringVar(&e.builder, "builder", "", "build on this buildx builder (default $BUILDX_BUILDER, else buildx's current builder, else the Docker engine, else bkcache's own buildkitd as root)")
	f.StringVar(&e.tls.CACert, "tlscacert", "", "CA certificate to verify buildkitd (tcp://)")
	f.StringVar(&e.tls.Cert, "tlscert", "", "client certificate for buildkitd (tcp://)")
	f.StringVar(&e.tls.Key, "tlskey", "", "client key for buildkitd (tcp://)")
	f.StringVar(&e.tls.ServerName, "tlsservername", "", "server name expected in buildkitd's certificate")
}

// selectEngine decides the engine once; for bkcache's own buildkitd it
// finds (or starts) it.
func (e *engineFlags) selectEngine(ctx context.Context, stderr io.Writer, mirrors registry.Mirrors) (engine.Engine, error) {
	eng, err := engine.Select(ctx, engine.Flags{Addrs: e.addrs, TLS: e.tls, Builder: e.builder}, engine.HostEnv(), engine.PingDocker)
	if err != nil || eng.Kind != engine.Private {
		return eng, err
	}
	addr, err := defaultDaemonAddr(ctx, stderr, mirrors)
	if err != nil {
		return eng, err
	}
	eng.Targets = []engine.Target{{Addr: addr}}
	if addr == solver.DefaultAddr {
		eng.Why = "the buildkitd at " + addr
	}
	return eng, nil
}

// describe is the engine a run built on, for -v and version.
func describe(eng engine.Engine, pool *solver.Pool) string {
	if e := pool.Engine(); e != nil {
		return fmt.Sprintf("%s, BuildKit %s, %s", eng.Why, pool.Buildkit(context.Background()).Version, e.Store())
	}
	return eng.Why
}
