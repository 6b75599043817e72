package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// actVersion is nektos/act, which runs GitHub workflows offline.
const actVersion = "v0.2.89"

// The workflow the Action test runs: a build job using the action by
// path, and a test job that pulls what it built by hash. act's host mode
// checks nothing out, so the first step copies the checkout in.
const actionWorkflow = `name: e2e
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    outputs:
      images: ${{ steps.bk.outputs.images }}
      built: ${{ steps.bk.outputs.built }}
      skipped: ${{ steps.bk.outputs.skipped }}
      record: ${{ steps.bk.outputs.record }}
    steps:
      - run: cp -a "$CHECKOUT/." "$GITHUB_WORKSPACE"
      - id: bk
        uses: ./
        with:
          version: VERSION
          download-url: DOWNLOAD_URL
          push: "true"
          working-directory: project
      - name: the record is there for the job's next steps (an artifact upload)
        run: test -s "${{ steps.bk.outputs.record }}" || { echo "no record at ${{ steps.bk.outputs.record }}"; exit 1; }
  test:
    needs: build
    runs-on: ubuntu-latest
    steps:
      - name: pull by hash and check
        env:
          IMAGES: ${{ needs.build.outputs.images }}
          BUILT: ${{ needs.build.outputs.built }}
          SKIPPED: ${{ needs.build.outputs.skipped }}
        run: |
          set -euo pipefail
          ref=$(jq -r .svc <<<"$IMAGES")
          case "$ref" in *:[0-9a-f]*) ;; *) echo "not a ref by hash: $ref"; exit 1 ;; esac
          got=$("$CRANE" export --insecure "$ref" - | tar -xO input.txt)
          [ "$got" = v1 ] || { echo "$ref holds input.txt = $got"; exit 1; }
          printf '%s\n' "$BUILT" > "$OUT/built.json"
          printf '%s\n' "$SKIPPED" > "$OUT/skipped.json"
`

// actionBuilderWorkflow makes a buildx builder current, as
// docker/setup-buildx-action does (here with buildx's remote driver, on
// the sandbox's buildkitd), and runs the action twice with no
// BUILDKIT_HOST: first as is, so it takes buildx's current builder; then
// after switching buildx away from it, naming it in builder:.
const actionBuilderWorkflow = `name: e2e-builder
on: push
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: cp -a "$CHECKOUT/." "$GITHUB_WORKSPACE"
      - name: set up buildx, as docker/setup-buildx-action does
        run: |
          "$BUILDX" create --name e2e-builder --driver remote --use "$BUILDKIT_ADDR"
          "$BUILDX" create --name elsewhere --driver remote --use unix:///nonexistent.sock
          "$BUILDX" use e2e-builder
      - id: current
        uses: ./
        with:
          version: VERSION
          download-url: DOWNLOAD_URL
          push: "true"
          working-directory: project
          args: -v
      - run: '"$BUILDX" use elsewhere'
      - id: named
        uses: ./
        with:
          version: VERSION
          download-url: DOWNLOAD_URL
          push: "true"
          builder: e2e-builder
          working-directory: project
          args: -v
      - run: |
          printf '%s\n' '${{ steps.current.outputs.built }}' > "$OUT/builder-built.json"
          printf '%s\n' '${{ steps.named.outputs.skipped }}' > "$OUT/builder-skipped.json"
`

