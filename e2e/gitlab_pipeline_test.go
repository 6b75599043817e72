package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/e2e/sandbox"
)

// gitlabPipeline includes the component as a project includes it, by
// path with inputs (include:component is the same file and inputs,
// fetched from a GitLab instance), and adds a test job that runs in the
// image the build job hands on.
const gitlabPipeline = `stages: [build, test]
include:
  - local: templates/bkcache.yml
    inputs:
      version: VERSION
      image: IMAGES/bkcache
      push: true
test:
  stage: test
  needs: [bkcache-build]
  image: $BKCACHE_SVC_IMAGE
  script:
    - echo "testing $BKCACHE_SVC_IMAGE"
    - test "$(cat /input.txt)" = v1
    - test "$(cat /built)" = built
`

// TestGitLabPipeline runs the component in a pipeline with
// gitlab-ci-local, which reads .gitlab-ci.yml as GitLab does (its JSON
// schema, include with spec:inputs, needs and dotenv reports) and runs
// each job in its image on a Docker engine, as the runner's docker
// executor does. The build job runs in the release's debug image,
// building on a buildkitd service or on a docker:dind one (another
// engine, over TCP), and pushing to the sandbox registry; the test job
// starts from BKCACHE_SVC_IMAGE, the dotenv's exact ref, and checks what
// is in it; the next pipeline skips the build.
func TestGitLabPipeline(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	gcl, err := sb.GitLabCILocal(ctx)
	if errors.Is(err, sandbox.ErrMissing) {
		sourcetest.Unavailable(t, err.Error())
	} else if err != nil {
		t.Fatal(err)
	}
	executor, err := sb.StartDocker(ctx)
	if errors.Is(err, sandbox.ErrMissing) {
		sourcetest.Unavailable(t, err.Error())
	} else if err != nil {
		t.Fatal(err)
	}
	helper, err := sb.GitLabHelperImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dist := releaseDir(ctx, t)
	version, _ := releaseVersion(t, dist)
	images := repo(t)
	pushDebugImage(ctx, t, dist, images+"/bkcache:"+version+"-debug")
	component, err := os.ReadFile(filepath.Join(sb.ModuleRoot(), "templates", "bkcache.yml"))
	if err != nil {
		t.Fatal(err)
	}
	p := gitlabRun{gcl: gcl, executor: executor.Host, helper: helper, pipeline: strings.NewReplacer("VERSION", version, "IMAGES", images).Replace(gitlabPipeline), component: string(component)}

	t.Run("buildkitd service", func(t *testing.T) {
		p.twice(ctx, t, "BUILDKIT_HOST="+forwardTCP(t, strings.TrimPrefix(sb.BuildkitAddr, "unix://")))
	})
	t.Run("docker dind service", func(t *testing.T) {
		eng := startEngine(ctx, t, sandbox.EngineOptions{Name: "gitlab-dind"})
		ref := p.twice(ctx, t, "DOCKER_HOST="+forwardTCP(t, strings.TrimPrefix(eng.Host, "unix://")), "DOCKER_TLS_CERTDIR=")
		if _, err := eng.Run(ctx, nil, "image", "inspect", ref); err != nil {
			t.Errorf("the build did not run on the dind engine: %v", err)
		}
	})
}

// gitlabRun is what a run of gitlabPipeline needs.
type gitlabRun struct {
	gcl, executor, helper string // gitlab-ci-local, its engine, its helper image
	pipeline, component   string // .gitlab-ci.yml and templates/bkcache.yml
}

// twice runs the pipeline on a new project with the variables vars:
// the build job builds, the test job finds its files in the image the
// dotenv names; the next pipeline skips the build. It returns the ref.
func (p gitlabRun) twice(ctx context.Context, t *testing.T, vars ...string) string {
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		".gitlab-ci.yml":        p.pipeline,
		"templates/bkcache.yml": p.component,
		"compose.yaml":          "services:\n  svc:\n    image: " + r + "/svc\n    build: .\n",
		"Dockerfile":            tiny["Dockerfile"], "input.txt": "v1\n",
	})
	// gitlab-ci-local copies the files git tracks into the job.
	for _, args := range [][]string{{"init", "-q"}, {"add", "-A"}, {"-c", "user.name=e2e", "-c", "user.email=e2e@localhost", "commit", "-qm", "project"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	home := t.TempDir()
	run := func() string {
		t.Helper()
		args := []string{"--home", home, "--network", "host", "--helper-image", p.helper, "--pull-policy", "if-not-present"}
		for _, e := range append(vars, sb.Env()...) {
			args = append(args, "--variable", e)
		}
		cmd := exec.CommandContext(ctx, p.gcl, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "DOCKER_HOST="+p.executor, "HOME="+home)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("gitlab-ci-local: %v\n%s", err, out)
		}
		return string(out)
	}
	artifacts := filepath.Join(dir, ".gitlab-ci-local", "artifacts", "bkcache-build")
	out := run()
	dotenv, err := os.ReadFile(filepath.Join(artifacts, ".gitlab-ci-reports", "dotenv", "bkcache.env"))
	m := regexp.MustCompile(`(?m)^BKCACHE_SVC_IMAGE=(` + regexp.QuoteMeta(r) + `/svc:[0-9a-f]{64})$`).FindSubmatch(dotenv)
	if err != nil || m == nil {
		t.Fatalf("the build job's dotenv report: %q %v\n%s", dotenv, err, out)
	}
	if !strings.Contains(out, "testing "+string(m[1])) {
		t.Errorf("the test job did not run in %s:\n%s", m[1], out)
	}
	if s := readServices(t, filepath.Join(artifacts, "bkcache-record.json"))["svc"]; s.Status != "built" {
		t.Errorf("the first pipeline's record: svc %q, want built\n%s", s.Status, out)
	}
	out = run()
	if s := readServices(t, filepath.Join(artifacts, "bkcache-record.json"))["svc"]; s.Status != "skipped" {
		t.Errorf("the second pipeline's record: svc %q, want skipped\n%s", s.Status, out)
	}
	return string(m[1])
}
