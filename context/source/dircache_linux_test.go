package source

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// namesByIdentity is the smallest DirCache: names by directory and
// identity, counting the answers it gives.
type namesByIdentity struct {
	mu   sync.Mutex
	m    map[string]map[Identity][]string
	hits int
}

func (c *namesByIdentity) Names(rel string, id Identity) ([]string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[rel][id]
	if ok {
		c.hits++
	}
	return n, ok
}

func (c *namesByIdentity) StoreNames(rel string, id Identity, names []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m[rel] == nil {
		c.m[rel] = map[Identity][]string{}
	}
	c.m[rel][id] = names
}

// TestDirCacheFollowsIdentities: a walk with a directory cache takes the
// names of every directory whose identity is unchanged from the cache,
// the root's too, and lists again one that changed: a file added at the
// root or in a subdirectory is walked.
func TestDirCacheFollowsIdentities(t *testing.T) {
	dir := t.TempDir()
	sourcetest.Write(t, dir, map[string]string{"a": "a", "sub/b": "b"})
	// Old modification times: an entry added later moves them, however
	// coarse the file system's clock.
	old := time.Now().Add(-time.Hour)
	for _, d := range []string{dir, filepath.Join(dir, "sub")} {
		if err := os.Chtimes(d, old, old); err != nil {
			t.Fatal(err)
		}
	}
	cache := &namesByIdentity{m: map[string]map[Identity][]string{}}
	walkAll := func() []string {
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		s.Identities, s.Dirs = true, cache
		v, err := s.FS(nil)
		if err != nil {
			t.Fatal(err)
		}
		var seen []string
		err = v.Walk(context.Background(), "", func(p string, _ fs.DirEntry, err error) error {
			seen = append(seen, p)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return seen
	}
	walkAll()
	if got := walkAll(); cache.hits != 2 || !slices.Equal(got, []string{"a", "sub", "sub/b"}) {
		t.Fatalf("an unchanged tree: %d directories from the cache (want 2), walked %q", cache.hits, got)
	}
	for _, p := range []string{"c", "sub/d"} {
		if err := os.WriteFile(filepath.Join(dir, p), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := walkAll(); !slices.Equal(got, []string{"a", "c", "sub", "sub/b", "sub/d"}) {
		t.Errorf("after adding c and sub/d: walked %q", got)
	}
}
