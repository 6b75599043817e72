package solver

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/e2e/faultproxy"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	digest "github.com/opencontainers/go-digest"
)

// TestPromoteReadFailures: a skipped service whose promotion cannot read
// what it must decide on (R:F, the manifests attached to R:H, a compose
// tag, R:cache-H) never acts on the missing answer. Each read failing
// fails the service and leaves R:F, R:cache-F and the compose tag where
// they were; only R:cache-H's read is an optimisation's, so it warns and
// R:F still moves, unless a cache export is required. Dropping any of
// these errors moves R:F (or a tag) on a guess.
func TestPromoteReadFailures(t *testing.T) {
	p, host := rt.Faulty(t)
	unauthorized := func(method, path string) faultproxy.Fault {
		return faultproxy.Fault{Method: method, Path: path, Status: 401, Code: "UNAUTHORIZED"}
	}
	for i, tc := range []struct {
		name    string
		fault   faultproxy.Fault
		attach  bool
		require bool
		// attached says R:H carries its manifest before the run.
		attached bool
		wantErr  string // "" for a skip
		wantWarn string
	}{
		{name: "R:F unreadable", fault: unauthorized("HEAD", "/manifests/ci$"), wantErr: "reading "},
		{name: "compose tag unreadable", fault: unauthorized("HEAD", "/manifests/latest$"), wantErr: "reading the compose tag"},
		{name: "attached manifests unreadable", attach: true, fault: unauthorized("GET", "/referrers/"), wantErr: "reading the manifests attached to"},
		{name: "the missing manifest cannot be attached", attach: true, fault: faultproxy.Fault{Method: "PUT", Path: "/manifests/sha256:", Status: 400, Code: "MANIFEST_INVALID"}, wantErr: "attaching the manifest"},
		{name: "attached already: nothing written", attach: true, attached: true, fault: faultproxy.Fault{Method: "PUT", Path: "/manifests/sha256:", Status: 400, Code: "MANIFEST_INVALID"}},
		{name: "R:cache-H unreadable: a warning", fault: unauthorized("HEAD", "/manifests/cache-[0-9a-f]+$"), wantWarn: "reading "},
		{name: "R:cache-H unreadable, cache required", require: true, fault: unauthorized("HEAD", "/manifests/cache-[0-9a-f]+$"), wantErr: "reading "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			repo := fmt.Sprintf("p/reads%d", i)
			direct := host + "/" + repo
			rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
			rt.PushRandom(t, direct+":cache-"+testHash.Encoded())
			before := map[string]digest.Digest{
				"ci":       digest.Digest(rt.PushRandom(t, direct+":ci")),
				"cache-ci": digest.Digest(rt.PushRandom(t, direct+":cache-ci")),
				"latest":   digest.Digest(rt.PushRandom(t, direct+":latest")),
			}
			reg := registry.New(registry.Options{})
			b := NewBuilder(nil, reg, Options{Push: true, Attach: tc.attach, RequireCacheExport: tc.require, Recorder: testRecorder})
			j := jobTaggedLatest(t, p.Addr+"/"+repo)
			if tc.attached {
				if err := b.attach(context.Background(), reg, j, &Result{Service: "s", Hash: testHash.Encoded(), Digest: rh}); err != nil {
					t.Fatal(err)
				}
			}
			p.Inject(tc.fault)
			res := &Result{Service: "s", Hash: j.Inputs.Tag()}
			b.buildOne(context.Background(), j, nil, nil, "", res)
			p.Clear()

			warnings := strings.Join(res.Warnings, "\n")
			if (tc.wantWarn == "") != (warnings == "") || !strings.Contains(warnings, tc.wantWarn) {
				t.Errorf("warnings %q, want %q", warnings, tc.wantWarn)
			}
			after := map[string]digest.Digest{}
			for tag := range before {
				after[tag] = headDirect(t, direct+":"+tag)
			}
			if tc.wantErr != "" {
				if res.Status != Failed || !strings.Contains(res.Error, tc.wantErr) {
					t.Fatalf("status %s, error %q; want a failure with %q", res.Status, res.Error, tc.wantErr)
				}
				if after["ci"] != before["ci"] || after["cache-ci"] != before["cache-ci"] {
					t.Errorf("moved on a failed read: ci %v, cache-ci %v", after["ci"] != before["ci"], after["cache-ci"] != before["cache-ci"])
				}
				if tc.name == "compose tag unreadable" && after["latest"] != before["latest"] {
					t.Errorf("latest moved although it could not be read")
				}
				return
			}
			if res.Status != Skipped || after["ci"] != rh || after["latest"] != rh {
				t.Fatalf("status %s (%q), ci at R:H %v, latest at R:H %v", res.Status, res.Error, after["ci"] == rh, after["latest"] == rh)
			}
			if wantCacheMoved := tc.wantWarn == ""; (after["cache-ci"] != before["cache-ci"]) != wantCacheMoved {
				t.Errorf("cache-ci moved = %v, want %v", after["cache-ci"] != before["cache-ci"], wantCacheMoved)
			}
		})
	}
}

