package e2e

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

var (
	nodesOnce sync.Once
	nodeAddrs []string
	nodesErr  error
)

// pool returns three buildkitd addresses sharing the sandbox registry:
// the sandbox's own and two more, started once.
func pool(t *testing.T) []string {
	t.Helper()
	nodesOnce.Do(func() {
		nodeAddrs = []string{sb.BuildkitAddr}
		for _, name := range []string{"node-b", "node-c"} {
			a, err := sb.StartNode(t.Context(), name)
			if err != nil {
				nodesErr = err
				return
			}
			nodeAddrs = append(nodeAddrs, a)
		}
	})
	if nodesErr != nil {
		t.Fatal(nodesErr)
	}
	return nodeAddrs
}

// manyServices is a project of n independent services, each with a
// cacheable step, sleeping $SLEEP seconds in it.
func manyServices(t *testing.T, n int) string {
	files := map[string]string{}
	var compose strings.Builder
	compose.WriteString("services:\n")
	for i := range n {
		svc := fmt.Sprintf("s%02d", i)
		fmt.Fprintf(&compose, "  %s:\n    build:\n      context: ./%s\n      args:\n        SLEEP: ${SLEEP:-0}\n", svc, svc)
		// The RUN differs per service: BuildKit runs identical steps of
		// concurrent solves once, and shows them under one service.
		files[svc+"/Dockerfile"] = "FROM busybox\nARG SLEEP\nRUN echo prep " + svc + " > /prep && sleep $SLEEP\nCOPY in.txt /in.txt\n"
		files[svc+"/in.txt"] = svc + "\n"
	}
	files["compose.yaml"] = compose.String()
	return sourcetest.Tree(t, files)
}

type serviceRecord struct {
	Service  string   `json:"service"`
	Status   string   `json:"status"`
	Node     string   `json:"node"`
	Warnings []string `json:"warnings"`
	Steps    *struct {
		Cached int `json:"cached"`
	} `json:"steps"`
	Timing struct {
		CacheImportBytes int64 `json:"cacheImportBytes"`
	} `json:"timing"`
}

func readServices(t *testing.T, file string) map[string]serviceRecord {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Services []serviceRecord }
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]serviceRecord{}
	for _, s := range doc.Services {
		out[s.Service] = s
	}
	return out
}

func addrFlags(addrs ...string) []string {
	var out []string
	for _, a := range addrs {
		out = append(out, "--addr", a)
	}
	return out
}

// TestNodesSpreadAndStick: with three nodes the services spread over
// them, each on its rendezvous choice, recorded in the manifest; the
// next run (nodes given in another order, through BUILDKIT_HOST) puts
// every service on the same node again.
func TestNodesSpreadAndStick(t *testing.T) {
	requireSandbox(t)
	addrs := pool(t)
	dir, r := manyServices(t, 12), repo(t)
	m1 := filepath.Join(t.TempDir(), "m1.json")
	mustBuild(t, dir, nil, append([]string{"--push", "--repository", r, "--manifest", m1}, addrFlags(addrs...)...)...)
	first := readServices(t, m1)
	used := map[string]int{}
	for svc, rec := range first {
		if rec.Status != "built" || rec.Node != preferredOrder(addrs, svc)[0] {
			t.Errorf("%s: %s on %q, want built on %s", svc, rec.Status, rec.Node, preferredOrder(addrs, svc)[0])
		}
		used[rec.Node]++
	}
	if len(used) < 2 {
		t.Errorf("12 services all went to one node: %v", used)
	}

	m2 := filepath.Join(t.TempDir(), "m2.json")
	env := []string{"BUILDKIT_HOST=" + strings.Join([]string{addrs[2], addrs[0], addrs[1]}, ",")}
	mustBuild(t, dir, env, "--push", "--repository", r, "--manifest", m2, "--force")
	for svc, rec := range readServices(t, m2) {
		if rec.Node != first[svc].Node {
			t.Errorf("%s moved from %s to %s between runs", svc, first[svc].Node, rec.Node)
		}
		if rec.Steps == nil || rec.Steps.Cached == 0 {
			t.Errorf("%s: nothing cached on its own node the second time: %+v", svc, rec.Steps)
		}
	}
}

