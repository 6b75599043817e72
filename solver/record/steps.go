package record

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/moby/patternmatcher"
)

// StepPlan is which steps of a build had to run, and why, derived from
// what changed since an earlier record of the service: the steps that
// read a changed input, and every step BuildKit chains after one.
type StepPlan struct {
	// Causes say, by line, why the step there had to run.
	Causes map[int]string
	// Earlier are the durations of the steps the earlier build ran, by
	// the line of this Dockerfile that holds the same instruction.
	Earlier map[int]int64
	// OtherPlatform, when set, says that the earlier build ran for
	// another platform (a service without platforms builds for its
	// builder's): the likely cause of every miss.
	OtherPlatform string
}

// PlatformMoved is, for a service without platforms, what
// StepPlan.OtherPlatform says when the earlier build's builder and this
// one's are of different platforms; "" otherwise.
func PlatformMoved(cur *inputs.Inputs, earlier, now *Buildkit) string {
	if len(cur.Platforms) > 0 || earlier == nil || now == nil || earlier.Platform == "" || now.Platform == "" || earlier.Platform == now.Platform {
		return ""
	}
	return fmt.Sprintf("the cache it imported was built for %s, by the builder of the earlier build; this build is for %s", earlier.Platform, now.Platform)
}

// PlanSteps derives the steps of cur's Dockerfile that had to run from
// r, the comparison of old with cur, as BuildKit keys its steps: a step
// runs when it reads a changed file, uses a changed arg, starts from or
// copies from a changed image or a stage that ran, or changed itself;
// and then so does every later step of its stage. earlier are the steps
// of old's build, for their durations.
func PlanSteps(old, cur *inputs.Inputs, r *Report, earlier []Step) *StepPlan {
	stages := dockerfile.Stages([]byte(cur.Dockerfile.Content))
	pl := &planner{
		plan:   &StepPlan{Causes: map[int]string{}, Earlier: earlierDurations(stages, earlier)},
		args:   argPatterns(r.Args),
		direct: directCauses(cur, stages, r),
		ran:    map[string]dockerfile.Instruction{},
	}
	oldStages := dockerfile.Stages([]byte(old.Dockerfile.Content))
	// Twice: a stage may copy from one defined below it.
	for range 2 {
		for _, s := range stages {
			pl.stage(s, matchStage(oldStages, s))
		}
	}
	return pl.plan
}

// planner holds what planning one build's steps knows of the whole
// build.
type planner struct {
	plan   *StepPlan
	args   []argPattern                      // the changed args
	direct map[int]string                    // the causes a step reads itself, by line
	ran    map[string]dockerfile.Instruction // stage (lowercased) -> its first step that ran
}

// stage finds the first step of s that had to run, and chains every
// later step of s after it; old is s in the earlier Dockerfile.
func (pl *planner) stage(s dockerfile.Stage, old *dockerfile.Stage) {
	var first *dockerfile.Instruction
	var firstCause string
	pending := "" // a cause of the FROM, which is no step: it falls on the next one
	declared := map[string]bool{}
	for k, in := range s.Steps {
		for _, a := range in.Args {
			declared[a] = true
		}
		if first != nil {
			pl.plan.Causes[in.Line] = fmt.Sprintf("after line %d `%s`, which %s", first.Line, first.Text, firstCause)
			continue
		}
		cause := pl.cause(in, s.Base, changed(k, in, s, old), declared)
		if in.From {
			pending = cause
			continue
		}
		if cause == "" {
			cause = pending
		}
		if cause != "" {
			first, firstCause = &in, cause
			pl.plan.Causes[in.Line] = cause
			pl.ran[strings.ToLower(s.Name)] = in
		}
	}
}

// cause is why the step in had to run for itself, or "": base is its
// stage's, edited whether it differs from the earlier Dockerfile's, and
// declared the args its stage declared so far.
func (pl *planner) cause(in dockerfile.Instruction, base string, edited bool, declared map[string]bool) string {
	if c := pl.direct[in.Line]; c != "" {
		return c
	}
	refs := in.Refs
	if in.From {
		refs = []string{base}
	}
	for _, ref := range refs {
		if st, ok := pl.ran[strings.ToLower(ref)]; ok {
			return fmt.Sprintf("%s stage `%s`, which ran (line %d `%s`)", verb(in), ref, st.Line, st.Text)
		}
	}
	if edited {
		return fmt.Sprintf("changed (line %d)", in.Line)
	}
	for _, a := range pl.args {
		if a.usedBy(in, declared) {
			return fmt.Sprintf("uses arg %s, which changed", a.key)
		}
	}
	return ""
}

func verb(in dockerfile.Instruction) string {
	if in.From {
		return "starts from"
	}
	return "reads from"
}

// changed reports whether the k-th step of a stage differs from the old
// stage's: BuildKit chains a stage's steps, so a step edited, inserted
// or removed before k changes every step from there. A FROM counts by
// its base only (renaming the stage changes no step).
func changed(k int, in dockerfile.Instruction, s dockerfile.Stage, old *dockerfile.Stage) bool {
	switch {
	case old == nil:
		return true
	case in.From:
		return old.Base != s.Base
	}
	return k >= len(old.Steps) || old.Steps[k].Text != in.Text
}

// argPattern is a changed arg, and how an instruction names it.
type argPattern struct {
	key string
	ref *regexp.Regexp // $KEY or ${KEY...
}

func argPatterns(changed []Change) []argPattern {
	out := make([]argPattern, len(changed))
	for i, c := range changed {
		out[i] = argPattern{key: c.Key, ref: regexp.MustCompile(`\$\{?` + regexp.QuoteMeta(c.Key) + `\b`)}
	}
	return out
}

