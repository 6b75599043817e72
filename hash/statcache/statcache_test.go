package statcache

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/hash/tree"
)

// counting is a source view that counts the files read.
type counting struct {
	*source.View
	reads atomic.Int64
}

func (c *counting) Open(p string) (io.ReadCloser, error) {
	c.reads.Add(1)
	return c.View.Open(p)
}

// SmallReader hides the view's batch reader, so that every file read goes
// through Open and is counted.
func (c *counting) SmallReader() *source.SmallReader { return nil }

// hash hashes dir through store (nil: no cache) and returns the tree
// digest and how many files were read.
func hash(t *testing.T, store *Store, dir string) (string, int64) {
	t.Helper()
	d, reads, _ := hashCounting(t, store, dir)
	return d, reads
}

// hashCounting is hash that also returns how many directories' names
// came from the cache instead of a listing.
func hashCounting(t *testing.T, store *Store, dir string) (string, int64, int64) {
	t.Helper()
	s, err := source.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	opt := tree.Options{}
	dirs := &countingDirs{}
	if c := store.For(s.Dir); c != nil {
		opt.Cache = c
		s.Identities = true
		if c.Dirs() != nil {
			dirs.DirCache = c.Dirs()
			s.Dirs = dirs
		}
	}
	v, err := s.FS(nil)
	if err != nil {
		t.Fatal(err)
	}
	fsys := &counting{View: v}
	r, err := tree.Hash(context.Background(), fsys, opt)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Save(); err != nil {
		t.Fatal(err)
	}
	return r.Digest.String(), fsys.reads.Load(), dirs.hits.Load()
}

// countingDirs counts the directories whose names a cache gave.
type countingDirs struct {
	source.DirCache
	hits atomic.Int64
}

func (c *countingDirs) Names(rel string, id source.Identity) ([]string, bool) {
	names, ok := c.DirCache.Names(rel, id)
	if ok {
		c.hits.Add(1)
	}
	return names, ok
}

// later is a store whose clock runs an hour ahead: every file on disk
// has been quiet long enough to be recorded.
func later(dir string) *Store {
	s := NewStore(dir)
	s.now = func() time.Time { return time.Now().Add(time.Hour) }
	return s
}

var files = map[string]string{"a.txt": "alpha", "b/c.txt": "charlie", "b/d.bin": "delta!", "link": "->a.txt"}

func TestUnchangedFilesAreNotRead(t *testing.T) {
	src, cacheDir := sourcetest.Tree(t, files), t.TempDir()
	cold, reads := hash(t, later(cacheDir), src)
	if reads != 3 {
		t.Fatalf("cold: %d reads, want 3", reads)
	}
	warm, reads := hash(t, later(cacheDir), src)
	if warm != cold || reads != 0 {
		t.Fatalf("warm: digest %s (cold %s), %d reads, want 0", warm, cold, reads)
	}
	if plain, _ := hash(t, nil, src); plain != cold {
		t.Fatalf("the cache changed the digest: %s vs %s", cold, plain)
	}
}

// edit rewrites a file with same-size content and puts its modification
// time back, the change a stat cache is most likely to miss.
func edit(t *testing.T, path, content string) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func TestChangesAreSeen(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, src string)
		reads  int64
	}{
		{"same size, mtime restored (ctime moves)", func(t *testing.T, src string) { edit(t, filepath.Join(src, "a.txt"), "ALPHA") }, 1},
		{"replaced by rename (new inode)", func(t *testing.T, src string) {
			p := filepath.Join(src, "b", "c.txt")
			st, _ := os.Stat(p)
			tmp := filepath.Join(src, "b", ".new")
			os.WriteFile(tmp, []byte("CHARLIE"), 0o644)
			os.Chtimes(tmp, st.ModTime(), st.ModTime())
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
		}, 1},
		{"mode change", func(t *testing.T, src string) { os.Chmod(filepath.Join(src, "b", "d.bin"), 0o755) }, 1},
		{"file added", func(t *testing.T, src string) { os.WriteFile(filepath.Join(src, "new.txt"), []byte("n"), 0o644) }, 1},
		{"file removed", func(t *testing.T, src string) { os.Remove(filepath.Join(src, "a.txt")) }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, cacheDir := sourcetest.Tree(t, files), t.TempDir()
			before, _ := hash(t, later(cacheDir), src)
			tc.change(t, src)
			after, reads := hash(t, later(cacheDir), src)
			want, _ := hash(t, nil, src)
			if after != want {
				t.Fatalf("with the cache %s, without %s: a stale digest was used", after, want)
			}
			if after == before {
				t.Fatalf("the change did not move the digest")
			}
			if reads != tc.reads {
				t.Errorf("%d files read, want %d", reads, tc.reads)
			}
		})
	}
}

