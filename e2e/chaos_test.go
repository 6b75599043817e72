package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

var (
	chaosRuns = flag.Int("chaos.runs", 6, "builds of TestChaos's 5-service project, each under random faults (CI runs the default; the soak is 200 or more)")
	chaosSeed = flag.Uint64("chaos.seed", 0, "TestChaos's random seed; 0 picks one (logged, to replay a run)")
)

// chaosSteps are where faults go: the registry requests of one step of a
// build, by method and path (as the fault proxy matches them).
var chaosSteps = []struct{ name, method, path string }{
	{"skip check", "HEAD", `/manifests/[0-9a-f]{64}$`},
	{"blob upload", "", `/blobs/uploads/`},
	{"manifest put", "PUT", `/manifests/[0-9a-f]{64}$`},
	{"retag", "PUT", `/manifests/(cache-)?ci$`},
	{"referrers", "", `/referrers/|/manifests/sha256-[0-9a-f]{64}$`},
	{"cache import", "GET", `/manifests/cache-`},
}

// chaosKinds are the faults, as the fault proxy injects them.
var chaosKinds = []struct {
	name  string
	fault faultproxy.Fault
}{
	{"500", faultproxy.Fault{Status: 500}},
	{"502", faultproxy.Fault{Status: 502}},
	{"503", faultproxy.Fault{Status: 503}},
	{"429 Retry-After", faultproxy.Fault{Status: 429, Header: http.Header{"Retry-After": {"1"}}}},
	{"reset", faultproxy.Fault{Reset: true}},
	{"stall", faultproxy.Fault{Delay: 2 * time.Second}},
	{"truncated body", faultproxy.Fault{Truncate: 64}},
}

// chaosProject is five services: a dependency and its dependent (a
// service: context), a RUN step, and two plain copies.
func chaosProject(r string) map[string]string {
	svc := func(name, extra string) string {
		return "  " + name + ":\n    image: " + r + "/" + name + "\n    build:\n      context: .\n      dockerfile: " + name + ".Dockerfile\n" + extra
	}
	return map[string]string{
		"compose.yaml": "services:\n" + svc("base", "") + svc("app", "      additional_contexts: {base: 'service:base'}\n") +
			svc("web", "") + svc("worker", "") + svc("docs", ""),
		"base.Dockerfile":   "FROM busybox\nCOPY base.txt /\nRUN cat /base.txt > /base.out\n",
		"app.Dockerfile":    "FROM base\nCOPY app.txt /\n",
		"web.Dockerfile":    "FROM busybox\nCOPY web.txt /\nRUN wc -c /web.txt > /web.size\n",
		"worker.Dockerfile": "FROM scratch\nCOPY worker.txt /\n",
		"docs.Dockerfile":   "FROM scratch\nCOPY docs.txt /\n",
		"base.txt":          "base", "app.txt": "app", "web.txt": "web", "worker.txt": "worker", "docs.txt": "docs",
	}
}

var chaosServices = []string{"base", "app", "web", "worker", "docs"}

