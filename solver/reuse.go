package solver

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/bkcache/bkcache/solver/record"
	digest "github.com/opencontainers/go-digest"
)

// reusableCache decides, before the solve, that exporting the job's own
// cache would be redundant: R:cache-F, which the build that made R:F
// exported with every stage, is imported, and what changed since that
// build enters no cache key (labels, a Dockerfile edit the plan finds
// no step in, such as a comment, or nothing: a forced rebuild). Every
// step's key is then one R:cache-F holds, and so is the cache an export
// would write: R:cache-H is pointed at R:cache-F's manifest, returned,
// instead: its digest as im found it. explained waits for the plan. ""
// when the export stays. Only a push that exports registry cache asks.
func (b *Builder) reusableCache(j *plan.Job, im publish.Imports, inRegistry digest.Digest, explained func(), res *outcome.Result) digest.Digest {
	d, imported := im.Digest(j.Refs.CacheFloat.Tag)
	if inRegistry != "" || j.NoCache || !imported {
		return ""
	}
	explained()
	if p := res.StepPlan; p == nil || len(p.Causes) > 0 || p.OtherPlatform != "" || !keysUnchanged(res.Changes) {
		return ""
	}
	return d
}

// keysUnchanged reports whether the changes since R:F's build are of
// kinds that enter no step's cache key: labels, and the Dockerfile's
// text (whose steps the plan checks line by line).
func keysUnchanged(c *record.Report) bool {
	return c != nil && c.Scheme == nil && len(c.Settings) == 0 && len(c.Args) == 0 && len(c.Secrets) == 0 &&
		len(c.SSH) == 0 && len(c.Contexts) == 0 && len(c.Images) == 0 && len(c.Remotes) == 0 && c.BaseImages == nil && len(c.Files) == 0
}

// ownExportsLeft are the job's cache exports but its own: compose's.
func ownExportsLeft(j *plan.Job) []plan.CacheEntry {
	return slices.DeleteFunc(slices.Clone(j.Exports), func(e plan.CacheEntry) bool { return e.Own })
}

// allFromCache reports whether every step of the solve came from cache
// (a FROM may have pulled its image: the keys after it are the image's
// digest's all the same).
func allFromCache(a attempt) bool {
	if a.stepsErr != nil || len(a.steps) == 0 {
		return false
	}
	_, ran := firstRan(a.steps)
	return !ran
}

// firstRan is the first step that ran, a FROM that pulled its image
// aside.
func firstRan(steps []record.Step) (record.Step, bool) {
	i := slices.IndexFunc(steps, func(s record.Step) bool {
		return s.Status != record.StepCached && !strings.HasPrefix(strings.ToUpper(s.Instruction), "FROM ")
	})
	if i < 0 {
		return record.Step{}, false
	}
	return steps[i], true
}

// notReused is the cache failure of a solve that left its own export
// out on the plan's word that every step would come from R:cache-F,
// when a step ran all the same (what bkcache does not hash changed in
// BuildKit's key): nothing of its own was exported, and the next build
// of these inputs imports R:cache-F again. A second solve to export
// would not help: BuildKit finds no layers to export in a solve served
// whole from the first.
func notReused(j *plan.Job, a attempt) string {
	s, _ := firstRan(a.steps)
	return fmt.Sprintf("exporting cache to %s: left out, as every step was to come from %s, but the step at line %d ran; "+
		"the next build of these inputs imports %s again", j.Refs.Cache, j.Refs.CacheFloat, s.Line, j.Refs.CacheFloat)
}
