package source

import (
	"sync"

	digest "github.com/opencontainers/go-digest"
)

// Listings holds one run's listings, one per source root, so that every
// source of the run that reads a directory shares one listing of it (see
// Listing). The zero value is not usable; a nil *Listings gives none.
type Listings struct {
	mu sync.Mutex
	m  map[string]*Listing
}

// NewListings returns an empty set of listings.
func NewListings() *Listings { return &Listings{m: map[string]*Listing{}} }

// For returns the listing of the directory root (absolute, symlinks
// resolved, as Source.Dir is), made on first use; nil for a nil
// Listings.
func (ls *Listings) For(root string) *Listing {
	if ls == nil {
		return nil
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	l := ls.m[root]
	if l == nil {
		l = &Listing{dirs: map[string]*listing{}, ids: newIdentities(), sums: map[string]sum{}}
		ls.m[root] = l
	}
	return l
}

// Listing is a snapshot of one directory tree, made as walks reach it:
// each directory is listed and its children lstatted at most once, by
// whichever walk gets there first, and every later walk reads the
// snapshot. A subtree no walk enters (an ignored node_modules) is never
// listed. It also remembers the digest of each regular file's content,
// made at most once for the file as the snapshot saw it.
//
// A Listing belongs to one run: it never notices a change made after it
// listed a directory, which is what makes every service of the run see
// the same files.
type Listing struct {
	mu   sync.Mutex
	dirs map[string]*listing // by relative path, OS separators
	ids  *identities
	sums map[string]sum // content digests, by slash-separated path
}

type sum struct {
	id Identity
	d  digest.Digest
}

// list returns the children of rel, reading them with read the first
// time any walk asks.
func (l *Listing) list(rel string, read func(string) ([]*entry, error)) ([]*entry, error) {
	l.mu.Lock()
	d, ok := l.dirs[rel]
	if !ok {
		d = &listing{done: make(chan struct{})}
		l.dirs[rel] = d
	}
	l.mu.Unlock()
	if !ok {
		d.children, d.err = read(rel)
		close(d.done)
	}
	<-d.done
	return d.children, d.err
}

// Lookup returns the digest made this run of the file at path (slash-
// separated) when it had identity id. It makes a Listing a tree.Cache.
func (l *Listing) Lookup(path string, id Identity) (digest.Digest, bool) {
	l.mu.Lock()
	s, ok := l.sums[path]
	l.mu.Unlock()
	return s.d, ok && s.id == id
}

// Store remembers the digest of the file at path with identity id.
// Unlike the stat cache, it records racily clean files too: within one
// run, every service is to see the content the first read saw.
func (l *Listing) Store(path string, id Identity, d digest.Digest) {
	l.mu.Lock()
	l.sums[path] = sum{id, d}
	l.mu.Unlock()
}