// TestChaos builds a 5-service project again and again, each run with
// random input edits and a random fault schedule on the registry (5xx,
// 429 with Retry-After, resets, stalls, truncated bodies, on the skip
// check, blob uploads, manifest pushes, the retag, the referrers and the
// cache import), some runs stopped by SIGTERM or their buildkitd killed.
// Beside each build, a branch build of an older state of the project
// (moving ci-feature) and a prune with the tightest rules may run (see
// chaosSide). After every run it checks what bkcache promises, on the
// registry itself: every R:F is a complete image whose attached manifest
// names a hash tag of that same image; every R:H is complete and its
// manifest, if attached, names it; every tag at all names a complete
// image (nothing prune deleted is still in use); the exit status and the
// summary agree with the registry; no run hangs; no credential appears in
// any output.
func TestChaos(t *testing.T) {
	requireSandbox(t)
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("chaos: seed %d (replay with -chaos.seed %d)", seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	p, r, direct := chaosRegistry(t)
	d := newDaemon(t)
	dir, old := sourcetest.Tree(t, chaosProject(r)), sourcetest.Tree(t, chaosProject(r))
	env := append(d.env(), "DOCKER_CONFIG="+os.Getenv("DOCKER_CONFIG"))
	st := &chaosStats{faults: map[string]int{}, ends: map[string]int{}}
	for run := range *chaosRuns {
		chaosLag(t, dir, old, rng)
		chaosEdit(t, dir, rng, run)
		rules := chaosFaults(p, rng)
		side, branch := chaosSide(t, dir, old, env, rng)
		out, how := chaosBuild(t, dir, env, d, rng)
		sides := side()
		p.Clear()
		for key, rule := range rules {
			st.faults[key] += rule.Hits()
		}
		if how == "killed buildkitd" {
			addr, err := sb.RestartNode(t.Context(), d.name)
			if err != nil {
				t.Fatal(err)
			}
			d.addr = addr
			env[0] = "BUILDKIT_HOST=" + addr
		}
		st.runs++
		st.ends[how]++
		if out.code == 0 {
			st.succeeded++
		}
		st.sides += len(sides)
		for _, v := range append(append(chaosCheck(t, direct, out, how, branch), chaosSideCheck(sides)...), chaosAllTags(t, direct)...) {
			st.violations++
			t.Errorf("run %d (%s, exit %d): %s", run, how, out.code, v)
		}
		if (run+1)%25 == 0 {
			t.Logf("chaos: %d runs done, %d violations", run+1, st.violations)
		}
	}
	st.report(t)
}

type chaosStats struct {
	runs, succeeded, violations int
	sides                       int            // branch builds and prunes run beside the builds
	faults                      map[string]int // hits, by "kind on step"
	ends                        map[string]int
}

func (s *chaosStats) report(t *testing.T) {
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range s.faults {
			if !yield(k) {
				return
			}
		}
	})
	var b strings.Builder
	total := 0
	for _, k := range keys {
		if s.faults[k] > 0 {
			fmt.Fprintf(&b, "  %-40s %d\n", k, s.faults[k])
			total += s.faults[k]
		}
	}
	summary := fmt.Sprintf("chaos: %d runs, %d builds (%d services each), ends %v, %d exited 0; %d branch builds and prunes beside them; %d faults injected:\n%sinvariant violations: %d",
		s.runs, s.runs*len(chaosServices), len(chaosServices), s.ends, s.succeeded, s.sides, total, b.String(), s.violations)
	t.Log(summary)
	// Runs that never finish prove nothing: the checks would hold on an
	// empty registry.
	if s.runs > 0 && s.succeeded*3 < s.runs {
		t.Errorf("only %d of %d runs exited 0: the setup, not the faults, stops the builds", s.succeeded, s.runs)
	}
	if f := os.Getenv("BKCACHE_CHAOS_REPORT"); f != "" {
		os.WriteFile(f, []byte(summary+"\n"), 0o644)
	}
}