// TestRacilyCleanEditsWithinTheSameSecond: a file hashed right after it
// was written is not recorded, so an edit in the same second (same size,
// same mtime: the timestamp granularity hides it) is still read.
func TestRacilyCleanEditsWithinTheSameSecond(t *testing.T) {
	src, cacheDir := sourcetest.Tree(t, files), t.TempDir()
	for i, content := range []string{"one..", "two..", "three"} {
		edit(t, filepath.Join(src, "a.txt"), content) // sizes equal, mtime kept
		got, reads := hash(t, NewStore(cacheDir), src)
		want, _ := hash(t, nil, src)
		if got != want {
			t.Fatalf("edit %d: a racily clean entry was trusted: %s, want %s", i, got, want)
		}
		if reads != 3 {
			t.Errorf("edit %d: %d files read, want all 3 (all written just now)", i, reads)
		}
	}
}

// TestSharedWithinARun: services of one run hashing the same source read
// each file once, also files too fresh to be recorded, and also with the
// memory-only store of --no-stat-cache; what was too fresh is not saved.
func TestSharedWithinARun(t *testing.T) {
	src, cacheDir := sourcetest.Tree(t, files), t.TempDir()
	want, _ := hash(t, nil, src)
	for name, store := range map[string]*Store{"on disk": NewStore(cacheDir), "memory": NewMemoryStore()} {
		first, reads := hash(t, store, src)
		if first != want || reads != 3 {
			t.Fatalf("%s: first service %s (want %s), %d reads", name, first, want, reads)
		}
		second, reads := hash(t, store, src)
		if second != want || reads != 0 {
			t.Errorf("%s: second service of the run %s, %d reads, want 0", name, second, reads)
		}
	}
	// Every file was written just now: none was recorded for a next run.
	if _, reads := hash(t, NewStore(cacheDir), src); reads != 3 {
		t.Errorf("next run: %d reads, want 3 (racily clean files must not be saved)", reads)
	}
	// A change between two services of the run is still seen (ctime moves).
	store := NewMemoryStore()
	hash(t, store, src)
	edit(t, filepath.Join(src, "a.txt"), "ALPHA")
	got, reads := hash(t, store, src)
	if want, _ := hash(t, nil, src); got != want || reads != 1 {
		t.Errorf("after an edit within the run: %s (want %s), %d reads, want 1", got, want, reads)
	}
}

func TestCorruptCacheIsIgnored(t *testing.T) {
	src, cacheDir := sourcetest.Tree(t, files), t.TempDir()
	want, _ := hash(t, later(cacheDir), src)
	ents, _ := os.ReadDir(cacheDir)
	if len(ents) != 1 {
		t.Fatalf("cache files: %v", ents)
	}
	p := filepath.Join(cacheDir, ents[0].Name())
	data, _ := os.ReadFile(p)
	for name, damaged := range map[string][]byte{
		"truncated":       data[:len(data)-1],
		"a digest byte":   flip(data, len(data)-sumSize-1),
		"older release":   append([]byte("bkcstat1"), data[len(magic):]...),
		"not a cache":     []byte("{}"),
		"empty (a crash)": nil,
	} {
		os.WriteFile(p, damaged, 0o600)
		store := later(cacheDir)
		if got, reads := hash(t, store, src); got != want || reads != 3 {
			t.Fatalf("%s: %s (want %s), %d reads", name, got, want, reads)
		}
		notes := store.Notes()
		if len(notes) != 1 || !strings.Contains(notes[0], p) || !strings.Contains(notes[0], "discarded") || strings.Contains(notes[0], "\n") {
			t.Errorf("%s: want one line naming %s, got %q", name, p, notes)
		}
		// The run saved a good cache over it.
		if _, reads := hash(t, later(cacheDir), src); reads != 0 {
			t.Errorf("%s: the run after: %d reads, want 0", name, reads)
		}
	}
}

