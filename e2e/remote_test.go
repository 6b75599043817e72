package e2e

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/solver/remote/gittest"
)

// TestGitContext: a Git context against a real git daemon on loopback. A
// new commit on the branch moves the hash, and the build builds exactly
// the commit the hash names.
func TestGitContext(t *testing.T) {
	requireSandbox(t)
	d := gittest.Start(t)
	d.Commit(t, "app", map[string]string{"Dockerfile": "FROM scratch\nCOPY a.txt /a.txt\n", "a.txt": "one"})
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    build:\n      context: " + d.URL("app") + "#main\n",
	})
	first := mustBuild(t, dir, nil, "--push", "--repository", r)["app"]
	if first.Status != "built" || imageFiles(t, first.Image, "a.txt")["a.txt"] != "one" {
		t.Fatalf("first build: %+v", first)
	}
	if again := mustBuild(t, dir, nil, "--push", "--repository", r)["app"]; again.Status != "skipped" {
		t.Errorf("no new commit, yet %s", again.Status)
	}
	d.Commit(t, "app", map[string]string{"a.txt": "two"})
	res := mustBuild(t, dir, nil, "--push", "--repository", r)["app"]
	if res.Hash == first.Hash || res.Status != "built" {
		t.Fatalf("after a new commit: %+v (first %s)", res, first.Hash)
	}
	if got := imageFiles(t, res.Image, "a.txt")["a.txt"]; got != "two" {
		t.Errorf("a.txt %q, want the new commit's", got)
	}
}

// TestAddURL: ADD of an HTTP URL enters the hash by the server's ETag,
// and by the body's digest when the server gives no validator.
func TestAddURL(t *testing.T) {
	requireSandbox(t)
	var body atomic.Value
	body.Store("v1")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := body.Load().(string)
		if r.URL.Path == "/etag" {
			w.Header().Set("ETag", `"`+b+`"`)
		}
		w.Write([]byte(b))
	}))
	defer srv.Close()
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  etag:\n    build: {context: ., dockerfile: ETag}\n  plain:\n    build: {context: ., dockerfile: Plain}\n",
		"ETag":         "FROM scratch\nADD " + srv.URL + "/etag /file\n",
		"Plain":        "FROM scratch\nADD " + srv.URL + "/plain /file\n",
	})
	first := mustBuild(t, dir, nil, "--push", "--repository", r)
	body.Store("v2")
	res := mustBuild(t, dir, nil, "--push", "--repository", r)
	for _, svc := range []string{"etag", "plain"} {
		if res[svc].Hash == first[svc].Hash || res[svc].Status != "built" {
			t.Errorf("%s: the download changed, yet %s with hash %s", svc, res[svc].Status, res[svc].Hash)
		}
		if got := imageFiles(t, res[svc].Image, "file")["file"]; got != "v2" {
			t.Errorf("%s: file %q, want v2", svc, got)
		}
	}
}

// TestCopyExclude: a file every COPY leaves out with --exclude is not an
// input. Editing it keeps the hash, so the service is skipped, and a
// real buildkitd agrees: forced, it takes the COPY from its cache.
func TestCopyExclude(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    build: .\n",
		"Dockerfile":   "FROM scratch\nCOPY --exclude=*.md . /app\n",
		"main.txt":     "main",
		"README.md":    "readme",
	})
	first := mustBuild(t, dir, nil, "--push", "--repository", r)["app"]
	writeFile(t, dir, "README.md", "edited")
	again := mustBuild(t, dir, nil, "--push", "--repository", r)["app"]
	if again.Hash != first.Hash || again.Status != "skipped" {
		t.Errorf("after editing an excluded file: %s with hash %s (was %s)", again.Status, again.Hash, first.Hash)
	}
	_, out := build(t, dir, nil, "--repository", r, "--force")
	if c := cachedSteps(out.stderr); !slices.ContainsFunc(c, func(s string) bool { return strings.Contains(s, "COPY --exclude") }) {
		t.Errorf("buildkitd did not reuse the COPY (cached: %q):\n%s", c, out.stderr)
	}
}

// TestAddGitPinned: ADD of a Git URL enters the hash by its branch's
// commit, and the solve builds that commit even when the branch moves
// between hashing and solving; the next run takes the new commit.
func TestAddGitPinned(t *testing.T) {
	requireSandbox(t)
	d := gittest.Start(t)
	d.Commit(t, "lib", map[string]string{"lib.txt": "one"})
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  slow:\n    build:\n      context: .\n      args:\n        SLEEP: ${SLEEP:-0}\n" +
			"  app:\n    build:\n      context: ./app\n      additional_contexts:\n        slow: service:slow\n",
		"Dockerfile":     slowDockerfile(r),
		"app/Dockerfile": "FROM scratch\nADD " + d.URL("lib") + "#main /lib\nCOPY --from=slow /done /done\n",
	})
	_, out, done := startSlow(t, sb.BuildkitAddr, dir, r, 3)
	d.Commit(t, "lib", map[string]string{"lib.txt": "two"})
	if code := waitExit(t, done, out); code != 0 {
		t.Fatalf("build (exit %d):\n%s", code, out.String())
	}
	if got := imageFiles(t, r+"/app:ci", "lib/lib.txt")["lib/lib.txt"]; got != "one" {
		t.Errorf("lib.txt %q: want the commit hashed before the branch moved", got)
	}
	res := mustBuild(t, dir, nil, "--push", "--repository", r)
	if res["app"].Status != "built" || imageFiles(t, res["app"].Image, "lib/lib.txt")["lib/lib.txt"] != "two" {
		t.Errorf("the run after the new commit: %+v", res["app"])
	}
}
