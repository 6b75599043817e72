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
	cold, err := sb.StoredManifests(repoPath) // the image's, its record's, its cache's
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
	// What the cold build pushed, but its cache manifest.
	if after-cold != cold-1 {
		t.Errorf("the registry gained %d manifests, want %d: the cold build's %d less its cache", after-cold, cold-1, cold)
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