// usedBy reports whether in depends on the arg: it names it, or it is
// a RUN after the stage declared it (BuildKit puts the declared args
// into every RUN's environment).
func (a argPattern) usedBy(in dockerfile.Instruction, declared map[string]bool) bool {
	return a.ref.MatchString(in.Text) || declared[a.key] && in.Run
}

// matchStage is old's stage for s: the one of its name (an unnamed
// stage's is stage-N, by its place).
func matchStage(old []dockerfile.Stage, s dockerfile.Stage) *dockerfile.Stage {
	for j := range old {
		if strings.EqualFold(old[j].Name, s.Name) {
			return &old[j]
		}
	}
	return nil
}

// directCauses are, by line, the changes a step reads itself: files of
// its sources, images, remote sources and contexts it names, and the
// settings of every RUN step.
func directCauses(cur *inputs.Inputs, stages []dockerfile.Stage, r *Report) map[int]string {
	out := map[int]string{}
	add := func(line int, cause string) {
		if line > 0 && out[line] == "" {
			out[line] = cause
		}
	}
	for line, paths := range changedFilesByLine(cur, r) {
		add(line, "read a changed file: "+strings.Join(paths, ", "))
	}
	for _, c := range r.Images {
		for _, im := range cur.Images {
			if im.Ref == c.Key {
				for _, by := range im.By {
					add(byLine(by), fmt.Sprintf("reads image %s, which moved", c.Key))
				}
			}
		}
	}
	for _, c := range r.Remotes {
		for _, rm := range cur.Remotes {
			if rm.URL == c.Key {
				for _, by := range rm.By {
					add(byLine(by), fmt.Sprintf("reads %s, which changed", c.Key))
				}
			}
		}
	}
	runSettings(cur, stages, r, add)
	return out
}

// runSettings puts a changed setting of RUN steps (network, hosts,
// ulimits, /dev/shm) or of the platforms on every RUN step of stages.
func runSettings(cur *inputs.Inputs, stages []dockerfile.Stage, r *Report, add func(int, string)) {
	for _, c := range r.Settings {
		if _, run := cur.Run[c.Key]; !run && c.Key != "platforms" {
			continue
		}
		for _, s := range stages {
			for _, in := range s.Steps {
				if in.Run {
					add(in.Line, fmt.Sprintf("the service's %s changed", c.Key))
				}
			}
		}
	}
}

// changedFilesByLine maps each line whose instruction reads a changed
// file to those files (at most three, then "…").
func changedFilesByLine(cur *inputs.Inputs, r *Report) map[int][]string {
	out := map[int][]string{}
	for _, src := range cur.Sources {
		for _, pat := range src.Patterns {
			var m *patternmatcher.PatternMatcher
			if pat.Path != "." {
				m, _ = patternmatcher.New([]string{pat.Path})
			}
			for _, f := range r.Files {
				if f.Source != src.Name || (m != nil && !matches(m, f.Path)) {
					continue
				}
				switch l := pat.Origin.Line; {
				case len(out[l]) < 3:
					out[l] = append(out[l], f.Path)
				case len(out[l]) == 3:
					out[l] = append(out[l], "…")
				}
			}
		}
	}
	return out
}

func matches(m *patternmatcher.PatternMatcher, path string) bool {
	ok, _ := m.MatchesOrParentMatches(path)
	return ok
}

// byLine is the line of a "line N: ..." origin, or 0.
func byLine(by string) int {
	rest, ok := strings.CutPrefix(by, "line ")
	if !ok {
		return 0
	}
	n, _ := strconv.Atoi(strings.SplitN(rest, ":", 2)[0])
	return n
}

// earlierDurations maps the durations of the earlier build's steps (for
// one from cache, as long as it took before that) onto the lines of
// stages, the Dockerfile built now, holding the same instruction, in
// order.
func earlierDurations(stages []dockerfile.Stage, earlier []Step) map[int]int64 {
	out := map[int]int64{}
	var ins []dockerfile.Instruction
	for _, s := range stages {
		ins = append(ins, s.Steps...)
	}
	for _, e := range earlier {
		ms := e.DurationMs
		if e.Status != StepRan {
			ms = e.EarlierMs // from cache then too: as long as it took before
		}
		if ms == 0 {
			continue
		}
		for _, in := range ins {
			if _, used := out[in.Line]; !used && in.Text == e.Instruction && in.Stage == e.Stage {
				out[in.Line] = ms
				break
			}
		}
	}
	return out
}

// CheckSteps gives each step its reason against plan. A step that ran
// has its cause; one that ran without a cause is an unexpected miss, and
// miss says what likely made BuildKit run it; one that had a cause but
// came from cache was cached from an earlier build (an edit that
// restored an earlier file, say).
func CheckSteps(steps []Step, plan *StepPlan, miss func(Step) string) {
	for i := range steps {
		s := &steps[i]
		cause, must := plan.Causes[s.Line]
		switch {
		case s.Status == StepRan && must:
			s.Reason = cause
		case s.Status == StepRan:
			why := plan.OtherPlatform
			if why == "" {
				why = miss(*s)
			}
			s.Reason, s.Unexpected = "unexpected: nothing it depends on changed; "+why, true
		case must:
			s.Reason = "cached from an earlier build, though a change reached it: " + cause
		}
		if s.Status == StepCached {
			s.EarlierMs = plan.Earlier[s.Line]
		}
	}
}
