package solver

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/record"
)

// checkSteps gives the solve's steps their reasons against the plan made
// from R:F's record (none without one): imports are the caches the
// solve imported; keys, when not nil, names the part of a step's cache
// key that differed.
func (b *Builder) checkSteps(j *plan.Job, imports []plan.CacheEntry, res *outcome.Result, keys func(record.Step) string) {
	if res.StepPlan == nil {
		return
	}
	record.CheckSteps(res.Steps, res.StepPlan, missCause(j, imports, res.ImportFailures, keys))
}

// missCause names, from what bkcache can see, the likely cause of a step
// BuildKit ran although nothing it depends on changed: imports are the
// caches the solve imported, importFailures those that failed; keys,
// when not nil, names the part of the step's cache key that differed.
func missCause(j *plan.Job, imports []plan.CacheEntry, importFailures []string, keys func(record.Step) string) func(record.Step) string {
	own := slices.ContainsFunc(imports, func(e plan.CacheEntry) bool { return e.Own })
	var minOnly []string // the imported caches compose exports with mode=min
	for _, e := range imports {
		if e.Ref != nil && exportedMin(j, e) {
			minOnly = append(minOnly, e.Ref.String())
		}
	}
	final := finalStage(j)
	return func(s record.Step) string {
		switch {
		case j.NoCache:
			return "the build ran without cache (--no-cache, or no_cache: in compose)"
		case len(importFailures) > 0:
			return "importing the cache failed: " + importFailures[0]
		case len(imports) == 0:
			return fmt.Sprintf("no cache was imported: the registry holds no %s or %s, and this daemon's own cache did not hold the step", j.Refs.Cache, j.Refs.CacheFloat)
		case !own && len(minOnly) == len(imports) && !strings.EqualFold(s.Stage, final):
			return fmt.Sprintf("the only cache imported (%s) is exported with mode=min, which keeps the final stage's steps only", strings.Join(minOnly, ", "))
		case keys != nil:
			return keys(s)
		}
		return noKeyDebug
	}
}

// exportedMin reports whether the job's compose cache_to exports e's
// ref with mode=min (BuildKit's default for a registry cache).
func exportedMin(j *plan.Job, e plan.CacheEntry) bool {
	for _, to := range j.CacheTo {
		if to.Ref != nil && to.Ref.String() == e.Ref.String() {
			return to.Attrs["mode"] == "" || to.Attrs["mode"] == "min"
		}
	}
	return false
}

// finalStage is the stage the job builds: its target, or the last.
func finalStage(j *plan.Job) string {
	if j.Inputs.Target != "" {
		return j.Inputs.Target
	}
	stages := dockerfile.Stages([]byte(j.Inputs.Dockerfile.Content))
	if len(stages) == 0 {
		return ""
	}
	return stages[len(stages)-1].Name
}
