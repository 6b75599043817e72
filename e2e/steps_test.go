package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/solver/history"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"
)

// sixSteps is a Dockerfile of six steps after its FROM, the fifth of
// which reads late.txt.
var sixSteps = map[string]string{
	"compose.yaml": "services:\n  app:\n    build: .\n",
	"Dockerfile": `FROM busybox AS base
COPY early.txt /early.txt
RUN echo one > /one
RUN echo two \
  > /two
RUN echo three > /three
COPY late.txt /late.txt
RUN cat /late.txt > /copy
`,
	"early.txt": "early\n",
	"late.txt":  "late v1\n",
}

// stepLines renders steps as "LINE STATUS" in order, for comparing.
func stepLines(steps []step) string {
	var b strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&b, "%d %s\n", s.Line, s.Status)
	}
	return b.String()
}

// TestSteps: every build says, per Dockerfile step, whether BuildKit
// ran it or took it from cache, placed on its line by BuildKit's own
// source map: in the JSON summary and in the record. An edit of the
// file the fifth step reads runs that step and the one after it; the
// four before come from cache.
func TestSteps(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := sourcetest.Tree(t, sixSteps)
	writeFile(t, dir, "compose.yaml", "services:\n  app:\n    image: "+r+"/app\n    build: .\n")
	d := newDaemon(t)

	cold := mustBuild(t, dir, d.env(), "--push")["app"]
	if got, want := stepLines(cold.Steps), "2 ran\n3 ran\n4 ran\n6 ran\n7 ran\n8 ran\n"; got != want {
		t.Fatalf("cold build steps:\n%swant:\n%s", got, want)
	}
	if s := cold.Steps[2]; s.Stage != "base" || s.Instruction != "RUN echo two   > /two" {
		t.Errorf("the step at line 4: %+v", s)
	}
	if len(cold.Warnings) > 0 {
		t.Errorf("a healthy cold build warns: %q", cold.Warnings)
	}

	writeFile(t, dir, "late.txt", "late v2\n")
	m := filepath.Join(t.TempDir(), "record.json")
	warm := mustBuild(t, dir, d.env(), "--push", "--manifest", m)["app"]
	want := "2 cached\n3 cached\n4 cached\n6 cached\n7 ran\n8 ran\n"
	if got := stepLines(warm.Steps); got != want {
		t.Fatalf("after editing late.txt, steps:\n%swant:\n%s", got, want)
	}
	var rec struct {
		Services []struct {
			Service string
			Steps   struct{ List []step }
		}
	}
	b, err := os.ReadFile(m)
	if err != nil || json.Unmarshal(b, &rec) != nil || len(rec.Services) != 1 {
		t.Fatalf("record %s: %v\n%s", m, err, b)
	}
	if got := stepLines(rec.Services[0].Steps.List); got != want {
		t.Errorf("the record's steps:\n%swant:\n%s", got, want)
	}
	for i, reason := range map[int]string{
		4: "read a changed file: late.txt",
		5: "after line 7 `COPY late.txt /late.txt`, which read a changed file: late.txt",
	} {
		if s := warm.Steps[i]; s.Reason != reason || s.Unexpected {
			t.Errorf("step at line %d: reason %q (unexpected %v), want %q", s.Line, s.Reason, s.Unexpected, reason)
		}
	}

	// explain --steps shows the same, from the record under R:F.
	ex := bkcache(t, dir, d.env(), "explain", "app", "--steps")
	if ex.code != 0 || !containsAll(ex.stdout, "LINE", "7     base   ran", "COPY late.txt /late.txt", "read a changed file: late.txt", "6     base   cached") {
		t.Errorf("explain --steps (exit %d):\n%s%s", ex.code, ex.stdout, ex.stderr)
	}
	exj := bkcache(t, dir, d.env(), "explain", "app", "--steps", "--format", "json")
	var fromRecord struct{ Steps []step }
	if exj.code != 0 || json.Unmarshal([]byte(exj.stdout), &fromRecord) != nil || stepLines(fromRecord.Steps) != want {
		t.Errorf("explain --steps --format json (exit %d):\n%s%s", exj.code, exj.stdout, exj.stderr)
	}

	// No cache anywhere: the registry's is deleted, the daemon pruned.
	// Steps 1 to 4 run though nothing they read changed, and say why.
	deleteTag(t, r+"/app:cache-ci")
	d.prune(t)
	writeFile(t, dir, "late.txt", "late v3\n")
	cold2 := mustBuild(t, dir, d.env(), "--push")["app"]
	if got, want := stepLines(cold2.Steps), "2 ran\n3 ran\n4 ran\n6 ran\n7 ran\n8 ran\n"; got != want {
		t.Fatalf("without a cache, steps:\n%swant:\n%s", got, want)
	}
	for _, s := range cold2.Steps[:4] {
		if !s.Unexpected || !strings.Contains(s.Reason, "no cache was imported") {
			t.Errorf("step at line %d without a cache: reason %q (unexpected %v), want an unexpected miss with no cache imported", s.Line, s.Reason, s.Unexpected)
		}
	}
	if s := cold2.Steps[4]; s.Unexpected || s.Reason != "read a changed file: late.txt" {
		t.Errorf("step at line 7 without a cache: %+v", s)
	}
}

