package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/bkcache/bkcache/solver"
	"github.com/bkcache/bkcache/solver/engine"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/spf13/pflag"
)

// engineFlags are the command line's say in which BuildKit to build
// on; engine.Select decides from them and the environment.
type engineFlags struct{ engine.Flags }

func (e *engineFlags) bind(f *pflag.FlagSet) {
	f.StringArrayVar(&e.Addrs, "addr", nil, "buildkitd address; repeat it to spread services over several nodes (default $BUILDKIT_HOST, comma-separated for several; see --builder)")
	f.StringVar(&e.Builder, "builder", "", "build on this buildx builder (default $BUILDX_BUILDER, else buildx's current builder, else the Docker engine, else bkcache's own buildkitd as root)")
	f.StringVar(&e.Debug, "debugaddr", "", "the buildkitd's debug address (its --debugaddr); started with --save-cache-debug, it lets bkcache name the part of a cache key that differed")
	f.StringVar(&e.TLS.CACert, "tlscacert", "", "CA certificate to verify buildkitd (tcp://)")
	f.StringVar(&e.TLS.Cert, "tlscert", "", "client certificate for buildkitd (tcp://)")
	f.StringVar(&e.TLS.Key, "tlskey", "", "client key for buildkitd (tcp://)")
	f.StringVar(&e.TLS.ServerName, "tlsservername", "", "server name expected in buildkitd's certificate")
}

// choose is engine.Select on this machine, with these flags.
func (e *engineFlags) choose(ctx context.Context) (engine.Engine, error) {
	return engine.Select(ctx, e.Flags, engine.HostEnv(), engine.PingDocker)
}

// engineAhead is an engine chosen and dialed while the plan loads:
// neither reads the project, and a run whose services all skip finds it
// ready instead of waiting for it (7 ms on a local buildkitd here, 44 ms
// the first time; more over TLS or through docker-container://). It is
// never bkcache's own buildkitd, which is started only when there is a
// plan to build.
type engineAhead struct {
	done    chan struct{}
	cancel  context.CancelFunc
	eng     engine.Engine
	pool    *solver.Pool
	err     error // choosing
	dialErr error
}

// ahead starts choosing and dialing the engine.
func (e *engineFlags) ahead(ctx context.Context) *engineAhead {
	ctx, cancel := context.WithCancel(ctx)
	a := &engineAhead{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(a.done)
		if a.eng, a.err = e.choose(ctx); a.err == nil && a.eng.Kind != engine.Private {
			a.pool, a.dialErr = solver.Dial(ctx, a.eng.Targets)
		}
	}()
	return a
}

// take waits for the engine and its pool, finding or starting bkcache's
// own buildkitd when that is the engine. closePool ends the pool.
func (a *engineAhead) take(ctx context.Context, stderr io.Writer, mirrors registry.Mirrors) (eng engine.Engine, pool *solver.Pool, closePool func(), err error) {
	<-a.done
	eng, pool, err = a.eng, a.pool, a.err
	if err == nil && eng.Kind == engine.Private {
		var t engine.Target
		if t, err = defaultDaemon(ctx, stderr, mirrors); err == nil {
			eng.Targets = []engine.Target{t}
			if t.Addr == solver.DefaultAddr {
				eng.Why = "the buildkitd at " + t.Addr
			}
			pool, a.dialErr = solver.Dial(ctx, eng.Targets)
		}
	}
	if err == nil && a.dialErr != nil {
		err = unreachable(eng, a.dialErr)
	}
	if err != nil {
		a.cancel()
		return eng, nil, nil, err
	}
	return eng, pool, func() { pool.Close(); a.cancel() }, nil
}

// drop ends an engine dialed for nothing: the plan failed, or has
// nothing to build.
func (a *engineAhead) drop() {
	a.cancel()
	<-a.done
	if a.pool != nil {
		a.pool.Close()
	}
}

// unreachable says which engine did not answer, and for a buildx builder
// how to see and start it.
func unreachable(eng engine.Engine, err error) error {
	if eng.Builder == "" {
		return err
	}
	return fmt.Errorf("%s does not answer: %w\n`docker buildx ls` shows its nodes' status; "+
		"`docker buildx inspect --bootstrap %s` starts a docker-container or kubernetes builder", eng.Why, err, eng.Builder)
}

// describe is the engine a run built on, for -v and version.
func describe(eng engine.Engine, pool *solver.Pool) string {
	if e := pool.Engine(); e != nil {
		return fmt.Sprintf("%s, BuildKit %s, %s", eng.Why, pool.Buildkit(context.Background()).Version, e.Store())
	}
	return eng.Why
}

// containerdStoreFix is how a user gets a Docker engine whose BuildKit
// keeps attestations, exports registry cache and pushes itself.
const containerdStoreFix = "enable the containerd image store (Docker Desktop: Settings > General > " +
	"\"Use containerd for pulling and storing images\"; Docker Engine: {\"features\": {\"containerd-snapshotter\": true}} " +
	"in /etc/docker/daemon.json, then restart dockerd), or build on a buildx builder (`docker buildx create --use`)"

// classicLimits refuses, before any build, what a Docker engine with
// the classic image store cannot do without the hash and the image
// disagreeing, and warns once of the registry cache it cannot export.
func (o *buildOptions) classicLimits(stderr io.Writer, e *solver.DockerEngine, p *plan.Plan) error {
	if e == nil || e.Containerd {
		return nil
	}
	for _, j := range p.Jobs {
		a := j.Service.Attestations
		if a.Provenance != "" || a.SBOM != "" {
			return fmt.Errorf("service %q: its image gets attestations (provenance %q, sbom %q), which the Docker engine at %s cannot keep: "+
				"it uses the classic image store; pass --provenance false and no --sbom (the hash changes with them), or %s",
				j.Name(), a.Provenance, a.SBOM, e.Host, containerdStoreFix)
		}
		if o.push && len(j.Service.Platforms) > 1 {
			return fmt.Errorf("service %q builds for %s, and the Docker engine at %s, with the classic image store, holds and pushes one platform: %s",
				j.Name(), strings.Join(j.Service.Platforms, ", "), e.Host, containerdStoreFix)
		}
	}
	if !o.push {
		return nil
	}
	if o.requireCache {
		return fmt.Errorf("--require-cache-export: the Docker engine at %s uses the classic image store, whose BuildKit cannot export registry cache: %s", e.Host, containerdStoreFix)
	}
	fmt.Fprintf(stderr, "bkcache: warning: the Docker engine at %s uses the classic image store: images are pushed without registry cache (R:cache-H), so CI runs on other machines rebuild every step; %s\n", e.Host, containerdStoreFix)
	return nil
}