func flip(b []byte, i int) []byte {
	b = slices.Clone(b)
	b[i] ^= 1
	return b
}

func TestEncodeDecode(t *testing.T) {
	entries := map[string]Entry{
		"a":        {ID: source.Identity{Size: 1, Mtime: -5, Ctime: 1 << 62, Ino: 1<<64 - 1, Dev: 3, Mode: 0o100644}, Digest: [32]byte{1, 2, 3}},
		"dir/b c":  {ID: source.Identity{}, Digest: [32]byte{31: 9}},
		"weird\nä": {ID: source.Identity{Size: 1 << 40}},
	}
	dirs := map[string]Dir{
		".":     {ID: source.Identity{Mtime: 7, Mode: uint32(os.ModeDir | 0o755)}, Names: "a\x00dir\x00weird\nä"},
		"dir":   {ID: source.Identity{Ino: 1<<64 - 1}, Names: "b c"},
		"empty": {},
	}
	want := Contents{Dir: "/src", Files: entries, Dirs: dirs}
	got, err := Decode(Encode(want))
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip: %v %+v", err, got)
	}
	for _, bad := range []string{"", "bkcstat", "xkcstat2", magic + "\x01", magic + "\x00\x05", magic + "\x00\x01\x00"} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
		if _, err := Decode(seal([]byte(bad))); err == nil {
			t.Errorf("Decode(%q, sealed) accepted", bad)
		}
	}
}

// TestDamageNeverDecodes: a cache file with any one byte changed, or cut
// short anywhere, is refused, so a damaged file can never hand out the
// digest of other contents.
func TestDamageNeverDecodes(t *testing.T) {
	good := Encode(Contents{Dir: "/src", Files: map[string]Entry{
		"a.txt":   {ID: source.Identity{Size: 5, Mtime: 1, Ctime: 2, Ino: 3, Dev: 4, Mode: 0o100644}, Digest: [32]byte{1, 2, 3}},
		"b/c.txt": {ID: source.Identity{Size: 7}, Digest: [32]byte{31: 9}},
	}, Dirs: map[string]Dir{".": {ID: source.Identity{Mtime: 1}, Names: "a.txt\x00b"}, "b": {Names: "c.txt"}}})
	for i := range good {
		for _, bit := range []byte{0x01, 0x80} {
			bad := slices.Clone(good)
			bad[i] ^= bit
			if _, err := Decode(bad); err == nil {
				t.Fatalf("byte %d ^ %#x: damaged cache decoded", i, bit)
			}
		}
		if _, err := Decode(good[:i]); err == nil {
			t.Fatalf("cut at %d of %d bytes: decoded", i, len(good))
		}
	}
}

// seal appends the checksum Decode verifies, so that fuzzed bytes reach
// the parser behind it.
func seal(body []byte) []byte {
	sum := sha256.Sum256(body)
	return append(slices.Clip(body), sum[:]...)
}

// FuzzDecode: whatever decodes re-encodes to what decodes alike; the
// fuzzed bytes are sealed with a valid checksum (no fuzzer finds one).
func FuzzDecode(f *testing.F) {
	enc := Encode(Contents{Dir: "/src", Files: map[string]Entry{"a": {ID: source.Identity{Size: 3}}, "b": {}},
		Dirs: map[string]Dir{".": {Names: "a\x00b"}, "c": {ID: source.Identity{Mtime: 9}}}})
	f.Add(enc[:len(enc)-sumSize])
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Decode(seal(data))
		if err != nil {
			return
		}
		for p, d := range c.Dirs {
			if !validNames(d.Names) || !slices.IsSorted(strings.Split(d.Names, nameSep)) {
				t.Fatalf("directory %q decoded with names %q", p, d.Names)
			}
		}
		again, err := Decode(Encode(c))
		if err != nil || !reflect.DeepEqual(again, c) {
			t.Fatalf("re-encoding what decoded: %v", err)
		}
	})
}

