package inputs

import (
	"context"
	"slices"
	"strings"
	"sync"

	"github.com/bkcache/bkcache/context/source"
	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/hash/tree"
)

// shared is what the services of one run share when they read the same
// directories: one listing per directory (each directory listed and each
// file digested once), and the selections made of it.
//
// A service's selection is the union of what each of its paths selects
// on its own (fsutil's include patterns match a path when any of them
// does), so each path's part is made once per run, for every service
// whose Dockerfile copies it, and a service only merges its parts. The
// files' descriptions are shared the same way where the instructions
// that could have pulled them in are the same.
type shared struct {
	listings *source.Listings
	parts    memo[*part]
	files    memo[[]*File]
}

func newShared() *shared {
	return &shared{listings: source.NewListings()}
}

// memo makes each key's value once, for every caller that asks, at once
// or later.
type memo[V any] struct {
	mu sync.Mutex
	m  map[string]*memoCall[V]
}

type memoCall[V any] struct {
	done chan struct{}
	v    V
	err  error
}

func (c *memo[V]) do(key string, f func() (V, error)) (V, error) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*memoCall[V]{}
	}
	call, ok := c.m[key]
	if !ok {
		call = &memoCall[V]{done: make(chan struct{})}
		c.m[key] = call
	}
	c.mu.Unlock()
	if !ok {
		call.v, call.err = f()
		close(call.done)
	}
	<-call.done
	return call.v, call.err
}

// part is what one path selects of a source: its entries, sorted, with
// their digests.
type part struct {
	path    string // "" for the whole source
	entries []*tree.Entry
	// inside: every entry is path, below it or one of its parents
	// (none is a symlink's target elsewhere), so the instructions that
	// can reach the part are told by their paths alone (see reaching).
	inside bool

	once  sync.Once
	state *tree.State // the digest's state after entries, made on first use
}

// after returns the digest's state after pt's entries: a selection that
// starts with them (the part its first path selects, when no other part
// has an entry sorting among them) goes on from there.
func (pt *part) after() *tree.State {
	pt.once.Do(func() { pt.state = tree.StateAfter(pt.entries) })
	return pt.state
}

// selection returns the entries of s that use selects, their digest and
// their descriptions: the same as one filtered walk of s with all of
// use's paths, made of parts shared with the run's other services.
func (sh *shared) selection(ctx context.Context, s *source.Source, use *dockerfile.Use, opt Options) (*selected, error) {
	paths := use.Paths()
	if paths == nil {
		paths = []string{""}
	}
	var entries [][]*tree.Entry
	var files [][]*File
	var first *part
	for _, p := range paths {
		pt, err := sh.part(ctx, s, p, opt)
		if err != nil {
			return nil, err
		}
		if first == nil {
			first = pt
		}
		entries = append(entries, pt.entries)
		files = append(files, sh.describe(s, pt, use))
	}
	var skip func(string) bool
	if x := newExcluder(use); x != nil {
		skip = x.skip
	}
	sel := &selected{}
	sel.entries, sel.files = merge(entries, files, skip)
	sel.digest = tree.DigestAfter(first.after(), sel.entries)
	return sel, nil
}

// part returns the part of s that path selects, made on first use.
func (sh *shared) part(ctx context.Context, s *source.Source, path string, opt Options) (*part, error) {
	return sh.parts.do(sourceKey(s)+"\x00"+path, func() (*part, error) {
		entries, err := walkPart(ctx, *s, path, opt)
		return &part{path: path, entries: entries, inside: allInside(entries, path)}, err
	})
}

// sourceKey identifies a source by what decides its selections: its
// directory and its ignore rules.
func sourceKey(s *source.Source) string {
	return s.Dir + "\x00" + strings.Join(s.Excludes, "\x00")
}

func walkPart(ctx context.Context, s source.Source, path string, opt Options) ([]*tree.Entry, error) {
	topt := tree.Options{Workers: opt.Workers, Cache: opt.cacheFor(&s)}
	var follow []string
	if path != "" {
		follow = []string{path}
	}
	fsys, err := s.FS(follow)
	if err != nil {
		return nil, err
	}
	res, err := tree.Hash(ctx, fsys, topt)
	if err != nil {
		return nil, err
	}
	tree.Seal(res.Entries)
	return res.Entries, nil
}

