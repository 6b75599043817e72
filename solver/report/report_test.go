package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bkcache/bkcache/solver/record"
)

// Golden files change only on purpose: BKCACHE_REGEN_GOLDEN=1 go test
// ./solver/report rewrites testdata/golden.* from fixtureRun; the next
// plain run compares.
var regen = os.Getenv("BKCACHE_REGEN_GOLDEN") == "1"

const hashA, hashB = "8f6097d9acc26ac462110ed90a591f6dbbb835c541e31a1a0bee3a1e6121ef03", "e0313ee3d9dbb8e4f682d933c9efa1eb302d34f443eb56ee636fa48dcb2d04fe"

// fixtureRun is a run of every kind of outcome: api rebuilt for six
// reasons (one over MaxReasons), web skipped, worker failed at a
// Dockerfile line, docs cancelled, with warnings and a value that must
// be escaped everywhere.
func fixtureRun() Run {
	m := record.New("shop", "v1.2.3", time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC))
	m.Buildkit = &record.Buildkit{Address: "tcp://buildkitd:1234", Version: "v0.33.1", Worker: "oci"}
	m.Services = []*record.Service{
		{Service: "api", Status: "built", Hash: hashA, Image: "reg.example/shop/api:" + hashA, Node: "tcp://buildkitd:1234",
			Steps: &record.Steps{Cached: 5, Total: 8, List: []record.Step{
				{Stage: "deps", Line: 2, Instruction: "COPY go.mod go.sum ./", Status: record.StepCached, EarlierMs: 300},
				{Stage: "deps", Line: 3, Instruction: "RUN go mod download", Status: record.StepRan, DurationMs: 41000, Unexpected: true,
					Reason: "unexpected: nothing it depends on changed; no cache was imported"},
				{Stage: "build", Line: 6, Instruction: "COPY src/ /app/", Status: record.StepRan, DurationMs: 120, Reason: "changed (line 6)"},
				{Stage: "build", Line: 7, Instruction: "RUN echo `date` | tee /built", Status: record.StepRan, DurationMs: 90, Reason: "after line 6 `COPY src/ /app/`, which changed (line 6)"},
				{Stage: "build", Line: 8, Instruction: "RUN make", Status: record.StepRan, DurationMs: 3100, Reason: "after line 6 `COPY src/ /app/`, which changed (line 6)"},
				{Stage: "build", Line: 9, Instruction: "RUN make test", Status: record.StepRan, DurationMs: 900, Reason: "after line 6 `COPY src/ /app/`, which changed (line 6)"},
				{Stage: "build", Line: 10, Instruction: "RUN make <docs>", Status: record.StepRan, DurationMs: 200, Reason: "after line 6 `COPY src/ /app/`, which changed (line 6)"},
				{Stage: "final", Line: 13, Instruction: "COPY --from=build /app /app", Status: record.StepCached, Reason: "cached from an earlier build, though a change reached it: reads from stage `build`, which ran", EarlierMs: 50},
			}},
			Timing: &record.Timing{StartMs: 40, TotalMs: 5230, CacheImportMs: 600, PushMs: 400, ExportMs: 1000, CacheExportMs: 900},
			Changes: &record.Report{Service: "api", OldHash: hashB, NewHash: hashA, DockerfileChanged: true,
				Dockerfile: []record.LineChange{{Op: "-", Line: 3, Text: "COPY src/ /src/"}, {Op: "+", Line: 3, Text: "COPY src/ /app/"}},
				Args:       []record.Change{{Key: "VERSION", Old: "1", New: "2"}},
				Files: []record.FileChange{{Source: "context", Path: "src/main.go", Kind: "modified"}, {Source: "context", Path: "src/a|b_*.go", Kind: "added", New: "file"},
					{Source: "context", Path: "go.sum", Kind: "modified"}, {Source: "context", Path: "go.mod", Kind: "modified"}}},
			Warnings: []string{"cache import from reg.example/shop/api:cache-ci skipped: 503 Service Unavailable"}},
		{Service: "web", Status: "skipped", Hash: hashB, Image: "reg.example/shop/web:" + hashB, Timing: &record.Timing{StartMs: 12, TotalMs: 9}},
		{Service: "worker", Status: "failed", Hash: hashA, Node: "tcp://buildkitd:1234",
			Steps:   &record.Steps{Cached: 2, Total: 4},
			Timing:  &record.Timing{StartMs: 35, TotalMs: 2100},
			Error:   "building reg.example/shop/worker:" + hashA + `: process "/bin/sh -c make <all>" did not complete successfully: exit code: 2`,
			ErrorAt: &record.Location{File: "/src/shop/worker/Dockerfile", Line: 7}},
		{Service: "docs", Status: "cancelled", Hash: hashB, Timing: &record.Timing{StartMs: 36, TotalMs: 2101}, Error: "context canceled"},
	}
	return Run{Manifest: m, Dir: "/src/shop", Logs: map[string][]string{"worker": {"[3/4] RUN make all", "  cc -o app main.c", "  main.c:1: error: \x1b[31mexpected ';'\x1b[0m", "ERROR [3/4] RUN make all: exit code: 2"}}}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden."+name)
	if regen {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s: review it with git diff", path)
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (BKCACHE_REGEN_GOLDEN=1 writes it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the renderer writes now; if on purpose, BKCACHE_REGEN_GOLDEN=1 rewrites it.\ngot:\n%s", path, got)
	}
}