// TestEachIdentityFieldCounts: a recorded digest is handed out only for
// exactly the identity it was recorded with; a change of any one field
// (and a size of one byte more, a time one nanosecond later) misses.
func TestEachIdentityFieldCounts(t *testing.T) {
	old := time.Now().Add(-time.Hour).UnixNano()
	id := source.Identity{Size: 10, Mtime: old, Ctime: old + 1, Ino: 42, Dev: 7, Mode: 0o100644}
	d := tree.ContentDigest(make([]byte, 32))
	for _, tc := range []struct {
		field string
		edit  func(*source.Identity)
	}{
		{"size", func(i *source.Identity) { i.Size++ }},
		{"mtime", func(i *source.Identity) { i.Mtime++ }},
		{"ctime", func(i *source.Identity) { i.Ctime++ }},
		{"inode", func(i *source.Identity) { i.Ino++ }},
		{"device", func(i *source.Identity) { i.Dev++ }},
		{"mode", func(i *source.Identity) { i.Mode |= 0o100 }},
	} {
		t.Run(tc.field, func(t *testing.T) {
			dir := t.TempDir()
			c := NewStore(dir).For("/src")
			c.Store("f", id, d)
			for name, c := range map[string]*Cache{"in memory": c, "saved": saved(t, dir, c)} {
				if got, ok := c.Lookup("f", id); !ok || got != d {
					t.Fatalf("%s: the recorded identity misses", name)
				}
				changed := id
				tc.edit(&changed)
				if _, ok := c.Lookup("f", changed); ok {
					t.Errorf("%s: a file whose %s changed was taken as unchanged", name, tc.field)
				}
			}
		})
	}
}

// saved writes c to dir and loads it again in a new Store.
func saved(t *testing.T, dir string, c *Cache) *Cache {
	t.Helper()
	if err := c.save(); err != nil {
		t.Fatal(err)
	}
	return NewStore(dir).For(c.dir)
}

// TestRacyByCtimeAlone: a file whose mtime is old but whose ctime is
// fresh (touch -d, tar -x, cp -p, git checkout of an old file) was
// changed just now all the same: it is not recorded.
func TestRacyByCtimeAlone(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	d := tree.ContentDigest(make([]byte, 32))
	for _, tc := range []struct {
		name         string
		mtime, ctime time.Time
		recorded     bool
	}{
		{"both old", now.Add(-time.Hour), now.Add(-time.Hour), true},
		{"old mtime, fresh ctime", now.Add(-time.Hour), now, false},
		{"fresh mtime, old ctime", now, now.Add(-time.Hour), false},
		{"ctime just inside the window", now.Add(-time.Hour), now.Add(-RacyWindow + 250*time.Millisecond), false}, // a margin for a loaded machine
		{"ctime just outside the window", now.Add(-time.Hour), now.Add(-RacyWindow - 100*time.Millisecond), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewStore(dir).For(filepath.Join("/src", tc.name))
			id := source.Identity{Size: 1, Mtime: tc.mtime.UnixNano(), Ctime: tc.ctime.UnixNano(), Ino: 1, Mode: 0o100644}
			c.Store("f", id, d)
			if _, ok := saved(t, dir, c).Lookup("f", id); ok != tc.recorded {
				t.Errorf("recorded for the next run = %v, want %v", ok, tc.recorded)
			}
		})
	}
}

// rawEntry encodes one entry as Encode does, with any mode.
func rawEntry(path string, mode uint64) []byte {
	b := appendString(nil, path)
	for range 3 {
		b = binary.AppendVarint(b, 1)
	}
	b = binary.AppendUvarint(binary.AppendUvarint(b, 1), 1)
	b = binary.AppendUvarint(b, mode)
	return append(b, make([]byte, 32)...)
}