// TestCacheAcrossNodes: cache exported by one node is imported by
// another that has never built the service.
func TestCacheAcrossNodes(t *testing.T) {
	requireSandbox(t)
	a, err := sb.StartNode(t.Context(), "node-export")
	if err != nil {
		t.Fatal(err)
	}
	b, err := sb.StartNode(t.Context(), "node-import")
	if err != nil {
		t.Fatal(err)
	}
	dir, r := manyServices(t, 1), repo(t)
	mustBuild(t, dir, nil, "--push", "--repository", r, "--addr", a)
	writeFile(t, dir, "s00/in.txt", "changed\n")
	mf := filepath.Join(t.TempDir(), "m.json")
	mustBuild(t, dir, nil, "--push", "--repository", r, "--addr", b, "--manifest", mf)
	rec := readServices(t, mf)["s00"]
	if rec.Node != b || rec.Status != "built" || rec.Steps == nil || rec.Steps.Cached == 0 {
		t.Fatalf("the second node did not reuse the first node's cache: %+v", rec)
	}
	// The changed COPY applies on the cached layers: the new node pulled
	// them from the cache, and the manifest says how much that was.
	if rec.Timing.CacheImportBytes == 0 {
		t.Errorf("no cache import bytes recorded for a build on a node that pulled the cache: %+v", rec)
	}
}

// TestNodeDiesMidRun: a node killed while it solves; its services are
// built again on another node, the reason recorded, and the run succeeds.
func TestNodeDiesMidRun(t *testing.T) {
	requireSandbox(t)
	x, err := sb.StartNode(t.Context(), "node-doomed")
	if err != nil {
		t.Fatal(err)
	}
	y, err := sb.StartNode(t.Context(), "node-survivor")
	if err != nil {
		t.Fatal(err)
	}
	dir, r := manyServices(t, 6), repo(t)
	var victim string // a service that prefers the doomed node
	for i := range 6 {
		if svc := fmt.Sprintf("s%02d", i); preferredOrder([]string{x, y}, svc)[0] == x {
			victim = svc
			break
		}
	}
	if victim == "" {
		t.Skip("no service prefers the doomed node with these addresses (1 in 64)")
	}
	mf := filepath.Join(t.TempDir(), "m.json")
	cmd := exec.Command(sb.BkcacheBin(), append([]string{"build", "--push", "--repository", r, "--manifest", mf, "--progress", "plain"}, addrFlags(x, y)...)...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), sb.Env()...), "SLEEP=5", "XDG_CACHE_HOME="+filepath.Join(sb.Dir, "cache"))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, done, &out, "["+victim+"] [2/3] RUN")
	sb.Kill("node-doomed")
	if code := waitExit(t, done, &out); code != 0 {
		t.Fatalf("the run failed although a node survived (exit %d):\n%s", code, lastLines(out.String(), 30))
	}
	recs := readServices(t, mf)
	v := recs[victim]
	if v.Status != "built" || v.Node != y || !strings.Contains(strings.Join(v.Warnings, "\n"), x) {
		t.Errorf("%s: %+v, want built on %s with the failure of %s recorded", victim, v, y, x)
	}
	for svc, rec := range recs {
		if rec.Status != "built" || head(t, r+"/"+svc+":ci") == "" {
			t.Errorf("%s: %s, ci %q", svc, rec.Status, head(t, r+"/"+svc+":ci"))
		}
	}
}