func render(t *testing.T, f func(*bytes.Buffer) error) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	r := fixtureRun()
	golden(t, "md", render(t, func(b *bytes.Buffer) error { return Summary(b, r) }))
	golden(t, "commands", render(t, func(b *bytes.Buffer) error { return Commands(b, r) }))
	golden(t, "xml", render(t, func(b *bytes.Buffer) error { return JUnit(b, r) }))
	golden(t, "html", render(t, func(b *bytes.Buffer) error { return HTML(b, r) }))
}

// TestSummaryFacts: what a reader must find in the summary, whatever its
// layout.
func TestSummaryFacts(t *testing.T) {
	md := string(render(t, func(b *bytes.Buffer) error { return Summary(b, fixtureRun()) }))
	for _, want := range []string{
		"4 services: 1 built, 1 skipped, 1 failed, 1 cancelled",
		"| api | 🔨 built | `8f6097d9acc2` | 5/8 | 5.2 s (build 4.2 s, push 0.4 s, cache 0.9 s) |", // 5230-1000 ms built
		"| web | ⏭️ skipped | `e0313ee3d9db` | - | 0.0 s |",
		"build arg VERSION: 1 -\\> 2", "and 1 more: `bkcache explain api`",
		"src/a\\|b\\_\\*.go",                       // escaped for the table and the list
		"**worker** at `worker/Dockerfile:7`",      // the failure, located
		"    web (skipped) :milestone, s0, 12, 12", // skipped ones are milestones, first to start is first
		"    worker (failed) :crit, s1, 35, 2135",
		"dateFormat x",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("summary lacks %q:\n%s", want, md)
		}
	}
}

func TestDurationCell(t *testing.T) {
	ms := func(n int64) string { return fmt.Sprintf("%dms", n) }
	for _, c := range []struct {
		total, export, push, cache int64
		want                       string
	}{
		{5230, 1000, 400, 900, "5230ms (build 4230ms, push 400ms, cache 900ms)"}, // push beside the export
		{5230, 1300, 400, 900, "5230ms (build 3930ms, push 400ms, cache 900ms)"}, // in turn
		{5230, 0, 400, 900, "5230ms (build 3930ms, push 400ms, cache 900ms)"},    // an older record: in turn
		{800, 460, 0, 460, "800ms (build 340ms, push 0ms, cache 460ms)"},
		{800, 120, 120, 0, "800ms (build 680ms, push 120ms, cache 0ms)"},
		{800, 0, 0, 0, "800ms"}, // neither pushed nor exported: nothing to split
		{500, 700, 300, 400, "500ms (build 0ms, push 300ms, cache 400ms)"},
	} {
		if got := DurationCell(c.total, c.export, c.push, c.cache, ms, ms); got != c.want {
			t.Errorf("DurationCell(%d, %d, %d, %d) = %q, want %q", c.total, c.export, c.push, c.cache, got, c.want)
		}
	}
	// The whole and the shares are formatted apart.
	if got := DurationCell(800, 120, 120, 0, ms, func(int64) string { return "x" }); got != "800ms (build x, push x, cache x)" {
		t.Errorf("formats mixed up: %q", got)
	}
}

