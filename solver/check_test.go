package solver

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	digest "github.com/opencontainers/go-digest"
)

// testHash is the input hash of the services checked here.
var testHash = digest.FromString("inputs of s")

// TestSkipReleasesItsPaths: a service skipped because R:H is there takes
// its paths out of the directory it shares with services that build, so
// that the solve of the others does not send them; and its result says
// when it started.
func TestSkipReleasesItsPaths(t *testing.T) {
	host := rt.Serve(t, true).Host
	a := contextJob("a", "/repo", nil, "lib", "services/a")
	b := contextJob("b", "/repo", nil, "lib", "services/b")
	ref := plantest.Job(t, host+"/p/a", testHash, &compose.Service{Name: "a", Image: host + "/p/a"})
	a.Refs, a.Inputs.Hash = ref.Refs, testHash
	rt.PushRandom(t, host+"/p/a:"+testHash.Encoded())
	sends := groupContexts([]*plan.Job{a, b})
	res := &outcome.Result{Service: "a", Hash: a.Inputs.Tag()}
	NewBuilder(nil, publish.New(registry.New(registry.Options{}), publish.Options{}), Options{}).buildOne(context.Background(), a, sends[a], nil, "", res)
	if res.Status != outcome.Skipped || res.Start.IsZero() {
		t.Fatalf("status %s (%q), start %v", res.Status, res.Error, res.Start)
	}
	if got := group(sends, b, "context").context().paths; !slices.Equal(got, []string{"lib", "services/b"}) {
		t.Errorf("the shared directory sends %q, want b's paths only", got)
	}
}

// TestSkipWithoutPushWritesNothing: without --push a skip only reads: R:F
// stays where it was even when R:H is another image.
func TestSkipWithoutPushWritesNothing(t *testing.T) {
	host := rt.Serve(t, true).Host
	direct := host + "/p/app"
	rt.PushRandom(t, direct+":"+testHash.Encoded())
	ci := digest.Digest(rt.PushRandom(t, direct+":ci"))
	j := plantest.Job(t, direct, testHash, &compose.Service{Name: "s", Image: direct})
	res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	NewBuilder(nil, publish.New(registry.New(registry.Options{}), publish.Options{}), Options{}).buildOne(context.Background(), j, nil, nil, "", res)
	if res.Status != outcome.Skipped || digest.Digest(rt.Head(t, direct+":ci")) != ci || res.Floating != "" {
		t.Errorf("status %s (%q), ci moved %v, floating %q", res.Status, res.Error, digest.Digest(rt.Head(t, direct+":ci")) != ci, res.Floating)
	}
}

// TestSkipAsksOnlyWhenItMatters: the skip check reads the registry only
// where its answer decides something: not with --force, not for a
// service without a repository, not for an output without --push (a
// registry that cannot be reached then fails nothing). With --push and
// an output, an R:H that is there is remembered and the output solved.
func TestSkipAsksOnlyWhenItMatters(t *testing.T) {
	up := rt.Serve(t, true).Host
	rh := digest.Digest(rt.PushRandom(t, up+"/p/app:"+testHash.Encoded()))
	down := "127.0.0.1:1" // nothing listens there
	for _, tc := range []struct {
		name       string
		host       string
		opt        Options
		local      bool
		wantSkip   bool
		wantStatus outcome.Status
		wantKnown  digest.Digest // what check returns as in the registry
	}{
		{name: "--force", host: down, opt: Options{Force: true, Push: true}},
		{name: "no repository", host: down, local: true, opt: Options{Push: true}},
		{name: "an output without --push", host: down, opt: Options{Outputs: map[string]Output{"s": {Type: "oci", Dest: "/tmp/x.tar"}}}},
		{name: "an output with --push, R:H there", host: up, opt: Options{Push: true, Outputs: map[string]Output{"s": {Type: "oci", Dest: "/tmp/x.tar"}}}, wantKnown: rh},
		{name: "R:H there, no --push", host: up, wantSkip: true, wantStatus: outcome.Skipped},
		{name: "a registry down", host: down, wantSkip: true, wantStatus: outcome.Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := plantest.Job(t, tc.host+"/p/app", testHash, &compose.Service{Name: "s", Image: tc.host + "/p/app"})
			j.Local = tc.local
			res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
			reg := registry.New(registry.Options{})
			known, skipped := NewBuilder(nil, publish.New(reg, publish.Options{}), tc.opt).check(context.Background(), j, "", res)
			if skipped != tc.wantSkip || res.Status != tc.wantStatus || known != tc.wantKnown {
				t.Errorf("done = %v, status %q (%q), known %q; want %v, %q, %q", skipped, res.Status, res.Error, known, tc.wantSkip, tc.wantStatus, tc.wantKnown)
			}
		})
	}
}

// TestSolveOptionsFailBeforeTheSolve: options that cannot be made (an ssh
// key that does not exist) fail the service with the reason before any
// solve, and nothing is built.
func TestSolveOptionsFailBeforeTheSolve(t *testing.T) {
	dir := t.TempDir()
	svc := &compose.Service{Name: "s", Context: compose.Context{Kind: compose.LocalContext, Source: dir}, Dockerfile: dir + "/Dockerfile",
		SSH: []compose.SSH{{ID: "deploy", Paths: []string{dir + "/no-such-key"}}}}
	j := plantest.Job(t, "127.0.0.1:1/p/app", testHash, svc)
	res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	NewBuilder(nil, publish.New(registry.New(registry.Options{}), publish.Options{}), Options{Force: true}).buildOne(context.Background(), j, nil, nil, "", res)
	if res.Status != outcome.Failed || !strings.Contains(res.Error, "build ssh") || !strings.Contains(res.Error, "no-such-key") {
		t.Errorf("status %s, error %q; want a failure naming the ssh key", res.Status, res.Error)
	}
}

