package statcache

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/hash/tree"
	"golang.org/x/sys/unix"
)

func inode(t *testing.T, p string) uint64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Sys().(*syscall.Stat_t).Ino
}

// TestSaveWritesOnlyChanges: a cache is written when it learned
// something, or when the file it read was discarded; a run that only
// looked things up leaves the file as it was.
func TestSaveWritesOnlyChanges(t *testing.T) {
	dir := t.TempDir()
	old := time.Now().Add(-time.Hour).UnixNano()
	id := source.Identity{Size: 1, Mtime: old, Ctime: old}
	d := tree.ContentDigest(make([]byte, 32))
	s := NewStore(dir)
	c := s.For("/src")
	c.Store("f", id, d)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	first := inode(t, c.file)

	s = NewStore(dir)
	if got, ok := s.For("/src").Lookup("f", id); !ok || got != d {
		t.Fatalf("lookup after save: %s %v", got, ok)
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if inode(t, c.file) != first {
		t.Errorf("a run that learned nothing rewrote the cache")
	}

	s = NewStore(dir)
	s.For("/src").Store("g", id, d)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if inode(t, c.file) == first {
		t.Errorf("a run that learned a digest did not write it")
	}

	if err := os.WriteFile(c.file, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = NewStore(dir)
	s.For("/src")
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(c.file)
	if _, err := Decode(data); err != nil {
		t.Errorf("a discarded cache was left as it was: %v", err)
	}
}

// TestSaveFailures: each way a cache file cannot be written is an error
// naming the stat cache, and leaves no temporary file behind.
func TestSaveFailures(t *testing.T) {
	old := time.Now().Add(-time.Hour).UnixNano()
	id := source.Identity{Size: 1, Mtime: old, Ctime: old}
	dir := t.TempDir()
	s := NewStore(dir)
	c := s.For("/src")
	c.Store("f", id, tree.ContentDigest(make([]byte, 32)))
	// The cache's own name taken by a directory that is not empty: the
	// rename onto it fails.
	if err := os.MkdirAll(filepath.Join(c.file, "x"), 0o700); err != nil {
		t.Fatal(err)
	}
	err := s.Save()
	if err == nil || !strings.Contains(err.Error(), "stat cache") {
		t.Fatalf("rename onto a directory: %v, want an error naming the stat cache", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPrefix) {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if !c.dirty {
		t.Errorf("a failed save marked the cache written")
	}
}

// TestSaveCannotWrite: a cache directory that cannot be made, a
// temporary file that cannot be created there, and a write that fails
// (the file size limit, in a copy of the test binary) each fail the save
// with an error naming the stat cache and why, and leave the cache
// marked unwritten.
func TestSaveCannotWrite(t *testing.T) {
	if os.Getenv("BKCACHE_TEST_FSIZE") == "1" {
		saveFails(t, t.TempDir(), "file too large")
		return
	}
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Run("directory", func(t *testing.T) { saveFails(t, filepath.Join(blocker, "cache"), "mkdir") })
	// /proc/self exists, and no file can be created in it, root or not.
	t.Run("temporary file", func(t *testing.T) { saveFails(t, "/proc/self", "open /proc/self/"+tmpPrefix) })
	t.Run("write", func(t *testing.T) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSaveCannotWrite$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "BKCACHE_TEST_FSIZE=1", "GOCOVERDIR=")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("with a file size limit of 1 byte: %v\n%s", err, out)
		}
	})
}

// saveFails saves a changed cache into dir, under a file size limit of
// one byte when BKCACHE_TEST_FSIZE is set, and wants an error containing
// want.
func saveFails(t *testing.T, dir, want string) {
	t.Helper()
	old := time.Now().Add(-time.Hour).UnixNano()
	s := NewStore(dir)
	c := s.For("/src")
	c.Store("f", source.Identity{Size: 1, Mtime: old, Ctime: old}, tree.ContentDigest(make([]byte, 32)))
	if os.Getenv("BKCACHE_TEST_FSIZE") == "1" {
		var was unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &was); err != nil {
			t.Fatal(err)
		}
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: 1, Max: unix.RLIM_INFINITY}); err != nil {
			t.Fatal(err)
		}
		// Lifted before the binary exits: a test binary built with
		// coverage (go test -cover, gremlins) writes its counters then.
		t.Cleanup(func() { unix.Setrlimit(unix.RLIMIT_FSIZE, &was) })
	}
	err := s.Save()
	if err == nil || !strings.Contains(err.Error(), "stat cache") || !strings.Contains(err.Error(), want) {
		t.Fatalf("save into %s: %v, want an error naming the stat cache and %q", dir, err, want)
	}
	if !c.dirty {
		t.Errorf("a failed save marked the cache written")
	}
	if _, err := os.Stat(c.file); err == nil {
		t.Errorf("a failed save left %s", c.file)
	}
}