// TestSkipReleasesItsPaths: a service skipped because R:H is there takes
// its paths out of the directory it shares with services that build, so
// that the solve of the others does not send them; and its result says
// when it started.
func TestSkipReleasesItsPaths(t *testing.T) {
	host := rt.Serve(t, true).Host
	a := contextJob("a", "/repo", nil, "lib", "services/a")
	b := contextJob("b", "/repo", nil, "lib", "services/b")
	ref := testJob(t, host+"/p/a", testHash, &compose.Service{Name: "a", Image: host + "/p/a"})
	a.Refs, a.Inputs.Hash = ref.Refs, testHash
	rt.PushRandom(t, host+"/p/a:"+testHash.Encoded())
	sends := groupContexts([]*plan.Job{a, b})
	res := &Result{Service: "a", Hash: a.Inputs.Tag()}
	NewBuilder(nil, registry.New(registry.Options{}), Options{}).buildOne(context.Background(), a, sends[a], nil, "", res)
	if res.Status != Skipped || res.Start.IsZero() {
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
	j := testJob(t, direct, testHash, &compose.Service{Name: "s", Image: direct})
	res := &Result{Service: "s", Hash: j.Inputs.Tag()}
	NewBuilder(nil, registry.New(registry.Options{}), Options{}).buildOne(context.Background(), j, nil, nil, "", res)
	if res.Status != Skipped || headDirect(t, direct+":ci") != ci || res.Floating != "" {
		t.Errorf("status %s (%q), ci moved %v, floating %q", res.Status, res.Error, headDirect(t, direct+":ci") != ci, res.Floating)
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
		wantStatus Status
		wantKnown  digest.Digest // res.inRegistry
	}{
		{name: "--force", host: down, opt: Options{Force: true, Push: true}},
		{name: "no repository", host: down, local: true, opt: Options{Push: true}},
		{name: "an output without --push", host: down, opt: Options{Outputs: map[string]Output{"s": {Type: "oci", Dest: "/tmp/x.tar"}}}},
		{name: "an output with --push, R:H there", host: up, opt: Options{Push: true, Outputs: map[string]Output{"s": {Type: "oci", Dest: "/tmp/x.tar"}}}, wantKnown: rh},
		{name: "R:H there, no --push", host: up, wantSkip: true, wantStatus: Skipped},
		{name: "a registry down", host: down, wantSkip: true, wantStatus: Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := testJob(t, tc.host+"/p/app", testHash, &compose.Service{Name: "s", Image: tc.host + "/p/app"})
			j.Local = tc.local
			res := &Result{Service: "s", Hash: j.Inputs.Tag()}
			reg := registry.New(registry.Options{})
			skipped := NewBuilder(nil, reg, tc.opt).skip(context.Background(), j, "", res)
			if skipped != tc.wantSkip || res.Status != tc.wantStatus || res.inRegistry != tc.wantKnown {
				t.Errorf("skip = %v, status %q (%q), known %q; want %v, %q, %q", skipped, res.Status, res.Error, res.inRegistry, tc.wantSkip, tc.wantStatus, tc.wantKnown)
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
	j := testJob(t, "127.0.0.1:1/p/app", testHash, svc)
	res := &Result{Service: "s", Hash: j.Inputs.Tag()}
	NewBuilder(nil, registry.New(registry.Options{}), Options{Force: true}).buildOne(context.Background(), j, nil, nil, "", res)
	if res.Status != Failed || !strings.Contains(res.Error, "build ssh") || !strings.Contains(res.Error, "no-such-key") {
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
	j := testJob(t, "127.0.0.1:1/p/app", testHash, svc)
	res := &Result{Service: "s", Hash: j.Inputs.Tag()}
	opt := Options{Force: true, Outputs: map[string]Output{"s": {Type: "docker", Dest: dir + "/s.tar", Platform: "linux/amd64"}}}
	NewBuilder(nil, registry.New(registry.Options{}), opt).buildOne(context.Background(), j, nil, nil, "", res)
	if res.Status != Failed || !strings.Contains(res.Error, "not for linux/amd64") || !strings.Contains(res.Error, `service "s"`) {
		t.Errorf("status %s, error %q; want a failure naming the platform", res.Status, res.Error)
	}
	// A platform it builds passes on to the options (which then fail
	// for an ssh key that does not exist, before the solve).
	svc.SSH = []compose.SSH{{ID: "deploy", Paths: []string{dir + "/no-such-key"}}}
	svc.Platforms = append(svc.Platforms, "linux/amd64")
	res = &Result{Service: "s", Hash: j.Inputs.Tag()}
	NewBuilder(nil, registry.New(registry.Options{}), opt).buildOne(context.Background(), j, nil, nil, "", res)
	if !strings.Contains(res.Error, "build ssh") {
		t.Errorf("with the platform built: error %q, want the options' failure", res.Error)
	}
}

// TestPromoteAlreadyThereWritesNothing: a skip whose R:F, R:cache-F and
// compose tags already name what R:H and R:cache-H hold writes nothing:
// a registry refusing every manifest write (tags made immutable) still
// sees a clean skip.
func TestPromoteAlreadyThereWritesNothing(t *testing.T) {
	p, host := rt.Faulty(t)
	direct := host + "/p/there"
	rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
	cache := digest.Digest(rt.PushRandom(t, direct+":cache-"+testHash.Encoded()))
	tags := map[string]digest.Digest{"rh": rh, "cache": cache}
	copyTag(t, direct, "rh", tags, "ci")
	copyTag(t, direct, "rh", tags, "latest")
	copyTag(t, direct, "cache", tags, "cache-ci")
	p.Inject(faultproxy.Fault{Method: "PUT", Path: "/manifests/", Status: 400, Code: "TAG_INVALID", Message: "tags are immutable"})
	defer p.Clear()
	j := jobTaggedLatest(t, p.Addr+"/p/there")
	res := &Result{Service: "s", Hash: j.Inputs.Tag()}
	NewBuilder(nil, registry.New(registry.Options{}), Options{Push: true}).buildOne(context.Background(), j, nil, nil, "", res)
	if res.Status != Skipped || res.Error != "" || res.Floating == "" {
		t.Errorf("status %s, error %q, floating %q; want a clean skip at R:F", res.Status, res.Error, res.Floating)
	}
}
