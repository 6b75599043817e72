package tree

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/context/source/sourcetest"
	digest "github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"
	"github.com/zeebo/blake3"
)

func hashMap(t testing.TB, m fstest.MapFS) *Result {
	t.Helper()
	r, err := Hash(context.Background(), FromFS(m), Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func base() fstest.MapFS {
	return fstest.MapFS{
		"app/main.go":   {Data: []byte("package main\n"), Mode: 0o644},
		"app/run.sh":    {Data: []byte("#!/bin/sh\n"), Mode: 0o755},
		"app/link":      {Data: []byte("main.go"), Mode: fs.ModeSymlink | 0o777},
		"empty":         {Mode: fs.ModeDir | 0o755},
		"weird\nname":   {Data: []byte("x"), Mode: 0o600},
		"app/z/nested":  {Data: nil, Mode: 0o644},
		"app.txt":       {Data: []byte("sorts before app/"), Mode: 0o644},
		"app/setuid.sh": {Data: []byte("x"), Mode: 0o755 | fs.ModeSetuid},
	}
}

// goldens are the digests of base() under each Scheme, kept for every
// scheme ever published. An entry never changes: a tree digest that moves
// needs a new Scheme and a new entry, so no two encodings share a name.
var goldens = map[string]string{
	"bkcache/tree/v2": "sha256:73f62d5e7ca4d7fe1e013bfd4f47371cc876ab1fc29ca98a397ec2ae26ed7fdc",
}

// TestGolden pins the digest of a fixed tree under the current Scheme.
func TestGolden(t *testing.T) {
	want, ok := goldens[Scheme]
	if !ok {
		t.Fatalf("no golden digest for scheme %s: add its entry to goldens (%s)", Scheme, hashMap(t, base()).Digest)
	}
	if got := hashMap(t, base()).Digest; string(got) != want {
		t.Fatalf("tree digest changed under scheme %s: got %s want %s: a new encoding needs a new Scheme", Scheme, got, want)
	}
}

func TestWhatMoves(t *testing.T) {
	ref := hashMap(t, base()).Digest
	for _, tc := range []struct {
		name  string
		edit  func(m fstest.MapFS)
		moves bool
	}{
		{"content", func(m fstest.MapFS) { m["app/main.go"].Data = []byte("package x\n") }, true},
		{"exec bit", func(m fstest.MapFS) { m["app/main.go"].Mode = 0o755 }, true},
		{"setuid bit", func(m fstest.MapFS) { m["app/setuid.sh"].Mode = 0o755 }, true},
		{"symlink target", func(m fstest.MapFS) { m["app/link"].Data = []byte("run.sh") }, true},
		{"file becomes link", func(m fstest.MapFS) {
			m["app/run.sh"] = &fstest.MapFile{Data: []byte("#!/bin/sh\n"), Mode: fs.ModeSymlink | 0o777}
		}, true},
		{"rename", func(m fstest.MapFS) { m["app/main2.go"] = m["app/main.go"]; delete(m, "app/main.go") }, true},
		{"new empty dir", func(m fstest.MapFS) { m["other"] = &fstest.MapFile{Mode: fs.ModeDir | 0o755} }, true},
		{"dir mode", func(m fstest.MapFS) { m["empty"].Mode = fs.ModeDir | 0o700 }, true},
		{"setgid bit", func(m fstest.MapFS) { m["app/run.sh"].Mode |= fs.ModeSetgid }, true},
		{"sticky bit", func(m fstest.MapFS) { m["empty"].Mode |= fs.ModeSticky }, true},
		{"setuid for setgid", func(m fstest.MapFS) { m["app/setuid.sh"].Mode = 0o755 | fs.ModeSetgid }, true},
		{"group write bit", func(m fstest.MapFS) { m["app/main.go"].Mode = 0o664 }, true},
		{"other read bit", func(m fstest.MapFS) { m["app/main.go"].Mode = 0o640 }, true},
		{"file becomes fifo", func(m fstest.MapFS) { m["app/z/nested"].Mode = fs.ModeNamedPipe | 0o644 }, true},
		{"file becomes char device", func(m fstest.MapFS) { m["app/z/nested"].Mode = fs.ModeDevice | fs.ModeCharDevice | 0o644 }, true},
		{"file becomes block device", func(m fstest.MapFS) { m["app/z/nested"].Mode = fs.ModeDevice | 0o644 }, true},
		{"ownership is not hashed", func(m fstest.MapFS) { m["app/main.go"].Sys = &syscall.Stat_t{Uid: 1000, Gid: 1000} }, false},
		{"mtime", func(m fstest.MapFS) { m["app/main.go"].ModTime = time.Unix(12345, 0) }, false},
		{"nothing", func(m fstest.MapFS) {}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			tc.edit(m)
			got := hashMap(t, m).Digest
			if (got != ref) != tc.moves {
				t.Fatalf("digest moved=%v, want moved=%v", got != ref, tc.moves)
			}
		})
	}
}

// TestLongLinkTargets: a symlink target counts whole, however long: two
// targets that differ only past 255 bytes, or in length, hash apart.
func TestLongLinkTargets(t *testing.T) {
	digestWith := func(target string) digest.Digest {
		m := base()
		m["long"] = &fstest.MapFile{Data: []byte(target), Mode: fs.ModeSymlink | 0o777}
		return hashMap(t, m).Digest
	}
	seen := map[digest.Digest]string{}
	for _, n := range []int{255, 256, 257, 4000} {
		long := strings.Repeat("d/", n/2) + strings.Repeat("x", n%2)
		for _, target := range []string{long, long[:n-1] + "y", "y" + long[1:]} {
			d := digestWith(target)
			if other, ok := seen[d]; ok {
				t.Fatalf("targets of %d and %d bytes share digest %s", len(other), len(target), d)
			}
			seen[d] = target
		}
	}
}

func TestEntries(t *testing.T) {
	r := hashMap(t, base())
	var paths []string
	for _, e := range r.Entries {
		paths = append(paths, fmt.Sprintf("%s %s %o %s", e.Path, e.Type, e.Perm, e.Linkname))
	}
	want := []string{
		"app dir 555 ", // MapFS synthesizes parent dirs as 0555
		"app.txt file 644 ",
		"app/link symlink 777 main.go",
		"app/main.go file 644 ",
		"app/run.sh file 755 ",
		"app/setuid.sh file 4755 ",
		"app/z dir 555 ",
		"app/z/nested file 644 ",
		"empty dir 755 ",
		"weird\nname file 600 ",
	}
	if strings.Join(paths, "|") != strings.Join(want, "|") {
		t.Fatalf("entries:\n%q\nwant\n%q", paths, want)
	}
	if r.Bytes != int64(len("package main\n")+len("#!/bin/sh\n")+1+len("sorts before app/")+1) {
		t.Fatalf("bytes = %d", r.Bytes)
	}
}

// writeTree creates the same tree on disk in the given file order, with
// the given mtime, so that on-disk determinism can be checked.
func writeTree(t *testing.T, dir string, order []string, mtime time.Time) {
	t.Helper()
	files := map[string]string{"b/x.txt": "x", "a.txt": "a", "b/c/y": "y", "z": "zz"}
	for _, p := range order {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(files[p]), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("../a.txt", filepath.Join(dir, "b", "l")); err != nil {
		t.Fatal(err)
	}
}

func hashDir(t testing.TB, dir string, workers int) *Result {
	t.Helper()
	fsys, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Hash(context.Background(), fsys, Options{Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReproducible(t *testing.T) {
	d1, d2 := t.TempDir(), filepath.Join(t.TempDir(), "elsewhere", "deeper")
	writeTree(t, d1, []string{"a.txt", "b/x.txt", "b/c/y", "z"}, time.Unix(1, 0))
	writeTree(t, d2, []string{"z", "b/c/y", "b/x.txt", "a.txt"}, time.Now())
	r1, r2 := hashDir(t, d1, 1), hashDir(t, d2, 8)
	if r1.Digest != r2.Digest {
		t.Fatalf("same tree, different digests: %s vs %s", r1.Digest, r2.Digest)
	}
	// Through fsutil and through io/fs the same tree gives the same digest.
	if r3, _ := Hash(context.Background(), FromFS(os.DirFS(d1)), Options{}); r3.Digest != r1.Digest {
		t.Fatalf("io/fs view differs: %s vs %s", r3.Digest, r1.Digest)
	}
}

func TestOpenError(t *testing.T) {
	m := base()
	fsys := failOpen{FS: FromFS(m), path: "app/run.sh"}
	_, err := Hash(context.Background(), fsys, Options{})
	if err == nil || !strings.Contains(err.Error(), "app/run.sh") {
		t.Fatalf("want an error naming app/run.sh, got %v", err)
	}
}

type failOpen struct {
	FS
	path string
}

func (f failOpen) Open(p string) (io.ReadCloser, error) {
	if p == f.path {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
	}
	return f.FS.Open(p)
}

func digestOf(b []byte) digest.Digest {
	h := blake3.New()
	h.Write(b)
	return digest.NewDigestFromBytes(ContentAlgorithm, h.Sum(nil))
}

// TestContentDigest pins file digests to BLAKE3's published test vector
// (the empty input), so they stay comparable with b3sum.
func TestContentDigest(t *testing.T) {
	r := hashMap(t, fstest.MapFS{"empty": {Data: nil, Mode: 0o644}})
	const want = "blake3:af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
	if got := r.Entries[0].Digest; string(got) != want {
		t.Fatalf("digest of an empty file = %s, want %s", got, want)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Hash(ctx, FromFS(base()), Options{}); err == nil {
		t.Fatal("hash of a cancelled context succeeded")
	}
}

func FuzzDigestInjective(f *testing.F) {
	f.Add("a", "b", uint32(0o644), uint32(0o644), []byte("x"), []byte("x"))
	f.Fuzz(func(t *testing.T, p1, p2 string, m1, m2 uint32, c1, c2 []byte) {
		e1 := Entry{Path: p1, Type: TypeFile, Perm: m1 & 0o7777, Digest: digestOf(c1)}
		e2 := Entry{Path: p2, Type: TypeFile, Perm: m2 & 0o7777, Digest: digestOf(c2)}
		same := e1 == e2
		if (Digest([]*Entry{&e1}) == Digest([]*Entry{&e2})) != same {
			t.Fatalf("entries %+v and %+v: equal=%v but digests disagree", e1, e2, same)
		}
	})
}

// TestHugeFileStreams: a file far larger than the memory hashing it may
// use is streamed, never loaded (a sparse 1 GiB file; allocation, not
// time, is what is checked).
func TestHugeFileStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("reads 1 GiB")
	}
	dir := t.TempDir()
	const size = 1 << 30
	if err := os.WriteFile(filepath.Join(dir, "huge.bin"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filepath.Join(dir, "huge.bin"), size); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	r := hashDir(t, dir, 2)
	runtime.ReadMemStats(&after)
	if r.Bytes != size || r.Entries[0].Size != size {
		t.Fatalf("hashed %d bytes, want %d", r.Bytes, size)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("hashing a 1 GiB file allocated %d MiB: it is not streamed", alloc>>20)
	}
}

// TestDigestAfter: going on from the state after a list's first entries
// gives the digest of the whole list, and a state made after other
// entries (equal in content or not) is not used.
func TestDigestAfter(t *testing.T) {
	var all []*Entry
	for i := range 50 {
		e := &Entry{Path: fmt.Sprintf("d/f%02d", i), Type: TypeFile, Perm: 0o644, Size: int64(i), Digest: ContentDigest(make([]byte, 32))}
		if i%7 == 0 {
			e = &Entry{Path: fmt.Sprintf("d/f%02d", i), Type: TypeDir, Perm: 0o755}
		}
		all = append(all, e)
	}
	want := Digest(all)
	sealed := slices.Clone(all)
	Seal(sealed[:20])
	for _, n := range []int{0, 1, 20, 49, 50} {
		if got := DigestAfter(StateAfter(all[:n]), all); got != want {
			t.Errorf("after %d entries: %s, want %s", n, got, want)
		}
		if got := DigestAfter(StateAfter(sealed[:n]), sealed); got != want {
			t.Errorf("after %d sealed entries: %s, want %s", n, got, want)
		}
	}
	other := slices.Clone(all[:10])
	other[3] = &Entry{Path: "elsewhere", Type: TypeFile, Perm: 0o600}
	if got := DigestAfter(StateAfter(other), all); got != want {
		t.Errorf("a state after other entries was used: %s, want %s", got, want)
	}
	twin := make([]*Entry, 10)
	for i := range twin {
		c := *all[i]
		twin[i] = &c
	}
	if got := DigestAfter(StateAfter(twin), all); got != want {
		t.Errorf("a state after equal copies: %s, want %s", got, want)
	}
	if got := DigestAfter(StateAfter(all), all[:5]); got != Digest(all[:5]) {
		t.Errorf("a state longer than the list was used")
	}
}

// liar is a Cache that claims every file has one digest: a cache must
// only ever be consulted for files whose identity is known.
type liar struct{}

func (liar) Lookup(string, source.Identity) (digest.Digest, bool) {
	return ContentDigest(make([]byte, 32)), true
}
func (liar) Store(string, source.Identity, digest.Digest) {}

// TestCacheNeedsIdentities: a cache given with a file system that cannot
// identify its files (fsutil's own) is left unused: without identities
// every file would match whatever the cache holds.
func TestCacheNeedsIdentities(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"a": "1", "b/c": "2"})
	fsys, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Hash(context.Background(), fsys, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Hash(context.Background(), fsys, Options{Cache: liar{}})
	if err != nil || got.Digest != want.Digest {
		t.Errorf("with a cache and no identities: %v %v, want %s", got.Digest, err, want.Digest)
	}
}
