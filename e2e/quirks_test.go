package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/e2e/faultproxy"
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