// TestDecodeRefusesWhatEncodeNeverWrites: with a valid checksum, bodies
// no Encode writes are refused all the same: unsorted or repeated paths,
// an empty path, a mode wider than 32 bits. An empty directory name and
// no entries round-trip.
func TestDecodeRefusesWhatEncodeNeverWrites(t *testing.T) {
	body := func(entries ...[]byte) []byte {
		b := appendString([]byte(magic), "/src")
		b = binary.AppendUvarint(b, uint64(len(entries)))
		for _, e := range entries {
			b = append(b, e...)
		}
		return seal(binary.AppendUvarint(b, 0)) // no directories
	}
	withDir := func(path, names string) []byte {
		b := binary.AppendUvarint(appendString([]byte(magic), "/src"), 0)
		b = binary.AppendUvarint(b, 1)
		b = appendIdentity(appendString(b, path), source.Identity{})
		return seal(appendString(b, names))
	}
	if _, err := Decode(body(rawEntry("a", 0o100644), rawEntry("b", 0o100644))); err != nil {
		t.Fatalf("a well-formed body: %v", err)
	}
	if _, err := Decode(withDir(".", "a\x00b")); err != nil {
		t.Fatalf("a well-formed directory: %v", err)
	}
	oneShort := seal(binary.AppendUvarint(appendString([]byte(magic), "/src"), 1)) // a count of 1, no entry
	for name, data := range map[string][]byte{
		"unsorted":           body(rawEntry("b", 0o644), rawEntry("a", 0o644)),
		"repeated":           body(rawEntry("a", 0o644), rawEntry("a", 0o644)),
		"empty path":         body(rawEntry("", 0o644)),
		"33-bit mode":        body(rawEntry("a", 1<<32)),
		"count too high":     oneShort,
		"no directory count": seal(binary.AppendUvarint(appendString([]byte(magic), "/src"), 0)),
		"unsorted names":     withDir(".", "b\x00a"),
		"repeated name":      withDir(".", "a\x00a"),
		"empty name":         withDir(".", "a\x00\x00b"),
		"name with a slash":  withDir(".", "a/b"),
		"dot name":           withDir("x", ".."),
		"empty dir path":     withDir("", "a"),
	} {
		if _, err := Decode(data); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	for _, dir := range []string{"", "/src"} {
		got, err := Decode(Encode(Contents{Dir: dir}))
		if err != nil || got.Dir != dir || len(got.Files) != 0 || len(got.Dirs) != 0 {
			t.Errorf("Encode of %q with nothing in it does not round-trip: %+v %v", dir, got, err)
		}
	}
}

// TestCacheOfAnotherDirectory: a cache file that holds another source
// directory's entries (a name collision) is discarded, with a note.
func TestCacheOfAnotherDirectory(t *testing.T) {
	cacheDir := t.TempDir()
	a := NewStore(cacheDir).For("/a")
	a.Store("f", source.Identity{Size: 1}, tree.ContentDigest(make([]byte, 32)))
	if err := a.save(); err != nil {
		t.Fatal(err)
	}
	s := NewStore(cacheDir)
	b := s.For("/b")
	if err := os.Rename(a.file, b.file); err != nil {
		t.Fatal(err)
	}
	s = NewStore(cacheDir)
	if _, ok := s.For("/b").Lookup("f", source.Identity{Size: 1}); ok {
		t.Fatal("/a's entry was handed out for /b")
	}
	if notes := s.Notes(); len(notes) != 1 || !strings.Contains(notes[0], "it is for /a") {
		t.Errorf("notes = %q", notes)
	}
}

// TestSaveReportsErrors: a cache that cannot be written is an error
// (which bkcache prints as a warning), not silence.
func TestSaveReportsErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	s := NewStore(filepath.Join(file, "stat")) // under a regular file
	s.For("/src").Store("f", source.Identity{Size: 1}, tree.ContentDigest(make([]byte, 32)))
	if err := s.Save(); err == nil {
		t.Fatal("no error saving under a regular file")
	}
}

// TestRacyCutoffIsExclusive: a file changed exactly at the cut-off (the
// run's start less RacyWindow) is as racy as one changed later.
func TestRacyCutoffIsExclusive(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	cutoff := start.Add(-RacyWindow).UnixNano()
	for name, id := range map[string]source.Identity{
		"mtime at the cut-off": {Size: 1, Mtime: cutoff, Ctime: cutoff - 1},
		"ctime at the cut-off": {Size: 1, Mtime: cutoff - 1, Ctime: cutoff},
	} {
		s := NewStore(t.TempDir())
		s.now = func() time.Time { return start }
		c := s.For("/src")
		c.Store("f", id, tree.ContentDigest(make([]byte, 32)))
		if _, ok := c.entries["f"]; ok {
			t.Errorf("%s: recorded", name)
		}
	}
}

