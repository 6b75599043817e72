package e2e

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestPlatforms: a service's platforms build in one solve into one index
// pushed as R:H with every platform, which ci then names; a second run
// on a pruned daemon is skipped, and --force there takes every
// platform's steps from the one cache. The steps differ per platform
// (each copies its own file), so BuildKit cannot share them between the
// two.
func TestPlatforms(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: " + r + "/app\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n",
		"Dockerfile":   "FROM scratch\nARG TARGETARCH\nCOPY ${TARGETARCH}.txt /arch.txt\nCOPY common.txt /common.txt\n",
		"amd64.txt":    "amd64 of " + r,
		"arm64.txt":    "arm64 of " + r,
		"common.txt":   "common",
	})
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
