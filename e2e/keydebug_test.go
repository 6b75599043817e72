package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestStepsKeyDebug: a step BuildKit ran although nothing bkcache hashes
// changed (the sources checked out as another user: owners enter
// BuildKit's key, not the image) is explained from the daemon's
// cache-key debug information: the files and header fields that
// differed on the daemon that made the cache, the checksums on a fresh
// daemon, which cannot name files it never saw; and on a daemon without
// that information, or a debug address that does not answer, it says so.
func TestStepsKeyDebug(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: " + r + "/app\n    build: .\n",
		"Dockerfile":   "FROM busybox\nWORKDIR /app\nCOPY src/ src/\nRUN cat src/* > all\n",
		"src/a.txt":    "a\n",
		"src/b.txt":    "b\n",
	})
	owner := func(uid int) {
		t.Helper()
		if err := os.Chown(filepath.Join(dir, "src/a.txt"), uid, uid); err != nil {
			t.Fatal(err)
		}
	}
	d, debug := newDebugDaemon(t)
	mustBuild(t, dir, d.env(), "--push", "--debugaddr", debug)

	// Built again on the daemon that made the cache: it names the file.
	// (A forced build whose plan runs no step exports no cache of its
	// own: R:cache-H stays the cold build's, of files owned by root.)
	owner(1234)
	steps := mustBuild(t, dir, d.env(), "--push", "--force", "--debugaddr", debug)["app"].Steps
	wantMiss(t, steps, 3, "in the files it reads: src/a.txt: uid 1234 (was 0), gid 1234 (was 0)")
	wantMiss(t, steps, 4, "because line 3's does")

	// On a fresh daemon: the cache's files are not in its database.
	fresh, freshDebug := newDebugDaemon(t)
	owner(5678)
	steps = mustBuild(t, dir, fresh.env(), "--push", "--force", "--debugaddr", freshDebug)["app"].Steps
	wantMiss(t, steps, 3, "in the files it reads (BuildKit's checksum sha256:")
	wantMiss(t, steps, 3, "the cache was made on another daemon")

	// A daemon without the information, and a debug address where
	// nothing answers.
	plain := newDaemon(t)
	owner(1234)
	steps = mustBuild(t, dir, plain.env(), "--push", "--force")["app"].Steps
	wantMiss(t, steps, 3, "this daemon keeps no cache-key debug information")
	nowhere := "unix://" + filepath.Join(t.TempDir(), "debug.sock")
	owner(7777)
	steps = mustBuild(t, dir, plain.env(), "--push", "--force", "--debugaddr", nowhere)["app"].Steps
	wantMiss(t, steps, 3, "its cache-key debug information could not be read: buildkitd debug address "+nowhere)

	// --debugaddr names one buildkitd's.
	two := bkcache(t, dir, []string{"BUILDKIT_HOST=" + d.addr + "," + fresh.addr}, "build", "--debugaddr", debug)
	if two.code == 0 || !strings.Contains(two.stderr, "--debugaddr "+debug+" names the debug address of one buildkitd") {
		t.Errorf("--debugaddr with two nodes: exit %d\n%s", two.code, two.stderr)
	}
}

// wantMiss fails unless the step at line ran as an unexpected miss whose
// reason says want.
func wantMiss(t *testing.T, steps []step, line int, want string) {
	t.Helper()
	for _, s := range steps {
		if s.Line == line {
			if s.Status != "ran" || !s.Unexpected || !strings.Contains(s.Reason, want) {
				t.Errorf("step at line %d: %s, unexpected %v, reason %q; want an unexpected miss saying %q", line, s.Status, s.Unexpected, s.Reason, want)
			}
			return
		}
	}
	t.Errorf("no step at line %d in %+v", line, steps)
}
