package source

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
)

// dirFS is the base fsutil.FS under the filter: fsutil's own filter keeps
// BuildKit's include/exclude semantics exactly, while this base makes the
// walk cheap. fsutil's host FS lstats and lists xattrs of every entry one
// by one; dirFS lstats a directory's children in parallel and leaves
// xattrs out (they are not part of the hash), and opens files without
// registering them with the runtime poller. Walk follows filepath.WalkDir:
// lexical order, SkipDir and SkipAll, and fsutil's rule that a path that
// vanished mid-walk is skipped.
type dirFS struct {
	root    string
	rootfd  int // root held open (see holdRoot), or -1
	workers int
	ids     *identities // of the regular files lstat saw; nil: not recorded
	shared  *Listing    // the run's snapshot of root; nil: list afresh
	dirs    DirCache    // names of unchanged directories; nil: always read
	// ignored reports the directories that ignore rules leave out whole
	// (see ignoredDirs); nil: none known. The walk does not need it, since
	// the filter skips them; it keeps the read-ahead out of them.
	ignored func(rel string) bool
}

func newDirFS(root string, identities bool, shared *Listing) *dirFS {
	d := &dirFS{root: root, rootfd: -1, workers: runtime.GOMAXPROCS(0), shared: shared}
	switch {
	case shared != nil:
		d.ids = shared.ids
	case identities:
		d.ids = newIdentities()
	}
	d.holdRoot()
	return d
}

// list returns the children of rel, from the shared snapshot if there is
// one.
func (d *dirFS) list(rel string) ([]*entry, error) {
	if d.shared != nil {
		return d.shared.list(rel, d.readDir)
	}
	return d.readDir(rel)
}

func (d *dirFS) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	rel := filepath.Clean(target)
	if rel == "/" {
		rel = "."
	}
	ra := newReadAhead(d.list, d.ignored, d.workers)
	defer ra.close()
	var err error
	if rel == "." {
		err = d.walkDir(ctx, ra, rel, nil, fn)
	} else if e, lerr := d.lstat(rel); lerr != nil {
		err = d.call(ctx, fn, rel, nil, lerr)
	} else if e.IsDir() {
		err = d.walkDir(ctx, ra, rel, e, fn)
	} else {
		err = d.call(ctx, fn, rel, e, nil)
	}
	if errors.Is(err, fs.SkipDir) || errors.Is(err, fs.SkipAll) {
		return nil
	}
	return err
}

// call invokes fn as fsutil's host FS does: honouring cancellation, and
// turning a not-exist error into SkipDir.
func (d *dirFS) call(ctx context.Context, fn fs.WalkDirFunc, p string, e fs.DirEntry, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	err = fn(p, e, err)
	if err != nil && isNotExist(err) {
		return fs.SkipDir
	}
	return err
}

func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir)
}

func (d *dirFS) walkDir(ctx context.Context, ra *readAhead, rel string, e fs.DirEntry, fn fs.WalkDirFunc) error {
	if rel != "." {
		if err := d.call(ctx, fn, rel, e, nil); err != nil {
			if errors.Is(err, fs.SkipDir) {
				ra.skip(rel)
				return nil
			}
			return err
		}
	}
	children, err := ra.list(rel)
	if err != nil {
		// Unlike fsutil, report an unreadable root too: hashing it as an
		// empty tree would hash less than the build reads.
		if err := d.call(ctx, fn, rel, e, err); err != nil {
			if errors.Is(err, fs.SkipDir) {
				return nil
			}
			return err
		}
	}
	for _, c := range children {
		var err error
		if c.IsDir() {
			err = d.walkDir(ctx, ra, c.rel, c, fn)
		} else {
			err = d.call(ctx, fn, c.rel, c, nil) // a failed lstat surfaces from Info
		}
		if err != nil {
			if errors.Is(err, fs.SkipDir) {
				return nil // a file's SkipDir skips the rest of its directory
			}
			return err
		}
	}
	return nil
}

// statAll stats every child of a directory with stat, in parallel for
// large ones; a child that cannot be statted carries its error.
func (d *dirFS) statAll(rel string, names []string, stat func(p, name string) (*entry, error)) []*entry {
	out := make([]*entry, len(names))
	one := func(i int) {
		p := names[i]
		if rel != "." {
			p = filepath.Join(rel, names[i])
		}
		e, err := stat(p, names[i])
		if err != nil {
			e = &entry{rel: p, err: err}
		}
		out[i] = e
	}
	if len(names) < 16 || d.workers < 2 {
		for i := range names {
			one(i)
		}
		return out
	}
	var wg sync.WaitGroup
	chunk := (len(names) + d.workers - 1) / d.workers
	for start := 0; start < len(names); start += chunk {
		end := min(start+chunk, len(names))
		wg.Go(func() {
			for i := start; i < end; i++ {
				one(i)
			}
		})
	}
	wg.Wait()
	return out
}

// entry is an fs.DirEntry whose Info carries a *types.Stat, as fsutil's
// filter requires.
type entry struct {
	rel  string
	stat *types.Stat
	err  error
}

func (e *entry) Name() string { return filepath.Base(e.rel) }
func (e *entry) IsDir() bool  { return e.stat != nil && e.stat.IsDir() }
func (e *entry) Type() fs.FileMode {
	if e.stat == nil {
		return 0
	}
	return fs.FileMode(e.stat.Mode).Type()
}

func (e *entry) Info() (fs.FileInfo, error) {
	if e.err != nil {
		return nil, e.err
	}
	return &fsutil.StatInfo{Stat: e.stat}, nil
}
