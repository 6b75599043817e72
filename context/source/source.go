// Package source owns local build sources: a directory that a build reads
// (the build context or a local additional context) together with its
// .dockerignore rules, exposed as the fsutil.FS that BuildKit itself would
// transfer.
package source

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tonistiigi/fsutil"
)

// Source is a local directory with its ignore rules.
type Source struct {
	Dir        string   // absolute, symlinks resolved
	IgnoreFile string   // absolute path of the ignore file used; "" if none
	Excludes   []string // patterns read from IgnoreFile

	// Identities makes the walks of views record the identity of each
	// regular file, for View.Identity (what the stat cache compares).
	// Recording costs a map insertion per file, so it is off unless a
	// cache will ask.
	Identities bool

	// Listing, when set, is the run's snapshot of Dir that views walk
	// instead of the directory itself, shared with the run's other
	// sources of Dir. Identities are then always recorded.
	Listing *Listing

	// Dirs, when set, gives the names in directories whose identity is
	// unchanged since they were last listed, and learns the others
	// (Linux only; elsewhere directories are always listed).
	Dirs DirCache
}

// ErrNotDir reports a source path that exists but is not a directory.
var ErrNotDir = errors.New("not a directory")

// Open resolves dir and reads the first of ignoreFiles that exists, as
// BuildKit's frontend does (for the main context: the Dockerfile's own
// `<Dockerfile>.dockerignore`, then `.dockerignore` at the context root).
// Relative ignore file names are taken within dir.
func Open(dir string, ignoreFiles ...string) (*Source, error) {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	st, err := stat(resolved)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: ErrNotDir}
	}
	s := &Source{Dir: resolved}
	for _, name := range ignoreFiles {
		// An ignore file is read where BuildKit reads it: the
		// context's own inside the context, <Dockerfile>.dockerignore
		// beside the Dockerfile; a link never leads out of either.
		root, rel := resolved, name
		if filepath.IsAbs(name) {
			root, rel = filepath.Dir(name), filepath.Base(name)
		}
		name = filepath.Join(root, rel)
		b, err := ReadFile(root, rel)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading ignore file %s: %w", name, err)
		}
		s.Excludes, err = ignorefile.ReadAll(bytes.NewReader(b))
		if err == nil {
			_, err = patternmatcher.New(s.Excludes)
		}
		if err != nil {
			return nil, fmt.Errorf("parsing ignore file %s: %w", name, err)
		}
		s.IgnoreFile = name
		break
	}
	return s, nil
}

// ignoredDirs returns what reports the directories that the ignore rules
// excludes leave out with all they hold, or nil if that cannot be told
// cheaply: with an exception ("!pattern"), something below an excluded
// directory may be let back in. Only the read-ahead asks, so a wrong
// answer costs time, never a file: a package manager's directory of
// 200,000 files that .dockerignore excludes is not listed at all.
func ignoredDirs(excludes []string) func(rel string) bool {
	if len(excludes) == 0 || slices.ContainsFunc(excludes, func(p string) bool { return strings.HasPrefix(p, "!") }) {
		return nil
	}
	m, err := patternmatcher.New(excludes)
	if err != nil {
		return nil
	}
	return func(rel string) bool {
		ok, err := m.MatchesOrParentMatches(filepath.ToSlash(rel))
		return ok && err == nil
	}
}

// FS returns the source as BuildKit's file sync would send it for a
// build that asks for followPaths (nil for all of it): ignored paths
// left out, symlinks named in followPaths resolved within the source.
func (s *Source) FS(followPaths []string) (*View, error) {
	base := newDirFS(s.Dir, s.Identities, s.Listing)
	base.dirs = s.Dirs
	base.ignored = ignoredDirs(s.Excludes)
	fsys, err := fsutil.NewFilterFS(base, &fsutil.FilterOpt{
		ExcludePatterns: s.Excludes,
		FollowPaths:     followPaths,
	})
	if err != nil {
		return nil, err
	}
	return &View{FS: fsys, ids: base.ids, base: base}, nil
}

// stat is os.Stat, behind syscallFault.
func stat(path string) (fs.FileInfo, error) {
	if err := syscallFault("stat", path); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return os.Stat(path)
}

// syscallFault is asked before each system call retry makes, and before
// Open's stat of the resolved directory; an error it returns is the
// call's. Tests set it to fail what root cannot provoke here: a listing
// or a read of a directory or file already open, a link that vanishes
// between its lstat and its readlink, a directory gone between resolving
// its links and its stat, an interrupted call. It must not be changed
// while a walk runs.
var syscallFault = func(op, path string) error { return nil }
