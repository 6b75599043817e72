package statcache

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/hash/tree"
	digest "github.com/opencontainers/go-digest"
)

// TestDefaultDir: the caches live under the user's cache directory, and
// with none (no HOME, no XDG_CACHE_HOME) DefaultDir says so instead of
// answering a relative path.
func TestDefaultDir(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", "/var/cache/u")
	if d, err := DefaultDir(); err != nil || d != "/var/cache/u/bkcache/stat" {
		t.Errorf("DefaultDir = %q, %v", d, err)
	}
	t.Setenv("XDG_CACHE_HOME", "")
	t.Setenv("HOME", "")
	if d, err := DefaultDir(); err == nil {
		t.Errorf("DefaultDir without HOME = %q, want an error", d)
	}
}

// TestMemoryStoreTouchesNoFile: a memory store shares digests within the
// run and writes nothing, neither a cache nor a temporary file in the
// working directory, and removes nothing from it (not even what looks
// like an orphaned temporary file).
func TestMemoryStoreTouchesNoFile(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	old := time.Now().Add(-time.Hour)
	for _, p := range []string{tmpPrefix + "kept", tmpPrefix + "dir/x"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, old, old)
	}
	before := listing(t, wd)
	s := NewMemoryStore()
	c := s.For("/src")
	id := trustedID(1)
	d := tree.ContentDigest(make([]byte, 32))
	c.Store("f", id, d)
	c.StoreNames(".", id, []string{"f"})
	if got, ok := s.For("/src").Lookup("f", id); !ok || got != d {
		t.Errorf("within the run: %s %v, want the stored digest", got, ok)
	}
	if c.Dirs() != nil {
		t.Errorf("a memory cache serves directory listings")
	}
	if err := s.Save(); err != nil {
		t.Fatalf("Save of a memory store: %v", err)
	}
	if after := listing(t, wd); !slices.Equal(after, before) {
		t.Errorf("the working directory changed: %q, was %q", after, before)
	}
}

// TestNilStore: a nil Store (caching off) hands out nil caches, no notes,
// and saves nothing.
func TestNilStore(t *testing.T) {
	var s *Store
	if s.For("/src") != nil || s.Notes() != nil || s.Save() != nil {
		t.Errorf("a nil store did something")
	}
	if (*Cache)(nil).Dirs() != nil {
		t.Errorf("a nil cache serves directory listings")
	}
}

// TestOrphanedDirectoryKept: only regular files are taken for orphaned
// temporary files; a directory of that name is someone else's.
func TestOrphanedDirectoryKept(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, tmpPrefix+"d")
	if err := os.Mkdir(p, 0o700); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	os.Chtimes(p, old, old)
	if err := NewStore(dir).Save(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Errorf("an old directory named like a temporary file was removed: %v", err)
	}
}

// TestDirectoriesRoundTrip: a run that learned only directory listings
// saves them; an empty directory comes back with no names (not one empty
// name); a second save of what is already written leaves the file alone.
func TestDirectoriesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	id := trustedID(7)
	s := NewStore(dir)
	c := s.For("/src")
	c.StoreNames(".", id, []string{"a", "b"})
	c.StoreNames("empty", id, nil)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	first := inode(t, c.file)
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if inode(t, c.file) != first {
		t.Errorf("a second save with nothing new rewrote the cache")
	}
	again := NewStore(dir).For("/src").Dirs()
	if names, ok := again.Names(".", id); !ok || !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("names of .: %q %v", names, ok)
	}
	if names, ok := again.Names("empty", id); !ok || names == nil || len(names) != 0 {
		t.Errorf("names of an empty directory: %q %v, want none", names, ok)
	}
}

// TestMetRecordsOutliveTheStaleBound: once more than maxStale records
// went unmet, they are dropped, but never those this run looked up and
// found (a file or a directory it did not need to read again).
func TestMetRecordsOutliveTheStaleBound(t *testing.T) {
	dir := t.TempDir()
	id := trustedID(3)
	d := tree.ContentDigest(make([]byte, 32))
	s := NewStore(dir)
	c := s.For("/src")
	c.Store("hit", id, d)
	c.StoreNames("hitdir", id, []string{"x"})
	c.Store("stored", id, d)
	for i := range maxStale / 2 { // exactly maxStale unmet: all kept
		c.entries[fmt.Sprintf("f%06d", i)] = &remembered[Entry]{}
		c.dirs[fmt.Sprintf("d%06d", i)] = &remembered[Dir]{}
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	c = NewStore(dir).For("/src")
	if n := len(c.entries) + len(c.dirs); n != maxStale+3 {
		t.Fatalf("the first save kept %d records, want %d", n, maxStale+3)
	}
	c.entries["stale"] = &remembered[Entry]{} // one more: over the bound
	if _, ok := c.Lookup("hit", id); !ok {
		t.Fatal("lookup missed")
	}
	if _, ok := c.Names("hitdir", id); !ok {
		t.Fatal("names missed")
	}
	c.Store("stored", id, d) // stored again as it was, never looked up
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	again := NewStore(dir).For("/src")
	if _, ok := again.entries["hit"]; !ok {
		t.Errorf("a file found this run was dropped")
	}
	if _, ok := again.dirs["hitdir"]; !ok {
		t.Errorf("a directory found this run was dropped")
	}
	if _, ok := again.entries["stored"]; !ok {
		t.Errorf("a file stored again as it was was dropped")
	}
	if len(again.entries) != 2 || len(again.dirs) != 1 {
		t.Errorf("kept %d files and %d directories, want only the three met", len(again.entries), len(again.dirs))
	}
}

// TestDiscardNoteSaysWhy: the note on a discarded cache gives the
// decoder's reason, not another one.
func TestDiscardNoteSaysWhy(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(dir)
	c := s.For("/src")
	c.Store("f", trustedID(1), tree.ContentDigest(make([]byte, 32)))
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(c.file)
	os.WriteFile(c.file, flip(data, len(data)-1), 0o600)
	s = NewStore(dir)
	s.For("/src")
	if notes := s.Notes(); len(notes) != 1 || !strings.Contains(notes[0], "checksum mismatch") {
		t.Errorf("notes %q, want the checksum's mismatch", notes)
	}
}

// TestStoreRefusesWhatItCannotKeep: a digest of another algorithm is
// not handed out, not even within the run; names no directory can hold
// are not recorded, so that the file stays one Decode reads.
func TestStoreRefusesWhatItCannotKeep(t *testing.T) {
	dir := t.TempDir()
	s := NewStore(dir)
	c := s.For("/src")
	fresh := source.Identity{Size: 1, Mtime: time.Now().UnixNano(), Ctime: time.Now().UnixNano()}
	c.Store("f", fresh, digest.FromString("sha256, not the content algorithm"))
	if got, ok := c.Lookup("f", fresh); ok {
		t.Errorf("a digest of another algorithm handed out as %s", got)
	}
	c.StoreNames(".", trustedID(1), []string{"a/b"})
	c.StoreNames("ok", trustedID(1), []string{"a"})
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	s = NewStore(dir)
	if _, ok := s.For("/src").Dirs().Names("ok", trustedID(1)); !ok || len(s.Notes()) != 0 {
		t.Errorf("the saved cache did not read back: %q", s.Notes())
	}
}

// trustedID is an identity old enough to be recorded.
func trustedID(size int64) source.Identity {
	old := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	return source.Identity{Size: size, Mtime: old, Ctime: old, Ino: uint64(size), Mode: 0o100644}
}

// listing is every path under dir, sorted.
func listing(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
