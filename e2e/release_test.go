package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// releaseDir is a release of the linux platforms: test.sh's, when it
// made one (BKCACHE_RELEASE_DIR), else one made here.
func releaseDir(ctx context.Context, t *testing.T) string {
	t.Helper()
	if d := os.Getenv("BKCACHE_RELEASE_DIR"); d != "" {
		return d
	}
	dir := filepath.Join(t.TempDir(), "dist")
	cmd := exec.CommandContext(ctx, filepath.Join(sb.ModuleRoot(), ".ci", "release"), "v0.0.0-e2e")
	cmd.Env = append(os.Environ(), "OUT="+dir, "PLATFORMS=linux/amd64,linux/arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf(".ci/release: %v\n%s", err, out)
	}
	return dir
}

// releaseIndex reads the image index of the release's OCI layout name
// and checks it: valid, linux/amd64 and linux/arm64, the non-root user
// and bkcache as entrypoint, the OCI annotations.
func releaseIndex(t *testing.T, dist, name string) (v1.ImageIndex, *v1.IndexManifest) {
	t.Helper()
	lp, err := layout.FromPath(filepath.Join(dist, name))
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil || len(tm.Manifests) != 1 {
		t.Fatalf("%s/index.json: %v, %v; want one entry, the image's index", name, tm, err)
	}
	idx, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("%s: the image index does not validate: %v", name, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var platforms []string
	for _, m := range im.Manifests {
		platforms = append(platforms, m.Platform.OS+"/"+m.Platform.Architecture)
		img, err := idx.Image(m.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := img.ConfigFile()
		if err != nil || cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/bkcache"}) {
			t.Errorf("%s: %s's config: user %q, entrypoint %q (%v); want the non-root user and bkcache", name, m.Platform.Architecture, cfg.Config.User, cfg.Config.Entrypoint, err)
		}
	}
	if !slices.Equal(platforms, []string{"linux/amd64", "linux/arm64"}) {
		t.Errorf("%s holds %v, want linux/amd64 and linux/arm64", name, platforms)
	}
	for _, k := range []string{"org.opencontainers.image.source", "org.opencontainers.image.revision", "org.opencontainers.image.version", "org.opencontainers.image.created"} {
		if im.Annotations[k] == "" {
			t.Errorf("%s: the index lacks the annotation %s: %v", name, k, im.Annotations)
		}
	}
	return idx, im
}

// cranePush puts the OCI layout at ref with `crane push`, the README's
// publishing command, at the version go.mod pins.
func cranePush(ctx context.Context, t *testing.T, layout, ref string) {
	t.Helper()
	crane, err := sb.BuildCrane(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.CommandContext(ctx, crane, "push", "--insecure", layout, ref).CombinedOutput(); err != nil {
		t.Fatalf("crane push %s %s: %v\n%s", layout, ref, err, out)
	}
}

// TestReleaseImage: the release's image layouts are valid indexes of
// linux/amd64 and linux/arm64 with their annotations; `crane push`, the
// documented publishing command, puts the image in a registry; and the
// binary in it runs there, as its non-root user, in a RUN step on
// buildkitd. (TestGitLabComponent runs a job in the debug image.)
func TestReleaseImage(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dist := releaseDir(ctx, t)
	idx, im := releaseIndex(t, dist, "image")
	if _, dm := releaseIndex(t, dist, "image-debug"); !strings.Contains(dm.Annotations["org.opencontainers.image.description"], "busybox") {
		t.Errorf("the debug image's description %q does not name its busybox", dm.Annotations["org.opencontainers.image.description"])
	}

	ref := repo(t) + "/bkcache:" + im.Annotations["org.opencontainers.image.version"]
	cranePush(ctx, t, filepath.Join(dist, "image"), ref)
	d, _ := idx.Digest()
	if got := head(t, ref); got != d.String() {
		t.Errorf("the registry holds %s for %s, want the layout's index %s", got, ref, d)
	}

	// The binary runs in its own image: as nonroot (install-plugin
	// writes into its home, which only that user may), with a version.
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  img:\n    build: .\n",
		"Dockerfile": "FROM " + ref + "\n" +
			`RUN ["/usr/local/bin/bkcache", "install-plugin"]` + "\n" +
			`RUN ["/usr/local/bin/bkcache", "docker-cli-plugin-metadata"]` + "\n" +
			`RUN ["/usr/local/bin/bkcache", "version"]` + "\n",
	})
	if s := mustBuild(t, dir, nil, "--base-images", "as-written")["img"]; s.Status != "built" {
		t.Errorf("a build FROM the bkcache image: %+v", s)
	}
}