// chaosRegistry starts a registry of the test's own that requires a
// password (which must never appear in what bkcache prints), behind a
// fault proxy; DOCKER_CONFIG (the test's, and bkcache's) holds the
// password for both addresses. It returns the proxy, the repository
// prefix through it, and the same prefix on the registry itself.
func chaosRegistry(t *testing.T) (*faultproxy.Proxy, string, string) {
	addr, err := sb.StartAuthRegistry(t.Context(), "chaos", chaosPassword)
	if err != nil {
		t.Fatal(err)
	}
	p := proxyTo(t, addr)
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("chaos:" + chaosPassword))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}, %q: {"auth": %q}}}`, p.Addr, auth, addr, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
	return p, p.Addr + "/chaos", addr + "/chaos"
}

const chaosPassword = "chaos-s3cret-pass"

// chaosEdit changes each input file with probability 0.3.
func chaosEdit(t *testing.T, dir string, rng *rand.Rand, run int) {
	for _, s := range chaosServices {
		if rng.Float64() < 0.3 {
			writeFile(t, dir, s+".txt", fmt.Sprintf("%s run %d %d", s, run, rng.Uint32()))
		}
	}
}

// chaosFaults injects zero to three random faults, each on a random step
// for one to three requests.
func chaosFaults(p *faultproxy.Proxy, rng *rand.Rand) map[string]*faultproxy.Rule {
	rules := map[string]*faultproxy.Rule{}
	for range rng.IntN(4) {
		k, s := chaosKinds[rng.IntN(len(chaosKinds))], chaosSteps[rng.IntN(len(chaosSteps))]
		f := k.fault
		f.Method, f.Path, f.Times = s.method, s.path, 1+rng.IntN(3)
		key := k.name + " on " + s.name
		if _, dup := rules[key]; !dup {
			rules[key] = p.Inject(f)
		}
	}
	return rules
}

// chaosBuild runs one build --push; one run in ten is sent SIGTERM and
// one in twenty has its buildkitd killed, at a random moment.
func chaosBuild(t *testing.T, dir string, env []string, d *daemon, rng *rand.Rand) (result, string) {
	how := "ran"
	switch x := rng.Float64(); {
	case x < 0.1:
		how = "SIGTERM"
	case x < 0.15:
		how = "killed buildkitd"
	}
	cmd := exec.Command(sb.BkcacheBin(), "build", "--push", "--keep-going", "--format", "json", "--registry-timeout", "5s", "--progress", "plain")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), sb.Env()...), env...)
	var stdout, stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	if how != "ran" {
		select {
		case err := <-done:
			done <- err
		case <-time.After(time.Duration(100+rng.IntN(1500)) * time.Millisecond):
			if how == "SIGTERM" {
				cmd.Process.Signal(syscall.SIGTERM)
			} else {
				sb.Kill(d.name)
			}
		}
	}
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("a chaos run hung for 5 minutes:\n%s", stderr.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}, how
}

var hashTag = regexp.MustCompile(`^[0-9a-f]{64}$`)

// chaosCheck returns every broken promise, read from the registry
// itself (no proxy). With a branch build beside the run (branch), both
// may have built the same inputs: then the promise is the one concurrent
// runs have (R:F names one complete build of H, R:H another), not that
// they are the same image.
func chaosCheck(t *testing.T, direct string, out result, how string, branch bool) []string {
	var v []string
	reg := registry.New(registry.Options{})
	ctx := context.Background()
	for _, svc := range chaosServices {
		repo := direct + "/" + svc
		for _, tag := range tagsOrNone(t, repo) {
			switch {
			case hashTag.MatchString(tag):
				v = append(v, chaosHashTag(ctx, reg, repo, tag)...)
			case tag == "ci":
				v = append(v, chaosFloating(t, ctx, reg, repo, branch)...)
			}
		}
	}
	v = append(v, chaosSummary(t, ctx, reg, direct, out, how, branch)...)
	for _, secret := range []string{chaosPassword, base64.StdEncoding.EncodeToString([]byte("chaos:" + chaosPassword))} {
		if strings.Contains(out.stdout+out.stderr, secret) {
			v = append(v, "a credential appears in bkcache's output")
		}
	}
	return v
}

// chaosHashTag: R:H is complete, and its manifest, if attached, names H.
func chaosHashTag(ctx context.Context, reg *registry.Registry, repo, tag string) []string {
	ref := repo + ":" + tag
	if err := complete(ref); err != nil {
		return []string{fmt.Sprintf("%s is not a complete image: %v", ref, err)}
	}
	n, _ := name.ParseReference(ref, name.Insecure)
	m, err := publish.ReadRecord(ctx, reg, n)
	if err != nil {
		return nil // pushed, stopped before the attach: no manifest to contradict it
	}
	if len(m.Services) != 1 || m.Services[0].Hash != tag {
		return []string{fmt.Sprintf("the manifest attached to %s names hash %v", ref, hashes(m.Services))}
	}
	return nil
}

// chaosFloating: R:F is complete and its manifest names a hash tag of
// that same image (with a concurrent build of the same inputs, a
// complete image whose own manifest names the same hash).
func chaosFloating(t *testing.T, ctx context.Context, reg *registry.Registry, repo string, branch bool) []string {
	ref := repo + ":ci"
	if err := complete(ref); err != nil {
		return []string{fmt.Sprintf("%s is not a complete image: %v", ref, err)}
	}
	n, _ := name.ParseReference(ref, name.Insecure)
	m, err := publish.ReadRecord(ctx, reg, n)
	if err != nil || len(m.Services) != 1 {
		return []string{fmt.Sprintf("%s has no bkcache manifest: %v", ref, err)}
	}
	h := m.Services[0].Hash
	fd, hd := head(t, ref), head(t, repo+":"+h)
	if fd == "" || (fd != hd && !(branch && sameInputs(ctx, reg, repo, h))) {
		return []string{fmt.Sprintf("%s (%s) says hash %s, whose tag is %q", ref, fd, h[:12], hd)}
	}
	return nil
}

// sameInputs reports whether R:H, at repo:h, is a complete image whose
// attached manifest names hash h: another build of the same inputs.
func sameInputs(ctx context.Context, reg *registry.Registry, repo, h string) bool {
	if complete(repo+":"+h) != nil {
		return false
	}
	n, _ := name.ParseReference(repo+":"+h, name.Insecure)
	m, err := publish.ReadRecord(ctx, reg, n)
	return err == nil && len(m.Services) == 1 && m.Services[0].Hash == h
}

// chaosSummary: what the run said agrees with the registry. A run that
// exits 0 built or skipped every service, each R:H has the digest it
// printed and R:F names it; in any run a service said built or skipped
// has its R:H. An interrupted run may have printed nothing.
func chaosSummary(t *testing.T, ctx context.Context, reg *registry.Registry, direct string, out result, how string, branch bool) []string {
	var doc struct {
		Services []struct{ Service, Status, Hash, Digest string }
	}
	if err := json.Unmarshal([]byte(out.stdout), &doc); err != nil {
		if how == "ran" {
			return []string{fmt.Sprintf("no summary on stdout: %v\n%s", err, out.stderr)}
		}
		return nil
	}
	var v []string
	if out.code == 0 && len(doc.Services) != len(chaosServices) {
		v = append(v, fmt.Sprintf("exit 0 with %d services in the summary", len(doc.Services)))
	}
	for _, s := range doc.Services {
		ok := s.Status == "built" || s.Status == "skipped"
		switch {
		case out.code == 0 && !ok:
			v = append(v, fmt.Sprintf("exit 0, but %s is %s", s.Service, s.Status))
		case ok && head(t, direct+"/"+s.Service+":"+s.Hash) != s.Digest && !(branch && sameInputs(ctx, reg, direct+"/"+s.Service, s.Hash)):
			v = append(v, fmt.Sprintf("%s said %s with %s, the registry has %q", s.Service, s.Status, s.Digest, head(t, direct+"/"+s.Service+":"+s.Hash)))
		case ok && head(t, direct+"/"+s.Service+":ci") != s.Digest:
			v = append(v, fmt.Sprintf("%s said %s, but ci is not its image", s.Service, s.Status))
		}
	}
	if out.code != 0 && how == "ran" && !slices.ContainsFunc(doc.Services, func(s struct{ Service, Status, Hash, Digest string }) bool {
		return s.Status == "failed" || s.Status == "cancelled"
	}) {
		v = append(v, fmt.Sprintf("exit %d, yet every service built or skipped", out.code))
	}
	return v
}

// complete reads an image or index and every manifest and blob it names.
func complete(ref string) error {
	n, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	desc, err := remote.Get(n, keychain)
	if err != nil {
		return err
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		return validate.Index(idx, validate.Fast)
	}
	img, err := desc.Image()
	if err != nil {
		return err
	}
	return validate.Image(img, validate.Fast)
}

// tagsOrNone lists repo's tags; a repository not pushed yet has none.
func tagsOrNone(t *testing.T, repo string) []string {
	r, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(r, keychain)
	if err != nil {
		return nil
	}
	return tags
}

func hashes(ss []*record.Service) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.Hash)
	}
	return out
}
