package e2e

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// pushFiles writes, at ref, an image of one layer holding files, and
// returns that layer's digest.
func pushFiles(t *testing.T, ref string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, p := range slices.Sorted(maps.Keys(files)) {
		tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: int64(len(files[p])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[p]))
	}
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(mustRef(t, ref), img); err != nil {
		t.Fatal(err)
	}
	d, _ := layer.Digest()
	return d.String()
}

func hashOf(t *testing.T, dir string, env []string, svc string, args ...string) string {
	t.Helper()
	out := bkcache(t, dir, env, append([]string{"hash", svc, "--format", "json"}, args...)...)
	if out.code != 0 {
		t.Fatalf("hash %s (exit %d):\n%s", svc, out.code, out.stderr)
	}
	var doc struct {
		Services []struct{ Service, Hash string }
	}
	if err := json.Unmarshal([]byte(out.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	for _, s := range doc.Services {
		if s.Service == svc {
			return s.Hash
		}
	}
	t.Fatalf("no hash for %s:\n%s", svc, out.stdout)
	return ""
}

// TestBaseImageMoves: a base image whose tag moves (a security rebuild)
// moves the hash, so the service is rebuilt on the new base, and explain
// names the move; so does an image read by COPY --from and by a
// docker-image:// context. Hashed as written, the hash stays.
func TestBaseImageMoves(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	pushFiles(t, r+"/base:1", map[string]string{"base.txt": "base one"})
	pushFiles(t, r+"/tools:1", map[string]string{"tool.txt": "tool one"})
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n" +
			"  app:\n    build: ./app\n" +
			"  copier:\n    build: ./copier\n" +
			"  ctx:\n    build:\n      context: ./copier\n      dockerfile: Ctx\n      additional_contexts:\n        tools: docker-image://" + r + "/tools:1\n",
		"app/Dockerfile":    "FROM " + r + "/base:1\nCOPY a.txt /a.txt\n",
		"app/a.txt":         "a",
		"copier/Dockerfile": "FROM scratch\nCOPY --from=" + r + "/tools:1 /tool.txt /tool.txt\n",
		"copier/Ctx":        "FROM scratch\nCOPY --from=tools /tool.txt /tool.txt\n",
	})
	mf := filepath.Join(t.TempDir(), "build.json")
	first := mustBuild(t, dir, nil, "--push", "--repository", r, "--manifest", mf)
	written := hashOf(t, dir, nil, "app", "--base-images", "as-written")

	newBase := pushFiles(t, r+"/base:1", map[string]string{"base.txt": "base two"})
	pushFiles(t, r+"/tools:1", map[string]string{"tool.txt": "tool two"})
	for _, svc := range []string{"app", "copier", "ctx"} {
		if h := hashOf(t, dir, nil, svc); h == first[svc].Hash {
			t.Errorf("%s: the image it reads moved, the hash did not", svc)
		}
	}
	if h := hashOf(t, dir, nil, "app", "--base-images", "as-written"); h != written || h == first["app"].Hash {
		t.Errorf("as written: %s, then %s after the move (resolved %s)", written, h, first["app"].Hash)
	}

	// Between the build job and a test job: the manifest still names what
	// was built; check says which base moved.
	env := bkcache(t, dir, nil, "env", "app", "--from-manifest", mf, "--repository", r)
	if env.code != 0 || !strings.Contains(env.stdout, "BKCACHE_APP_IMAGE="+first["app"].Image+"\n") {
		t.Errorf("env --from-manifest (exit %d):\n%s%s", env.code, env.stdout, env.stderr)
	}
	chk := bkcache(t, dir, nil, "check", "app", "--repository", r)
	if chk.code == 0 || !containsAll(chk.stderr, "base image "+r+"/base:1 moved from ", r+"/app:ci") {
		t.Errorf("check after the base moved (exit %d):\n%s%s", chk.code, chk.stdout, chk.stderr)
	}
	ex := bkcache(t, dir, nil, "explain", "app", "--repository", r)
	if ex.code != 0 || !containsAll(ex.stdout, "base image "+r+"/base:1 moved from ", first["app"].Hash[:12]) {
		t.Errorf("explain after the base moved (exit %d):\n%s%s", ex.code, ex.stdout, ex.stderr)
	}
	res := mustBuild(t, dir, nil, "--push", "--repository", r)
	for _, svc := range []string{"app", "copier", "ctx"} {
		if res[svc].Status != "built" {
			t.Errorf("%s after its image moved: %s, want built", svc, res[svc].Status)
		}
	}
	if !slices.Contains(layers(t, res["app"].Image), newBase) {
		t.Errorf("app was rebuilt, but not on the new base layer %s", newBase)
	}
	for _, svc := range []string{"copier", "ctx"} {
		if got := imageFiles(t, res[svc].Image, "tool.txt")["tool.txt"]; got != "tool two" {
			t.Errorf("%s: tool.txt %q, want the moved image's", svc, got)
		}
	}
}

// TestSolvePinnedToHashedBase: the tag moves after the plan was made and
// before the service's solve starts; the image is built on the base the
// hash names, never on the moved tag.
func TestSolvePinnedToHashedBase(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	oldBase := pushFiles(t, r+"/base:1", map[string]string{"base.txt": "base one"})
	files := map[string]string{
		"compose.yaml": "services:\n  slow:\n    build:\n      context: .\n      args:\n        SLEEP: ${SLEEP:-0}\n" +
			"  app:\n    build:\n      context: ./app\n      additional_contexts:\n        slow: service:slow\n",
		"Dockerfile":     slowDockerfile(r),
		"app/Dockerfile": "FROM " + r + "/base:1\nCOPY --from=slow /done /done\n",
	}
	dir := sourcetest.Tree(t, files)
	_, out, done := startSlow(t, sb.BuildkitAddr, dir, r, 3)
	newBase := pushFiles(t, r+"/base:1", map[string]string{"base.txt": "base two"})
	if code := waitExit(t, done, out); code != 0 {
		t.Fatalf("build (exit %d):\n%s", code, out.String())
	}
	got := layers(t, r+"/app:ci") // what this run built and pushed
	if len(got) == 0 {
		t.Fatalf("app:ci has no layers:\n%s", out.String())
	}
	if !slices.Contains(got, oldBase) || slices.Contains(got, newBase) {
		t.Errorf("app's layers %v: want the hashed base %s, not the moved tag's %s", got, oldBase, newBase)
	}
}

// TestBaseImageLookupFails: a base that cannot be looked up is an error
// naming the service, the ref and the way out; nothing is built.
func TestBaseImageLookupFails(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml":   "services:\n  app:\n    build: ./app\n",
		"app/Dockerfile": "FROM " + r + "/missing:1\n",
	})
	out := bkcache(t, dir, nil, "build", "--push", "--repository", r)
	if out.code != 1 || !containsAll(out.stderr, `service "app"`, r+"/missing:1", "not found", "--base-images as-written") {
		t.Errorf("exit %d:\n%s", out.code, out.stderr)
	}
	if head(t, r+"/app:ci") != "" {
		t.Error("something was pushed")
	}
}

// slowDockerfile is the slow service's Dockerfile with a step of its own
// (nonce): no other test's cached RUN can stand in for it, so it prints
// "start" and sleeps.
func slowDockerfile(nonce string) string {
	return "FROM busybox\nARG SLEEP\nRUN echo " + nonce + " > /nonce && echo start && sleep $SLEEP && echo done > /done\n"
}
