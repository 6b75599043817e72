package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

// TestParallelBound: with --parallel 1 no two solves overlap; the
// interval of each service's vertices comes from BuildKit's own
// timestamps in the rawjson progress stream.
func TestParallelBound(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	out := bkcache(t, dir, nil, "build", "--push", "--repository", r, "--parallel", "1", "--progress", "rawjson", "base", "web")
	if out.code != 0 {
		t.Fatalf("build failed:\n%s", out.stderr)
	}
	type span struct{ start, end time.Time }
	spans := map[string]*span{}
	sc := bufio.NewScanner(strings.NewReader(out.stderr))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var st client.SolveStatus
		if json.Unmarshal(sc.Bytes(), &st) != nil {
			continue
		}
		for _, v := range st.Vertexes {
			svc, _, ok := strings.Cut(strings.TrimPrefix(v.Name, "["), "]")
			if !ok || v.Started == nil || v.Completed == nil {
				continue
			}
			s := spans[svc]
			if s == nil {
				s = &span{start: *v.Started, end: *v.Completed}
				spans[svc] = s
			}
			if v.Started.Before(s.start) {
				s.start = *v.Started
			}
			if v.Completed.After(s.end) {
				s.end = *v.Completed
			}
		}
	}
	a, b := spans["base"], spans["web"]
	if a == nil || b == nil {
		t.Fatalf("no vertex timings for base or web in the rawjson stream")
	}
	if a.start.Before(b.end) && b.start.Before(a.end) {
		t.Errorf("with --parallel 1 the solves overlap: base %v-%v, web %v-%v", a.start, a.end, b.start, b.end)
	}
}

// TestFailingService: without --keep-going a failure stops the run; with
// it, the other services are built and promoted. Either way the exit
// status is non-zero and the failed service's tags do not exist.
func TestFailingService(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	env := []string{"COMPOSE_PROFILES=broken"}

	mf := filepath.Join(t.TempDir(), "failed-run.json")
	res, out := build(t, dir, env, "--push", "--repository", r, "--manifest", mf)
	if out.code == 0 {
		t.Fatalf("a failing service gave exit 0:\n%s", out.stdout)
	}
	doc, err := os.ReadFile(mf)
	if err != nil || !strings.Contains(string(doc), `"status": "failed"`) || !strings.Contains(string(doc), "exit code: 3") {
		t.Errorf("the manifest of a failed run is missing or lacks the failure (%v):\n%.400s", err, doc)
	}
	if res["broken"].Status != "failed" || !strings.Contains(out.stderr, `service "broken" failed`) {
		t.Fatalf("broken: %+v\n%s", res["broken"], out.stderr)
	}
	for svc, s := range res {
		if s.Status == "cancelled" && head(t, r+"/"+svc+":ci") != "" {
			t.Errorf("%s was cancelled but its ci tag exists", svc)
		}
	}
	if head(t, r+"/broken:ci") != "" || head(t, r+"/broken:"+res["broken"].Hash) != "" {
		t.Errorf("the failed service has tags in the registry")
	}

	res, out = build(t, dir, env, "--push", "--repository", r, "--keep-going")
	if out.code == 0 {
		t.Fatal("--keep-going with a failing service gave exit 0")
	}
	for _, svc := range []string{"base", "app", "web"} {
		s := res[svc]
		if (s.Status != "built" && s.Status != "skipped") || head(t, r+"/"+svc+":ci") != s.Digest {
			t.Errorf("--keep-going: %s is %s, ci %q, digest %q", svc, s.Status, head(t, r+"/"+svc+":ci"), s.Digest)
		}
	}
}

// TestRegistryDown: the skip check cannot ask the registry, so nothing is
// built or moved, the error names the registry, and ci is untouched once
// the registry is back. The registry is the test's own: the others' stays
// up.
func TestRegistryDown(t *testing.T) {
	requireSandbox(t)
	reg := newRegistry(t)
	dir, r := project(t), reg.Addr+"/"+strings.TrimPrefix(repo(t), sb.RegistryAddr+"/")
	first := mustBuild(t, dir, nil, "--push", "--repository", r, "web")
	writeFile(t, dir, "web/static/index.html", "<p>changed</p>")

	reg.Stop()
	res, out := build(t, dir, nil, "--push", "--repository", r, "web")
	if err := reg.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	if out.code == 0 || res["web"].Status != "failed" {
		t.Fatalf("registry down: exit %d, web %+v", out.code, res["web"])
	}
	if !strings.Contains(out.stderr, reg.Addr) {
		t.Errorf("error does not name the registry %s:\n%s", reg.Addr, out.stderr)
	}
	if got := head(t, r+"/web:ci"); got != first["web"].Digest {
		t.Errorf("web:ci moved to %s while the registry was down (was %s)", got, first["web"].Digest)
	}
}

// TestBuildkitdUnreachable: a clear error naming the address, non-zero,
// and nothing written.
func TestBuildkitdUnreachable(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	addr := "unix://" + t.TempDir() + "/nobody.sock"
	out := bkcache(t, dir, []string{"BUILDKIT_HOST=" + addr}, "build", "--push", "--repository", r)
	if out.code == 0 {
		t.Fatal("exit 0 without a daemon")
	}
	if !strings.Contains(out.stderr, "cannot reach buildkitd at "+addr) || !strings.Contains(out.stderr, "BUILDKIT_HOST") {
		t.Errorf("unhelpful error:\n%s", out.stderr)
	}
	if head(t, r+"/web:ci") != "" {
		t.Error("something was pushed without a daemon")
	}
}
