package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestHeadRefusedRegistry: a registry (or a proxy before it) that
// answers every manifest HEAD with 405. bkcache's skip check and
// manifest attach fall back to GET, as BuildKit's resolver does, so the
// build, the skip and check all work.
func TestHeadRefusedRegistry(t *testing.T) {
	requireSandbox(t)
	p, r, direct := faulty(t)
	rule := p.Inject(faultproxy.Fault{Method: "HEAD", Path: `/manifests/`, Status: 405})
	dir := sourcetest.Tree(t, tiny)
	first := mustBuild(t, dir, nil, "--push", "--repository", r)["svc"]
	if first.Status != "built" || head(t, direct+"/svc:ci") != first.Digest {
		t.Fatalf("build behind a HEAD-refusing registry: %+v", first)
	}
	if again := mustBuild(t, dir, nil, "--push", "--repository", r)["svc"]; again.Status != "skipped" {
		t.Errorf("second run: %s, want skipped", again.Status)
	}
	if c := bkcache(t, dir, nil, "check", "--repository", r); c.code != 0 {
		t.Errorf("check: exit %d\n%s", c.code, c.stderr)
	}
	if ex := bkcache(t, dir, nil, "explain", "svc", "--repository", r); ex.code != 0 || !strings.Contains(ex.stdout, "nothing changed") {
		t.Errorf("explain: exit %d\n%s%s", ex.code, ex.stdout, ex.stderr)
	}
	if rule.Hits() == 0 {
		t.Fatal("no HEAD was refused: the test proves nothing")
	}
}

// TestImmutableTags: a repository whose tags cannot be overwritten, as
// ECR's IMMUTABLE setting answers (400 TAG_INVALID). The first build
// creates ci; the next must move it and is refused: the service fails
// with a message naming the setting and --ci-tag, ci still names the
// first image, and the new R:H is whole.
func TestImmutableTags(t *testing.T) {
	requireSandbox(t)
	p, r, direct := faulty(t)
	dir := sourcetest.Tree(t, tiny)
	first := mustBuild(t, dir, nil, "--push", "--repository", r)["svc"]
	p.Inject(faultproxy.Fault{Method: "PUT", Path: `/manifests/(cache-)?ci$`, Status: 400, Code: "TAG_INVALID",
		Message: "The image tag 'ci' already exists in the 'svc' repository and cannot be overwritten because the repository is immutable."})
	writeFile(t, dir, "input.txt", "v2\n")
	res, out := build(t, dir, nil, "--push", "--repository", r)
	s := res["svc"]
	if out.code != 1 || s.Status != "failed" || !containsAll(out.stderr, "immutable", "IMMUTABLE", "--ci-tag", "ci") {
		t.Fatalf("a refused move: exit %d, %+v\n%s", out.code, s, out.stderr)
	}
	if head(t, direct+"/svc:ci") != first.Digest {
		t.Errorf("ci moved although the registry refused")
	}
	if d := head(t, direct+"/svc:"+s.Hash); d == "" {
		t.Errorf("the new R:H is missing")
	} else {
		pulls(t, direct+"/svc:"+s.Hash)
	}
}

// TestPushWithOutputKeepsRH: with --push and an output, a service whose
// R:H is in the registry is solved for the output only: R:H is never
// pushed again (here the registry refuses any overwrite of it, as one
// with immutable tags does; and a push would change the image R:F and
// the deployed tags name), and R:F and the compose tags follow what R:H
// holds.
func TestPushWithOutputKeepsRH(t *testing.T) {
	requireSandbox(t)
	p, r, direct := faulty(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  svc:\n    build:\n      context: .\n      tags: [" + r + "/svc:latest]\n",
		"Dockerfile":   tiny["Dockerfile"], "input.txt": "v1\n",
	})
	first := mustBuild(t, dir, nil, "--push", "--repository", r)["svc"]
	rule := p.Inject(faultproxy.Fault{Method: "PUT", Path: imageManifest, Status: 400, Code: "TAG_INVALID",
		Message: "The image tag already exists in the 'svc' repository and cannot be overwritten because the repository is immutable."})
	for _, tag := range []string{"latest", "ci"} { // a revert: both elsewhere first
		pushRandom(t, direct+"/svc:"+tag)
	}
	out := filepath.Join(t.TempDir(), "out")
	s := mustBuild(t, dir, nil, "--push", "--repository", r, "--output", "type=local,dest="+out)["svc"]
	if s.Status != "built" || s.Digest != first.Digest || s.Floating == "" {
		t.Fatalf("--push --output over an existing R:H: %+v, want built, digest %s, floating", s, first.Digest)
	}
	if b, err := os.ReadFile(filepath.Join(out, "input.txt")); err != nil || string(b) != "v1\n" {
		t.Errorf("the output: %q %v", b, err)
	}
	if rule.Hits() != 0 {
		t.Errorf("R:H was pushed again (%d refused PUTs)", rule.Hits())
	}
	for _, tag := range []string{first.Hash, "ci", "latest"} {
		if got := head(t, direct+"/svc:"+tag); got != first.Digest {
			t.Errorf("svc:%s at %s, want R:H's %s", tag, got, first.Digest)
		}
	}
}