// TestStepsMinCache: a service whose only cache is compose's, exported
// with mode=min, misses the steps of its first stage on a fresh daemon
// once the final stage needs them again (a step before the COPY --from
// ran), and says that mode=min is why.
func TestStepsMinCache(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	cache := r + "/app-cache:min"
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: " + r + "/app\n    build:\n      context: .\n" +
			"      cache_from: ['type=registry,ref=" + cache + "']\n      cache_to: ['type=registry,ref=" + cache + ",mode=min']\n",
		"Dockerfile": "FROM busybox AS deps\nRUN echo deps > /deps\nFROM busybox\nCOPY src.txt /src.txt\nCOPY --from=deps /deps /deps\n",
		"src.txt":    "v1\n",
	})
	d := newDaemon(t)
	mustBuild(t, dir, d.env(), "--push")
	deleteTag(t, r+"/app:cache-ci")
	d.prune(t)
	writeFile(t, dir, "src.txt", "v2\n")
	s := mustBuild(t, dir, d.env(), "--push")["app"]
	if len(s.Steps) != 3 || s.Steps[0].Line != 2 || s.Steps[0].Status != "ran" {
		t.Fatalf("steps %+v", s.Steps)
	}
	if st := s.Steps[0]; !st.Unexpected || !strings.Contains(st.Reason, "mode=min") || !strings.Contains(st.Reason, cache) {
		t.Errorf("the first stage's step: reason %q (unexpected %v), want a miss naming mode=min and %s", st.Reason, st.Unexpected, cache)
	}
}

// deleteTag deletes the manifest ref names, and with it every tag of it.
func deleteTag(t *testing.T, ref string) {
	t.Helper()
	d := head(t, ref)
	if d == "" {
		t.Fatalf("%s is not in the registry", ref)
	}
	n := mustRef(t, ref)
	if err := remote.Delete(n.Context().Digest(d), keychain); err != nil {
		t.Fatalf("deleting %s: %v", ref, err)
	}
}

// TestHistoryReadFails: reading the steps of a build buildkitd's
// history does not hold, or over a connection that is gone, is an error
// that says so (the build then warns that its steps are not recorded),
// never a panic or an empty success.
func TestHistoryReadFails(t *testing.T) {
	requireSandbox(t)
	ctx := t.Context()
	c, err := client.New(ctx, sb.BuildkitAddr)
	if err != nil {
		t.Fatal(err)
	}
	if provs, err := history.Read(ctx, c, "no-such-build"); err == nil || !strings.Contains(err.Error(), "has no build no-such-build") {
		t.Errorf("an unknown build: %d provenances, %v", len(provs), err)
	}
	c.Close()
	if provs, err := history.Read(ctx, c, "no-such-build"); err == nil || !strings.Contains(err.Error(), "reading buildkitd's build history") {
		t.Errorf("a closed connection: %d provenances, %v", len(provs), err)
	}
}
