package solver

import (
	"encoding/json"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/bkcache/bkcache/"

type goPackage struct {
	ImportPath string
	Imports    []string // direct, of the package's non-test files
	Deps       []string // transitive
}

// listPackages is `go list -json` of every package of the module.
func listPackages(t *testing.T) []goPackage {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "github.com/bkcache/bkcache/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []goPackage
	for dec := json.NewDecoder(out); ; {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		p.ImportPath = strings.TrimPrefix(p.ImportPath, module)
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return pkgs
}

func within(pkg string, prefixes ...string) bool {
	for _, p := range prefixes {
		if pkg == p || strings.HasPrefix(pkg, p+"/") {
			return true
		}
	}
	return false
}

// TestDependencyDirection keeps the direction of ../shared/DESIGN.md:
// cmd -> plan -> {hash, context, registry}; solver -> publish ->
// registry. hash and context work with no daemon and no registry; the
// plan decides a run without talking to either; only the solver
// (buildkitd) and the registry package (registries) talk to the network.
func TestDependencyDirection(t *testing.T) {
	buildkit := []string{"github.com/moby/buildkit/client", "github.com/moby/buildkit/session", "github.com/moby/buildkit/solver", "google.golang.org/grpc"}
	registryClient := []string{"github.com/google/go-containerregistry/pkg/v1/remote", "github.com/google/go-containerregistry/pkg/authn"}
	ours := func(p string) string { return module + p }
	for _, rule := range []struct {
		pkgs      []string // these packages (and those below them)
		forbidden []string // may not depend on these, even indirectly
	}{
		{[]string{"hash", "context"}, append(append(slices.Clone(buildkit), registryClient...), ours("solver"), "github.com/google/go-containerregistry/pkg/v1")},
		{[]string{"solver/plan", "solver/remote"}, append(slices.Clone(buildkit), ours("solver/daemon"))},
		{[]string{"solver/registry", "solver/record"}, append(slices.Clone(buildkit), ours("solver/plan"))},
		{[]string{"solver/record"}, registryClient},
		// The registry client knows images, tags and artifacts, not what
		// bkcache hashes or records in them.
		{[]string{"solver/registry"}, []string{ours("hash"), ours("context"), ours("solver/record"), ours("solver/publish")}},
		// Publishing is the registry's side of a service: it never talks
		// to buildkitd, and the buildkitd side calls it, not the reverse.
		{[]string{"solver/publish", "solver/outcome"}, append(slices.Clone(buildkit), ours("solver/daemon"))},
	} {
		for _, p := range listPackages(t) {
			if !within(p.ImportPath, rule.pkgs...) {
				continue
			}
			for _, dep := range p.Deps {
				for _, f := range rule.forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") {
						t.Errorf("%s depends on %s", p.ImportPath, dep)
					}
				}
			}
		}
	}
}

// TestNetworkClients: which packages talk to the network themselves,
// by importing a client. Tools and test harnesses are listed with why.
func TestNetworkClients(t *testing.T) {
	allowed := map[string][]string{
		"github.com/google/go-containerregistry/pkg/v1/remote": {
			"solver/registry",
			"solver/registry/registrytest", // writes fixtures into in-process registries
			"e2e/sandbox",                  // seeds the sandbox registry
			"bench/builds",                 // a measurement tool
		},
		"github.com/moby/buildkit/client": {
			"solver",
			"solver/daemon",  // asks the private buildkitd its version
			"solver/history", // reads a build's provenance from buildkitd's history
			"cmd/bkcache",    // the progress display's SolveStatus type only
			"bench/builds",   // rawjson progress decoded into its SolveStatus type only
			"e2e/sandbox",    // prunes the sandbox's daemons
		},
		"github.com/moby/moby/client": {
			"solver",        // builds on a Docker engine's BuildKit, and its image store
			"solver/engine", // asks whether a Docker engine answers
		},
		"net/http": {
			"solver/registry",
			"solver/remote",                // HTTP sources, ADD https://
			"solver",                       // status codes of the registry errors BuildKit reports
			"solver/cachekey",              // reads buildkitd's cache keys from its debug address
			"solver/registry/registrytest", // serves the in-process registry
			"solver/registry/registrytest/faultproxy", "e2e/sandbox",
		},
	}
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			for client, who := range allowed {
				if (imp == client || strings.HasPrefix(imp, client+"/")) && !slices.Contains(who, p.ImportPath) {
					t.Errorf("%s imports %s: only %v may", p.ImportPath, imp, who)
				}
			}
		}
	}
}

// TestOneImageRefLibrary: bkcache reads image refs with go-containerregistry's
// name package alone; context/imageref spells them as BuildKit does, and
// only its tests hold it to BuildKit's own library.
func TestOneImageRefLibrary(t *testing.T) {
	other := []string{"github.com/distribution/reference", "github.com/docker/distribution/reference", "github.com/containerd/containerd/reference"}
	for _, p := range listPackages(t) {
		for _, imp := range p.Imports {
			if slices.Contains(other, imp) {
				t.Errorf("%s imports %s: parse image refs with context/imageref (go-containerregistry's name)", p.ImportPath, imp)
			}
		}
	}
}
