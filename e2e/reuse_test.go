package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestCacheReuse: a rebuild whose every step comes from the imported
// R:cache-F (a label changed, on a fresh daemon) exports no cache: the
// registry gains the image and its record only, and R:cache-H names
// the manifest R:cache-F named. When a step runs after all (the sources
// checked out as another user, which the plan cannot see), nothing was
// exported and the run says so: R:cache-F stays where it was.
func TestCacheReuse(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	compose := func(label string) string {
		return "services:\n  app:\n    image: " + r + "/app\n    build:\n      context: .\n      labels:\n        v: " + label + "\n"
	}
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": compose("one"),
		"Dockerfile":   "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\n",
		"a.txt":        "a\n",
	})
	d := newDaemon(t)
	repoPath := strings.TrimPrefix(r, sb.RegistryAddr+"/") + "/app"
	first := mustBuild(t, dir, d.env(), "--push")["app"]
	if first.CacheReused != "" || len(first.CacheExports) == 0 {
		t.Fatalf("a cold build reused %q, exported %q", first.CacheReused, first.CacheExports)
	}
	imported := head(t, r+"/app:cache-ci")
	cold, err := sb.StoredManifests(repoPath) // the image's, its record's, its cache's, the probe's
	if err != nil {
		t.Fatal(err)
	}

	writeFile(t, dir, "compose.yaml", compose("two"))
	d.prune(t)
	s := mustBuild(t, dir, d.env(), "--push")["app"]
	if s.Status != "built" || s.Hash == first.Hash || stepLines(s.Steps) != "2 cached\n3 cached\n" {
		t.Fatalf("the label-only rebuild: %s %s, steps:\n%s", s.Status, s.Hash, stepLines(s.Steps))
	}
	if want := r + "/app:cache-ci@" + imported; s.CacheReused != want || s.CacheExportBytes != 0 {
		t.Errorf("cacheReused %q (export bytes %d), want %q and none", s.CacheReused, s.CacheExportBytes, want)
	}
	for _, e := range s.CacheExports {
		if strings.Contains(e, ":cache-") {
			t.Errorf("exported %s, though every step came from the imported cache", e)
		}
	}
	if got := head(t, r+"/app:cache-"+s.Hash); got != imported {
		t.Errorf("R:cache-H names %q, want the imported %s", got, imported)
	}
	after, err := sb.StoredManifests(repoPath)
	if err != nil {
		t.Fatal(err)
	}
	// What the cold build pushed, but its cache manifest and the probe
	// of the cache form (a first build's: the rebuild follows
	// R:cache-F's form).
	if after-cold != cold-2 || s.CacheFormWhy != "" {
		t.Errorf("the registry gained %d manifests, want %d: the cold build's %d less its cache and its probe (form %q)", after-cold, cold-2, cold, s.CacheFormWhy)
	}

	// A step that runs though the plan said none would: nothing was
	// exported, the run says so, and R:cache-F stays.
	writeFile(t, dir, "compose.yaml", compose("three"))
	if err := os.Chown(filepath.Join(dir, "a.txt"), 4321, 4321); err != nil {
		t.Fatal(err)
	}
	s = mustBuild(t, dir, d.env(), "--push")["app"]
	if s.CacheReused != "" || !strings.Contains(stepLines(s.Steps), "2 ran") {
		t.Fatalf("a step ran: cacheReused %q, steps:\n%s", s.CacheReused, stepLines(s.Steps))
	}
	if w := strings.Join(s.Warnings, "\n"); !strings.Contains(w, "left out, as every step was to come from "+r+"/app:cache-ci, but the step at line 2 ran") {
		t.Errorf("warnings %q, want one saying the cache was left out", w)
	}
	if got := head(t, r+"/app:cache-"+s.Hash); got != "" {
		t.Errorf("R:cache-H %q after a solve that exported none", got)
	}
	if got := head(t, r+"/app:cache-ci"); got != imported {
		t.Errorf("R:cache-F moved to %q, want it where it was (%s)", got, imported)
	}
}

// TestFinalStageEditKeepsEarlierStages: after an edit of the final stage
// only, the cache that build exports still holds the results of the
// stage that did not run, so the next run (on a fresh daemon), whose
// final stage copies another path out of that stage, takes it from that
// export: saving on the export must never cost the following run's hit
// rate. (A cache of the final stage's steps alone, as mode=min gives,
// serves the first edit but not this second one.)
func TestFinalStageEditKeepsEarlierStages(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dockerfile := func(final string) string {
		return "FROM busybox AS deps\nCOPY deps.txt /deps.txt\nRUN cat /deps.txt > /built.txt\nFROM busybox\n" + final + "\n"
	}
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: " + r + "/app\n    build: .\n",
		"Dockerfile":   dockerfile("COPY --from=deps /built.txt /app.txt\nLABEL v=1"),
		"deps.txt":     "deps\n",
	})
	d := newDaemon(t)
	mustBuild(t, dir, d.env(), "--push")
	for i, edit := range []struct{ final, steps string }{
		{"COPY --from=deps /built.txt /app.txt\nRUN echo 2 > /edit", "2 cached\n3 cached\n5 cached\n6 ran\n"},
		{"COPY --from=deps / /deps/\nRUN echo 3 > /edit", "2 cached\n3 cached\n5 ran\n6 ran\n"},
	} {
		writeFile(t, dir, "Dockerfile", dockerfile(edit.final))
		d.prune(t)
		s := mustBuild(t, dir, d.env(), "--push")["app"]
		if got := stepLines(s.Steps); s.Status != "built" || got != edit.steps {
			t.Fatalf("final-stage edit %d: %s, steps:\n%swant:\n%s", i+1, s.Status, got, edit.steps)
		}
		if i == 1 && (len(s.CacheImports) != 1 || s.CacheImports[0] != "registry:"+r+"/app:cache-ci") {
			t.Errorf("the second edit imported %q, want only the first edit's R:cache-F", s.CacheImports)
		}
		if cache := head(t, r+"/app:cache-"+s.Hash); cache == "" || head(t, r+"/app:cache-ci") != cache {
			t.Fatalf("final-stage edit %d: R:cache-H %q, R:cache-F not moved to it", i+1, cache)
		}
	}
}
