package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/e2e/sandbox"
)

// TestDockerEngine runs the parts of bkcache that meet a Docker engine
// against a real dockerd of the sandbox's own: --load streams the image
// into it, and docker-container:// reaches buildkitd through `docker exec
// buildctl dial-stdio`, BuildKit's connection helper.
func TestDockerEngine(t *testing.T) {
	requireSandbox(t)
	if err := sandbox.CheckDocker(); err != nil {
		sourcetest.Unavailable(t, err.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	docker, err := sb.StartDocker(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"DOCKER_HOST=" + docker.Host}
	dir, r := sourcetest.Tree(t, tiny), repo(t)

	t.Run("load", func(t *testing.T) {
		s := mustBuild(t, dir, env, "--load", "--repository", r)["svc"]
		ref := r + "/svc:" + s.Hash
		out, err := docker.Run(ctx, nil, "run", "--rm", "--network", "none", ref, "cat", "/built", "/input.txt")
		if err != nil || out != "built\nv1\n" {
			t.Fatalf("running the loaded image %s: %q %v", ref, out, err)
		}
		if head(t, ref) != "" {
			t.Errorf("--load pushed %s", ref)
		}
		// Also under the name docker compose looks for before building
		// the service in `up` (no image: here, so PROJECT-SERVICE).
		named := sourcetest.Tree(t, map[string]string{"compose.yaml": "name: e2e-load\nservices:\n  svc:\n    build: .\n",
			"Dockerfile": tiny["Dockerfile"], "input.txt": "named\n"})
		mustBuild(t, named, env, "--load")
		out, err = docker.Run(ctx, nil, "run", "--rm", "--network", "none", "e2e-load-svc", "cat", "/input.txt")
		if err != nil || out != "named\n" {
			t.Fatalf("running e2e-load-svc, docker compose's name for the loaded image: %q %v", out, err)
		}
		// Loading what the engine already has under its hash is a skip;
		// the compose name is put back if it went.
		if _, err := docker.Run(ctx, nil, "rmi", "e2e-load-svc"); err != nil {
			t.Fatal(err)
		}
		if s := mustBuild(t, named, env, "--load")["svc"]; s.Status != "skipped" {
			t.Errorf("--load of an image the engine has: %+v", s)
		}
		if out, err := docker.Run(ctx, nil, "run", "--rm", "--network", "none", "e2e-load-svc", "cat", "/input.txt"); err != nil || out != "named\n" {
			t.Errorf("e2e-load-svc after a skipped --load: %q %v", out, err)
		}
		// --force builds what the engine has all the same.
		if s := mustBuild(t, named, env, "--load", "--force")["svc"]; s.Status != "built" {
			t.Errorf("--load --force of an image the engine has: %+v, want built", s)
		}
		// What the engine holds is no output of another kind: that is
		// written all the same.
		local := t.TempDir()
		if s := mustBuild(t, named, env, "--output", "type=local,dest="+local)["svc"]; s.Status != "built" {
			t.Errorf("--output type=local of an image the engine has: %+v", s)
		}
		if b, err := os.ReadFile(filepath.Join(local, "input.txt")); err != nil || string(b) != "named\n" {
			t.Errorf("--output type=local of an image the engine has: input.txt %q %v", b, err)
		}
		writeFile(t, named, "input.txt", "changed\n")
		if s := mustBuild(t, named, env, "--load")["svc"]; s.Status != "built" {
			t.Errorf("--load after an input changed: %+v", s)
		}
		if out, err := docker.Run(ctx, nil, "run", "--rm", "--network", "none", "e2e-load-svc", "cat", "/input.txt"); err != nil || out != "changed\n" {
			t.Errorf("e2e-load-svc after the rebuild: %q %v", out, err)
		}
	})

	// A service of two platforms is pushed as an index of both, and the
	// engine gets the image of its own platform.
	t.Run("load several platforms", func(t *testing.T) {
		pr := repo(t)
		multi := twoPlatforms(t, pr, nil)
		s := mustBuild(t, multi, env, "--load", "--push")["app"]
		if idx := readIndex(t, s.Image); len(idx.images) != 2 {
			t.Errorf("--push --load pushed %v, want both platforms", idx.images)
		}
		arch, err := docker.Run(ctx, nil, "image", "inspect", "--format", "{{.Os}}/{{.Architecture}}", pr+"/app:"+s.Hash)
		if err != nil || arch != "linux/amd64\n" {
			t.Fatalf("the loaded image: %q %v, want linux/amd64", arch, err)
		}
		only := sourcetest.Tree(t, map[string]string{
			"compose.yaml": "services:\n  app:\n    image: " + pr + "/app\n    build:\n      context: .\n      platforms: [linux/arm64, linux/s390x]\n",
			"Dockerfile":   "FROM scratch\nCOPY compose.yaml /\n",
		})
		res := bkcache(t, only, env, "build", "--load", "--push")
		if res.code != 1 || !containsAll(res.stderr, `service "app"`, "linux/arm64, linux/s390x", "not for linux/amd64", "--output type=oci") {
			t.Errorf("--load of platforms the engine is not: exit %d\n%s", res.code, res.stderr)
		}
		if h := hashOf(t, only, env, "app"); head(t, pr+"/app:"+h) != "" {
			t.Errorf("the refused --load pushed %s:%s", pr+"/app", h)
		}
	})

	// --push --load where the registry has R:H: R:H is not pushed again
	// (the solve makes only the engine's image); where the engine has it
	// too, nothing is solved. R:F follows R:H either way.
	t.Run("push and load what exists", func(t *testing.T) {
		pr, d := repo(t), sourcetest.Tree(t, map[string]string{"compose.yaml": tiny["compose.yaml"], "Dockerfile": tiny["Dockerfile"], "input.txt": "exists\n"})
		first := mustBuild(t, d, env, "--push", "--repository", pr)["svc"]
		for i, want := range []string{"built", "skipped"} {
			s := mustBuild(t, d, env, "--push", "--load", "--repository", pr)["svc"]
			if s.Status != want || s.Digest != first.Digest || s.Floating == "" {
				t.Errorf("run %d: %+v, want %s at R:H %s, R:F moved", i+2, s, want, first.Digest)
			}
			if got := head(t, pr+"/svc:"+first.Hash); got != first.Digest {
				t.Errorf("run %d: R:H pushed again: %s, was %s", i+2, got, first.Digest)
			}
			if out, err := docker.Run(ctx, nil, "run", "--rm", "--network", "none", pr+"/svc:"+first.Hash, "cat", "/input.txt"); err != nil || out != "exists\n" {
				t.Errorf("run %d: the engine's image: %q %v", i+2, out, err)
			}
		}
	})

	t.Run("docker-container", func(t *testing.T) {
		const name = "bkcache-e2e-buildctl"
		t.Cleanup(func() { docker.Run(context.Background(), nil, "rm", "-f", name) })
		if err := docker.BuildctlContainer(ctx, name); err != nil {
			t.Fatal(err)
		}
		addr := "docker-container://" + name
		writeFile(t, dir, "input.txt", "v2\n")
		s := mustBuild(t, dir, env, "--addr", addr, "--push", "--repository", r)["svc"]
		if s.Status != "built" || head(t, r+"/svc:ci") != s.Digest {
			t.Fatalf("build through %s: %+v", addr, s)
		}
		gone := bkcache(t, dir, env, "build", "--addr", "docker-container://no-such-container", "--repository", r)
		if gone.code == 0 || !containsAll(gone.stderr, "docker-container://no-such-container", "No such container", "docker ps") {
			t.Errorf("missing container: exit %d\n%s", gone.code, gone.stderr)
		}
	})
}