// TestStaleEntriesBounded: entries no run met are kept up to maxStale,
// and dropped once there are more.
func TestStaleEntriesBounded(t *testing.T) {
	for _, tc := range []struct {
		stale int
		kept  bool
	}{{maxStale, true}, {maxStale + 1, false}} {
		dir := t.TempDir()
		c := NewStore(dir).For("/src")
		for i := range tc.stale {
			c.entries[fmt.Sprintf("f%06d", i)] = &remembered[Entry]{v: Entry{ID: source.Identity{Size: 1}}}
		}
		c.Store("seen", source.Identity{Size: 2}, tree.ContentDigest(make([]byte, 32)))
		if err := c.save(); err != nil {
			t.Fatal(err)
		}
		again := NewStore(dir).For("/src")
		if _, ok := again.entries["f000000"]; ok != tc.kept {
			t.Errorf("%d stale entries: kept = %v, want %v", tc.stale, ok, tc.kept)
		}
		if _, ok := again.entries["seen"]; !ok {
			t.Errorf("%d stale entries: the entry this run saw was dropped", tc.stale)
		}
	}
}

// restoreTimes runs change and puts the directory's modification time
// back, so that only its change time tells that an entry came or went.
func restoreTimes(t *testing.T, dir string, change func()) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	change()
	if err := os.Chtimes(dir, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
}

// TestDirectoryShortcut: a directory whose identity is unchanged is not
// listed again, and an entry added, removed or renamed in one that looks
// unchanged (its modification time put back), or a file changed in one
// within the racy window, is seen all the same.
func TestDirectoryShortcut(t *testing.T) {
	write := func(p, content string) {
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, src string)
		hits   int64 // directories whose names came from the cache after it
	}{
		{"nothing changed", func(*testing.T, string) {}, 2},
		{"file added", func(t *testing.T, src string) {
			b := filepath.Join(src, "b")
			restoreTimes(t, b, func() { write(filepath.Join(b, "e.txt"), "echo") })
		}, 1},
		{"file removed", func(t *testing.T, src string) {
			b := filepath.Join(src, "b")
			restoreTimes(t, b, func() { os.Remove(filepath.Join(b, "d.bin")) })
		}, 1},
		{"file renamed", func(t *testing.T, src string) {
			b := filepath.Join(src, "b")
			restoreTimes(t, b, func() { os.Rename(filepath.Join(b, "c.txt"), filepath.Join(b, "e.txt")) })
		}, 1},
		{"directory added at the root", func(t *testing.T, src string) {
			restoreTimes(t, src, func() { os.Mkdir(filepath.Join(src, "n"), 0o755) })
		}, 1},
		{"file changed within the racy window", func(t *testing.T, src string) {
			edit(t, filepath.Join(src, "b", "c.txt"), "CHARLIE") // same size, mtime kept
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, cacheDir := sourcetest.Tree(t, files), t.TempDir()
			before, _, _ := hashCounting(t, later(cacheDir), src)
			tc.change(t, src)
			// The real clock: what changed just now is racily clean.
			got, _, hits := hashCounting(t, NewStore(cacheDir), src)
			want, _ := hash(t, nil, src)
			if got != want {
				t.Fatalf("with the cache %s, without %s: a stale listing was used", got, want)
			}
			if tc.name != "nothing changed" && got == before {
				t.Fatal("the change did not move the digest")
			}
			if hits != tc.hits {
				t.Errorf("%d directories taken from the cache, want %d", hits, tc.hits)
			}
		})
	}
}

