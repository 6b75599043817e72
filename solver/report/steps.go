package report

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/bkcache/bkcache/solver/record"
)

// MaxSteps is how many steps that ran a summary lists per rebuilt
// service.
const MaxSteps = 5

// ranSteps are the steps of a build that ran: unexpected misses first,
// then by line.
func ranSteps(steps []record.Step) []record.Step {
	var ran []record.Step
	for _, s := range steps {
		if s.Status == record.StepRan {
			ran = append(ran, s)
		}
	}
	slices.SortStableFunc(ran, func(a, b record.Step) int {
		if a.Unexpected != b.Unexpected {
			if a.Unexpected {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return ran
}

// StepLines says which steps of a build ran and why: up to MaxSteps,
// unexpected misses first, each with its duration and its reason
// (instruction is how the instruction is quoted, reason how a reason
// is escaped), then how many more ran and how many came from cache.
// None for a build that was not compared with an earlier record (a
// first build, whose every step ran for want of a cache).
func StepLines(steps []record.Step, instruction, reason func(string) string) []string {
	if !Compared(steps) {
		return nil
	}
	ran := ranSteps(steps)
	var out []string
	for i, s := range ran {
		if i == MaxSteps {
			out = append(out, fmt.Sprintf("and %d more ran", len(ran)-MaxSteps))
			break
		}
		l := fmt.Sprintf("line %d %s ran in %s", s.Line, instruction(s.Instruction), seconds(s.DurationMs))
		if s.Reason != "" { // an unexpected miss's says so
			l += ": " + reason(s.Reason)
		}
		out = append(out, l)
	}
	return append(out, plural(len(steps)-len(ran), "step")+" cached")
}

// StepTime is where a run's step time went.
type StepTime struct {
	RanMs    int64 // steps that ran
	CachedMs int64 // steps from cache, as long as they took when they last ran
	MissMs   int64 // unexpected misses, within RanMs
	Misses   int
}

// StepTimes sums the steps of the run's builds.
func StepTimes(builds ...[]record.Step) StepTime {
	var t StepTime
	for _, steps := range builds {
		for _, st := range steps {
			switch {
			case st.Status != record.StepRan:
				t.CachedMs += st.EarlierMs
			case st.Unexpected:
				t.MissMs += st.DurationMs
				t.Misses++
				fallthrough
			default:
				t.RanMs += st.DurationMs
			}
		}
	}
	return t
}

// Lines says the time in words: the time that ran and came from cache,
// and, when there were unexpected misses, what they cost. None when no
// step was timed.
func (t StepTime) Lines() []string {
	if t.RanMs == 0 && t.CachedMs == 0 {
		return nil
	}
	out := []string{fmt.Sprintf("Step time: %s ran, %s came from cache (as long as those steps took when they last ran).", seconds(t.RanMs), seconds(t.CachedMs))}
	if t.Misses > 0 {
		out = append(out, fmt.Sprintf("Unexpected cache misses (%s that ran though nothing it reads changed) cost %s.", plural(t.Misses, "step"), seconds(t.MissMs)))
	}
	return out
}

// stepLists are the steps of each service of m that has them.
func stepLists(m *record.Run) [][]record.Step {
	var out [][]record.Step
	for _, s := range m.Services {
		if s.Steps != nil && len(s.Steps.List) > 0 {
			out = append(out, s.Steps.List)
		}
	}
	return out
}

// plural is n things, in words.
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// Compared reports whether the steps were checked against an earlier
// build's record: then a step that ran has a reason.
func Compared(steps []record.Step) bool {
	for _, s := range steps {
		if s.Reason != "" {
			return true
		}
	}
	return false
}
