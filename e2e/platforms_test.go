package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// twoPlatforms is a project of one service, app in repository r, built
// FROM scratch for linux/amd64 and linux/arm64, each copying its own
// file (ARCH.txt, reading "ARCH of r") to /arch.txt; extra adds files
// and Dockerfile lines after that COPY.
func twoPlatforms(t *testing.T, r string, extra map[string]string, lines ...string) string {
	t.Helper()
	files := map[string]string{
		"compose.yaml": "services:\n  app:\n    image: " + r + "/app\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n",
		"Dockerfile":   "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\n" + strings.Join(lines, ""),
		"amd64.txt":    "amd64 of " + r,
		"arm64.txt":    "arm64 of " + r,
	}
	maps.Copy(files, extra)
	return sourcetest.Tree(t, files)
}

// TestPlatforms: a service's platforms build in one solve into one index
// pushed as R:H with every platform, which ci then names; a second run
// on a pruned daemon is skipped, and --force there takes every
// platform's steps from the one cache. The steps differ per platform
// (each copies its own file), so BuildKit cannot share them between the
// two.
func TestPlatforms(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := twoPlatforms(t, r, map[string]string{"common.txt": "common"}, "COPY common.txt /common.txt\n")
	d := newDaemon(t)
	first := mustBuild(t, dir, d.env(), "--push")["app"]
	idx, err := remote.Index(mustRef(t, first.Image))
	if err != nil {
		t.Fatalf("%s is not an index: %v", first.Image, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range im.Manifests {
		if m.Platform != nil && m.Platform.OS != "unknown" {
			platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
		}
	}
	slices.Sort(platforms)
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("R:H holds %v, want linux/amd64 and linux/arm64", platforms)
	}
	if head(t, r+"/app:ci") != first.Digest {
		t.Errorf("ci is not the index %s", first.Digest)
	}
	d.prune(t)
	if again := mustBuild(t, dir, d.env(), "--push")["app"]; again.Status != "skipped" {
		t.Errorf("second run on a pruned daemon: %s, want skipped", again.Status)
	}
	d.prune(t)
	forced := bkcache(t, dir, d.env(), "build", "--push", "--force", "--progress", "plain")
	if forced.code != 0 {
		t.Fatalf("--force: exit %d\n%s", forced.code, forced.stderr)
	}
	steps := platformSteps(forced.stderr)
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		if got := steps[p]; len(got) != 2 || slices.Contains(got, false) {
			t.Errorf("%s: steps cached %v, want both COPYs from cache\n%s", p, got, forced.stderr)
		}
	}
}

// TestPlatformsAround: what reads and writes the index besides the
// build: explain finds the cache manifest attached to the index, cache
// inspect reads the one cache of both platforms, --output type=local gets
// each platform's files, and --platform replaces compose's platforms
// under another hash.
func TestPlatformsAround(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := twoPlatforms(t, r, nil)
	first := mustBuild(t, dir, nil, "--push")["app"]
	// The steps of both platforms, from the history of a build of two:
	// one line, run once for each.
	if got := stepLines(first.Steps); got != "3 ran\n" && got != "3 cached\n" {
		t.Errorf("the steps of a two-platform build:\n%s", got)
	}

	writeFile(t, dir, "arm64.txt", "arm64 v2")
	ex := bkcache(t, dir, nil, "explain", "app")
	if ex.code != 0 || !strings.Contains(ex.stdout, "file modified context:arm64.txt") {
		t.Errorf("explain against the index's manifest (exit %d):\n%s%s", ex.code, ex.stdout, ex.stderr)
	}
	ci := bkcache(t, dir, nil, "cache", "inspect", r+"/app:cache-"+first.Hash, "--format", "json")
	var info struct{ Records int }
	if ci.code != 0 || json.Unmarshal([]byte(ci.stdout), &info) != nil || info.Records < 4 {
		t.Errorf("cache inspect of both platforms' cache (exit %d): %s %s", ci.code, ci.stdout, ci.stderr)
	}

	out := t.TempDir()
	mustBuild(t, dir, nil, "--output", "type=local,dest="+out)
	for p, want := range map[string]string{"linux_amd64": "amd64 of " + r, "linux_arm64": "arm64 v2"} {
		if b, err := os.ReadFile(filepath.Join(out, p, "arch.txt")); err != nil || string(b) != want {
			t.Errorf("--output type=local: %s/arch.txt = %q, %v; want %q", p, b, err, want)
		}
	}

	// A Docker image holds one platform: the engine's, solved apart.
	mustBuild(t, dir, nil, "--output", "type=docker,dest="+filepath.Join(out, "app.tar"))
	if names := strings.Join(tarNames(t, filepath.Join(out, "app.tar")), " "); !strings.Contains(names, "manifest.json") {
		t.Errorf("--output type=docker of two platforms: %s", names)
	}
	// That solve failing fails the service: nothing reported built.
	blocker := filepath.Join(out, "file")
	writeFile(t, out, "file", "")
	bad := bkcache(t, dir, nil, "build", "--output", "type=docker,dest="+filepath.Join(blocker, "app.tar"))
	if bad.code != 1 || !containsAll(bad.stderr, `app`, "exporting its linux/amd64 image (docker)") {
		t.Errorf("a Docker image that cannot be written: exit %d\n%s", bad.code, bad.stderr)
	}

	arm := mustBuild(t, dir, nil, "--push", "--platform", "linux/arm64")["app"]
	if arm.Hash == hashOf(t, dir, nil, "app") {
		t.Errorf("--platform linux/arm64 has the hash of both platforms")
	}
	if idx := readIndex(t, arm.Image); len(idx.images) != 1 || idx.images["linux/arm64"] == "" {
		t.Errorf("--platform linux/arm64 pushed %v", idx.images)
	}
}

// platformSteps reads BuildKit's plain progress: for each platform, whether
// each of its build steps was CACHED.
func platformSteps(plain string) map[string][]bool {
	step := regexp.MustCompile(`^#(\d+) \[[^]]+\] \[(linux/[a-z0-9]+) \d+/\d+\]`)
	byID := map[string]string{}
	var order []string
	for _, l := range strings.Split(plain, "\n") {
		if m := step.FindStringSubmatch(l); m != nil {
			if _, ok := byID[m[1]]; !ok {
				order = append(order, m[1])
			}
			byID[m[1]] = m[2]
		}
	}
	out := map[string][]bool{}
	for _, id := range order {
		out[byID[id]] = append(out[byID[id]], strings.Contains(plain, "\n#"+id+" CACHED"))
	}
	return out
}
