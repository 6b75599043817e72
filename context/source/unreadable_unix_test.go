//go:build unix

package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestUnreadableDirectory: a directory the user may not list, or whose
// entries the user may not look up, fails the walk naming it and why:
// never a directory that looks empty, whose files would then be missing
// from the hash.
func TestUnreadableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root lists directories whatever their mode: run this test
		// again, in a copy of the test binary, as nobody.
		sourcetest.AsNobody(t, "^TestUnreadableDirectory$")
		return
	}
	for _, tc := range []struct {
		name   string
		mode   os.FileMode
		want   string
		shared bool // through the run's shared listing
	}{
		{"not listable", 0o000, "open", false},
		{"listable, not searchable", 0o600, "lstat", false},
		{"not listable, shared listing", 0o000, "open", true},
		{"listable, not searchable, shared listing", 0o600, "lstat", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sourcetest.Write(t, dir, map[string]string{"a/x": "x", "locked/y": "y", "z": "z"})
			locked := filepath.Join(dir, "locked")
			if err := os.Chmod(locked, tc.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(locked, 0o755) })
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			if tc.shared {
				s.Listing = NewListings().For(s.Dir)
			}
			v, err := s.FS(nil)
			if err != nil {
				t.Fatal(err)
			}
			var seen []string
			err = v.Walk(context.Background(), "", func(p string, _ fs.DirEntry, err error) error {
				seen = append(seen, p)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("walked %q, error %v; want a %s error naming locked and why", seen, err, tc.want)
			}
		})
	}
}

// TestUnreadableDirectorySkipped: the directory walk under the filter
// honours a SkipDir returned for a directory it cannot list (as the
// filter's callback returns for one that vanished): the rest of the walk,
// the directory's later siblings too, and no error.
func TestUnreadableDirectorySkipped(t *testing.T) {
	if os.Geteuid() == 0 {
		sourcetest.AsNobody(t, "^TestUnreadableDirectorySkipped$")
		return
	}
	dir := t.TempDir()
	sourcetest.Write(t, dir, map[string]string{"a/x": "x", "locked/y": "y", "z": "z"})
	locked := filepath.Join(dir, "locked")
	if err := os.Chmod(locked, 0); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(locked, 0o755) })
	var seen []string
	err := newDirFS(dir, false, nil).Walk(context.Background(), "", func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return fs.SkipDir
		}
		seen = append(seen, p)
		return nil
	})
	if err != nil || !slices.Contains(seen, "z") {
		t.Fatalf("walked %q, error %v; want z after the skipped directory, no error", seen, err)
	}
}

// TestWalkCancelled: a walk whose context is cancelled stops with the
// context's error, not a partial tree that looks complete.
func TestWalkCancelled(t *testing.T) {
	dir := t.TempDir()
	sourcetest.Write(t, dir, map[string]string{"a/x": "x", "z": "z"})
	// The view, and the directory walk under its filter on its own.
	for _, w := range []interface {
		Walk(context.Context, string, fs.WalkDirFunc) error
	}{viewOf(t, dir), newDirFS(dir, false, nil)} {
		ctx, cancel := context.WithCancel(context.Background())
		var after []string
		err := w.Walk(ctx, "", func(p string, _ fs.DirEntry, err error) error {
			if ctx.Err() != nil {
				after = append(after, p)
			}
			cancel() // at the first entry
			return err
		})
		if !errors.Is(err, context.Canceled) || len(after) != 0 {
			t.Fatalf("%T: a cancelled walk: %v, visited %q after; want context.Canceled at once", w, err, after)
		}
	}
}

// TestEntryOfAFailedLstat: an entry whose lstat failed (it vanished
// after its directory was listed) has no type, and says why on Info.
func TestEntryOfAFailedLstat(t *testing.T) {
	e := &entry{rel: "gone", err: fs.ErrNotExist}
	if e.Type() != 0 || e.IsDir() {
		t.Errorf("type %v, dir %v", e.Type(), e.IsDir())
	}
	if _, err := e.Info(); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Info: %v", err)
	}
	var ls *Listings
	if ls.For("/x") != nil {
		t.Errorf("a nil Listings made a listing")
	}
	var ids *identities
	if _, ok := ids.get("x"); ok {
		t.Errorf("nil identities answered")
	}
}
