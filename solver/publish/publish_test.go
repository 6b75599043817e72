package publish

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	digest "github.com/opencontainers/go-digest"
)

// step is one of the things that must go right before R:F may move.
type step uint

const (
	stepPush            step = 1 << iota // buildkitd's push of R:H never reached the registry
	stepCacheExport                      // buildkitd's cache export to R:cache-H failed
	stepAttach                           // the PUT of the bkcache manifest artifact
	stepRetagFloat                       // the PUT of R:F
	stepRetagCacheFloat                  // the PUT of R:cache-F
	allSteps
)

func (s step) String() string {
	if s == 0 {
		return "none"
	}
	var out []string
	for i, n := range []string{"push", "cache-export", "attach", "retag-F", "retag-cache-F"} {
		if s&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return strings.Join(out, "+")
}

// testRecorder is the Recorder cmd/bkcache attaches records with, cut
// to what the invariants read.
var testRecorder = Recorder{Project: "p", Tool: "test", Start: time.Unix(1, 0)}

// testHash is the input hash of the services published here.
var testHash = digest.FromString("inputs of s")

// injectFailures makes the registry-side steps in fails fail for repo,
// with an answer clients do not retry (as a registry refusing a
// manifest or an immutable tag gives).
func injectFailures(p *faultproxy.Proxy, repo string, fails step) {
	for _, f := range []struct {
		step step
		path string
	}{
		{stepAttach, `/manifests/sha256:`},
		{stepRetagFloat, `/manifests/ci$`},
		{stepRetagCacheFloat, `/manifests/cache-ci$`},
	} {
		if fails&f.step != 0 {
			p.Inject(faultproxy.Fault{Method: "PUT", Path: "^/v2/" + repo + f.path, Status: 400, Code: "MANIFEST_INVALID"})
		}
	}
}

// tagState is what a tag pointed at before and after a step.
type tagState struct{ before, after digest.Digest }

func (s tagState) moved() bool { return s.before != s.after }

// TestPublishInvariants fails every subset of the steps between a solve
// and R:F's move, with and without --require-cache-export, with and
// without an earlier R:F, and checks what the registry holds afterwards:
// R:F is where it was, or at a complete R:H that carries its record;
// R:cache-F moves only when everything before R:F's own move went well;
// and the result says exactly which.
func TestPublishInvariants(t *testing.T) {
	p, host := rt.Faulty(t)
	n := 0
	for fails := step(0); fails < allSteps; fails++ {
		for _, require := range []bool{false, true} {
			for _, prior := range []bool{false, true} {
				n++
				repo := fmt.Sprintf("p/s%d", n)
				t.Run(fmt.Sprintf("fail=%v/require=%v/prior=%v", fails, require, prior), func(t *testing.T) {
					p.Clear()
					testPublish(t, p, host, repo, fails, require, prior)
				})
			}
		}
	}
}

func testPublish(t *testing.T, p *faultproxy.Proxy, host, repo string, fails step, require, prior bool) {
	direct := host + "/" + repo
	var f, cf tagState
	if prior {
		f.before = digest.Digest(rt.PushRandom(t, direct+":ci"))
		cf.before = digest.Digest(rt.PushRandom(t, direct+":cache-ci"))
	}
	h := testHash.Encoded()
	built := digest.FromString("an image buildkitd reported but never pushed")
	if fails&stepPush == 0 {
		built = digest.Digest(rt.PushRandom(t, direct+":"+h))
	}
	var cacheFailures []string
	if fails&stepCacheExport == 0 {
		rt.PushCache(t, direct+":cache-"+h, "image-manifest")
	} else {
		cacheFailures = []string{"exporting cache to " + direct + ":cache-" + h + ": injected"}
		if prior {
			// An R:cache-H an earlier build of these inputs left: not
			// this run's, so neither its size nor a move of R:cache-F.
			rt.PushCache(t, direct+":cache-"+h, "image-manifest")
		}
	}
	injectFailures(p, repo, fails)

	b := New(registry.New(registry.Options{}), Options{RequireCacheExport: require, Attach: true, Recorder: testRecorder})
	j := plantest.Job(t, p.Addr+"/"+repo, testHash, &compose.Service{Name: "s"})
	refs := j.Refs
	res := &outcome.Result{Service: "s", Hash: h}
	publishBuilt(b, j, built, cacheFailures, "", res)
	p.Clear()

	f.after = digest.Digest(rt.Head(t, direct+":ci"))
	cf.after = digest.Digest(rt.Head(t, direct+":cache-ci"))
	wantMoved := fails&(stepPush|stepAttach|stepRetagFloat) == 0 &&
		!(require && fails&(stepCacheExport|stepRetagCacheFloat) != 0)
	if f.moved() != wantMoved {
		t.Fatalf("R:F moved = %v, want %v (status %s, error %q)", f.moved(), wantMoved, res.Status, res.Error)
	}
	checkFloating(t, direct, refs, f, res)
	// R:cache-F moves to R:cache-H only once R:H is in the registry with
	// its record, and never when there is no R:cache-H: an earlier
	// build's R:cache-H is one (the cache of the same inputs), unless a
	// required export failed, which stops the run first.
	staleCacheH := fails&stepCacheExport != 0 && prior
	wantCacheMoved := fails&(stepPush|stepAttach|stepRetagCacheFloat) == 0 &&
		(fails&stepCacheExport == 0 || staleCacheH && !require)
	if cf.moved() != wantCacheMoved {
		t.Fatalf("R:cache-F moved = %v, want %v (status %s, error %q)", cf.moved(), wantCacheMoved, res.Status, res.Error)
	}
	if cf.moved() && cf.after != digest.Digest(rt.Head(t, direct+":cache-"+h)) {
		t.Fatalf("R:cache-F moved to %s, which is not R:cache-H", cf.after)
	}
	requiredCacheFailed := require && fails&stepCacheExport != 0 // fails before any registry step
	if fails&stepPush != 0 && !requiredCacheFailed && !strings.Contains(res.Error, "the registry has no such tag") {
		t.Errorf("R:H never reached the registry, but the error does not say so: %q", res.Error)
	}
	if fails&stepCacheExport != 0 && !staleCacheH && strings.Contains(strings.Join(res.Warnings, "\n"), "moving "+refs.CacheFloat.String()) {
		t.Errorf("no R:cache-H to move R:cache-F to, yet a warning about moving it: %q", res.Warnings)
	}
	// The size of the cache written is read from the registry when the
	// export succeeded (while R:H is checked): never an earlier build's.
	if wantSize := fails&stepCacheExport == 0; (res.CacheExportBytes > 0) != wantSize {
		t.Errorf("cache export bytes %d, want a size: %v", res.CacheExportBytes, wantSize)
	}
	if fails&stepRetagCacheFloat != 0 && fails&(stepPush|stepAttach|stepCacheExport) == 0 && !require &&
		!strings.Contains(strings.Join(res.Warnings, "\n"), "cache-ci") {
		t.Errorf("a failed move of R:cache-F left no warning naming it: %q", res.Warnings)
	}
}

// checkFloating asserts the invariant on R:F and that res reports it.
func checkFloating(t *testing.T, direct string, refs plan.Refs, f tagState, res *outcome.Result) {
	t.Helper()
	if !f.moved() {
		if res.Floating != "" {
			t.Errorf("R:F did not move but the result says floating=%q", res.Floating)
		}
		if res.Status != outcome.Failed || !strings.Contains(res.Error, refs.Floating.String()) && !strings.Contains(res.Error, refs.Image.String()) {
			t.Errorf("R:F did not move: want a failure naming %s or %s, got status %s, error %q", refs.Floating, refs.Image, res.Status, res.Error)
		}
		return
	}
	if res.Floating != refs.Floating.String() || (res.Status != outcome.Built && res.Status != outcome.Skipped) {
		t.Errorf("R:F moved but the result says status %s, floating %q, error %q", res.Status, res.Floating, res.Error)
	}
	if h := digest.Digest(rt.Head(t, direct+":"+refs.Image.TagStr())); f.after != h {
		t.Fatalf("R:F points at %s, R:H at %s", f.after, h)
	}
	n, _ := name.ParseReference(direct+":ci", name.Insecure)
	img, err := remote.Image(n)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Fatalf("R:F points at an incomplete image: %v", err)
	}
	m, err := ReadRecord(context.Background(), registry.New(registry.Options{}), rt.Ref(t, direct+":ci"))
	if err != nil {
		t.Fatalf("R:F points at an image without its bkcache manifest: %v", err)
	}
	if len(m.Services) != 1 || m.Services[0].Hash != res.Hash {
		t.Fatalf("R:F's manifest is not this build's: %+v", m.Services)
	}
}