// TestUnreachableNode: a node that does not answer is left out with a
// warning; the others build everything.
func TestUnreachableNode(t *testing.T) {
	requireSandbox(t)
	dir, r := manyServices(t, 4), repo(t)
	gone := "unix://" + filepath.Join(t.TempDir(), "gone.sock")
	mf := filepath.Join(t.TempDir(), "m.json")
	res, out := build(t, dir, nil, "--push", "--repository", r, "--addr", sb.BuildkitAddr, "--addr", gone, "--manifest", mf)
	if out.code != 0 || !strings.Contains(out.stderr, gone) {
		t.Fatalf("exit %d; want success and a warning naming %s:\n%s", out.code, gone, out.stderr)
	}
	recs := readServices(t, mf)
	for svc, s := range res {
		if s.Status != "built" {
			t.Errorf("%s: %s", svc, s.Status)
		}
		prefersGone := preferredOrder([]string{sb.BuildkitAddr, gone}, svc)[0] == gone
		if recorded := strings.Contains(strings.Join(recs[svc].Warnings, "\n"), gone); recorded != prefersGone {
			t.Errorf("%s: prefers the unreachable node: %v, its manifest says so: %v (%q)", svc, prefersGone, recorded, recs[svc].Warnings)
		}
	}
}

// TestDependencyOnAnotherNode: a service: dependency built on one node
// reaches its dependent on another through the registry (its pushed
// digest), and without --push through the client (an OCI layout).
func TestDependencyOnAnotherNode(t *testing.T) {
	requireSandbox(t)
	addrs := pool(t)[:2]
	// Names whose preferred nodes differ.
	var dep, app string
	for i := 0; dep == ""; i++ {
		d, a := fmt.Sprintf("dep%d", i), fmt.Sprintf("app%d", i)
		if preferredOrder(addrs, d)[0] != preferredOrder(addrs, a)[0] {
			dep, app = d, a
		}
	}
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml":   fmt.Sprintf("services:\n  %s:\n    build: ./dep\n  %s:\n    build:\n      context: ./app\n      additional_contexts:\n        base: service:%s\n", dep, app, dep),
		"dep/Dockerfile": "FROM busybox\nCOPY motd /etc/motd\n",
		"dep/motd":       "from the dependency\n",
		"app/Dockerfile": "FROM base\nCOPY in.txt /in.txt\n",
		"app/in.txt":     "app\n",
	})
	r := repo(t)
	mf := filepath.Join(t.TempDir(), "m.json")
	mustBuild(t, dir, nil, append([]string{"--push", "--repository", r, "--manifest", mf}, addrFlags(addrs...)...)...)
	recs := readServices(t, mf)
	if recs[dep].Node == recs[app].Node {
		t.Fatalf("both on %s: the test needs them apart", recs[dep].Node)
	}
	res := mustBuild(t, dir, nil, "--repository", r) // all skipped: read the digests
	if got := imageFiles(t, r+"/"+app+":"+res[app].Hash, "etc/motd", "in.txt"); got["etc/motd"] != "from the dependency" || got["in.txt"] != "app" {
		t.Errorf("%s built on %s without %s's image from %s: %q", app, recs[app].Node, dep, recs[dep].Node, got)
	}

	out := filepath.Join(t.TempDir(), "app.tar")
	writeFile(t, dir, "dep/motd", "local change\n")
	mustBuild(t, dir, nil, append([]string{app, "--repository", r, "--output", "type=tar,dest=" + out}, addrFlags(addrs...)...)...)
	if names := tarNames(t, out); !slices.Contains(names, "etc/motd") {
		t.Errorf("without --push, %s's output lacks its dependency's file: %v", app, names)
	}
}

// preferredOrder is the order in which service tries addrs: bkcache's
// rendezvous hashing, restated here as its documentation gives it (the
// highest first 8 bytes, big-endian, of SHA-256 of addr NUL service).
func preferredOrder(addrs []string, service string) []string {
	score := func(a string) uint64 {
		h := sha256.Sum256([]byte(a + "\x00" + service))
		return binary.BigEndian.Uint64(h[:8])
	}
	out := slices.Clone(addrs)
	slices.SortStableFunc(out, func(a, b string) int { return cmp.Compare(score(b), score(a)) })
	return out
}