// TestManifestTooLarge: a registry refusing R:H's manifest as over its
// size limit, as distribution answers a body past its 4 MiB reader and
// others answer 413: the service fails saying so and what to do, and
// nothing is moved.
func TestManifestTooLarge(t *testing.T) {
	requireSandbox(t)
	p, r, direct := faulty(t)
	dir := sourcetest.Tree(t, tiny)
	for _, f := range []faultproxy.Fault{
		{Status: 400, Code: "MANIFEST_INVALID", Message: "manifest invalid: http: request body too large"},
		{Status: 413},
	} {
		p.Clear()
		f.Method, f.Path = "PUT", imageManifest
		p.Inject(f)
		writeFile(t, dir, "input.txt", fmt.Sprintf("v%d\n", f.Status))
		res, out := build(t, dir, nil, "--push", "--repository", r)
		s := res["svc"]
		if out.code != 1 || s.Status != "failed" || !containsAll(out.stderr, "too large", "4 MiB", "fewer layers", "mode=min", "not moved") {
			t.Errorf("HTTP %d on the manifest push: exit %d, %+v\n%s", f.Status, out.code, s, out.stderr)
		}
		if head(t, direct+"/svc:ci") != "" || head(t, direct+"/svc:"+s.Hash) != "" {
			t.Errorf("HTTP %d: something was pushed or moved", f.Status)
		}
	}
}

// TestThrottleStorm: a registry throttling every service of a run at
// once (429 with Retry-After on the skip checks of five services built
// in parallel, then on their pushes): every service ends built, then
// skipped, and nothing fails for it.
func TestThrottleStorm(t *testing.T) {
	requireSandbox(t)
	p, r, _ := faulty(t)
	files := map[string]string{"compose.yaml": "services:\n"}
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		files["compose.yaml"] += "  " + s + ":\n    image: " + r + "/" + s + "\n    build: {context: ., dockerfile: " + s + ".Dockerfile}\n"
		files[s+".Dockerfile"] = "FROM scratch\nCOPY " + s + ".txt /\n"
		files[s+".txt"] = s
	}
	dir := sourcetest.Tree(t, files)
	retry := http.Header{"Retry-After": {"1"}}
	storm := []*faultproxy.Rule{
		p.Inject(faultproxy.Fault{Method: "HEAD", Path: imageManifest, Times: 10, Status: 429, Header: retry}),
		p.Inject(faultproxy.Fault{Method: "PUT", Path: imageManifest, Times: 5, Status: 429, Header: retry}),
	}
	for _, want := range []string{"built", "skipped"} {
		res := mustBuild(t, dir, nil, "--push", "--parallel", "5")
		for s, got := range res {
			if got.Status != want {
				t.Errorf("%s: %s, want %s (%s)", s, got.Status, want, got.Error)
			}
		}
	}
	if storm[0].Hits() != 10 || storm[1].Hits() == 0 {
		t.Errorf("the storm hit %d skip checks and %d pushes: the test throttled less than it means to", storm[0].Hits(), storm[1].Hits())
	}
}

