package source_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
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

// streamed hides a view's batch reader: every file goes through Open.
type streamed struct{ tree.FS }

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

// changing is a view whose walk changes one file just after listing it,
// before the hasher can read it.
type changing struct {
	*source.View
	dir    string
	change func(full string) error
}

func (c changing) Walk(ctx context.Context, p string, fn fs.WalkDirFunc) error {
	return c.View.Walk(ctx, p, func(path string, d fs.DirEntry, err error) error {
		if err == nil && filepath.ToSlash(path) == lastFile {
			if err := c.change(filepath.Join(c.dir, path)); err != nil {
				return err
			}
		}
		return fn(path, d, err)
	})
}

// lastFile is smallFiles' last file in walk order: by then every worker
// batches.
const lastFile, lastSize = "d4/f299", 299 * 7

// hashChanging hashes smallFiles with change applied to lastFile during
// the walk, through the batch reader or streaming only.
func hashChanging(t *testing.T, dir string, batched bool, change func(full string) error) (*tree.Result, error) {
	var fsys tree.FS = changing{openView(t, dir), dir, change}
	if !batched {
		fsys = streamed{fsys}
	}
	return tree.Hash(context.Background(), fsys, tree.Options{Workers: 1})
}

// TestFileSwappedForALink: a file that turns into a symlink between the
// walk and the read is never followed (it could point anywhere, outside
// the context too): the hash fails naming it, in the streaming reader
// and in the batch reader alike.
func TestFileSwappedForALink(t *testing.T) {
	// As large as the file it replaces, so that no size check can stand
	// in for not following links.
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(strings.Repeat("S", lastSize)), 0o600); err != nil {
		t.Fatal(err)
	}
	swap := func(full string) error {
		if err := os.Remove(full); err != nil {
			return err
		}
		return os.Symlink(secret, full)
	}
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			_, err := hashChanging(t, smallFiles(t), batched, swap)
			if err == nil {
				t.Fatal("hashed a file that had become a symlink by following it")
			}
			if !strings.Contains(err.Error(), path.Base(lastFile)) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

// TestFileShrunkAfterListing: a file cut short between the walk and the
// read is hashed as what it now holds (and recorded at that size), in
// the streaming and the batch reader, rather than read forever or
// padded to the size the walk saw.
func TestFileShrunkAfterListing(t *testing.T) {
	empty := func(full string) error { return os.Truncate(full, 0) }
	for _, batched := range []bool{false, true} {
		t.Run(fmt.Sprintf("batched=%v", batched), func(t *testing.T) {
			dir := smallFiles(t)
			got, err := hashChanging(t, dir, batched, empty)
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
