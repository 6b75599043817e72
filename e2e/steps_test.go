package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
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
}
