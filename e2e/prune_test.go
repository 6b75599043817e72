package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// pruneReport is the part of prune's JSON the tests read.
type pruneReport struct {
	Repository string `json:"repository"`
	DryRun     bool   `json:"dryRun"`
	Deleted    int    `json:"deleted"`
	Freed      int64  `json:"bytesFreed"`
	Items      []struct {
		Tags    []string `json:"tags"`
		Kind    string   `json:"kind"`
		Action  string   `json:"action"`
		Reason  string   `json:"reason"`
		Created string   `json:"created"`
	} `json:"items"`
}

func (r pruneReport) deletes() int {
	n := 0
	for _, it := range r.Items {
		if it.Action == "delete" {
			n++
		}
	}
	return n
}

// versions builds n versions of one service into repository r and
// returns their hashes, oldest first.
func versions(t *testing.T, r string, n int) (string, []string) {
	t.Helper()
	dir := appProject(t, r)
	var hashes []string
	for i := range n {
		writeFile(t, dir, "v.txt", fmt.Sprintf("version %d of %s", i, r))
		hashes = append(hashes, mustBuild(t, dir, nil, "--push")["app"].Hash)
	}
	return dir, hashes
}

// appProject is the project versions builds, its service app in
// repository r.
func appProject(t *testing.T, r string) string {
	t.Helper()
	return sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: " + r + "/app\n    build: .\n",
		"Dockerfile":   "FROM busybox\nCOPY v.txt /v.txt\n",
		"v.txt":        "unused",
	})
}

