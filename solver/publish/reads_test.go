package publish

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	digest "github.com/opencontainers/go-digest"
)

// TestPromoteReadFailures: a skipped service whose promotion cannot read
// what it must decide on (R:F, the records attached to R:H, a compose
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
		// attached says R:H carries its record before the run.
		attached bool
		wantErr  string // "" for a skip
		wantWarn string
	}{
		{name: "R:F unreadable", fault: unauthorized("HEAD", "/manifests/ci$"), wantErr: "reading "},
		{name: "compose tag unreadable", fault: unauthorized("HEAD", "/manifests/latest$"), wantErr: "reading the compose tag"},
		{name: "attached manifests unreadable", attach: true, fault: unauthorized("GET", "/referrers/"), wantErr: "reading the manifests attached to"},
		{name: "the missing manifest cannot be attached", attach: true, fault: faultproxy.Fault{Method: "PUT", Path: "/manifests/sha256:", Status: 400, Code: "MANIFEST_INVALID"}, wantErr: "attaching the manifest"},
		{name: "attached already: nothing written", attach: true, attached: true, fault: faultproxy.Fault{Method: "PUT", Path: "/manifests/sha256:", Status: 400, Code: "MANIFEST_INVALID"}},
		{name: "R:cache-H unreadable: a warning", fault: unauthorized("", "/manifests/cache-[0-9a-f]+$"), wantWarn: "reading "},
		{name: "R:cache-H unreadable, cache required", require: true, fault: unauthorized("", "/manifests/cache-[0-9a-f]+$"), wantErr: "reading "},
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
			b := New(reg, Options{Attach: tc.attach, RequireCacheExport: tc.require, Recorder: testRecorder})
			j := taggedLatest(t, p.Addr+"/"+repo)
			if tc.attached {
				if err := b.attach(context.Background(), reg, j, &outcome.Result{Service: "s", Hash: testHash.Encoded(), Digest: rh}); err != nil {
					t.Fatal(err)
				}
			}
			p.Inject(tc.fault)
			res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
			skip(t, b, j, res)
			p.Clear()

			warnings := strings.Join(res.Warnings, "\n")
			if (tc.wantWarn == "") != (warnings == "") || !strings.Contains(warnings, tc.wantWarn) {
				t.Errorf("warnings %q, want %q", warnings, tc.wantWarn)
			}
			after := map[string]digest.Digest{}
			for tag := range before {
				after[tag] = digest.Digest(rt.Head(t, direct+":"+tag))
			}
			if tc.wantErr != "" {
				if res.Status != outcome.Failed || !strings.Contains(res.Error, tc.wantErr) {
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
			if res.Status != outcome.Skipped || after["ci"] != rh || after["latest"] != rh {
				t.Fatalf("status %s (%q), ci at R:H %v, latest at R:H %v", res.Status, res.Error, after["ci"] == rh, after["latest"] == rh)
			}
			if wantCacheMoved := tc.wantWarn == ""; (after["cache-ci"] != before["cache-ci"]) != wantCacheMoved {
				t.Errorf("cache-ci moved = %v, want %v", after["cache-ci"] != before["cache-ci"], wantCacheMoved)
			}
		})
	}
}

// TestPromoteImageUnreadable: a promotion that cannot read the manifest
// R:H held fails, and moves neither R:cache-F nor R:F.
func TestPromoteImageUnreadable(t *testing.T) {
	p, host := rt.Faulty(t)
	direct := host + "/p/unreadable"
	rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
	rt.PushRandom(t, direct+":cache-"+testHash.Encoded())
	before := map[string]digest.Digest{
		"ci":       digest.Digest(rt.PushRandom(t, direct+":ci")),
		"cache-ci": digest.Digest(rt.PushRandom(t, direct+":cache-ci")),
	}
	p.Inject(faultproxy.Fault{Method: "GET", Path: "/manifests/" + rh.String() + "$", Status: 401, Code: "UNAUTHORIZED"})
	j := plantest.Job(t, p.Addr+"/p/unreadable", testHash, &compose.Service{Name: "s"})
	res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	skip(t, New(registry.New(registry.Options{}), Options{}), j, res)
	p.Clear()
	if res.Status != outcome.Failed || !strings.Contains(res.Error, "moving "+j.Refs.Floating.String()) {
		t.Errorf("status %s, error %q; want a failure moving R:F", res.Status, res.Error)
	}
	for tag, d := range before {
		if got := digest.Digest(rt.Head(t, direct+":"+tag)); got != d {
			t.Errorf("%s moved although R:H's manifest could not be read", tag)
		}
	}
}