// TestDirectoryRacyWindow: a directory changed less than RacyWindow
// before the hashing began is not recorded, so a second change in the
// same tick of a coarse clock cannot hide behind its record.
func TestDirectoryRacyWindow(t *testing.T) {
	c := NewStore(t.TempDir()).For("/src")
	fresh := source.Identity{Mtime: c.trusted, Ctime: c.trusted - 1, Mode: uint32(os.ModeDir)}
	quiet := source.Identity{Mtime: c.trusted - 1, Ctime: c.trusted - 1, Mode: uint32(os.ModeDir)}
	byCtime := source.Identity{Mtime: c.trusted - 1, Ctime: c.trusted, Mode: uint32(os.ModeDir)}
	c.StoreNames("a", quiet, []string{"x"})
	if names, ok := c.Names("a", quiet); !ok || !slices.Equal(names, []string{"x"}) {
		t.Fatalf("a quiet directory: %q %v", names, ok)
	}
	for _, id := range []source.Identity{fresh, byCtime} {
		c.StoreNames("a", id, []string{"x", "y"})
		if names, ok := c.Names("a", id); ok {
			t.Errorf("a directory changed at %d/%d (cut-off %d) was recorded: %q", id.Mtime, id.Ctime, c.trusted, names)
		}
		if _, ok := c.Names("a", quiet); ok {
			t.Error("the record of a directory was kept after a racy listing of it")
		}
		c.StoreNames("a", quiet, []string{"x"})
	}
	if _, ok := c.Names("a", source.Identity{Mtime: quiet.Mtime, Ctime: quiet.Ctime, Mode: uint32(os.ModeDir), Ino: 9}); ok {
		t.Error("names given for a directory of another inode")
	}
}

// TestDecodeSaysWhy: each way a file can be unusable gets its own
// reason, as the note that discards it prints: another release's file,
// not a cache at all, too short for its checksum, a checksum that does
// not match, and, behind a valid checksum, the record that is wrong. A
// count larger than the input could hold is refused before anything is
// allocated for it.
func TestDecodeSaysWhy(t *testing.T) {
	head := func() []byte { return appendString([]byte(magic), "/src") }
	files := func(n uint64, entries ...[]byte) []byte {
		b := binary.AppendUvarint(head(), n)
		for _, e := range entries {
			b = append(b, e...)
		}
		return b
	}
	noDirs := func(b []byte) []byte { return binary.AppendUvarint(b, 0) }
	good := Encode(Contents{Dir: "/src", Files: map[string]Entry{"a": {}}})
	wide := source.Identity{Size: 1 << 40, Mtime: 1 << 40, Ctime: 1 << 40} // 18 bytes of varints
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"an older release's file", append([]byte("bkcstat2"), good[len(magic):]...), "written by another bkcache release"},
		{"not a cache", []byte("#!/bin/sh\nexit 0\n" + strings.Repeat("x", 64)), "not a bkcache stat cache"},
		{"shorter than a checksum", []byte(magic + "short"), "truncated"},
		{"a checksum that does not match", append(slices.Clone(good[:len(good)-1]), good[len(good)-1]^1), "checksum mismatch"},
		{"trailing bytes", seal(append(slices.Clone(good[:len(good)-sumSize]), 0, 0, 0)), "3 trailing bytes"},
		{"a count no input could hold", seal(files(1 << 62)), "bad entry count"},
		{"a path repeated", seal(noDirs(files(2, rawEntry("a", 0o644), rawEntry("a", 0o644)))), "entry 1"},
		{"no directory count", seal(files(0)), "bad directory count"},
		{"a length cut off in a varint", seal(append([]byte(magic), 0x80)), "bad entry count"},
		{"a varint too long", seal(files(1, appendString(nil, "a"), bytes.Repeat([]byte{0xff}, 39))), "entry 0"},
		{"a digest cut short", seal(files(1, appendIdentity(appendString(nil, "a"), wide), make([]byte, 20))), "entry 0"},
		{"a 33-bit mode", seal(noDirs(files(1, rawEntry("a", 1<<32)))), "entry 0"},
		{"a directory named '.' inside", seal(append(files(0), dirRecord(".", ".")...)), "directory 0"},
		{"a list of names that starts empty", seal(append(files(0), dirRecord(".", "\x00a")...)), "directory 0"},
		{"a length too long for 64 bits", seal(append([]byte(magic), bytes.Repeat([]byte{0xff}, 11)...)), "bad entry count"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.data)
			if !errors.Is(err, errCorrupt) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode: %v, want %q", err, tc.want)
			}
		})
	}
}

// dirRecord encodes a directory count of one and that directory.
func dirRecord(path, names string) []byte {
	b := binary.AppendUvarint(nil, 1)
	b = appendIdentity(appendString(b, path), source.Identity{})
	return appendString(b, names)
}
