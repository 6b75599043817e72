package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// One service with a step worth caching and an input to change.
var tiny = map[string]string{
	"compose.yaml": "services:\n  svc:\n    build: .\n",
	"Dockerfile":   "FROM busybox\nRUN echo built > /built\nCOPY input.txt /input.txt\n",
	"input.txt":    "v1\n",
}

// Tags in the paths a registry client uses for them.
const (
	imageManifest = `/manifests/[0-9a-f]{64}$` // R:H
	cacheManifest = `/manifests/cache-[0-9a-f]{64}$`
	ciCache       = `/manifests/cache-ci$`
)

// faulty puts a fault-injecting proxy in front of the sandbox registry
// and returns it with a repository prefix of the test's own reached
// through it, and the same prefix reached directly (for assertions that
// must not meet the faults).
func faulty(t *testing.T) (p *faultproxy.Proxy, viaProxy, direct string) {
	t.Helper()
	p = proxyTo(t, sb.RegistryAddr)
	r := repo(t)
	return p, throughProxy(p, r), r
}

// proxyTo puts a fault-injecting proxy in front of the registry at
// upstream, closed when t ends, its log shown when t failed.
func proxyTo(t *testing.T, upstream string) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(upstream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Close()
		if t.Failed() {
			t.Logf("proxy log:\n%s", strings.Join(p.Log(), "\n"))
		}
	})
	return p
}

// throughProxy is the repository prefix r (of repo) reached through p.
func throughProxy(p *faultproxy.Proxy, r string) string {
	return p.Addr + strings.TrimPrefix(r, sb.RegistryAddr)
}

