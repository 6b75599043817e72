// Package statcache remembers the content digests of a source's files by
// their identity (size, modification and change times, inode, device,
// mode), so that hashing a context again reads only the files that
// changed. It is git's index applied to bkcache's hash: a file whose
// identity is unchanged is not read. It also remembers the names in each
// directory by the directory's identity, as git's untracked cache does,
// so that an unchanged directory is not listed again (its entries are
// still lstatted: a file's content can change without its directory).
//
// Like git, it must not trust a "racily clean" file: one written so close
// to when it was hashed that a later write could leave every timestamp
// as it was (file systems stamp times at a coarse granularity). Git
// compares each entry with the index file's own time; statcache is
// stricter and does not record a file (or directory) changed less than
// RacyWindow before the hashing began, so such a file is simply read again next
// time, and recorded once it has been quiet for long enough.
//
// The cache lives in the user's cache directory, one file per source
// directory. Whoever can write there can make bkcache hash wrong
// contents; it is created private to the user.
package statcache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/hash/tree"
	digest "github.com/opencontainers/go-digest"
)

// RacyWindow is how long a file must have been left alone, before the
// hashing that reads it began, for its digest to be recorded. Two seconds
// covers the coarsest common timestamp granularity (FAT's).
const RacyWindow = 2 * time.Second

// maxStale bounds how many entries not seen by the current run a cache
// keeps (files hashed by another service's narrower view, or deleted).
const maxStale = 100_000

// Store is a directory of caches, one per source directory.
type Store struct {
	dir string
	now func() time.Time

	mu     sync.Mutex
	caches map[string]*Cache
	notes  []string
}

// NewStore returns a Store keeping its caches in dir (created on Save).
func NewStore(dir string) *Store {
	return &Store{dir: dir, now: time.Now, caches: map[string]*Cache{}}
}

// NewMemoryStore returns a Store that neither reads nor writes cache
// files: digests are shared within this run only, so that services with a
// common context read each file once.
func NewMemoryStore() *Store {
	return NewStore("")
}

// DefaultDir is where bkcache keeps stat caches: $XDG_CACHE_HOME/bkcache/stat
// (os.UserCacheDir).
func DefaultDir() (string, error) {
	d, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(d, "bkcache", "stat"), nil
}

// For returns the cache of the source directory dir, loading it on first
// use. A cache that cannot be read or decoded starts empty: it only ever
// saves work. Its racy cut-off is the time of this first use, which must
// come before the walk of the source begins. A nil Store returns nil.
func (s *Store) For(dir string) *Cache {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.caches[dir]; ok {
		return c
	}
	c := &Cache{
		dir:     dir,
		trusted: s.now().Add(-RacyWindow).UnixNano(),
		entries: map[string]*remembered[Entry]{},
		dirs:    map[string]*remembered[Dir]{},
		fresh:   map[string]Entry{},
	}
	if s.dir == "" {
		s.caches[dir] = c
		return c
	}
	sum := sha256.Sum256([]byte(dir))
	c.file = filepath.Join(s.dir, hex.EncodeToString(sum[:16]))
	if data, err := os.ReadFile(c.file); err == nil {
		got, err := Decode(data)
		if err == nil && got.Dir != dir {
			err = fmt.Errorf("it is for %s", got.Dir)
		}
		if err != nil {
			// Saved over once this run has hashed the source.
			s.notes = append(s.notes, fmt.Sprintf("stat cache %s (for %s) discarded: %v; its files are read again", c.file, dir, err))
			c.dirty = true
		} else {
			c.entries, c.dirs = unseen(got.Files), unseen(got.Dirs)
		}
	}
	s.caches[dir] = c
	return c
}

// Notes returns one line for each cache file found unusable (corrupt,
// truncated, from another release) and discarded: worth telling, never
// an error, since a cache only ever saves work.
func (s *Store) Notes() []string {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.notes)
}

