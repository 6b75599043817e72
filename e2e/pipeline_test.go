package e2e

import (
	"strings"
	"testing"
)

// TestCheck: check lists every service whose image for its hash is
// missing and fails; once they are all built it passes.
func TestCheck(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	mustBuild(t, dir, nil, "--push", "--repository", r, "web")

	out := bkcache(t, dir, nil, "check", "--repository", r)
	if out.code == 0 {
		t.Fatalf("check passed with images missing:\n%s", out.stdout)
	}
	missing := out.stderr[strings.Index(out.stderr, "missing for services"):]
	if !strings.Contains(missing, "app") || !strings.Contains(missing, "base") || strings.Contains(missing, "web") || !strings.Contains(out.stdout, "present") {
		t.Errorf("check should name app and base as missing, web as present:\n%s%s", out.stdout, out.stderr)
	}

	mustBuild(t, dir, nil, "--push", "--repository", r)
	if out := bkcache(t, dir, nil, "check", "--repository", r); out.code != 0 {
		t.Errorf("check failed with every image present:\n%s%s", out.stdout, out.stderr)
	}
}