// describe returns the descriptions of pt's entries as use attributes
// them, shared with every service whose instructions that could reach pt
// are the same.
func (sh *shared) describe(s *source.Source, pt *part, use *dockerfile.Use) []*File {
	narrow, ok := reaching(pt, use)
	if !ok {
		return describeFiles(pt.entries, use)
	}
	files, _ := sh.files.do(sourceKey(s)+"\x00"+pt.path+"\x00"+attributionKey(narrow), func() ([]*File, error) {
		return describeFiles(pt.entries, narrow), nil
	})
	return files
}

// reaching returns use narrowed to the patterns that could match an
// entry of pt, which attribute pt's entries exactly as use does. It
// reports false when that cannot be told: a wildcard, or a part with
// entries outside its path (a symlink's target).
func reaching(pt *part, use *dockerfile.Use) (*dockerfile.Use, bool) {
	if pt.path == "" || hasWildcard(pt.path) || !pt.inside {
		return nil, false
	}
	narrow := &dockerfile.Use{Whole: use.Whole, Widened: use.Widened, Reason: use.Reason}
	for _, p := range use.Patterns {
		switch {
		case p.Path == ".", hasWildcard(p.Path):
			return nil, false
		case within(p.Path, pt.path), within(pt.path, p.Path):
			narrow.Patterns = append(narrow.Patterns, p)
		}
	}
	return narrow, true
}

// allInside reports whether every entry is path, below it or one of its
// parents.
func allInside(entries []*tree.Entry, path string) bool {
	for _, e := range entries {
		if !within(e.Path, path) && !within(path, e.Path) {
			return false
		}
	}
	return true
}

// within reports whether p is dir or below it.
func within(p, dir string) bool {
	return strings.HasPrefix(p, dir) && (len(p) == len(dir) || p[len(dir)] == '/')
}

func hasWildcard(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// attributionKey is what decides how use attributes files.
func attributionKey(use *dockerfile.Use) string {
	var b strings.Builder
	if use.Whole {
		b.WriteString("whole\x00" + use.Reason)
	}
	for _, p := range use.Patterns {
		b.WriteString("\x00" + p.Path + "\x00" + attributionLabel(p))
	}
	return b.String()
}

// merge unites sorted entry lists, with their descriptions alongside,
// into one sorted list without repeats, leaving out the non-directories
// that skip reports.
func merge(entries [][]*tree.Entry, files [][]*File, skip func(string) bool) ([]*tree.Entry, []*File) {
	if len(entries) == 1 && skip == nil {
		return entries[0], files[0]
	}
	if skip == nil {
		if e, f, ok := concat(entries, files); ok {
			return e, f
		}
	}
	n := 0
	for _, l := range entries {
		n += len(l)
	}
	outE, outF := make([]*tree.Entry, 0, n), make([]*File, 0, n)
	at := make([]int, len(entries))
	for {
		best := -1
		for i, l := range entries {
			if at[i] < len(l) && (best < 0 || l[at[i]].Path < entries[best][at[best]].Path) {
				best = i
			}
		}
		if best < 0 {
			return outE, outF
		}
		e, f := entries[best][at[best]], files[best][at[best]]
		for i, l := range entries {
			if at[i] < len(l) && l[at[i]].Path == e.Path {
				at[i]++
			}
		}
		if skip != nil && e.Type != tree.TypeDir && skip(e.Path) {
			continue
		}
		outE, outF = append(outE, e), append(outF, f)
	}
}

// concat is merge for lists that do not overlap, as a service's parts
// mostly do not (lib/ and services/s1/src/): each list, taken in the
// order of its first entry, sorts wholly before the next, so they are
// appended. It reports false when two lists overlap.
func concat(entries [][]*tree.Entry, files [][]*File) ([]*tree.Entry, []*File, bool) {
	order := make([]int, 0, len(entries))
	n := 0
	for i, l := range entries {
		if len(l) > 0 {
			order = append(order, i)
			n += len(l)
		}
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(entries[a][0].Path, entries[b][0].Path) })
	for k := 1; k < len(order); k++ {
		prev, next := entries[order[k-1]], entries[order[k]]
		if prev[len(prev)-1].Path >= next[0].Path {
			return nil, nil, false
		}
	}
	outE, outF := make([]*tree.Entry, 0, n), make([]*File, 0, n)
	for _, i := range order {
		outE, outF = append(outE, entries[i]...), append(outF, files[i]...)
	}
	return outE, outF, true
}
