package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/e2e/sandbox"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"go.yaml.in/yaml/v4"
)

// GitLab's documented keywords (docs.gitlab.com/ci/yaml): what a
// component's spec:inputs entry, a job, its artifacts and their reports
// may hold. A key outside them is a typo GitLab rejects.
var (
	gitlabInputKeys    = []string{"default", "description", "options", "regex", "type"}
	gitlabInputTypes   = []string{"array", "boolean", "number", "string"}
	gitlabJobKeys      = []string{"after_script", "allow_failure", "artifacts", "before_script", "cache", "coverage", "dast_configuration", "dependencies", "environment", "extends", "hooks", "id_tokens", "identity", "image", "inherit", "interruptible", "manual_confirmation", "needs", "pages", "parallel", "release", "resource_group", "retry", "rules", "run", "script", "secrets", "services", "stage", "tags", "timeout", "trigger", "variables", "when"}
	gitlabArtifactKeys = []string{"access", "exclude", "expire_in", "expose_as", "name", "paths", "public", "reports", "untracked", "when"}
	gitlabReportKeys   = []string{"accessibility", "annotations", "api_fuzzing", "browser_performance", "coverage_report", "codequality", "container_scanning", "coverage_fuzzing", "cyclonedx", "dast", "dependency_scanning", "dotenv", "junit", "load_performance", "metrics", "requirements", "repository_xray", "sast", "secret_detection", "terraform"}
)

// component is a CI/CD component template: its spec, and the rest.
type component struct {
	inputs map[string]map[string]any
	body   string
}

