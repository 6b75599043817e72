package inputs

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/moby/patternmatcher"
)

// attributor names the instruction that pulled a file in, for `inputs`.
type attributor struct {
	use      *dockerfile.Use
	matchers []*patternmatcher.PatternMatcher // nil where the pattern is "." (everything) or invalid
	all      []bool                           // the pattern is "."
	labels   []string                         // what by returns for each pattern
}

func newAttributor(use *dockerfile.Use) *attributor {
	a := &attributor{use: use}
	for _, p := range use.Patterns {
		var m *patternmatcher.PatternMatcher
		if p.Path != "." {
			m, _ = patternmatcher.New([]string{p.Path})
		}
		a.matchers = append(a.matchers, m)
		a.all = append(a.all, p.Path == ".")
		a.labels = append(a.labels, attributionLabel(p))
	}
	return a
}

// attributionLabel is what by says of the files p pulls in.
func attributionLabel(p dockerfile.Pattern) string {
	return fmt.Sprintf("line %d: %s", p.Origin.Line, p.Origin.Instruction)
}

func (a *attributor) by(path string) string {
	for i, m := range a.matchers {
		if a.all[i] {
			return a.labels[i]
		}
		if m == nil {
			continue
		}
		if ok, _ := m.MatchesOrParentMatches(path); ok {
			return a.labels[i]
		}
	}
	if a.use.Whole && a.use.Reason != "" {
		return a.use.Reason
	}
	return "parent directory or symlink target of a selected path"
}

// excluder decides which files of a source no instruction depends on:
// those that every pattern reaching them leaves out with --exclude.
type excluder struct {
	roots    []string // a pattern's directory ("" for "."), or "\x00" when its files cannot be told apart
	matchers []*patternmatcher.PatternMatcher
	excludes []*patternmatcher.PatternMatcher // nil: the pattern excludes nothing
}

// newExcluder returns nil when no file can be left out: no pattern has
// an --exclude, or the source counts whole because something could not
// be decided.
func newExcluder(use *dockerfile.Use) *excluder {
	if use.Widened || !slices.ContainsFunc(use.Patterns, func(p dockerfile.Pattern) bool { return len(p.Excludes) > 0 }) {
		return nil
	}
	x := &excluder{}
	for _, p := range use.Patterns {
		root, m := "", (*patternmatcher.PatternMatcher)(nil)
		switch {
		case p.Path == ".":
		case hasWildcard(p.Path):
			root = "\x00" // what its excludes are relative to is not known here
			m, _ = patternmatcher.New([]string{p.Path})
		default:
			root = p.Path
			m, _ = patternmatcher.New([]string{p.Path})
		}
		var ex *patternmatcher.PatternMatcher
		if len(p.Excludes) > 0 && root != "\x00" {
			ex, _ = patternmatcher.New(p.Excludes)
		}
		x.roots, x.matchers, x.excludes = append(x.roots, root), append(x.matchers, m), append(x.excludes, ex)
	}
	return x
}

// skip reports whether every pattern that reaches path excludes it.
func (x *excluder) skip(path string) bool {
	reached := false
	for i, root := range x.roots {
		if root != "" {
			if x.matchers[i] == nil {
				return false // an invalid pattern: keep everything
			}
			if ok, _ := x.matchers[i].MatchesOrParentMatches(path); !ok {
				continue
			}
		}
		reached = true
		if x.excludes[i] == nil {
			return false
		}
		rel := path
		if root != "" {
			if path == root {
				rel = filepath.Base(path) // a single file copied
			} else if r, ok := strings.CutPrefix(path, root+"/"); ok {
				rel = r
			} else {
				return false
			}
		}
		if ok, _ := x.excludes[i].MatchesOrParentMatches(rel); !ok {
			return false
		}
	}
	return reached
}
