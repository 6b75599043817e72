// Package engine decides which BuildKit a run builds on, once, in one
// documented order: buildkitd addresses, a buildx builder, the Docker
// engine's own BuildKit, or bkcache's private daemon. It reads the
// environment, buildx's builder store and the docker CLI's contexts; it
// dials nothing but a Docker engine's ping.
package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
)

// Kind is what a run builds on.
type Kind string

const (
	// Buildkitd is one or more buildkitd nodes, by address.
	Buildkitd Kind = "buildkitd"
	// DockerEngine is the BuildKit inside a Docker engine, reached
	// through its API: images land in the engine's image store.
	DockerEngine Kind = "docker"
	// Private is bkcache's own buildkitd (Linux, root), found at the
	// default socket or started.
	Private Kind = "private"
)

// TLS says how to reach a buildkitd over tcp:// with TLS.
type TLS struct {
	CACert     string // CA to verify the daemon
	Cert, Key  string // client certificate
	ServerName string // name expected in the daemon's certificate
}

// Target is one node to dial: a buildkitd address (with its TLS), or a
// Docker engine.
type Target struct {
	Addr   string // buildkitd address; "" for a Docker engine
	TLS    TLS
	Docker *Docker
	// Debug is the buildkitd's debug address (its --debugaddr), where a
	// daemon started with --save-cache-debug serves its cache keys'
	// plaintexts; "" when unknown.
	Debug string
}

// Engine is what a run builds on, and why it was chosen.
type Engine struct {
	Kind    Kind
	Targets []Target // Buildkitd: one per node; DockerEngine: one
	Why     string   // how it was chosen, in words: "--addr", "buildx builder ci (BUILDX_BUILDER)", ...
	Builder string   // the buildx builder's name, when it is one
}

// Flags are the command line's say in the choice.
type Flags struct {
	Addrs   []string // --addr
	TLS     TLS      // --tlscacert and the like, for every address
	Builder string   // --builder
	Debug   string   // --debugaddr: the one buildkitd's debug address
}

// Env is what the choice reads from the machine.
type Env struct {
	Getenv func(string) string
	Home   string
	GOOS   string
	Root   bool // running as root, which the private daemon needs
}

// HostEnv is this process's environment.
func HostEnv() Env {
	home, _ := os.UserHomeDir()
	return Env{Getenv: os.Getenv, Home: home, GOOS: runtime.GOOS, Root: os.Geteuid() == 0}
}

// Ping says whether the Docker engine at d answers.
type Ping func(ctx context.Context, d Docker) error

// Select chooses the engine, first match wins:
//  1. --addr, else BUILDKIT_HOST;
//  2. --builder, else BUILDX_BUILDER: that buildx builder;
//  3. buildx's current builder, unless it is the Docker engine's default;
//  4. the Docker engine, when it answers;
//  5. the private daemon, on Linux as root;
//  6. otherwise an error saying what was tried.
func Select(ctx context.Context, f Flags, e Env, ping Ping) (Engine, error) {
	eng, err := selectEngine(ctx, f, e, ping)
	if err != nil || f.Debug == "" {
		return eng, err
	}
	if eng.Kind != Buildkitd || len(eng.Targets) != 1 {
		return Engine{}, fmt.Errorf("--debugaddr %s names the debug address of one buildkitd, and this run builds on %s: "+
			"give it with a single --addr or BUILDKIT_HOST (bkcache's own buildkitd serves one by itself)", f.Debug, eng.Why)
	}
	eng.Targets[0].Debug = f.Debug
	return eng, nil
}

func selectEngine(ctx context.Context, f Flags, e Env, ping Ping) (Engine, error) {
	if len(f.Addrs) > 0 {
		return addrs(f.Addrs, f.TLS, "--addr"), nil
	}
	if a := Addrs(e.Getenv("BUILDKIT_HOST")); len(a) > 0 {
		return addrs(a, f.TLS, "BUILDKIT_HOST"), nil
	}
	if f.Builder != "" {
		return e.Builder(f.Builder, "--builder")
	}
	if b := e.Getenv("BUILDX_BUILDER"); b != "" {
		return e.Builder(b, "BUILDX_BUILDER")
	}
	var tried []string
	d, derr := DockerEndpoint(e)
	if cur, err := e.currentBuilder(d); err != nil {
		return Engine{}, err
	} else if cur != "" {
		return e.Builder(cur, "buildx's current builder")
	}
	tried = append(tried, "no BUILDKIT_HOST or BUILDX_BUILDER, and buildx's current builder is the Docker engine's")
	if derr != nil {
		tried = append(tried, derr.Error())
	} else if err := ping(ctx, d); err != nil {
		tried = append(tried, fmt.Sprintf("no Docker engine answers at %s (%s): %v", d.Host, d.Source, err))
	} else {
		return Engine{Kind: DockerEngine, Targets: []Target{{Docker: &d}}, Why: fmt.Sprintf("docker engine at %s (%s)", d.Host, d.Source)}, nil
	}
	if e.GOOS == "linux" && e.Root {
		return Engine{Kind: Private, Why: "no other engine found; bkcache's own buildkitd (root)"}, nil
	}
	tried = append(tried, privateNeeds(e))
	return Engine{}, &NoEngineError{Tried: tried}
}

// privateNeeds says why the private daemon is not an option here.
func privateNeeds(e Env) string {
	if e.GOOS != "linux" {
		return "bkcache's own buildkitd runs on Linux only"
	}
	return "bkcache's own buildkitd needs root"
}

// NoEngineError lists what Select tried.
type NoEngineError struct{ Tried []string }

func (e *NoEngineError) Error() string {
	return "no BuildKit to build on:\n  - " + strings.Join(e.Tried, "\n  - ") +
		"\nstart Docker (Docker Desktop, or dockerd with your user in the docker group), " +
		"name a buildx builder with --builder, or a buildkitd with BUILDKIT_HOST"
}

// ErrCertWithoutKey reports a client certificate without its key, or a
// key without its certificate.
var ErrCertWithoutKey = errors.New("a client certificate and its key go together")

// addrs is the engine of buildkitd addresses, each once, in order.
func addrs(a []string, tls TLS, why string) Engine {
	out := Engine{Kind: Buildkitd, Why: why}
	a = slices.Clone(a)
	slices.Sort(a)
	for _, addr := range slices.Compact(a) {
		out.Targets = append(out.Targets, Target{Addr: addr, TLS: tls})
	}
	return out
}

// Addrs splits a comma-separated list from the environment, such as
// BUILDKIT_HOST's addresses, trimming spaces and dropping empty items.
func Addrs(v string) []string {
	var out []string
	for _, a := range strings.Split(v, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