// TestPromoteInvariants covers a skipped service: R:H is there already,
// and R:F (with R:cache-F) follows it, back to an earlier image too.
func TestPromoteInvariants(t *testing.T) {
	p, host := rt.Faulty(t)
	h1, h2 := digest.FromString("inputs one"), digest.FromString("inputs two")
	for i, tc := range []struct {
		name  string
		fails step
		// require is --require-cache-export.
		require bool
		// floatAt says where R:F points first: "" nowhere, "h1", "h2".
		floatAt     string
		wantMoved   bool
		wantCacheAt string // where R:cache-F ends: "h1", "h2" or ""
	}{
		{name: "first promotion", floatAt: "", wantMoved: true, wantCacheAt: "h1"},
		{name: "revert to an earlier R:H", floatAt: "h2", wantMoved: true, wantCacheAt: "h1"},
		{name: "already there", floatAt: "h1", wantMoved: false, wantCacheAt: "h1"},
		{name: "retag of R:F fails", fails: stepRetagFloat, floatAt: "h2", wantMoved: false, wantCacheAt: "h1"},
		{name: "retag of R:cache-F fails", fails: stepRetagCacheFloat, floatAt: "h2", wantMoved: true, wantCacheAt: "h2"},
		{name: "retag of R:cache-F fails, required", fails: stepRetagCacheFloat, require: true, floatAt: "h2", wantMoved: false, wantCacheAt: "h2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			repo := fmt.Sprintf("p/promote%d", i)
			direct := host + "/" + repo
			tags := map[string]digest.Digest{}
			for _, h := range []struct {
				key string
				d   digest.Digest
			}{{"h1", h1}, {"h2", h2}} {
				tags[h.key] = digest.Digest(rt.PushRandom(t, direct+":"+h.d.Encoded()))
				tags["cache-"+h.key] = digest.Digest(rt.PushRandom(t, direct+":cache-"+h.d.Encoded()))
			}
			var f tagState
			if tc.floatAt != "" {
				f.before = retag(t, direct, tags[tc.floatAt], "ci")
				retag(t, direct, tags["cache-"+tc.floatAt], "cache-ci")
			}
			injectFailures(p, repo, tc.fails)
			b := New(registry.New(registry.Options{}), Options{RequireCacheExport: tc.require})
			j := plantest.Job(t, p.Addr+"/"+repo, h1, &compose.Service{Name: "s", Image: p.Addr + "/" + repo})
			res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
			skip(t, b, j, res)
			p.Clear()

			f.after = digest.Digest(rt.Head(t, direct+":ci"))
			if f.moved() != tc.wantMoved {
				t.Fatalf("R:F moved = %v, want %v (status %s, error %q)", f.moved(), tc.wantMoved, res.Status, res.Error)
			}
			if got := digest.Digest(rt.Head(t, direct+":cache-ci")); got != tags["cache-"+tc.wantCacheAt] {
				t.Errorf("R:cache-F at %s, want R:cache-%s (%s)", got, tc.wantCacheAt, tags["cache-"+tc.wantCacheAt])
			}
			if f.after != tags["h1"] && f.after != f.before {
				t.Fatalf("R:F at %s: neither R:H nor where it was", f.after)
			}
			wantFloating := f.after == tags["h1"]
			if (res.Floating != "") != wantFloating {
				t.Errorf("result floating=%q, but R:F at R:H is %v", res.Floating, wantFloating)
			}
			if wantStatus := map[bool]outcome.Status{true: outcome.Skipped, false: outcome.Failed}[wantFloating]; res.Status != wantStatus {
				t.Errorf("status %s, want %s (error %q)", res.Status, wantStatus, res.Error)
			}
		})
	}
}

