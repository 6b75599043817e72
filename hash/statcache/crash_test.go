//go:build unix

package statcache

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

const (
	crashSrcEnv   = "STATCACHE_CRASH_SRC"
	crashCacheEnv = "STATCACHE_CRASH_CACHE"
)

// TestCrashSafety runs a writer of the stat cache (this test binary again,
// as TestCrashHelper) that edits, hashes and saves in a loop, kills it
// with SIGKILL at random points, and after every kill checks that hashing
// through the cache it left gives exactly the digest of reading every
// file, and that the cache is used again afterwards.
func TestCrashSafety(t *testing.T) {
	files := map[string]string{}
	for i := range 2000 {
		files[fmt.Sprintf("d%d/f%03d", i%7, i)] = strings.Repeat("x", i%300)
	}
	src, cacheDir := sourcetest.Tree(t, files), t.TempDir()
	rng := rand.New(rand.NewPCG(1, 15))
	kills, midWrite := 60, 0
	for i := range kills {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashSrcEnv+"="+src, crashCacheEnv+"="+cacheDir, fmt.Sprintf("STATCACHE_CRASH_SEED=%d", i))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Let it save a few times, then kill it somewhere in its loop:
		// while it edits, hashes, encodes or writes.
		lines := bufio.NewScanner(out)
		for range rng.IntN(3) {
			lines.Scan()
		}
		time.Sleep(time.Duration(rng.IntN(20000)) * time.Microsecond)
		cmd.Process.Kill()
		cmd.Wait()
		if tmps, _ := filepath.Glob(filepath.Join(cacheDir, tmpPrefix+"*")); len(tmps) > 0 {
			midWrite++ // killed between creating and renaming its file
		}

		want, _ := hash(t, nil, src)
		got, _ := hash(t, later(cacheDir), src)
		if got != want {
			t.Fatalf("kill %d: through the cache %s, reading every file %s", i, got, want)
		}
		if _, reads := hash(t, later(cacheDir), src); reads != 0 {
			t.Fatalf("kill %d: the cache was not usable again: %d reads", i, reads)
		}
	}
	t.Logf("%d kills, %d of them while a save was being written", kills, midWrite)
}

// TestOrphansRemoved: the temporary file of a save that never finished
// goes once it is old enough not to be another run's save in progress.
func TestOrphansRemoved(t *testing.T) {
	dir := t.TempDir()
	young, old := filepath.Join(dir, tmpPrefix+"1"), filepath.Join(dir, tmpPrefix+"2")
	for _, p := range []string{young, old} {
		if err := os.WriteFile(p, []byte("partial"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-2 * orphanAge)
	os.Chtimes(old, then, then)
	NewStore(dir).Save()
	if _, err := os.Stat(old); err == nil {
		t.Error("an orphan older than orphanAge was kept")
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("a save in progress was removed: %v", err)
	}
}

// TestCrashHelper is TestCrashSafety's writer; it does nothing unless run
// by it. It edits one file, hashes the tree through the cache and saves,
// over and over, printing a line after each save.
func TestCrashHelper(t *testing.T) {
	src, cacheDir := os.Getenv(crashSrcEnv), os.Getenv(crashCacheEnv)
	if src == "" {
		t.Skip("run by TestCrashSafety")
	}
	var seed uint64
	fmt.Sscan(os.Getenv("STATCACHE_CRASH_SEED"), &seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 0; ; i++ {
		// An edit that keeps size and mtime: only ctime (and content)
		// tell it apart.
		ents, _ := filepath.Glob(filepath.Join(src, "d*", "f*"))
		p := ents[rng.IntN(len(ents))]
		b, _ := os.ReadFile(p)
		for j := range b {
			b[j] = byte('a' + rng.IntN(26))
		}
		edit(t, p, string(b))
		hash(t, later(cacheDir), src)
		fmt.Println("saved", i)
	}
}
