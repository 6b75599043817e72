package e2e

import (
	"context"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEExample runs the README's main command, examples/run.sh, as a
// new user would: it brings up its own stack, builds the example project,
// builds it again, and must show every service built and then skipped.
func TestREADMEExample(t *testing.T) {
	requireSandbox(t) // the same requirements: root, runc, busybox
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "examples/run.sh")
	cmd.Dir = ".."
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("examples/run.sh: %v\n%s", err, out)
	}
	runs := strings.Split(string(out), "=== ")
	if len(runs) != 4 {
		t.Fatalf("want three sections (first run, second run, env), got %d:\n%s", len(runs)-1, out)
	}
	for i, want := range []string{"built", "skipped"} {
		got := statuses(runs[1+i])
		if len(got) != 3 {
			t.Fatalf("run %d: want base, api and web in the summary, got %v:\n%s", i+1, got, runs[1+i])
		}
		for svc, status := range got {
			if status != want {
				t.Errorf("run %d: %s is %s, want %s", i+1, svc, status, want)
			}
		}
	}
	for _, svc := range []string{"BASE", "API", "WEB"} {
		if !regexp.MustCompile(`(?m)^BKCACHE_` + svc + `_IMAGE=\S+/example/\w+:[0-9a-f]{64}$`).MatchString(runs[3]) {
			t.Errorf("no image ref for %s in:\n%s", svc, runs[3])
		}
	}
}

// statuses reads SERVICE and STATUS from a build summary table.
func statuses(section string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(section, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && (f[0] == "base" || f[0] == "api" || f[0] == "web") {
			m[f[0]] = f[1]
		}
	}
	return m
}