// TestPromoteAttachesMissingManifest: an R:H that a run stopped before
// attaching its record (pushed, nothing attached) gets the record
// when a later run skips it and moves R:F there, so that R:F never names
// an image without one; an R:H that has one is not given a second.
func TestPromoteAttachesMissingManifest(t *testing.T) {
	host := rt.Serve(t, true).Host
	h := digest.FromString("inputs")
	reg := registry.New(registry.Options{})
	for i, attached := range []bool{false, true} {
		direct := fmt.Sprintf("%s/p/attach%d", host, i)
		d := digest.Digest(rt.PushRandom(t, direct+":"+h.Encoded()))
		j := plantest.Job(t, direct, h, &compose.Service{Name: "s", Image: direct})
		b := New(reg, Options{Attach: true, Recorder: Recorder{Project: "p", Tool: "test"}})
		if attached {
			if err := b.attach(context.Background(), reg, j, &outcome.Result{Service: "s", Hash: h.Encoded(), Digest: d}); err != nil {
				t.Fatal(err)
			}
		}
		res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
		skip(t, b, j, res)
		if res.Status != outcome.Skipped || digest.Digest(rt.Head(t, direct+":ci")) != d {
			t.Fatalf("attached=%v: %s %q, ci at %s", attached, res.Status, res.Error, digest.Digest(rt.Head(t, direct+":ci")))
		}
		m, err := ReadRecord(context.Background(), reg, rt.Ref(t, direct+":ci"))
		if err != nil || m.Services[0].Hash != h.Encoded() {
			t.Fatalf("attached=%v: the manifest on ci: %v %v", attached, m, err)
		}
		idx, err := remote.Referrers(rt.Ref(t, direct+"@"+d.String()).Context().Digest(d.String()))
		if err != nil {
			t.Fatal(err)
		}
		if im, _ := idx.IndexManifest(); len(im.Manifests) != 1 {
			t.Errorf("attached=%v: %d manifests attached, want 1", attached, len(im.Manifests))
		}
	}
}

