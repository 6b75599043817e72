package e2e

import (
	"archive/tar"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

func tarNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		names = append(names, h.Name)
	}
}

// TestOutputs: --output writes images here in each form, nothing goes to
// the registry without --push, and a service whose image exists is still
// solved (from cache) when an output is asked for.
func TestOutputs(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	mustBuild(t, dir, nil, "--push", "--repository", r, "web")

	out := t.TempDir()
	res := mustBuild(t, dir, nil, "--repository", r, "--output", "type=local,dest="+filepath.Join(out, "web"), "web")
	if res["web"].Status != "built" {
		t.Errorf("web with --output was %s, want built", res["web"].Status)
	}
	// Without --push the solve imports the pushed build's cache and
	// exports none.
	if w := res["web"]; !slices.ContainsFunc(w.CacheImports, func(s string) bool { return strings.Contains(s, r+"/web:cache-"+w.Hash) }) || len(w.CacheExports) > 0 {
		t.Errorf("web with --output, not pushed: imported %q, exported %q; want its R:cache-H imported, nothing exported", w.CacheImports, w.CacheExports)
	}
	if b, err := os.ReadFile(filepath.Join(out, "web", "srv", "index.html")); err != nil || !strings.Contains(string(b), "web") {
		t.Errorf("local output: %v %q", err, b)
	}

	mustBuild(t, dir, nil, "--repository", r, "--output", "type=oci,dest="+filepath.Join(out, "oci"), "base", "web")
	for _, svc := range []string{"base", "web"} {
		names := strings.Join(tarNames(t, filepath.Join(out, "oci", svc+".tar")), " ")
		if !strings.Contains(names, "index.json") || !strings.Contains(names, "oci-layout") {
			t.Errorf("%s OCI tarball: %s", svc, names)
		}
	}
	mustBuild(t, dir, nil, "--repository", r, "--output", "type=docker,dest="+filepath.Join(out, "web.tar"), "web")
	if names := strings.Join(tarNames(t, filepath.Join(out, "web.tar")), " "); !strings.Contains(names, "manifest.json") {
		t.Errorf("docker tarball: %s", names)
	}
	if head(t, r+"/base:ci") != "" {
		t.Error("base was pushed without --push")
	}

	bad := bkcache(t, dir, nil, "build", "--repository", r, "--output", "type=wat,dest=x")
	if bad.code != 2 || !strings.Contains(bad.stderr, "type must be") {
		t.Errorf("bad --output: exit %d %s", bad.code, bad.stderr)
	}

	// A docker tarball of a service of several platforms holds this
	// machine's platform, solved apart after the solve of all of them:
	// when that solve fails (here for s390x only), the service fails,
	// and no tarball is written from the platform that would build.
	host := "linux/" + runtime.GOARCH
	multi := sourcetest.Tree(t, map[string]string{
		"compose.yaml":          "services:\n  app:\n    build:\n      context: .\n      platforms: [" + host + ", linux/s390x]\n",
		"Dockerfile":            "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\n",
		runtime.GOARCH + ".txt": "only this platform has its file",
	})
	tarball := filepath.Join(out, "multi.tar")
	res, failed := build(t, multi, nil, "--output", "type=docker,dest="+tarball)
	if failed.code == 0 || res["app"].Status != "failed" || !strings.Contains(res["app"].Error, "s390x.txt") {
		t.Errorf("a docker tarball of two platforms, one failing: exit %d, %+v\n%s", failed.code, res["app"], failed.stderr)
	}
	if _, err := os.Stat(tarball); err == nil {
		t.Errorf("the failed service wrote %s", tarball)
	}
}

// TestLoadWithoutEngine: --load says what is missing when no Docker
// engine answers (TestDockerEngine loads into a real one).
func TestLoadWithoutEngine(t *testing.T) {
	requireSandbox(t)
	dir := project(t)
	out := bkcache(t, dir, []string{"DOCKER_HOST=unix://" + t.TempDir() + "/no-docker.sock"}, "build", "--load", "web")
	if out.code == 0 || !strings.Contains(out.stderr, "--load needs a running Docker engine") || !strings.Contains(out.stderr, "--output type=docker") {
		t.Errorf("exit %d:\n%s", out.code, out.stderr)
	}
}

// TestBranchCacheFallback: a branch build with its own floating tag
// imports the main line's cache when its own is empty, and moves only
// its own tag.
func TestBranchCacheFallback(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	dir, r := project(t), repo(t)
	main := mustBuild(t, dir, d.env(), "--push", "--repository", r)

	writeFile(t, dir, "app/src/main.txt", "changed on a branch")
	d.prune(t)
	mf := filepath.Join(t.TempDir(), "m.json")
	res := mustBuild(t, dir, d.env(), "--push", "--repository", r, "--ci-tag", "ci-feature", "--cache-fallback", "ci", "--manifest", mf)
	app := res["app"]
	if app.Status != "built" || app.CachedSteps == 0 {
		t.Errorf("branch build of app: %+v (want steps cached from cache-ci)", app)
	}
	if doc, _ := os.ReadFile(mf); !strings.Contains(string(doc), r+"/app:cache-ci\"") {
		t.Errorf("the manifest does not list cache-ci among the imports")
	}
	if head(t, r+"/app:ci-feature") != app.Digest || head(t, r+"/app:ci") != main["app"].Digest {
		t.Errorf("ci-feature %s (want %s), ci %s (want unchanged %s)", head(t, r+"/app:ci-feature"), app.Digest, head(t, r+"/app:ci"), main["app"].Digest)
	}
}