// TestOneImageOutputOfAnotherPlatform: a docker image output (one
// platform) of a service that does not build that platform fails the
// service, naming both, before any solve.
func TestOneImageOutputOfAnotherPlatform(t *testing.T) {
	dir := t.TempDir()
	svc := &compose.Service{Name: "s", Context: compose.Context{Kind: compose.LocalContext, Source: dir}, Dockerfile: dir + "/Dockerfile",
		Platforms: []string{"linux/arm64", "linux/s390x"}}
	j := plantest.Job(t, "127.0.0.1:1/p/app", testHash, svc)
	res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	opt := Options{Force: true, Outputs: map[string]Output{"s": {Type: "docker", Dest: dir + "/s.tar", Platform: "linux/amd64"}}}
	NewBuilder(nil, publish.New(registry.New(registry.Options{}), publish.Options{}), opt).buildOne(context.Background(), j, nil, nil, "", res)
	if res.Status != outcome.Failed || !strings.Contains(res.Error, "not for linux/amd64") || !strings.Contains(res.Error, `service "s"`) {
		t.Errorf("status %s, error %q; want a failure naming the platform", res.Status, res.Error)
	}
	// A platform it builds passes on to the options (which then fail
	// for an ssh key that does not exist, before the solve).
	svc.SSH = []compose.SSH{{ID: "deploy", Paths: []string{dir + "/no-such-key"}}}
	svc.Platforms = append(svc.Platforms, "linux/amd64")
	res = &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	NewBuilder(nil, publish.New(registry.New(registry.Options{}), publish.Options{}), opt).buildOne(context.Background(), j, nil, nil, "", res)
	if !strings.Contains(res.Error, "build ssh") {
		t.Errorf("with the platform built: error %q, want the options' failure", res.Error)
	}
}

// TestBuilderDefaults: unset and nonsensical options get the documented
// defaults (a parallelism of 0 would never start a solve): by default
// each node takes SolvesPerWorker services per worker it reported, a
// given --parallel bounds each node alike, and the pool given is left as
// it was.
func TestBuilderDefaults(t *testing.T) {
	for _, opt := range []Options{{}, {Parallel: -1, Attempts: -1}} {
		if b := NewBuilder(nil, nil, opt); b.opt.Attempts != DefaultAttempts || b.width() != 1 {
			t.Errorf("NewBuilder(%+v): attempts %d, width %d", opt, b.opt.Attempts, b.width())
		}
	}
	two := []*client.WorkerInfo{{ID: "runc"}, {ID: "containerd"}}
	for _, tc := range []struct {
		parallel    int
		a, b, width int
	}{
		{0, SolvesPerWorker, 2 * SolvesPerWorker, 3 * SolvesPerWorker},
		{1, 1, 1, 2},
		{7, 7, 7, 14},
	} {
		pool := &Pool{nodes: []*Node{{Addr: "a"}, {Addr: "b", workers: two}}}
		b := NewBuilder(pool, nil, Options{Parallel: tc.parallel, Attempts: 1})
		if b.opt.Parallel != tc.parallel || b.opt.Attempts != 1 {
			t.Errorf("given options were changed: %+v", b.opt)
		}
		if got := [3]int{cap(b.sems[pool.nodes[0]]), cap(b.sems[pool.nodes[1]]), b.width()}; got != [3]int{tc.a, tc.b, tc.width} {
			t.Errorf("--parallel %d: nodes take %d and %d, the pool %d; want %d, %d, %d", tc.parallel, got[0], got[1], got[2], tc.a, tc.b, tc.width)
		}
		if len(pool.nodes) != 2 || pool.nodes[0].Addr != "a" || pool.nodes[1].Addr != "b" {
			t.Errorf("the pool changed: %+v", pool.nodes)
		}
	}
}

// TestFinishKeepsTheLayout: a build without --push is built with the
// digest buildkitd reported (none when it reported none: a local
// output), and hands its OCI layout to its dependents.
func TestFinishKeepsTheLayout(t *testing.T) {
	b := NewBuilder(nil, publish.New(registry.New(registry.Options{}), publish.Options{}), Options{})
	d := "sha256:" + strings.Repeat("a", 64)
	for _, tc := range []struct{ layout, reported string }{{"", d}, {"/tmp/layout", d}, {"", ""}} {
		resp := &client.SolveResponse{ExporterResponse: map[string]string{}}
		if tc.reported != "" {
			resp.ExporterResponse[exptypes.ExporterImageDigestKey] = tc.reported
		}
		res := &outcome.Result{Service: "s"}
		b.finish(context.Background(), plantest.Job(t, "r", testHash, &compose.Service{Name: "s"}), resp, publish.CacheResult{}, tc.layout, "", res)
		if res.Layout != tc.layout || res.Status != outcome.Built || string(res.Digest) != tc.reported {
			t.Errorf("%+v: result layout %q, status %s, digest %q", tc, res.Layout, res.Status, res.Digest)
		}
	}
}
