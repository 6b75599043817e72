package e2e

import (
	"strings"
	"testing"
)

// TestColdBuildThenSkip: a cold build pushes every image, its cache and
// the ci refs; the same project on a pruned daemon skips every service.
func TestColdBuildThenSkip(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	dir, r := project(t), repo(t)
	res := mustBuild(t, dir, d.env(), "--push", "--repository", r)
	for _, svc := range []string{"base", "app", "web"} {
		s := res[svc]
		if s.Status != "built" || s.Digest == "" {
			t.Fatalf("%s: %+v", svc, s)
		}
		if s.DurationMs <= 0 { // a solve and a push take milliseconds at least
			t.Errorf("%s: built in %d ms, as the summary says", svc, s.DurationMs)
		}
		prefix := r + "/" + svc
		if got := head(t, prefix+":"+s.Hash); got != s.Digest {
			t.Errorf("%s:%s has digest %q, build reported %s", prefix, s.Hash, got, s.Digest)
		}
		if got := head(t, prefix+":ci"); got != s.Digest {
			t.Errorf("%s:ci is %q, want %s", prefix, got, s.Digest)
		}
		if head(t, prefix+":cache-"+s.Hash) == "" || head(t, prefix+":cache-ci") == "" {
			t.Errorf("%s: cache refs missing", prefix)
		}
	}

	d.prune(t)
	again := mustBuild(t, dir, d.env(), "--push", "--repository", r)
	for svc, s := range again {
		if s.Status != "skipped" || s.TotalSteps != 0 || s.Digest != res[svc].Digest {
			t.Errorf("second run, %s: %+v (first run digest %s)", svc, s, res[svc].Digest)
		}
	}
}

// TestChangeOutsideAndInsideInputs: editing a file no image reads changes
// nothing; editing an input rebuilds just that service, reusing cache
// from cache-ci on a pruned daemon, and moves its ci tag.
func TestChangeOutsideAndInsideInputs(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	dir, r := project(t), repo(t)
	first := mustBuild(t, dir, d.env(), "--push", "--repository", r)

	writeFile(t, dir, "app/NOTES.md", "edited, but no Dockerfile reads it")
	d.prune(t)
	res := mustBuild(t, dir, d.env(), "--push", "--repository", r)
	for svc, s := range res {
		if s.Status != "skipped" {
			t.Errorf("after editing a non-input, %s is %s", svc, s.Status)
		}
	}

	writeFile(t, dir, "app/src/main.txt", "app source v2")
	d.prune(t)
	res, out := build(t, dir, d.env(), "--push", "--repository", r)
	if out.code != 0 {
		t.Fatalf("rebuild failed:\n%s", out.stderr)
	}
	app := res["app"]
	if app.Status != "built" || app.Hash == first["app"].Hash {
		t.Fatalf("app after an input edit: %+v", app)
	}
	if app.CachedSteps == 0 {
		t.Errorf("app rebuilt on a pruned daemon with no step from cache-ci: %d/%d\n%s", app.CachedSteps, app.TotalSteps, out.stderr)
	}
	if res["base"].Status != "skipped" || res["web"].Status != "skipped" {
		t.Errorf("base %s, web %s: want both skipped", res["base"].Status, res["web"].Status)
	}
	if got := head(t, r+"/app:ci"); got != app.Digest || got == first["app"].Digest {
		t.Errorf("app:ci is %s; want the new digest %s (old %s)", got, app.Digest, first["app"].Digest)
	}
}

// TestServiceContextOrder: app is built FROM base through a service:
// context, so base builds first and app's image carries base's layers.
func TestServiceContextOrder(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	res := mustBuild(t, dir, nil, "--push", "--repository", r, "app")
	if _, ok := res["web"]; ok {
		t.Errorf("web was built but not asked for")
	}
	if res["base"].Status != "built" || res["app"].Status != "built" {
		t.Fatalf("base %+v app %+v", res["base"], res["app"])
	}
	base, app := layers(t, res["base"].Image), layers(t, res["app"].Image)
	if len(app) <= len(base) || strings.Join(app[:len(base)], ",") != strings.Join(base, ",") {
		t.Errorf("app's layers %v do not start with base's %v", app, base)
	}
}

// TestLocalBuildWithServiceContext: without --push nothing is written to
// the registry, yet app still builds FROM base, handed over as an OCI
// layout.
func TestLocalBuildWithServiceContext(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	res := mustBuild(t, dir, nil, "--repository", r, "app")
	if res["base"].Status != "built" || res["app"].Status != "built" {
		t.Fatalf("base %+v\napp %+v", res["base"], res["app"])
	}
	for _, ref := range []string{"/base:ci", "/base:" + res["base"].Hash, "/app:ci", "/app:cache-" + res["app"].Hash} {
		if head(t, r+ref) != "" {
			t.Errorf("%s was written without --push", r+ref)
		}
	}
}

// TestServicesWithoutRepository: a project whose services have no image:
// (common for local development) builds without --repository from
// buildkitd's own cache, with no registry lookups (which would go to
// Docker Hub, unreachable here); --push refuses before building.
func TestServicesWithoutRepository(t *testing.T) {
	requireSandbox(t)
	dir := project(t)
	res, out := build(t, dir, nil, "app", "web")
	for _, svc := range []string{"base", "app", "web"} {
		if s := res[svc]; out.code != 0 || s.Status != "built" || !strings.HasPrefix(s.Image, "e2e-"+svc+":") {
			t.Errorf("%s: exit %d, %+v\n%s", svc, out.code, s, out.stderr)
		}
	}
	// Success alone shows that nothing was looked up: e2e-web:H would be
	// docker.io/library/e2e-web, and this sandbox cannot resolve docker.io.
	if strings.Contains(out.stderr, "cache import") || strings.Contains(out.stderr, "level=warning") {
		t.Errorf("a build without repositories warned:\n%s", out.stderr[max(0, len(out.stderr)-3000):])
	}
	// Again: nothing to skip against, but the steps are in buildkitd.
	res, out = build(t, dir, nil, "web")
	if w := res["web"]; out.code != 0 || w.Status != "built" || w.CachedSteps == 0 {
		t.Errorf("second build: exit %d, %+v\n%s", out.code, w, out.stderr)
	}

	push := bkcache(t, dir, nil, "build", "--push", "web")
	if push.code == 0 || !strings.Contains(push.stderr, `service "web" has no image:`) || !strings.Contains(push.stderr, "--repository") {
		t.Errorf("build --push without a repository: exit %d\n%s", push.code, push.stderr)
	}
	if strings.Contains(push.stderr, "#1 ") {
		t.Errorf("build --push without a repository started a solve:\n%s", push.stderr)
	}
}