// TestPromoteConvergesTags: a skipped service with --push gives R:H every
// name a build would have: its compose tags, in its own repository and
// in another, point at R:H afterwards, also when R:F was already there
// (a push stopped after R:F but before the tags). A tag that cannot be
// moved fails the service and leaves R:F where it was.
func TestPromoteConvergesTags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ciAtH    bool
		failTag  bool
		wantMove bool
	}{
		{"revert onto an older R:H", false, false, true},
		{"R:F already at R:H", true, false, false},
		{"a tag refused", false, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, host := rt.Faulty(t)
			repo := "p/app"
			direct := host + "/" + repo
			h := testHash
			img := digest.Digest(rt.PushRandom(t, direct+":"+h.Encoded()))
			old := digest.Digest(rt.PushRandom(t, direct+":latest"))
			ciBefore := old
			retag(t, direct, map[string]digest.Digest{"old": old}["old"], "ci")
			if tc.ciAtH {
				ciBefore = retag(t, direct, map[string]digest.Digest{"h": img}["h"], "ci")
			}
			if tc.failTag {
				p.Inject(faultproxy.Fault{Method: "PUT", Path: "/manifests/latest$", Status: 400, Code: "MANIFEST_INVALID"})
			}
			b := New(registry.New(registry.Options{}), Options{})
			j := plantest.Job(t, p.Addr+"/"+repo, h, &compose.Service{Name: "s", Image: p.Addr + "/" + repo})
			for _, s := range []string{p.Addr + "/" + repo + ":latest", p.Addr + "/p/other:v1"} {
				tag, err := registry.NewHosts().Tag(s)
				if err != nil {
					t.Fatal(err)
				}
				j.Tags = append(j.Tags, tag)
			}
			res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
			skip(t, b, j, res)
			p.Clear()
			ci := digest.Digest(rt.Head(t, direct+":ci"))
			if tc.failTag {
				if res.Status != outcome.Failed || ci != ciBefore || !strings.Contains(res.Error, "compose tag") {
					t.Fatalf("status %s, ci moved %v, error %q; want a failure naming the compose tag, ci unmoved", res.Status, ci != ciBefore, res.Error)
				}
				return
			}
			if res.Status != outcome.Skipped || res.Error != "" {
				t.Fatalf("status %s, error %q", res.Status, res.Error)
			}
			for _, ref := range []string{direct + ":latest", host + "/p/other:v1", direct + ":ci"} {
				if got := digest.Digest(rt.Head(t, ref)); got != img {
					t.Errorf("%s at %s, want R:H %s", ref, got, img)
				}
			}
			if moved := ciBefore != ci; moved != tc.wantMove {
				t.Errorf("ci moved = %v, want %v", moved, tc.wantMove)
			}
		})
	}
}

