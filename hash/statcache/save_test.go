package statcache

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/hash/tree"
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
