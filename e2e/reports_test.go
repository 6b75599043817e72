package e2e

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestReports: a real run as GitHub Actions sees it, with the summary,
// the JUnit report and the annotations on: one service fails (at its
// Dockerfile's line 2), one is rebuilt after an input changed, one is
// skipped. Then `bkcache report` turns the run's manifest into a page.
func TestReports(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n" +
			"  same:\n    image: " + r + "/same\n    build: {context: ., dockerfile: same.Dockerfile}\n" +
			"  moved:\n    image: " + r + "/moved\n    build: {context: ., dockerfile: moved.Dockerfile, args: {TOKEN: $TOKEN}}\n" +
			"  broken:\n    image: " + r + "/broken\n    build: {context: ., dockerfile: broken.Dockerfile}\n",
		"same.Dockerfile":   "FROM scratch\nCOPY same.txt /\n",
		"moved.Dockerfile":  "FROM scratch\nARG TOKEN\nCOPY moved.txt /\n",
		"broken.Dockerfile": "FROM busybox\nRUN echo about to fail && exit 3\n",
		"same.txt":          "same",
		"moved.txt":         "v1",
	})
	out := t.TempDir()
	summary, junit, manifest := filepath.Join(out, "summary.md"), filepath.Join(out, "junit.xml"), filepath.Join(out, "run.json")
	// TOKEN is a secret build arg: no report may show its value.
	env := []string{"GITHUB_ACTIONS=true", "GITHUB_STEP_SUMMARY=" + summary, "TOKEN=first-secret-value", "BKCACHE_REDACT_KEY=e2e-redact-key"}
	if res := bkcache(t, dir, env, "build", "--push", "--keep-going", "--redact-arg", "TOKEN"); res.code != 1 {
		t.Fatalf("first run: exit %d, want 1 (broken fails)\n%s", res.code, res.stderr)
	}
	os.Remove(summary)
	writeFile(t, dir, "moved.txt", "v2")
	env[2] = "TOKEN=second-secret-value"
	res := bkcache(t, dir, env, "build", "--push", "--keep-going", "--redact-arg", "TOKEN", "--junit", junit, "--manifest", manifest, "--progress", "plain")
	if res.code != 1 {
		t.Fatalf("second run: exit %d, want 1\n%s", res.code, res.stderr)
	}

	md := readString(t, summary)
	for _, want := range []string{
		"3 services: 1 built, 1 skipped, 1 failed",
		"| same | ⏭️ skipped |", "| moved | 🔨 built |", "| broken | ❌ failed |",
		"- **moved** (", "file modified context:moved.txt", "build arg TOKEN: redacted:hmac-sha256:",
		"**broken** at `broken.Dockerfile:2`", "exit code: 3",
		"```mermaid\ngantt", "same (skipped) :milestone,",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the job summary lacks %q:\n%s", want, md)
		}
	}

	var doc struct {
		Suites []struct {
			Tests    int `xml:"tests,attr"`
			Failures int `xml:"failures,attr"`
			Skipped  int `xml:"skipped,attr"`
			Cases    []struct {
				Name       string `xml:"name,attr"`
				Properties []struct {
					Name  string `xml:"name,attr"`
					Value string `xml:"value,attr"`
				} `xml:"properties>property"`
				Failure *struct {
					Text string `xml:",chardata"`
				} `xml:"failure"`
			} `xml:"testcase"`
		} `xml:"testsuite"`
	}
	if err := xml.Unmarshal([]byte(readString(t, junit)), &doc); err != nil || len(doc.Suites) != 1 {
		t.Fatalf("JUnit report: %v", err)
	}
	s := doc.Suites[0]
	if s.Tests != 3 || s.Failures != 1 || s.Skipped != 0 {
		t.Errorf("JUnit counts: tests %d, failures %d, skipped %d; want 3, 1, 0", s.Tests, s.Failures, s.Skipped)
	}
	for _, c := range s.Cases {
		switch c.Name {
		case "broken":
			if c.Failure == nil || !strings.Contains(c.Failure.Text, "about to fail") {
				t.Errorf("broken's test case lacks its output: %+v", c.Failure)
			}
		case "same":
			if c.Failure != nil || len(c.Properties) == 0 || c.Properties[0].Value != "skipped" {
				t.Errorf("same's test case: %+v", c)
			}
		}
	}

	if !strings.Contains(res.stderr, "::error file=broken.Dockerfile,line=2,title=bkcache%3A broken failed::") {
		t.Errorf("no error annotation at broken.Dockerfile line 2:\n%s", res.stderr)
	}
	for _, svc := range []string{"same: skipped", "moved: built", "broken: failed"} {
		if !strings.Contains(res.stderr, "::group::"+svc+"\n") {
			t.Errorf("no log group for %s:\n%s", svc, res.stderr)
		}
	}
	if g, e := strings.Count(res.stderr, "::group::"), strings.Count(res.stderr, "::endgroup::"); g != 3 || e != 3 {
		t.Errorf("%d groups and %d ends, want 3 of each", g, e)
	}

	page := filepath.Join(out, "report.html")
	if rep := bkcache(t, dir, nil, "report", manifest, "-o", page); rep.code != 0 {
		t.Fatalf("bkcache report: exit %d\n%s", rep.code, rep.stderr)
	}
	html := readString(t, page)
	for _, svc := range []string{"same", "moved", "broken"} {
		if !strings.Contains(html, `data-service="`+svc+`"`) {
			t.Errorf("the report's timeline lacks %s", svc)
		}
	}
	if !strings.Contains(html, "file modified context:moved.txt") {
		t.Errorf("the report does not say why moved rebuilt")
	}
	for name, text := range map[string]string{"summary": md, "JUnit report": readString(t, junit), "HTML report": html, "stderr": res.stderr, "stdout": res.stdout} {
		if strings.Contains(text, "secret-value") {
			t.Errorf("the %s shows the redacted arg's value", name)
		}
	}
}

func readString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
