package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestBuildxBuilders: builders made by buildx itself are found by name
// (--builder, BUILDX_BUILDER) and as buildx's current one, and an
// unknown name says which builders there are.
func TestBuildxBuilders(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bx, err := sb.BuildBuildx(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir()
	buildx := func(args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, bx, args...)
		cmd.Env = append(cmd.Environ(), "DOCKER_CONFIG="+cfg, "DOCKER_HOST=unix:///nonexistent.sock")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("buildx %v: %v\n%s", args, err, out)
		}
	}
	buildx("create", "--name", "sandbox", "--driver", "remote", sb.BuildkitAddr)
	buildx("create", "--name", "secure", "--driver", "remote",
		"--driver-opt", "cacert="+sb.TLS.CACert+",cert="+sb.TLS.ClientCert+",key="+sb.TLS.ClientKey, sb.BuildkitTCP)
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  svc:\n    image: " + r + "/svc\n    build: .\n",
		"Dockerfile":   tiny["Dockerfile"], "input.txt": "v1\n",
	})
	// No BUILDKIT_HOST, and no Docker engine to fall back on.
	env := []string{"BUILDKIT_HOST=", "DOCKER_CONFIG=" + cfg, "DOCKER_HOST=unix:///nonexistent.sock"}
	on := func(t *testing.T, env []string, args []string, why, status string) {
		t.Helper()
		s, res := build(t, dir, env, append([]string{"-v", "--push"}, args...)...)
		if res.code != 0 || s["svc"].Status != status {
			t.Fatalf("build %v: %+v (exit %d), want %s\n%s", args, s["svc"], res.code, status, res.stderr)
		}
		if !strings.Contains(res.stderr, "building on "+why) {
			t.Errorf("build %v does not say it builds on %q:\n%s", args, why, res.stderr)
		}
	}
	on(t, env, []string{"--builder", "sandbox"}, "buildx builder sandbox (--builder, remote driver)", "built")
	on(t, append(env, "BUILDX_BUILDER=secure"), nil, "buildx builder secure (BUILDX_BUILDER, remote driver)", "skipped")
	buildx("use", "--global", "secure")
	writeFile(t, dir, "input.txt", "v2\n")
	on(t, env, nil, "buildx builder secure (buildx's current builder, remote driver)", "built")

	buildx("create", "--name", "gone", "--driver", "remote", "unix://"+filepath.Join(cfg, "nothing.sock"))
	res := bkcache(t, dir, env, "build", "--builder", "gone")
	if res.code == 0 || !strings.Contains(res.stderr, "buildx builder gone (--builder, remote driver) does not answer") || !strings.Contains(res.stderr, "docker buildx inspect --bootstrap gone") {
		t.Errorf("a builder that does not answer: exit %d\n%s", res.code, res.stderr)
	}
	res = bkcache(t, dir, env, "build", "--builder", "nope")
	if res.code == 0 || !strings.Contains(res.stderr, `no buildx builder "nope"`) || !strings.Contains(res.stderr, "`docker buildx ls` lists gone, sandbox, secure") {
		t.Errorf("an unknown builder: exit %d\n%s", res.code, res.stderr)
	}
	if out := bkcache(t, dir, env, "version", "--builder", "sandbox"); !strings.Contains(out.stdout, "buildx builder sandbox (--builder, remote driver)") || !strings.Contains(out.stdout, "v0.33.1") {
		t.Errorf("version --builder sandbox:\n%s", out.stdout)
	}
}