// TestPromoteAlreadyThereWritesNothing: a skip whose R:F, R:cache-F and
// compose tags already name what R:H and R:cache-H hold writes nothing:
// a registry refusing every manifest write (tags made immutable) still
// sees a clean skip, with or without records (then already attached).
func TestPromoteAlreadyThereWritesNothing(t *testing.T) {
	for _, attach := range []bool{false, true} {
		p, host := rt.Faulty(t)
		direct := host + "/p/there"
		rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
		cache := digest.Digest(rt.PushRandom(t, direct+":cache-"+testHash.Encoded()))
		retag(t, direct, rh, "ci")
		retag(t, direct, rh, "latest")
		retag(t, direct, cache, "cache-ci")
		j := taggedLatest(t, p.Addr+"/p/there")
		pub := New(registry.New(registry.Options{}), Options{Attach: attach, Recorder: testRecorder})
		if attach {
			if err := pub.attach(context.Background(), registry.New(registry.Options{}), j, &outcome.Result{Service: "s", Hash: testHash.Encoded(), Digest: rh}); err != nil {
				t.Fatal(err)
			}
		}
		p.Inject(faultproxy.Fault{Method: "PUT", Path: "/manifests/", Status: 400, Code: "TAG_INVALID", Message: "tags are immutable"})
		res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
		skip(t, pub, j, res)
		p.Clear()
		if res.Status != outcome.Skipped || res.Error != "" || res.Floating == "" {
			t.Errorf("attach=%v: status %s, error %q, floating %q; want a clean skip at R:F", attach, res.Status, res.Error, res.Floating)
		}
	}
}

// TestPromoteWithoutRecordsReadsNoReferrers: with records off
// (--no-attach-manifest), a promotion never asks for the referrers of
// R:H: a registry that refuses that API still moves R:F.
func TestPromoteWithoutRecordsReadsNoReferrers(t *testing.T) {
	p, host := rt.Faulty(t)
	direct := host + "/p/norefs"
	rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
	rt.PushRandom(t, direct+":ci")
	p.Inject(faultproxy.Fault{Path: "referrers|sha256-", Status: 401, Code: "UNAUTHORIZED"})
	defer p.Clear()
	j := plantest.Job(t, p.Addr+"/p/norefs", testHash, &compose.Service{Name: "s"})
	res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	skip(t, New(registry.New(registry.Options{}), Options{}), j, res)
	if res.Status != outcome.Skipped || res.Error != "" || digest.Digest(rt.Head(t, direct+":ci")) != rh {
		t.Errorf("status %s, error %q; want R:F moved to R:H", res.Status, res.Error)
	}
}

// TestCheckFails: a skip check the registry cannot answer is an error
// that names R:H, never a miss or a hit.
func TestCheckFails(t *testing.T) {
	j := plantest.Job(t, "127.0.0.1:1/p/app", testHash, &compose.Service{Name: "s"})
	d, found, err := New(registry.New(registry.Options{}), Options{}).Check(context.Background(), j)
	if err == nil || found || d != "" || !strings.Contains(err.Error(), "checking whether "+j.Refs.Image.String()+" exists") {
		t.Errorf("Check = %q, %v, %v", d, found, err)
	}
}

// TestPromoteReadsAtOnce: a promotion sends the reads its moves need
// (the records attached to R:H, R:cache-H, the manifest R:H holds) at
// once, not one after the other, and then moves R:cache-F and R:F at
// once: each group is held at the registry until all of it has arrived.
// Sent in turn, the first of a group would wait out its hold, and the
// test fails.
func TestPromoteReadsAtOnce(t *testing.T) {
	p, host := rt.Faulty(t)
	direct := host + "/p/atonce"
	rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
	cache := digest.Digest(rt.PushRandom(t, direct+":cache-"+testHash.Encoded()))
	rt.PushRandom(t, direct+":ci")
	j := plantest.Job(t, p.Addr+"/p/atonce", testHash, &compose.Service{Name: "s"})
	pub := New(registry.New(registry.Options{}), Options{Attach: true, Recorder: testRecorder})
	if err := pub.attach(context.Background(), registry.New(registry.Options{}), j, &outcome.Result{Service: "s", Hash: testHash.Encoded(), Digest: rh}); err != nil {
		t.Fatal(err)
	}
	var timedOut atomic.Bool
	// together holds each request of a group of n until all n arrived.
	together := func(n int) func() {
		var arrived sync.WaitGroup
		arrived.Add(n)
		return func() {
			arrived.Done()
			all := make(chan struct{})
			go func() { arrived.Wait(); close(all) }()
			select {
			case <-all:
			case <-time.After(10 * time.Second):
				timedOut.Store(true)
			}
		}
	}
	reads, moves := together(3), together(2)
	for _, f := range []faultproxy.Fault{
		{Method: "GET", Path: "/referrers/", Before: reads},
		{Method: "GET", Path: "/manifests/cache-[0-9a-f]+$", Before: reads},
		{Method: "GET", Path: "/manifests/" + rh.String() + "$", Before: reads},
		{Method: "PUT", Path: "/manifests/cache-ci$", Before: moves},
		{Method: "PUT", Path: "/manifests/ci$", Before: moves},
	} {
		f.Times = 1
		p.Inject(f)
	}
	res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	skip(t, pub, j, res)
	if timedOut.Load() {
		t.Errorf("the promotion's reads, or its moves, went out one after the other:\n%s", strings.Join(p.Log(), "\n"))
	}
	p.Clear()
	if res.Status != outcome.Skipped || digest.Digest(rt.Head(t, direct+":ci")) != rh || digest.Digest(rt.Head(t, direct+":cache-ci")) != cache {
		t.Errorf("status %s (%q): R:F and R:cache-F not moved to R:H and R:cache-H", res.Status, res.Error)
	}
}
