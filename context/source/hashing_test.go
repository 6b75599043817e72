package source_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/hash/tree"
)

// These tests read sources the way hash/tree does, through its hasher,
// where a fault of the batch reader or a race with the file system
// becomes a wrong digest or a silent success.

func openView(t *testing.T, dir string) *source.View {
	t.Helper()
	s, err := source.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.FS(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// streamed hides the view's batch reader: every file goes through Open.
type streamed struct{ *source.View }

func (streamed) SmallReader() *source.SmallReader { return nil }

func smallFiles(t *testing.T) string {
	files := map[string]string{}
	for i := range 300 {
		files[fmt.Sprintf("d%d/f%03d", i%5, i)] = strings.Repeat(string(rune('a'+i%26)), i*7)
	}
	return sourcetest.Tree(t, files)
}

// TestRingFailureMidHash: when the batch reader's ring fails after some
// batches (or at the first), the hash is still exactly the streamed one:
// every file of a failed batch is read again, none keeps an empty digest.
func TestRingFailureMidHash(t *testing.T) {
	dir := smallFiles(t)
	want, err := tree.Hash(context.Background(), streamed{openView(t, dir)}, tree.Options{})
	if err != nil {
		t.Fatal(err)
	}
	batching := openView(t, dir).SmallReader() != nil
	for _, after := range []int64{0, 1, 3} {
		t.Run(fmt.Sprintf("after %d batches", after), func(t *testing.T) {
			source.BreakRingsAfter(t, after)
			got, err := tree.Hash(context.Background(), openView(t, dir), tree.Options{Workers: 2})
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != want.Digest || got.Bytes != want.Bytes {
				t.Fatalf("ring broken after %d batches: %s (%d bytes), streamed %s (%d bytes)", after, got.Digest, got.Bytes, want.Digest, want.Bytes)
			}
			for i, e := range got.Entries {
				if *e != *want.Entries[i] {
					t.Fatalf("entry %+v, streamed %+v", *e, *want.Entries[i])
				}
			}
		})
	}
	if !batching && runtime.GOOS == "linux" {
		// The streaming path ran above; the batches did not.
		sourcetest.Unavailable(t, sourcetest.NoIOURing)
	}
}

// swapping is a view whose walk replaces one regular file by a symlink to
// another just after listing it and before the hasher can read it.
type swapping struct {
	*source.View
	dir, victim, target string
}

func (s swapping) Walk(ctx context.Context, p string, fn fs.WalkDirFunc) error {
	return s.View.Walk(ctx, p, func(path string, d fs.DirEntry, err error) error {
		if err == nil && filepath.ToSlash(path) == s.victim {
			full := filepath.Join(s.dir, path)
			if err := os.Remove(full); err != nil {
				return err
			}
			if err := os.Symlink(s.target, full); err != nil {
				return err
			}
		}
		return fn(path, d, err)
	})
}

// TestFileSwappedForALink: a file that turns into a symlink between the
// walk and the read is never followed (it could point anywhere, outside
// the context too): the hash fails naming it, in the streaming reader
// and in the batch reader alike.
func TestFileSwappedForALink(t *testing.T) {
	// As large as the file it replaces, so that no size check can stand
	// in for not following links.
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("S", 299*7)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			dir := smallFiles(t)
			// The last file in walk order: by then every worker batches.
			victim := "d4/f299"
			var fsys tree.FS = swapping{openView(t, dir), dir, victim, secret}
			if !batched {
				fsys = streamedSwap{fsys.(swapping)}
			}
			_, err := tree.Hash(context.Background(), fsys, tree.Options{Workers: 1})
			if err == nil {
				t.Fatal("hashed a file that had become a symlink by following it")
			}
			if !strings.Contains(err.Error(), "f299") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

type streamedSwap struct{ swapping }

func (streamedSwap) SmallReader() *source.SmallReader { return nil }

// shrinking is a view whose walk empties one file just after listing it.
type shrinking struct {
	*source.View
	dir, victim string
}

func (s shrinking) Walk(ctx context.Context, p string, fn fs.WalkDirFunc) error {
	return s.View.Walk(ctx, p, func(path string, d fs.DirEntry, err error) error {
		if err == nil && filepath.ToSlash(path) == s.victim {
			if err := os.Truncate(filepath.Join(s.dir, path), 0); err != nil {
				return err
			}
		}
		return fn(path, d, err)
	})
}

// TestFileShrunkAfterListing: a file cut short between the walk and the
// read is hashed as what it now holds (and recorded at that size), in
// the streaming and the batch reader, rather than read forever or
// padded to the size the walk saw.
func TestFileShrunkAfterListing(t *testing.T) {
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			dir := smallFiles(t)
			const victim = "d4/f299"
			var fsys tree.FS = shrinking{openView(t, dir), dir, victim}
			if !batched {
				fsys = streamedShrink{fsys.(shrinking)}
			}
			got, err := tree.Hash(context.Background(), fsys, tree.Options{Workers: 1})
			if err != nil {
				t.Fatal(err)
			}
			want, err := tree.Hash(context.Background(), streamed{openView(t, dir)}, tree.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if got.Digest != want.Digest {
				t.Fatalf("digest %s, the tree as it is now %s", got.Digest, want.Digest)
			}
		})
	}
}

type streamedShrink struct{ shrinking }

func (streamedShrink) SmallReader() *source.SmallReader { return nil }