func tagsOf(t *testing.T, repo string) []string {
	t.Helper()
	rp, err := name.NewRepository(repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, err := remote.List(rp, keychain)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(tags)
	return tags
}

func prune(t *testing.T, dir string, env []string, args ...string) ([]pruneReport, result) {
	t.Helper()
	res := bkcache(t, dir, env, append([]string{"prune", "--format", "json"}, args...)...)
	var reps []pruneReport
	if err := json.Unmarshal([]byte(res.stdout), &reps); err != nil {
		t.Fatalf("prune %v: %v\nstdout: %s\nstderr: %s", args, err, res.stdout, res.stderr)
	}
	return reps, res
}

// prunedToNewest fails unless, of the images of app built with hashes
// (oldest first), only the newest is left, and it and ci still pull:
// what a --keep 1 prune must leave once it has run to its end.
func prunedToNewest(t *testing.T, app string, hashes []string) {
	t.Helper()
	last := len(hashes) - 1
	for _, h := range hashes[:last] {
		if head(t, app+":"+h) != "" {
			t.Errorf("image %s is still there after the prune that finished", h[:12])
		}
	}
	pulls(t, app+":"+hashes[last])
	pulls(t, app+":ci")
}

// pulls fails unless the image at ref answers with its manifest and every
// blob.
func pulls(t *testing.T, ref string) {
	t.Helper()
	img := remoteImage(t, ref)
	ls, err := img.Layers()
	if err != nil {
		t.Fatalf("%s: %v", ref, err)
	}
	if _, err := img.RawConfigFile(); err != nil {
		t.Errorf("%s: config: %v", ref, err)
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err == nil {
			_, err = io.Copy(io.Discard, rc)
			rc.Close()
		}
		if err != nil {
			t.Errorf("%s: a layer does not pull: %v", ref, err)
		}
	}
}

// TestPrune: six versions of a service; a dry run deletes nothing; the
// rules keep the two newest with their caches, ci and cache-ci, a
// ci-feature floating tag's image and a hand-pushed release-1; every
// kept image still pulls and the deleted ones answer 404.
func TestPrune(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir, hashes := versions(t, r, 6)
	app := r + "/app"
	release, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	rel, _ := name.NewTag(app+":release-1", name.Insecure)
	if err := remote.Write(rel, release); err != nil {
		t.Fatal(err)
	}
	feature, _ := name.NewTag(app+":ci-feature", name.Insecure)
	desc, err := remote.Get(mustRef(t, app+":"+hashes[2]))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(feature, desc); err != nil {
		t.Fatal(err)
	}
	before := tagsOf(t, app)

	if reps, res := prune(t, dir, nil); res.code != 0 || len(reps) != 1 || reps[0].deletes() != 0 {
		t.Errorf("the default rules (keep 10, 24h) delete %d manifests of six builds: exit %d\n%s", reps[0].deletes(), res.code, res.stderr)
	}
	reps, res := prune(t, dir, nil, "--keep", "2", "--keep-within", "0s")
	if res.code != 0 || len(reps) != 1 || !reps[0].DryRun || reps[0].deletes() == 0 || reps[0].Freed == 0 {
		t.Fatalf("dry run: exit %d, %+v\n%s", res.code, reps, res.stderr)
	}
	if got := tagsOf(t, app); !slices.Equal(got, before) {
		t.Fatalf("a dry run changed the tags:\nbefore %v\nafter  %v", before, got)
	}
	if reps, _ := prune(t, dir, nil, "--keep", "2", "--keep-within", "1h"); reps[0].deletes() != 0 {
		t.Errorf("--keep-within 1h deletes %d manifests of six builds made minutes ago", reps[0].deletes())
	}

	ecrLifecycle(t, dir, app, hashes[2])
	if got := tagsOf(t, app); !slices.Equal(got, before) {
		t.Fatalf("--format ecr-lifecycle changed the tags:\nbefore %v\nafter  %v", before, got)
	}

	reps, res = prune(t, dir, nil, "--keep", "2", "--keep-within", "0s", "--yes")
	if res.code != 0 || reps[0].DryRun || reps[0].Deleted == 0 {
		t.Fatalf("prune --yes: exit %d, %+v\n%s", res.code, reps, res.stderr)
	}
	kept := []string{hashes[2], hashes[4], hashes[5]}
	for _, h := range kept {
		pulls(t, app+":"+h)
		if head(t, app+":cache-"+h) == "" {
			t.Errorf("the cache of kept image %s is gone", h[:12])
		}
	}
	for _, tag := range []string{"ci", "cache-ci", "ci-feature", "release-1"} {
		pulls(t, app+":"+tag)
	}
	for _, h := range []string{hashes[0], hashes[1], hashes[3]} {
		if head(t, app+":"+h) != "" || head(t, app+":cache-"+h) != "" {
			t.Errorf("image %s or its cache still answers", h[:12])
		}
	}
	for _, tag := range tagsOf(t, app) {
		keep := slices.ContainsFunc(kept, func(h string) bool { return strings.HasSuffix(tag, h) }) ||
			slices.Contains([]string{"ci", "cache-ci", "ci-feature", "release-1"}, tag) || strings.HasPrefix(tag, "sha256-")
		if !keep {
			t.Errorf("tag %s was left", tag)
		}
	}
	t.Logf("tags before %d, after %d; %d manifests deleted, %d bytes freed", len(before), len(tagsOf(t, app)), reps[0].Deleted, reps[0].Freed)

	// Run again: nothing more to do.
	if reps, res := prune(t, dir, nil, "--keep", "2", "--keep-within", "0s", "--yes"); res.code != 0 || reps[0].Deleted != 0 {
		t.Errorf("a second prune: exit %d, deleted %d\n%s", res.code, reps[0].Deleted, res.stderr)
	}
}

// ecrLifecycle checks the ECR lifecycle policy prune prints for app,
// built as TestPrune builds it: it holds the floating tags' caches and
// the cache of held, ci-feature's image, then expires caches beyond the
// newest two; with prune's two default keep rules it refuses.
func ecrLifecycle(t *testing.T, dir, app, held string) {
	t.Helper()
	if res := bkcache(t, dir, nil, "prune", "--format", "ecr-lifecycle"); res.code != 2 || !strings.Contains(res.stderr, "--keep-within 0s to keep the newest 10") {
		t.Errorf("ecr-lifecycle with --keep 10 --keep-within 24h: exit %d\n%s", res.code, res.stderr)
	}
	res := bkcache(t, dir, nil, "prune", "--format", "ecr-lifecycle", "--keep", "2", "--keep-within", "0s")
	var out []struct {
		Repository     string `json:"repository"`
		RepositoryName string `json:"repositoryName"`
		Policy         struct {
			Rules []struct {
				RulePriority int `json:"rulePriority"`
				Selection    struct {
					TagPatternList []string `json:"tagPatternList"`
					CountType      string   `json:"countType"`
					CountNumber    int      `json:"countNumber"`
				} `json:"selection"`
			} `json:"rules"`
		} `json:"policy"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil || res.code != 0 || len(out) != 1 {
		t.Fatalf("ecr-lifecycle: exit %d, %v\nstdout: %s\nstderr: %s", res.code, err, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stderr, "expire caches (cache-*) only") {
		t.Errorf("stderr does not say the policy leaves hash images out:\n%s", res.stderr)
	}
	l := out[0]
	if l.Repository != app || !strings.HasSuffix(app, "/"+l.RepositoryName) || strings.Contains(l.RepositoryName, ":") {
		t.Errorf("repository %q, repositoryName %q; want %s and its path", l.Repository, l.RepositoryName, app)
	}
	var pats []string
	for i, r := range l.Policy.Rules {
		pats = append(pats, r.Selection.TagPatternList...)
		if r.RulePriority != i+1 {
			t.Errorf("rule %d has priority %d", i, r.RulePriority)
		}
	}
	last := l.Policy.Rules[len(l.Policy.Rules)-1].Selection
	if want := []string{"cache-ci", "cache-ci-*", "cache-" + held, "cache-*"}; !slices.Equal(pats, want) || last.CountType != "imageCountMoreThan" || last.CountNumber != 2 {
		t.Errorf("the policy's patterns %v, last %+v; want %v, expiring beyond 2", pats, last, want)
	}
}

// TestPruneFaults: a 5xx in the middle of the deletions fails the prune
// and loses nothing kept; the next prune finishes the job. A registry
// that refuses DELETE gets one message saying what to do.
func TestPruneFaults(t *testing.T) {
	requireSandbox(t)
	p, via, direct := faulty(t)
	_, hashes := versions(t, direct, 4)
	dir := appProject(t, via)
	app := direct + "/app"
	p.Inject(faultproxy.Fault{Method: http.MethodDelete, Status: http.StatusMethodNotAllowed, Code: "UNSUPPORTED"})
	_, res := prune(t, dir, nil, "--keep", "1", "--keep-within", "0s", "--yes")
	if res.code == 0 || strings.Count(res.stderr, "does not allow deleting") != 1 || !strings.Contains(res.stderr, "storage.delete.enabled") {
		t.Errorf("a registry refusing DELETE: exit %d, stderr:\n%s", res.code, res.stderr)
	}
	p.Clear()

	// Images go last, after every cache and referrer: failing the
	// deletion of one image leaves the prune half done.
	img := strings.TrimPrefix(head(t, app+":"+hashes[1]), "sha256:")
	rule := p.Inject(faultproxy.Fault{Method: http.MethodDelete, Path: `/manifests/sha256:` + img + `$`, Status: http.StatusInternalServerError})
	reps, res := prune(t, dir, nil, "--keep", "1", "--keep-within", "0s", "--yes")
	if res.code == 0 || rule.Hits() == 0 || len(reps) != 1 || reps[0].Deleted == 0 || !strings.Contains(res.stderr, "run prune again") {
		t.Errorf("a 5xx halfway: exit %d, %d faulted, %+v\n%s", res.code, rule.Hits(), reps, res.stderr)
	}
	pulls(t, app+":"+hashes[3])
	pulls(t, app+":ci")
	p.Clear()
	reps, res = prune(t, dir, nil, "--keep", "1", "--keep-within", "0s", "--yes")
	if res.code != 0 {
		t.Fatalf("the prune after the faults: exit %d\n%s", res.code, res.stderr)
	}
	for i, h := range hashes {
		t.Logf("version %d: %s", i, h[:12])
	}
	for _, it := range reps[0].Items {
		if it.Kind == "image" {
			t.Logf("image %v: %s, created %s (%s)", it.Tags, it.Action, it.Created, it.Reason)
		}
	}
	prunedToNewest(t, app, hashes)
}

// TestPruneDuringBuild: a build that runs while a prune deletes (two
// processes) ends with a complete ci, whichever finishes first.
func TestPruneDuringBuild(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir, _ := versions(t, r, 4)
	writeFile(t, dir, "v.txt", "built during the prune of "+r)
	done := make(chan result, 1)
	go func() { done <- bkcache(t, dir, nil, "build", "--push", "--progress", "quiet") }()
	_, res := prune(t, dir, nil, "--keep", "0", "--keep-within", "0s", "--yes")
	built := <-done
	if built.code != 0 || res.code != 0 {
		t.Fatalf("build: exit %d\n%s\nprune: exit %d\n%s", built.code, built.stderr, res.code, res.stderr)
	}
	pulls(t, r+"/app:ci")
	if head(t, r+"/app:cache-ci") == "" {
		t.Error("cache-ci is gone")
	}
	// The prune kept what ci pointed at when it deleted; a second one,
	// with the build done, keeps ci's image too.
	if _, res := prune(t, dir, nil, "--keep", "0", "--keep-within", "0s", "--yes"); res.code != 0 {
		t.Fatalf("second prune: exit %d\n%s", res.code, res.stderr)
	}
	pulls(t, r+"/app:ci")
}

// TestBuildPrune: build --push --prune prunes the repositories of the
// services it built, with prune's default rules, which keep builds made
// minutes ago.
func TestBuildPrune(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir, _ := versions(t, r, 2)
	writeFile(t, dir, "v.txt", "pruned after "+r)
	res := bkcache(t, dir, nil, "build", "--push", "--prune", "--progress", "quiet")
	if res.code != 0 || !strings.Contains(res.stderr, "--prune: "+r+"/app: deleted 0 manifests") {
		t.Errorf("build --push --prune: exit %d\n%s", res.code, res.stderr)
	}
	if n := len(tagsOf(t, r+"/app")); n < 3*2+2 { // three hash and cache tags, ci, cache-ci
		t.Errorf("%d tags left after three builds; the default rules keep them all", n)
	}
}

// TestPruneInterrupted: SIGTERM while a prune deletes (each DELETE slowed
// so that the signal lands among them) leaves every kept image whole,
// and the next prune finishes the job.
func TestPruneInterrupted(t *testing.T) {
	requireSandbox(t)
	p, via, direct := faulty(t)
	_, hashes := versions(t, direct, 5)
	dir := appProject(t, via)
	app := direct + "/app"
	slow := p.Inject(faultproxy.Fault{Method: http.MethodDelete, Delay: 700 * time.Millisecond})
	cmd := exec.Command(sb.BkcacheBin(), "prune", "--keep", "1", "--keep-within", "0s", "--yes")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), sb.Env()...)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for slow.Hits() < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("prune exited 0 after SIGTERM, %d deletes begun:\n%s", slow.Hits(), out.String())
	}
	pulls(t, app+":"+hashes[4])
	pulls(t, app+":ci")
	p.Clear()
	if _, res := prune(t, dir, nil, "--keep", "1", "--keep-within", "0s", "--yes"); res.code != 0 {
		t.Fatalf("the prune after the interrupted one: exit %d\n%s", res.code, res.stderr)
	}
	prunedToNewest(t, app, hashes)
}