// manifestWarnings reads the warnings of svc from a manifest file.
func manifestWarnings(t *testing.T, file, svc string) []string {
	t.Helper()
	return readServices(t, file)[svc].Warnings
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// TestCacheImportFaults: whatever goes wrong with a cache import, the
// build goes on without that cache, warns, and records the warning.
func TestCacheImportFaults(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	p, r, direct := faulty(t)
	dir := sourcetest.Tree(t, tiny)
	mustBuild(t, dir, d.env(), "--push", "--repository", r) // cache-ci exists from here on

	corrupt := func(t *testing.T) {
		// A cache-ci whose cache config blob is not JSON.
		config := []byte("{this is not a cache config")
		cfg := static.NewLayer(config, "application/vnd.buildkit.cacheconfig.v0")
		repo, err := name.NewRepository(direct+"/svc", name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.WriteLayer(repo, cfg); err != nil {
			t.Fatal(err)
		}
		d, _ := cfg.Digest()
		m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.buildkit.cacheconfig.v0","digest":%q,"size":%d},"layers":[]}`,
			types.OCIManifestSchema1, d, len(config))
		if err := remote.Put(repo.Tag("cache-ci"), rawManifest(m)); err != nil {
			t.Fatal(err)
		}
	}
	for i, tc := range []struct {
		name  string
		fault faultproxy.Fault
		setup func(t *testing.T)
		args  []string
		want  []string // in the warning
	}{
		{"registry 5xx", faultproxy.Fault{Path: ciCache, Status: 503}, nil, nil, []string{"cache import from", "cache-ci", "503"}},
		{"connection reset", faultproxy.Fault{Path: ciCache, Reset: true}, nil, nil, []string{"cache import from", "cache-ci"}},
		{"timeout", faultproxy.Fault{Path: ciCache, Delay: 20e9}, nil, []string{"--registry-timeout", "1s"}, []string{"cache import from", "cache-ci", "timeout"}},
		{"corrupt cache manifest", faultproxy.Fault{Path: "^$"}, corrupt, nil, []string{"importing cache manifest", "cache-ci"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			if tc.setup != nil {
				tc.setup(t)
			}
			// bkcache asks with HEAD, buildkitd with GET; moving cache-ci
			// afterwards (PUT) is left alone.
			var rules []*faultproxy.Rule
			for _, m := range []string{"HEAD", "GET"} {
				f := tc.fault
				f.Method = m
				rules = append(rules, p.Inject(f))
			}
			writeFile(t, dir, "input.txt", fmt.Sprintf("v%d\n", i+2))
			d.prune(t)
			mf := filepath.Join(t.TempDir(), "m.json")
			res, out := build(t, dir, d.env(), append([]string{"--push", "--repository", r, "--manifest", mf}, tc.args...)...)
			s := res["svc"]
			if out.code != 0 || s.Status != "built" {
				t.Fatalf("exit %d, svc %+v\n%s", out.code, s, out.stderr)
			}
			if tc.setup == nil && rules[0].Hits()+rules[1].Hits() == 0 {
				t.Fatal("the fault was never hit")
			}
			warns := manifestWarnings(t, mf, "svc")
			if len(warns) == 0 || !containsAll(strings.Join(warns, "\n"), tc.want...) {
				t.Errorf("manifest warnings %q lack %q", warns, tc.want)
			}
			if !strings.Contains(out.stderr, `bkcache: warning: service "svc"`) {
				t.Errorf("no warning printed:\n%s", out.stderr)
			}
			if got := head(t, direct+"/svc:ci"); got != s.Digest {
				t.Errorf("ci is %s, want the new build %s", got, s.Digest)
			}
		})
	}
}

// TestCacheExportFault: a cache export that fails costs a warning, not
// the image; with --require-cache-export it fails the service and ci
// stays where it was.
func TestCacheExportFault(t *testing.T) {
	requireSandbox(t)
	p, r, direct := faulty(t)
	dir := sourcetest.Tree(t, tiny)
	first := mustBuild(t, dir, nil, "--push", "--repository", r)["svc"]

	p.Inject(faultproxy.Fault{Method: "PUT", Path: cacheManifest, Status: 500})
	writeFile(t, dir, "input.txt", "v2\n")
	mf := filepath.Join(t.TempDir(), "m.json")
	res, out := build(t, dir, nil, "--push", "--repository", r, "--manifest", mf)
	s := res["svc"]
	if out.code != 0 || s.Status != "built" {
		t.Fatalf("a failed cache export failed the build: exit %d %+v\n%s", out.code, s, out.stderr)
	}
	if head(t, direct+"/svc:"+s.Hash) != s.Digest || head(t, direct+"/svc:ci") != s.Digest {
		t.Errorf("image not pushed or ci not moved after a failed cache export")
	}
	if head(t, direct+"/svc:cache-"+s.Hash) != "" {
		t.Errorf("the cache export reached the registry despite the fault")
	}
	if w := strings.Join(manifestWarnings(t, mf, "svc"), "\n"); !containsAll(w, "exporting cache", "500") {
		t.Errorf("manifest warnings: %q", w)
	}

	writeFile(t, dir, "input.txt", "v3\n")
	res, out = build(t, dir, nil, "--push", "--repository", r, "--require-cache-export")
	if out.code == 0 || res["svc"].Status != "failed" || !strings.Contains(out.stderr, "--require-cache-export") {
		t.Fatalf("--require-cache-export: exit %d, %+v\n%s", out.code, res["svc"], out.stderr)
	}
	if got := head(t, direct+"/svc:ci"); got != s.Digest || got == first.Digest {
		t.Errorf("ci moved to %s after a required cache export failed (want %s)", got, s.Digest)
	}
}

// TestPushFaults: transient push failures are retried, a 429 included;
// a push that keeps failing is a clear error and moves nothing.
func TestPushFaults(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	p, r, direct := faulty(t)
	dir := sourcetest.Tree(t, tiny)
	first := mustBuild(t, dir, d.env(), "--push", "--repository", r)["svc"]

	t.Run("429 beyond buildkitd's retries, then success", func(t *testing.T) {
		// First learn how many 429s one solve takes before it gives up
		// (containerd retries some itself): with one attempt the run
		// fails clearly and moves nothing.
		p.Clear()
		always := p.Inject(faultproxy.Fault{Method: "PUT", Path: imageManifest, Status: 429, Header: http.Header{"Retry-After": {"1"}}})
		writeFile(t, dir, "input.txt", "v2\n")
		res, out := build(t, dir, d.env(), "--push", "--repository", r, "--attempts", "1")
		if out.code == 0 || res["svc"].Status != "failed" || !strings.Contains(out.stderr, "429") {
			t.Fatalf("429 on every push: exit %d, %+v\n%s", out.code, res["svc"], out.stderr)
		}
		if head(t, direct+"/svc:ci") != first.Digest {
			t.Fatal("ci moved after a failed push")
		}
		perAttempt := always.Hits()

		// Then fail exactly one attempt: the second one succeeds.
		p.Clear()
		rule := p.Inject(faultproxy.Fault{Method: "PUT", Path: imageManifest, Times: perAttempt, Status: 429, Header: http.Header{"Retry-After": {"1"}}})
		res, out = build(t, dir, d.env(), "--push", "--repository", r)
		s := res["svc"]
		if out.code != 0 || s.Status != "built" || rule.Hits() != perAttempt {
			t.Fatalf("exit %d, %+v, fault hits %d of %d\n%s", out.code, s, rule.Hits(), perAttempt, out.stderr)
		}
		if !strings.Contains(out.stderr, "attempt 1 of 3 failed on a transient registry error") {
			t.Errorf("the retry is not reported:\n%s", out.stderr)
		}
		if head(t, direct+"/svc:"+s.Hash) != s.Digest || head(t, direct+"/svc:ci") != s.Digest {
			t.Error("after the retry the image or ci is not where it should be")
		}
		first = s
	})

	t.Run("truncated blob download", func(t *testing.T) {
		// A pruned daemon pulls the cached layers of cache-ci; the
		// first blob download breaks off.
		p.Clear()
		rule := p.Inject(faultproxy.Fault{Method: "GET", Path: `/blobs/sha256:`, Times: 1, Truncate: 10})
		writeFile(t, dir, "input.txt", "v3\n")
		d.prune(t)
		res, out := build(t, dir, d.env(), "--push", "--repository", r)
		s := res["svc"]
		if out.code != 0 || s.Status != "built" || rule.Hits() != 1 {
			t.Fatalf("exit %d, %+v (fault hits %d)\n%s", out.code, s, rule.Hits(), out.stderr)
		}
		if got := imageFiles(t, direct+"/svc:"+s.Hash, "input.txt", "built"); got["input.txt"] != "v3" || got["built"] != "built" {
			t.Errorf("image content after a truncated download: %q", got)
		}
		first = s
	})

	t.Run("500 until the end", func(t *testing.T) {
		p.Clear()
		p.Inject(faultproxy.Fault{Method: "PUT", Path: imageManifest, Status: 500})
		writeFile(t, dir, "input.txt", "v4\n")
		mf := filepath.Join(t.TempDir(), "m.json")
		res, out := build(t, dir, d.env(), "--push", "--repository", r, "--attempts", "2", "--manifest", mf)
		s := res["svc"]
		if out.code == 0 || s.Status != "failed" {
			t.Fatalf("a push that never succeeded: exit %d, %+v", out.code, s)
		}
		if !containsAll(out.stderr, `service "svc" failed`, s.Hash, "500") {
			t.Errorf("unclear error:\n%s", out.stderr)
		}
		if strings.Contains(out.stdout, "built") {
			t.Errorf("the summary reports a build that did not happen:\n%s", out.stdout)
		}
		if head(t, direct+"/svc:"+s.Hash) != "" {
			t.Error("R:H exists although its push failed")
		}
		if got := head(t, direct+"/svc:ci"); got != first.Digest {
			t.Errorf("ci moved to %s after a failed push (was %s)", got, first.Digest)
		}
		if doc, _ := os.ReadFile(mf); !strings.Contains(string(doc), `"status": "failed"`) {
			t.Errorf("manifest does not record the failure:\n%.300s", doc)
		}
	})
}

// TestSkipCheckFaults: the skip check never takes a failure for a miss
// or a hit: refused credentials name the registry and how to log in,
// a registry failing after retries fails the service, and nothing is
// built or moved either way.
func TestSkipCheckFaults(t *testing.T) {
	requireSandbox(t)
	p, r, direct := faulty(t)
	dir := sourcetest.Tree(t, tiny)
	first := mustBuild(t, dir, nil, "--push", "--repository", r)["svc"]
	writeFile(t, dir, "input.txt", "v2\n")
	for _, tc := range []struct {
		name   string
		status int
		want   []string
	}{
		{"401", 401, []string{"docker login " + p.Addr, "401"}},
		{"403", 403, []string{"docker login " + p.Addr, "403"}},
		{"500 after retries", 500, []string{p.Addr, "500"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			p.Inject(faultproxy.Fault{Method: "HEAD", Path: imageManifest, Status: tc.status})
			res, out := build(t, dir, nil, "--push", "--repository", r)
			s := res["svc"]
			if out.code == 0 || s.Status != "failed" || !containsAll(out.stderr, tc.want...) {
				t.Fatalf("exit %d, %+v; want %q in:\n%s", out.code, s, tc.want, out.stderr)
			}
			if s.TotalSteps != 0 || head(t, direct+"/svc:"+s.Hash) != "" || head(t, direct+"/svc:ci") != first.Digest {
				t.Errorf("something was built or moved after a failed skip check: %+v", s)
			}
		})
	}

	// A revert is a skip whose R:F must move back; a registry that
	// refuses the move fails the service, and R:F stays where it was.
	t.Run("a skip whose promotion fails", func(t *testing.T) {
		p.Clear()
		second := mustBuild(t, dir, nil, "--push", "--repository", r)["svc"]
		writeFile(t, dir, "input.txt", tiny["input.txt"])
		p.Inject(faultproxy.Fault{Method: "PUT", Path: "/manifests/ci$", Status: 403})
		res, out := build(t, dir, nil, "--push", "--repository", r)
		if s := res["svc"]; out.code == 0 || s.Status != "failed" || s.Hash != first.Hash || !strings.Contains(s.Error, "ci") {
			t.Errorf("a revert whose R:F move is refused: exit %d, %+v\n%s", out.code, s, out.stderr)
		}
		if d := head(t, direct+"/svc:ci"); d != second.Digest {
			t.Errorf("R:F is %s after a refused move, want %s still", d, second.Digest)
		}
	})
}

// TestAuditCommandFaults: the commands that only read the registry (explain,
// cache inspect, check) fail on a registry error naming the registry and
// what to do, and never take the error for a missing ref.
func TestAuditCommandFaults(t *testing.T) {
	requireSandbox(t)
	p, r, _ := faulty(t)
	dir := sourcetest.Tree(t, tiny)
	mustBuild(t, dir, nil, "--push", "--repository", r)
	for _, tc := range []struct {
		name   string
		status int
		want   []string
	}{
		{"401", 401, []string{"docker login " + p.Addr}},
		{"500", 500, []string{p.Addr, "500"}},
	} {
		for _, args := range [][]string{
			{"explain", "svc", "--repository", r},
			{"cache", "inspect", r + "/svc:cache-ci"},
			{"check", "--repository", r},
		} {
			t.Run(tc.name+"/"+args[0], func(t *testing.T) {
				p.Clear()
				p.Inject(faultproxy.Fault{Path: `/manifests/`, Status: tc.status})
				out := bkcache(t, dir, nil, args...)
				if out.code == 0 || !containsAll(out.stderr, tc.want...) {
					t.Fatalf("exit %d; want %q in:\n%s%s", out.code, tc.want, out.stdout, out.stderr)
				}
				if strings.Contains(out.stdout+out.stderr, "missing") {
					t.Errorf("a registry error was reported as a missing ref:\n%s%s", out.stdout, out.stderr)
				}
			})
		}
	}
}

// rawManifest is a manifest written as given.
type rawManifest string

func (m rawManifest) RawManifest() ([]byte, error) { return []byte(m), nil }
func (m rawManifest) MediaType() (types.MediaType, error) {
	return types.OCIManifestSchema1, nil
}