// TestPublishReusedCache: a build that took every step from R:cache-F
// and exported nothing points R:cache-H at the R:cache-F it imported
// (by digest: R:cache-F moved by another run since does not matter),
// or leaves an R:cache-H of the same inputs as it is, and says which;
// a registry that refuses the copy costs a warning, not the image.
func TestPublishReusedCache(t *testing.T) {
	for _, tc := range []struct {
		name           string
		cacheH, refuse bool
		wantCacheH     string // "imported", "earlier", or "none"
		wantReused     string // suffix of res.CacheReused
		wantWarn       string
	}{
		{name: "R:cache-H pointed at the imported cache", wantCacheH: "imported"},
		{name: "an R:cache-H of the same inputs stays", cacheH: true, wantCacheH: "earlier"},
		{name: "the registry refuses the copy", refuse: true, wantCacheH: "none", wantWarn: "whose cache the build reused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, host := rt.Faulty(t)
			direct := host + "/p/app"
			h := testHash.Encoded()
			rt.PushCache(t, direct+":cache-ci", "image-manifest")
			imported := digest.Digest(rt.Head(t, direct+":cache-ci"))
			rt.PushRandom(t, direct+":cache-ci") // moved by another run since the import
			var earlier digest.Digest
			if tc.cacheH {
				rt.PushCache(t, direct+":cache-"+h, "index")
				earlier = digest.Digest(rt.Head(t, direct+":cache-"+h))
			}
			if tc.refuse {
				p.Inject(faultproxy.Fault{Method: http.MethodPut, Path: `/manifests/cache-` + h + `$`, Status: 403})
			}
			built := digest.Digest(rt.PushRandom(t, direct+":"+h))
			pub := New(registry.New(registry.Options{}), Options{Attach: true, Recorder: testRecorder})
			j := plantest.Job(t, p.Addr+"/p/app", testHash, &compose.Service{Name: "s"})
			res := &outcome.Result{Service: "s", Hash: h, Status: outcome.Built, Digest: built}
			pub.Publish(context.Background(), j, res, CacheResult{Reused: imported}, "")
			if res.Status != outcome.Built || rt.Head(t, direct+":ci") != built.String() {
				t.Fatalf("the image was not published: %s %q", res.Status, res.Error)
			}
			got := rt.Head(t, direct+":cache-"+h)
			want := map[string]string{"imported": imported.String(), "earlier": earlier.String(), "none": ""}[tc.wantCacheH]
			if got != want {
				t.Errorf("R:cache-H names %q, want %s %q", got, tc.wantCacheH, want)
			}
			wantReused := map[string]string{"imported": p.Addr + "/p/app:cache-ci@" + imported.String(), "earlier": p.Addr + "/p/app:cache-" + h, "none": ""}[tc.wantCacheH]
			if res.CacheReused != wantReused {
				t.Errorf("cacheReused %q, want %q", res.CacheReused, wantReused)
			}
			if res.CacheExportBytes != 0 {
				t.Errorf("cache export bytes %d for a cache not exported", res.CacheExportBytes)
			}
			if w := strings.Join(res.Warnings, "\n"); (tc.wantWarn == "") != (w == "") || !strings.Contains(w, tc.wantWarn) {
				t.Errorf("warnings %q, want %q", w, tc.wantWarn)
			}
		})
	}
}
