package e2e

import (
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
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

// TestGitLabComponent: no GitLab runner runs offline here, so the
// component is checked as far as this machine can: its structure against
// GitLab's keywords, its inputs' interpolation, and its rendered script
// run in bash with GitLab's predefined variables, against the sandbox.
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
	rendered, err := c.render(map[string]string{"version": version, "download-url": serveRelease(t, dist, version), "push": "true"})
	if err != nil {
		t.Fatal(err)
	}
	var jobs map[string]struct {
		Script    []string          `yaml:"script"`
		Variables map[string]string `yaml:"variables"`
		Artifacts struct {
			Reports map[string]any `yaml:"reports"`
		} `yaml:"artifacts"`
	}
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
	keysIn(t, "bkcache-build:artifacts", raw["bkcache-build"]["artifacts"].(map[string]any), gitlabArtifactKeys)
	keysIn(t, "bkcache-build:artifacts:reports", job.Artifacts.Reports, gitlabReportKeys)

	// The script, as a runner would run it: in the project's directory,
	// with GitLab's predefined variables and the job's.
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  svc:\n    image: " + r + "/svc\n    build: .\n",
		"Dockerfile":   tiny["Dockerfile"], "input.txt": "v1\n",
	})
	script := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(script, []byte(strings.Join(job.Script, "\n")), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"CI=true", "GITLAB_CI=true", "CI_PROJECT_DIR=" + dir, "CI_BUILDS_DIR=" + t.TempDir(), "CI_JOB_ID=1",
		"CI_JOB_NAME=bkcache-build", "CI_COMMIT_SHA=0123456789abcdef0123456789abcdef01234567", "CI_COMMIT_REF_NAME=main", "CI_PIPELINE_ID=1"}
	for k, v := range job.Variables {
		env = append(env, k+"="+v)
	}
	res, err := runCmd(exec.CommandContext(ctx, "bash", script), dir, env)
	if err != nil || res.code != 0 {
		t.Fatalf("the component's script: exit %d, %v\n%s\n%s", res.code, err, res.stdout, res.stderr)
	}
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
	if _, err := os.Stat(filepath.Join(dir, "bkcache-record.json")); err != nil {
		t.Errorf("the record artifact: %v", err)
	}
}
