package tree

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/context/source/sourcetest"
	digest "github.com/opencontainers/go-digest"
)

// streaming is a source view without its batch reader: every file
// streams through Open.
type streaming struct{ *source.View }

func (streaming) SmallReader() *source.SmallReader { return nil }

// mapCache is a Cache that remembers every digest stored.
type mapCache struct {
	mu sync.Mutex
	m  map[string]digest.Digest
}

func (c *mapCache) Lookup(p string, _ source.Identity) (digest.Digest, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	d, ok := c.m[p]
	return d, ok
}

func (c *mapCache) Store(p string, _ source.Identity, d digest.Digest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[p] = d
}

func view(t *testing.T, dir string, identities bool) *source.View {
	t.Helper()
	s, err := source.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Identities = identities
	v, err := s.FS(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestBatchedReads checks that files read in batches digest exactly as
// files streamed do, across the sizes where the paths part, with and
// without a cache.
func TestBatchedReads(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"link": "->f000", "sub/link": "->../nowhere"}
	sizes := []int{0, 1, 1023, 1024, 1025, 16 << 10, source.SmallMax - 1, source.SmallMax, source.SmallMax + 1, 300 << 10}
	const n = 400 // enough that every worker gets past smallAfter and batches
	for i := range n {
		n := sizes[i%len(sizes)]
		files[fmt.Sprintf("d%d/f%03d", i%7, i)] = strings.Repeat(string(rune('a'+i%26)), n)
	}
	sourcetest.Write(t, dir, files)
	// Without batch readers everything below still runs, on the
	// streaming path they fall back to; only then does the test skip
	// (or, under CI, fail).
	if v := view(t, dir, false); v.SmallReader() == nil && runtime.GOOS == "linux" {
		defer sourcetest.Unavailable(t, sourcetest.NoIOURing)
	}

	want, err := Hash(context.Background(), streaming{view(t, dir, false)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 3} {
		got, err := Hash(context.Background(), view(t, dir, false), Options{Workers: workers})
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != want.Digest || got.Bytes != want.Bytes || !slices.EqualFunc(got.Entries, want.Entries, func(a, b *Entry) bool { return *a == *b }) {
			t.Fatalf("workers=%d: batched %s (%d bytes), streamed %s (%d bytes)", workers, got.Digest, got.Bytes, want.Digest, want.Bytes)
		}
	}

	// A cold cache learns every file, batched or not; a warm one answers
	// for all of them.
	cache := &mapCache{m: map[string]digest.Digest{}}
	for _, run := range []string{"cold", "warm"} {
		got, err := Hash(context.Background(), view(t, dir, true), Options{Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		if got.Digest != want.Digest {
			t.Fatalf("%s cache: %s, want %s", run, got.Digest, want.Digest)
		}
		if len(cache.m) != n {
			t.Fatalf("%s cache: holds %d files, want %d", run, len(cache.m), n)
		}
	}
}

// TestWarmHashTakesNoBuffer: a walk whose every file the cache answers
// reads nothing, so its workers take no read buffer: a warm run of 200
// services on one context made 600 workers, and allocating and zeroing
// their buffers was 13% of its CPU time.
func TestWarmHashTakesNoBuffer(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 20 {
		files[fmt.Sprintf("f%02d", i)] = strings.Repeat("x", 100<<10)
	}
	sourcetest.Write(t, dir, files)
	cache := &mapCache{m: map[string]digest.Digest{}}
	v := view(t, dir, true)
	want, err := Hash(context.Background(), v, Options{Cache: cache, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	const runs = 10
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		got, err := Hash(context.Background(), v, Options{Cache: cache, Workers: 4})
		if err != nil || got.Digest != want.Digest {
			t.Fatalf("warm hash: %v, %s; want %s", err, got.Digest, want.Digest)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / runs; per >= readBufSize {
		t.Errorf("a warm hash of 20 files allocated %d bytes; one read buffer is %d", per, readBufSize)
	}
}
