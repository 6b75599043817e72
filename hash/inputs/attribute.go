package inputs

import (
	"fmt"

	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/moby/patternmatcher"
)

// attributor names the instruction that pulled a file in, for `inputs`.
type attributor struct {
	use      *dockerfile.Use
	matchers []*patternmatcher.PatternMatcher
}

func newAttributor(use *dockerfile.Use) *attributor {
	a := &attributor{use: use}
	for _, p := range use.Patterns {
		m, err := patternmatcher.New([]string{p.Path})
		if err != nil {
			m = nil
		}
		a.matchers = append(a.matchers, m)
	}
	return a
}

func (a *attributor) by(path string) string {
	for i, m := range a.matchers {
		if m == nil {
			continue
		}
		if ok, _ := m.MatchesOrParentMatches(path); ok || a.use.Patterns[i].Path == "." {
			o := a.use.Patterns[i].Origin
			return fmt.Sprintf("line %d: %s", o.Line, o.Instruction)
		}
	}
	if a.use.Whole && a.use.Reason != "" {
		return a.use.Reason
	}
	return "parent directory or symlink target of a selected path"
}
