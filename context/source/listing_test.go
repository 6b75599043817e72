package source

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	digest "github.com/opencontainers/go-digest"
)

// TestListingSnapshot: the sources of one run that share a listing see
// the directory as its first walk found it, list each directory once
// (and an ignored one never), and see exactly what their own walks would
// see then.
func TestListingSnapshot(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"a/x": "x", "a/y": "y", "b/z": "z", "ign/q": "q"})
	ls := NewListings()
	open := func() *Source {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		s.Excludes = []string{"ign"}
		s.Listing = ls.For(s.Dir)
		return s
	}
	own := func(follow []string) []string {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		s.Excludes = []string{"ign"}
		return walk(t, s, follow)
	}
	first := open()
	if got, want := walk(t, first, nil), own(nil); !slices.Equal(got, want) {
		t.Fatalf("through the listing %v, own walk %v", got, want)
	}
	if got, want := walk(t, open(), []string{"a"}), own([]string{"a"}); !slices.Equal(got, want) {
		t.Fatalf("a through the listing %v, own walk %v", got, want)
	}
	if _, ok := first.Listing.dirs["ign"]; ok {
		t.Error("a directory .dockerignore excludes was listed (read ahead)")
	}
	listed := len(first.Listing.dirs)
	if err := os.WriteFile(filepath.Join(dir, "a", "new"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := walk(t, open(), []string{"a"})
	if slices.Contains(got, "a/new") {
		t.Errorf("a file made after the run listed a/ is in its snapshot: %v", got)
	}
	if n := len(first.Listing.dirs); n != listed {
		t.Errorf("walking again listed %d directories more", n-listed)
	}
	if ls.For(first.Dir) != first.Listing || ls.For(t.TempDir()) == first.Listing {
		t.Error("For does not give one listing per directory")
	}
}

// TestListingDigests: a digest stored for a file's identity is what the
// run's other walks get for it, and only for that identity.
func TestListingDigests(t *testing.T) {
	l := NewListings().For("/src")
	id := Identity{Size: 3, Mtime: 1, Ctime: 2, Ino: 4, Dev: 5, Mode: 0o644}
	d := digest.Digest("blake3:00")
	if _, ok := l.Lookup("f", id); ok {
		t.Fatal("a digest before any was stored")
	}
	l.Store("f", id, d)
	if got, ok := l.Lookup("f", id); !ok || got != d {
		t.Errorf("Lookup = %v, %v; want %v", got, ok, d)
	}
	other := id
	other.Ino++
	if _, ok := l.Lookup("f", other); ok {
		t.Error("a digest for another identity of the file")
	}
}