func readComponent(t *testing.T, path string) component {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	header, body, ok := strings.Cut(string(b), "\n---\n")
	if !ok {
		t.Fatalf("%s: no --- between spec: and the jobs", path)
	}
	var spec struct {
		Spec struct {
			Inputs map[string]map[string]any `yaml:"inputs"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal([]byte(header), &spec); err != nil {
		t.Fatalf("%s's spec: %v", path, err)
	}
	return component{inputs: spec.Spec.Inputs, body: body}
}

var inputRef = regexp.MustCompile(`\$\[\[\s*inputs\.([a-zA-Z0-9_-]+)\s*\]\]`)

// render interpolates $[[ inputs.NAME ]] as GitLab does: the given value,
// else the default; an input that is neither, or unknown, is an error.
func (c component) render(given map[string]string) (string, error) {
	var errs []string
	out := inputRef.ReplaceAllStringFunc(c.body, func(m string) string {
		name := inputRef.FindStringSubmatch(m)[1]
		spec, ok := c.inputs[name]
		if !ok {
			errs = append(errs, "unknown input "+name)
			return m
		}
		if v, ok := given[name]; ok {
			return v
		}
		if d, ok := spec["default"]; ok {
			return fmt.Sprint(d)
		}
		errs = append(errs, "input "+name+" has no default and was not given")
		return m
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

func keysIn(t *testing.T, what string, m map[string]any, allowed []string) {
	t.Helper()
	for k := range m {
		if !slices.Contains(allowed, k) {
			t.Errorf("%s: %q is not a GitLab keyword", what, k)
		}
	}
}

// detectShell is GitLab Runner's BashDetectShellScript (shells/bash.go),
// the command its docker executor gives the job's container: the first
// shell found runs the job's script from stdin.
const detectShell = `if [ -x /usr/local/bin/bash ]; then
	exec /usr/local/bin/bash $@
elif [ -x /usr/bin/bash ]; then
	exec /usr/bin/bash $@
elif [ -x /bin/bash ]; then
	exec /bin/bash $@
elif [ -x /usr/local/bin/sh ]; then
	exec /usr/local/bin/sh $@
elif [ -x /usr/bin/sh ]; then
	exec /usr/bin/sh $@
elif [ -x /bin/sh ]; then
	exec /bin/sh $@
elif [ -x /busybox/sh ]; then
	exec /busybox/sh $@
else
	echo shell not found
	exit 1
fi

`

// gitlabJob is what the test reads of the component's rendered job.
type gitlabJob struct {
	Image struct {
		Name       string   `yaml:"name"`
		Entrypoint []string `yaml:"entrypoint"`
	} `yaml:"image"`
	Script    []string          `yaml:"script"`
	Variables map[string]string `yaml:"variables"`
	Artifacts struct {
		Reports map[string]any `yaml:"reports"`
	} `yaml:"artifacts"`
}

// renderJob renders the component with given and checks the job's keys
// against GitLab's.
func renderJob(t *testing.T, c component, given map[string]string) gitlabJob {
	t.Helper()
	rendered, err := c.render(given)
	if err != nil {
		t.Fatal(err)
	}
	var jobs map[string]gitlabJob
	if err := yaml.Unmarshal([]byte(rendered), &jobs); err != nil {
		t.Fatalf("the rendered jobs: %v\n%s", err, rendered)
	}
	job, ok := jobs["bkcache-build"]
	if !ok || len(jobs) != 1 {
		t.Fatalf("jobs %v, want bkcache-build", jobs)
	}
	var raw map[string]map[string]any
	if err := yaml.Unmarshal([]byte(rendered), &raw); err != nil {
		t.Fatal(err)
	}
	keysIn(t, "bkcache-build", raw["bkcache-build"], gitlabJobKeys)
	keysIn(t, "bkcache-build:image", raw["bkcache-build"]["image"].(map[string]any), []string{"docker", "entrypoint", "kubernetes", "name", "pull_policy"})
	keysIn(t, "bkcache-build:artifacts", raw["bkcache-build"]["artifacts"].(map[string]any), gitlabArtifactKeys)
	keysIn(t, "bkcache-build:artifacts:reports", job.Artifacts.Reports, gitlabReportKeys)
	return job
}

// TestGitLabComponent: no GitLab runner runs offline here, so the
// component is checked as far as this machine can: its structure against
// GitLab's keywords and its inputs' interpolation; then its job, run as
// the runner's docker executor runs it. The release's debug image is
// pushed where the job's image name points, and the job's script runs in
// a runc container of that image: the runner's shell detection, the
// image's user, GitLab's predefined variables, the project bound at
// /builds, the host's network, and buildkitd over TCP, as a service is.
func TestGitLabComponent(t *testing.T) {
	requireSandbox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c := readComponent(t, filepath.Join(sb.ModuleRoot(), "templates", "bkcache.yml"))
	for name, spec := range c.inputs {
		keysIn(t, "spec:inputs:"+name, spec, gitlabInputKeys)
		if typ, ok := spec["type"]; ok && !slices.Contains(gitlabInputTypes, fmt.Sprint(typ)) {
			t.Errorf("input %s: type %v", name, typ)
		}
	}
	if _, err := c.render(nil); err == nil || !strings.Contains(err.Error(), "input version has no default") {
		t.Errorf("rendering without the required version: %v", err)
	}
	dist := releaseDir(ctx, t)
	version, _ := releaseVersion(t, dist)
	if job := renderJob(t, c, map[string]string{"version": version}); job.Image.Name != "ghcr.io/bkcache/bkcache:"+version+"-debug" {
		t.Errorf("the job's default image %q, want the project's debug image", job.Image.Name)
	}
	images := repo(t)
	job := renderJob(t, c, map[string]string{"version": version, "image": images + "/bkcache", "push": "true"})
	img := pushDebugImage(ctx, t, dist, job.Image.Name)

	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  svc:\n    image: " + r + "/svc\n    build: .\n",
		"Dockerfile":   tiny["Dockerfile"], "input.txt": "v1\n",
	})
	run := func() string {
		t.Helper()
		out, code := runJob(ctx, t, img, job, dir)
		if code != 0 {
			t.Fatalf("the component's job: exit %d\n%s", code, out)
		}
		return out
	}
	run()
	dotenv, err := os.ReadFile(filepath.Join(dir, "bkcache.env"))
	if err != nil || !regexp.MustCompile(`(?m)^BKCACHE_SVC_IMAGE=`+regexp.QuoteMeta(r)+`/svc:[0-9a-f]{64}$`).Match(dotenv) {
		t.Errorf("the dotenv report: %q %v", dotenv, err)
	}
	var suites struct {
		Cases []struct {
			Name string `xml:"name,attr"`
		} `xml:"testsuite>testcase"`
	}
	junit, err := os.ReadFile(filepath.Join(dir, "bkcache-junit.xml"))
	if err == nil {
		err = xml.Unmarshal(junit, &suites)
	}
	if err != nil || len(suites.Cases) != 1 || !strings.Contains(suites.Cases[0].Name, "svc") {
		t.Errorf("the JUnit report: %+v %v\n%s", suites, err, junit)
	}
	if fi, err := os.Stat(filepath.Join(dir, "bkcache.env")); err == nil && fi.Sys().(*syscall.Stat_t).Uid != 65532 {
		t.Errorf("the job wrote bkcache.env as uid %d, want the image's user 65532", fi.Sys().(*syscall.Stat_t).Uid)
	}
	if s := readServices(t, filepath.Join(dir, "bkcache-record.json"))["svc"]; s.Status != "built" {
		t.Errorf("the first job's record: svc %q, want built", s.Status)
	}
	// The next pipeline's job, same inputs: the skip.
	run()
	if s := readServices(t, filepath.Join(dir, "bkcache-record.json"))["svc"]; s.Status != "skipped" {
		t.Errorf("the second job's record: svc %q, want skipped", s.Status)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, "bkcache.env")); string(again) != string(dotenv) {
		t.Errorf("the second job's dotenv %q, want the first's %q", again, dotenv)
	}
}

// pushDebugImage puts the release's debug image at ref, as its
// documented crane push does, and returns this machine's platform of it,
// read back from the registry by that name.
func pushDebugImage(ctx context.Context, t *testing.T, dist, ref string) v1.Image {
	t.Helper()
	cranePush(ctx, t, filepath.Join(dist, "image-debug"), ref)
	img, err := remote.Image(mustRef(t, ref), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: runtime.GOARCH}))
	if err != nil {
		t.Fatalf("the job's image %s: %v", ref, err)
	}
	return img
}

// runJob runs job in img as GitLab Runner's docker executor would, with
// the project at dir, and returns what it printed and its exit code.
func runJob(ctx context.Context, t *testing.T, img v1.Image, job gitlabJob, dir string) (string, int) {
	t.Helper()
	// The runner's checkout leaves the project writable by any user
	// (its umask 0000), so the image's non-root user may write in it.
	if err := exec.Command("chmod", "-R", "a+rwX", dir).Run(); err != nil {
		t.Fatal(err)
	}
	const project = "/builds/bkcache/example"
	env := []string{"CI=true", "GITLAB_CI=true", "CI_PROJECT_DIR=" + project, "CI_BUILDS_DIR=/builds", "CI_JOB_ID=1",
		"CI_JOB_NAME=bkcache-build", "CI_COMMIT_SHA=0123456789abcdef0123456789abcdef01234567", "CI_COMMIT_REF_NAME=main", "CI_PIPELINE_ID=1",
		"BUILDKIT_HOST=" + forwardTCP(t, strings.TrimPrefix(sb.BuildkitAddr, "unix://"))}
	env = append(env, sb.Env()...)
	for k, v := range job.Variables {
		env = append(env, k+"="+v)
	}
	// Docker runs the job's entrypoint, else the image's, with the
	// runner's command after it.
	args := []string{"sh", "-c", detectShell}
	if job.Image.Entrypoint == nil {
		cfg, err := img.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		args = slices.Concat(cfg.Config.Entrypoint, args)
	} else if len(job.Image.Entrypoint) > 1 || job.Image.Entrypoint[0] != "" {
		args = slices.Concat(job.Image.Entrypoint, args)
	}
	script := "set -eo pipefail\ncd \"$CI_PROJECT_DIR\"\n" + strings.Join(job.Script, "\n") + "\n"
	stdout, stderr, code, err := sb.RunImage(ctx, img, sandbox.Container{
		Args: args, Env: env, Cwd: project, Binds: map[string]string{dir: project}, Stdin: strings.NewReader(script),
	})
	if err != nil {
		t.Fatalf("running the job's container: %v\n%s", err, stderr)
	}
	return stdout + stderr, code
}

// forwardTCP serves a unix socket on a loopback TCP port, as a CI
// service container's port is, for the test's life.
func forwardTCP(t *testing.T, socket string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.Dial("unix", socket)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { io.Copy(u, c); u.Close() }()
				io.Copy(c, u)
			}()
		}
	}()
	return "tcp://" + l.Addr().String()
}
