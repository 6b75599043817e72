package inputs

import (
	"fmt"

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
		a.labels = append(a.labels, fmt.Sprintf("line %d: %s", p.Origin.Line, p.Origin.Instruction))
	}
	return a
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