func TestCommands(t *testing.T) {
	out := string(render(t, func(b *bytes.Buffer) error { return Commands(b, fixtureRun()) }))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one error and one warning, got:\n%s", out)
	}
	if !strings.HasPrefix(lines[0], "::error file=worker/Dockerfile,line=7,title=bkcache%3A worker failed::building ") {
		t.Errorf("error annotation: %s", lines[0])
	}
	if !strings.HasPrefix(lines[1], "::warning title=bkcache%3A api::cache import") {
		t.Errorf("warning annotation: %s", lines[1])
	}
	if got := data("a%b\nc\r"); got != "a%25b%0Ac%0D" {
		t.Errorf("data escapes to %q", got)
	}
	if got := property("a:b,c"); got != "a%3Ab%2Cc" {
		t.Errorf("property escapes to %q", got)
	}
	if got := relTo("/src/shop", "/elsewhere/Dockerfile"); got != "/elsewhere/Dockerfile" {
		t.Errorf("a file outside the working directory: %q", got)
	}
}

// TestJUnitSchema validates the JUnit report against docs/junit.xsd with
// libxml2's xmllint, and reads the outcomes back with encoding/xml, which
// runs wherever xmllint is missing too.
func TestJUnitSchema(t *testing.T) {
	out := render(t, func(b *bytes.Buffer) error { return JUnit(b, fixtureRun()) })
	var doc junitSuites
	if err := xml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	s := doc.Suites[0]
	if doc.Tests != 4 || s.Failures != 1 || s.Skipped != 1 || s.Time != "2.136" && s.Time != "5.270" {
		t.Errorf("counts: %+v", doc)
	}
	byName := map[string]junitCase{}
	for _, c := range s.Cases {
		byName[c.Name] = c
	}
	if c := byName["web"]; c.Failure != nil || c.Skipped != nil || !hasProperty(c, "status", "skipped") {
		t.Errorf("a skipped service passes, saying so: %+v", c)
	}
	if c := byName["docs"]; c.Skipped == nil {
		t.Errorf("a cancelled service is skipped: %+v", c)
	}
	if c := byName["worker"]; c.Failure == nil || !strings.Contains(c.Failure.Text, "cc -o app main.c") || c.Time != "2.100" {
		t.Errorf("a failed service fails with its output: %+v", c)
	}
	xmllint(t, out)
}

func hasProperty(c junitCase, name, value string) bool {
	for _, p := range c.Properties {
		if p.Name == name && p.Value == value {
			return true
		}
	}
	return false
}

// xmllint validates doc against docs/junit.xsd; without xmllint it
// skips, and fails under CI, where .ci/deps installs it.
func xmllint(t *testing.T, doc []byte) {
	t.Helper()
	if _, err := exec.LookPath("xmllint"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmllint is missing: .ci/deps --test installs libxml2-utils")
		}
		t.Skip("xmllint is missing (sudo apt-get install -y libxml2-utils): the schema check is skipped")
	}
	f := filepath.Join(t.TempDir(), "junit.xml")
	if err := os.WriteFile(f, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("xmllint", "--noout", "--schema", "../../docs/junit.xsd", f).CombinedOutput()
	if err != nil {
		t.Fatalf("xmllint --schema docs/junit.xsd: %v\n%s", err, out)
	}
}