// Save writes every cache that learned or forgot something.
func (s *Store) Save() error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, c := range s.caches {
		if err := c.save(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.dir != "" {
		removeOrphans(s.dir, s.now())
	}
	return errors.Join(errs...)
}

// orphanAge is how old a temporary file must be before Save takes it for
// one left by a bkcache killed while writing, not one being written now.
const orphanAge = 10 * time.Minute

// removeOrphans removes the temporary files of saves that never finished.
func removeOrphans(dir string, now time.Time) {
	tmps, _ := filepath.Glob(filepath.Join(dir, tmpPrefix+"*"))
	for _, p := range tmps {
		if st, err := os.Lstat(p); err == nil && st.Mode().IsRegular() && now.Sub(st.ModTime()) > orphanAge {
			os.Remove(p)
		}
	}
}

// Entry is one remembered file.
type Entry struct {
	ID     source.Identity
	Digest [32]byte // BLAKE3 of the content
}

// Dir is one remembered directory: its identity when it was listed, and
// the names it then held, sorted and joined by NUL (which no name holds).
type Dir struct {
	ID    source.Identity
	Names string
}

const nameSep = "\x00"

// Cache is the cache of one source directory; it implements tree.Cache
// for its files and source.DirCache for its directories.
type Cache struct {
	file    string // "" for a memory-only cache
	dir     string
	trusted int64 // files changed at or after this (ns) are not recorded

	mu      sync.Mutex
	entries map[string]*remembered[Entry]
	dirs    map[string]*remembered[Dir]
	// fresh holds what this run read of files too recently changed to be
	// recorded: another service of the same run, hashing the same
	// source, reuses them instead of reading the file again. They are
	// never saved. (A file rewritten during the run without its identity
	// changing is as much a race for one service as for several.)
	fresh map[string]Entry
	dirty bool
}

// remembered is a recorded file or directory and whether this run met
// its path.
type remembered[T comparable] struct {
	v    T
	seen bool
}

// unseen is what a cache file holds, none of it met yet.
func unseen[T comparable](m map[string]T) map[string]*remembered[T] {
	out := make(map[string]*remembered[T], len(m))
	for p, v := range m {
		out[p] = &remembered[T]{v: v}
	}
	return out
}

// record keeps v for path in m, or, when it is not to be trusted, drops
// any earlier record of path; it reports whether m changed.
func record[T comparable](m map[string]*remembered[T], path string, v T, trust bool) bool {
	old, ok := m[path]
	switch {
	case !trust:
		delete(m, path)
		return ok
	case ok && old.v == v:
		old.seen = true
		return false
	}
	m[path] = &remembered[T]{v: v, seen: true}
	return true
}

// unmet counts the records of m this run did not meet.
func unmet[T comparable](m map[string]*remembered[T]) int {
	n := 0
	for _, r := range m {
		if !r.seen {
			n++
		}
	}
	return n
}

// values is what m holds, for the cache file.
func values[T comparable](m map[string]*remembered[T]) map[string]T {
	out := make(map[string]T, len(m))
	for p, r := range m {
		out[p] = r.v
	}
	return out
}

// trusts reports whether what had identity id changed long enough before
// this run began to be recorded (see RacyWindow).
func (c *Cache) trusts(id source.Identity) bool {
	return id.Mtime < c.trusted && id.Ctime < c.trusted
}

var (
	_ tree.Cache      = (*Cache)(nil)
	_ source.DirCache = (*Cache)(nil)
)

// Lookup returns the digest recorded for path when the file's identity is
// exactly the recorded one.
func (c *Cache) Lookup(path string, id source.Identity) (digest.Digest, bool) {
	c.mu.Lock()
	e, ok := c.entries[path]
	if ok {
		e.seen = true
	}
	f, isFresh := c.fresh[path]
	c.mu.Unlock()
	switch {
	case ok && e.v.ID == id:
		return tree.ContentDigest(e.v.Digest[:]), true
	case isFresh && f.ID == id:
		return tree.ContentDigest(f.Digest[:]), true
	}
	return "", false
}

// Store records the digest of path read from the file with identity id,
// unless the file changed too recently to be trusted, in which case any
// earlier entry for path is dropped.
func (c *Cache) Store(path string, id source.Identity, d digest.Digest) {
	raw, err := hex.DecodeString(d.Encoded())
	c.mu.Lock()
	defer c.mu.Unlock()
	valid := d.Algorithm() == tree.ContentAlgorithm && err == nil && len(raw) == 32
	e := Entry{ID: id}
	copy(e.Digest[:], raw)
	trust := valid && c.trusts(id)
	if record(c.entries, path, e, trust) {
		c.dirty = true
	}
	if valid && !trust {
		c.fresh[path] = e
	}
}

// Dirs returns c as the source's directory cache, or nil when c is kept
// in memory only: within one run the run's listing already lists each
// directory once.
func (c *Cache) Dirs() source.DirCache {
	if c == nil || c.file == "" {
		return nil
	}
	return c
}

// Names returns the names recorded for the directory rel when its
// identity is exactly the recorded one.
func (c *Cache) Names(rel string, id source.Identity) ([]string, bool) {
	c.mu.Lock()
	d, ok := c.dirs[rel]
	if ok {
		d.seen = true
	}
	c.mu.Unlock()
	if !ok || d.v.ID != id {
		return nil, false
	}
	if d.v.Names == "" {
		return []string{}, true
	}
	return strings.Split(d.v.Names, nameSep), true
}

// StoreNames records the names listed in the directory rel with identity
// id, unless it changed too recently to be trusted (an entry added in the
// same tick of a coarse clock would leave its times as they are), in
// which case any earlier record of rel is dropped.
func (c *Cache) StoreNames(rel string, id source.Identity, names []string) {
	d := Dir{ID: id, Names: strings.Join(names, nameSep)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if record(c.dirs, rel, d, c.trusts(id) && validNames(d.Names)) {
		c.dirty = true
	}
}

// tmpPrefix names a cache file being written; a rename makes it the cache.
const tmpPrefix = ".tmp-"

// save writes the cache when it changed, dropping entries this run did
// not see once there are too many of them, atomically (a concurrent
// bkcache reads the old or the new file, never a mix).
func (c *Cache) save() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if unmet(c.entries)+unmet(c.dirs) > maxStale {
		maps.DeleteFunc(c.entries, func(_ string, e *remembered[Entry]) bool { return !e.seen })
		maps.DeleteFunc(c.dirs, func(_ string, d *remembered[Dir]) bool { return !d.seen })
		c.dirty = true
	}
	if !c.dirty || c.file == "" {
		return nil
	}
	out := Contents{Dir: c.dir, Files: values(c.entries), Dirs: values(c.dirs)}
	if err := os.MkdirAll(filepath.Dir(c.file), 0o700); err != nil {
		return fmt.Errorf("stat cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(c.file), tmpPrefix+"*")
	if err != nil {
		return fmt.Errorf("stat cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(Encode(out))
	if err := errors.Join(err, tmp.Close()); err != nil {
		return fmt.Errorf("stat cache %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), c.file); err != nil {
		return fmt.Errorf("stat cache: %w", err)
	}
	c.dirty = false
	return nil
}