// pushRandom pushes a small random image to ref, straight to the registry.
func pushRandom(t *testing.T, ref string) {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(ref, name.Insecure)
	if err == nil {
		err = remote.Write(tag, img, keychain)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// twoStages is tiny with a stage the image does not hold: its layer is in
// the cache alone, which compresses it with zstd.
var twoStages = map[string]string{
	"compose.yaml": tiny["compose.yaml"],
	"Dockerfile":   "FROM busybox AS deps\nRUN echo deps > /deps\nFROM busybox\nCOPY --from=deps /deps /deps\nRUN echo built > /built\nCOPY input.txt /input.txt\n",
	"input.txt":    "v1\n",
}

// TestCacheForms: registries that take only one form of registry cache.
// The sandbox's registry, distribution with its default validation, is
// Harbor's kind: it refuses the index form ("blob unknown to registry"),
// which the fault proxy refuses before it too, so that the test does not
// hang on that default; the image-manifest form is what a probe finds and
// what is exported, and no index is ever sent.
// A registry that takes indexes but refuses a cache written as an image
// manifest (ECR before 2023; here one that takes indexes, behind the
// fault proxy) gets the index form, found by the probe before the first
// export. The next build imports it, and follows R:cache-F's form
// without probing again.
func TestCacheForms(t *testing.T) {
	requireSandbox(t)
	for _, c := range []struct {
		name, refused, form, why string
		refusals                 int // the probe's
	}{
		{"a registry refusing the index form", `image\.index`, "image-manifest", "probed: ", 0},
		{"a registry refusing the image-manifest form", `image\.manifest`, "index", "refuses a cache written as an OCI image manifest", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			upstream := sb.RegistryAddr
			if c.form == "index" {
				upstream = newRegistryTakingIndexes(t).Addr
			}
			p := proxyTo(t, upstream)
			rule := p.Inject(faultproxy.Fault{Method: "PUT", Path: `/manifests/`, ContentType: c.refused, Body: `cacheconfig`,
				Status: 400, Code: "MANIFEST_INVALID", Message: "unsupported manifest"})
			r := throughProxy(p, repo(t))
			dir := sourcetest.Tree(t, twoStages)
			d := newDaemon(t)
			s := mustBuild(t, dir, d.env(), "--push", "--repository", r)["svc"]
			if s.Status != "built" || len(s.Warnings) > 0 || s.CacheForm != c.form || !strings.Contains(s.CacheFormWhy, c.why) {
				t.Fatalf("first build: %s, form %s (%s), warnings %q", s.Status, s.CacheForm, s.CacheFormWhy, s.Warnings)
			}
			if head(t, r+"/svc:cache-"+s.Hash) == "" || head(t, r+"/svc:cache-ci") == "" {
				t.Fatalf("R:cache-H or R:cache-F missing after the export")
			}
			if rule.Hits() != c.refusals {
				t.Errorf("%d manifests refused, want %d:\n%s", rule.Hits(), c.refusals, strings.Join(p.Log(), "\n"))
			}
			if form, zstd := inspectCache(t, dir, r+"/svc:cache-"+s.Hash); form != c.form || !zstd {
				t.Errorf("R:cache-H in the %s form (want %s), a zstd layer: %v", form, c.form, zstd)
			}
			writeFile(t, dir, "input.txt", "v2\n")
			d.prune(t)
			s = mustBuild(t, dir, d.env(), "--push", "--repository", r)["svc"]
			if s.Status != "built" || len(s.Warnings) > 0 || s.CacheForm != c.form || !strings.Contains(s.CacheFormWhy, ":cache-ci is") {
				t.Fatalf("second build: %s, form %s (%s), warnings %q", s.Status, s.CacheForm, s.CacheFormWhy, s.Warnings)
			}
			if got := stepLines(s.Steps); got != "2 cached\n4 cached\n5 cached\n6 ran\n" {
				t.Errorf("second build's steps, from the first's cache:\n%s", got)
			}
			if head(t, r+"/svc:cache-"+s.Hash) == "" || rule.Hits() != c.refusals {
				t.Errorf("R:cache-H %q; %d manifests refused, want still %d", head(t, r+"/svc:cache-"+s.Hash), rule.Hits(), c.refusals)
			}
		})
	}
}

// inspectCache is the form of the cache at ref as `bkcache cache inspect`
// reads it, and whether a layer of it is zstd, the compression of the
// layers only a cache holds.
func inspectCache(t *testing.T, dir, ref string) (form string, zstd bool) {
	t.Helper()
	out := bkcache(t, dir, nil, "cache", "inspect", ref, "--format", "json")
	var info struct {
		Form   string `json:"form"`
		Layers []struct {
			MediaType string `json:"mediaType"`
		} `json:"layers"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &info); out.code != 0 || err != nil {
		t.Fatalf("cache inspect %s: exit %d, %v\n%s", ref, out.code, err, out.stderr)
	}
	for _, l := range info.Layers {
		zstd = zstd || strings.HasSuffix(l.MediaType, "+zstd")
	}
	return info.Form, zstd
}