// FuzzJUnit: whatever a service's name, error and output hold (control
// characters, markup, invalid UTF-8), the JUnit report is well-formed
// XML that gives the names back and counts the failure; the Markdown
// summary keeps every table row on one line.
func FuzzJUnit(f *testing.F) {
	f.Add("api", "exit 1", "line\x1b[31m")
	f.Add("a<b>&c", "]]>\x00", "\xff\xfe")
	f.Fuzz(func(t *testing.T, name, errText, logLine string) {
		r := fixtureRun()
		r.Manifest.Services[2].Service = name
		r.Manifest.Services[2].Error = errText
		r.Logs = map[string][]string{name: {logLine}}
		var b bytes.Buffer
		if err := JUnit(&b, r); err != nil {
			t.Fatal(err)
		}
		var doc junitSuites
		if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
			t.Fatalf("not XML: %v\n%s", err, b.String())
		}
		got := doc.Suites[0].Cases[2]
		if got.Failure == nil || doc.Suites[0].Failures != 1 {
			t.Fatalf("the failed service does not fail: %+v", got)
		}
		if xmlText(name) && got.Name != name {
			t.Fatalf("name %q came back as %q", name, got.Name)
		}
		b.Reset()
		if err := Summary(&b, r); err != nil {
			t.Fatal(err)
		}
		rows := 0
		for _, l := range strings.Split(b.String(), "\n") {
			if strings.HasPrefix(l, "| ") && strings.HasSuffix(l, " |") {
				rows++
			}
		}
		if rows != 1+len(r.Manifest.Services) {
			t.Fatalf("the table has %d lines, want %d:\n%s", rows, 1+len(r.Manifest.Services), b.String())
		}
	})
}

// xmlText reports whether XML can carry s as it is: valid UTF-8 of
// characters XML 1.0 allows.
func xmlText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r >= 0xD800 && r <= 0xDFFF || r == 0xFFFE || r == 0xFFFF {
			return false
		}
	}
	return true
}

// TestSummaryHostile: strings from records (service names, nodes,
// warnings, errors, file names, hashes) never leave their code span or
// table cell, and no control character reaches the summary.
func TestSummaryHostile(t *testing.T) {
	r := fixtureRun()
	evil := "a`|**[x](y)**\n# H\x1b]0;t\x07"
	s := r.Manifest.Services[0]
	s.Service, s.Node, s.Warnings = evil, evil, []string{evil}
	s.Changes.OldHash = "**[x](y)**`evil`" // a hash Parse would refuse
	s.Changes.Files[0].Path = evil
	w := r.Manifest.Services[2]
	w.ErrorAt.File = "/src/shop/" + evil
	out := string(render(t, func(b *bytes.Buffer) error { return Summary(b, r) }))
	if strings.ContainsAny(out, "\x1b\x07") {
		t.Errorf("a control character reached the summary:\n%q", out)
	}
	fenced := false
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue // a code block: text, never Markdown
		}
		if strings.Contains(l, "[x](y)") && !strings.Contains(l, `\[x\]`) && !inCode(l, "[x](y)") {
			t.Errorf("a link got out: %q", l)
		}
		if strings.HasPrefix(l, "| ") && strings.Count(strings.ReplaceAll(l, `\|`, ""), "|") != 7 {
			t.Errorf("a table row has other cells: %q", l)
		}
		if strings.Count(strings.ReplaceAll(l, "\\`", ""), "`")%2 != 0 {
			t.Errorf("an unbalanced code span: %q", l)
		}
	}
	if code("a`b|c\nd") != "`a b c d`" {
		t.Errorf("code = %q", code("a`b|c\nd"))
	}
}

// inCode reports whether every occurrence of s in l lies inside a code
// span.
func inCode(l, s string) bool {
	parts := strings.Split(l, "`")
	for i, p := range parts {
		if i%2 == 0 && strings.Contains(p, s) {
			return false
		}
	}
	return true
}