// TestGitHubAction runs the repository's action for real, offline, with
// act in host mode: it installs the release from a loopback server (the
// checksum checked), builds and pushes on the sandbox, and a second job
// pulls by hash; the second run skips; a corrupt archive stops the
// install.
func TestGitHubAction(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	dist := releaseDir(ctx, t)
	version, archive := releaseVersion(t, dist)
	bin := t.TempDir()
	install := exec.CommandContext(ctx, "go", "install", "github.com/nektos/act@"+actVersion)
	install.Env = append(os.Environ(), "GOBIN="+bin)
	if out, err := install.CombinedOutput(); err != nil {
		sourcetest.Unavailable(t, "go install github.com/nektos/act@"+actVersion+" (through the Go module proxy): "+err.Error()+"\n"+string(out))
	}
	crane, err := sb.BuildCrane(ctx)
	if err != nil {
		t.Fatal(err)
	}

	serve := func(t *testing.T, dir string) string { return serveRelease(t, dir, version) }
	onSandbox := "BUILDKIT_HOST=" + sb.BuildkitAddr
	r := repo(t)
	checkout := sourcetest.Tree(t, map[string]string{
		"project/compose.yaml": "services:\n  svc:\n    image: " + r + "/svc\n    build: .\n",
		"project/Dockerfile":   tiny["Dockerfile"],
		"project/input.txt":    "v1",
	})
	action, err := os.ReadFile(filepath.Join(sb.ModuleRoot(), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.Write(t, checkout, map[string]string{"action.yml": string(action)})
	// act reads the git context of the workflow's repository.
	if out, err := exec.Command("git", "-C", checkout, "init", "-q").CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	out := t.TempDir()
	// act runs workflow with the release at url, and env beside the
	// sandbox's.
	act := func(t *testing.T, workflow, url string, env ...string) result {
		t.Helper()
		wf := strings.NewReplacer("VERSION", version, "DOWNLOAD_URL", url).Replace(workflow)
		sourcetest.Write(t, checkout, map[string]string{".github/workflows/e2e.yml": wf})
		args := []string{"push", "-P", "ubuntu-latest=-self-hosted", "-W", filepath.Join(checkout, ".github", "workflows", "e2e.yml")}
		for _, e := range append(append([]string{"CHECKOUT=" + checkout, "CRANE=" + crane, "OUT=" + out,
			"XDG_CACHE_HOME=" + filepath.Join(sb.Dir, "cache")}, sb.Env()...), env...) {
			args = append(args, "--env", e)
		}
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "act"), args...)
		res, err := runCmd(cmd, checkout, nil)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	list := func(t *testing.T, name string) []string {
		t.Helper()
		var l []string
		b, err := os.ReadFile(filepath.Join(out, name))
		if err == nil {
			err = json.Unmarshal(b, &l)
		}
		if err != nil {
			t.Fatalf("%s, written by the test job: %v", name, err)
		}
		return l
	}

	url := serve(t, dist)
	if res := act(t, actionWorkflow, url, onSandbox); res.code != 0 {
		t.Fatalf("act, first run: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if b := list(t, "built.json"); len(b) != 1 || b[0] != "svc" {
		t.Errorf("first run built %v, want [svc]", b)
	}
	if res := act(t, actionWorkflow, url, onSandbox); res.code != 0 {
		t.Fatalf("act, second run: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if s := list(t, "skipped.json"); len(s) != 1 || s[0] != "svc" {
		t.Errorf("second run skipped %v, want [svc]", s)
	}

	// After setup-buildx-action: buildx's current builder, then the
	// builder input; with no BUILDKIT_HOST and no Docker engine.
	bx, err := sb.BuildBuildx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2 := repo(t)
	sourcetest.Write(t, checkout, map[string]string{"project/compose.yaml": "services:\n  svc:\n    image: " + r2 + "/svc\n    build: .\n"})
	res := act(t, actionBuilderWorkflow, url, "BUILDX="+bx, "BUILDKIT_ADDR="+sb.BuildkitAddr, "BUILDKIT_HOST=", "DOCKER_CONFIG="+t.TempDir(), "DOCKER_HOST=unix:///nonexistent.sock")
	if res.code != 0 {
		t.Fatalf("act, after buildx create --use: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"buildx builder e2e-builder (buildx's current builder, remote driver)", "buildx builder e2e-builder (--builder, remote driver)"} {
		if !strings.Contains(res.stdout+res.stderr, want) {
			t.Errorf("the action's log does not say it built on %q:\n%s", want, res.stdout)
		}
	}
	if b, s := list(t, "builder-built.json"), list(t, "builder-skipped.json"); len(b) != 1 || len(s) != 1 {
		t.Errorf("on buildx's builder: built %v, then skipped %v; want [svc] each", b, s)
	}

	// A corrupt archive: the install step refuses it.
	bad := t.TempDir()
	if err := os.CopyFS(bad, os.DirFS(dist)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, filepath.Base(archive)), []byte("not the release"), 0o644); err != nil {
		t.Fatal(err)
	}
	res = act(t, actionWorkflow, serve(t, bad), onSandbox)
	if res.code == 0 || !strings.Contains(res.stdout+res.stderr, "does not match its SHA256SUMS entry") {
		t.Errorf("a corrupt archive: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
}

// releaseVersion is the version of the release in dist, and its
// linux/amd64 archive.
func releaseVersion(t *testing.T, dist string) (version, archive string) {
	t.Helper()
	archives, _ := filepath.Glob(filepath.Join(dist, "bkcache_*_linux_amd64.tar.gz"))
	if len(archives) != 1 {
		t.Fatalf("no linux/amd64 archive in %s", dist)
	}
	return strings.TrimSuffix(strings.TrimPrefix(filepath.Base(archives[0]), "bkcache_"), "_linux_amd64.tar.gz"), archives[0]
}

// serveRelease serves dist as a release server does: URL/VERSION/FILE.
func serveRelease(t *testing.T, dist, version string) string {
	t.Helper()
	root := t.TempDir()
	if err := os.Symlink(dist, filepath.Join(root, version)); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.FileServer(http.Dir(root)))
	t.Cleanup(srv.Close)
	return srv.URL
}
