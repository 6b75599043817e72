package solver

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/util/grpcerrors"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/grpc/codes"
)

// buildOne takes one job from its skip check to its end state: the
// check (the registry's, or the engine's), the solve on buildkitd, and
// publishing. sends are the job's local sources, sent with the run's
// others.
func (b *Builder) buildOne(ctx context.Context, j *plan.Job, sends []send, deps map[string]depImage, layout string, res *outcome.Result) {
	start := time.Now()
	res.Start = start
	defer func() { res.Duration = time.Since(start).Round(time.Millisecond) }()
	inRegistry, done := b.check(ctx, j, layout, res)
	if done {
		skip(j, sends)
		return
	}
	if resp, cache, ok := b.solveJob(ctx, j, sends, deps, layout, inRegistry, res); ok {
		b.finish(ctx, j, resp, cache, layout, inRegistry, res)
	}
}

// solveJob solves the job (and, for a one-platform output of a service
// of several, its platform again): its response and what became of its
// caches, or false when it failed, recorded in res. inRegistry is what
// R:H held at the check of a --push run that solves for an output only:
// R:H is then not pushed again.
func (b *Builder) solveJob(ctx context.Context, j *plan.Job, sends []send, deps map[string]depImage, layout string, inRegistry digest.Digest, res *outcome.Result) (*client.SolveResponse, publish.CacheResult, bool) {
	out, hasOutput := b.opt.Outputs[j.Name()]
	var single string // the platform of a one-platform output, solved apart
	if hasOutput && b.oneImage(out, j) {
		var err error
		if single, err = loadPlatform(j, out); err != nil {
			res.Fail(err)
			return nil, publish.CacheResult{}, false
		}
	}
	so, cleanup, err := b.solveOpt(j, deps, layout, b.opt.Push && inRegistry == "")
	defer cleanup()
	if err != nil {
		res.Fail(err)
		return nil, publish.CacheResult{}, false
	}
	explained := b.pub.Explain(ctx, j, res)
	imports, reuse := b.caches(ctx, j, so, inRegistry, explained, res)
	keys := b.startKeyDebug(ctx, imports)
	a := b.solveOnNodes(ctx, j.Name(), so, sends, res)
	explained()
	a.counter.report(res)
	res.Steps = a.steps
	if a.stepsErr != nil {
		res.Warn(fmt.Sprintf("the Dockerfile's steps are not in this run's record: %v", a.stepsErr))
	}
	b.checkSteps(j, imports, res, keys.explainer(ctx, j, a.node, a.steps))
	cacheFailures := a.counter.failed("exporting cache")
	if a.err == nil && reuse != "" && !allFromCache(a) {
		reuse, cacheFailures = "", append(cacheFailures, notReused(j, a))
	}
	if a.err == nil && single != "" {
		a.err = b.exportPlatform(ctx, j, so, sends, out, single, res)
	}
	if a.err != nil {
		b.solveFailed(ctx, j, a.err, res)
		return nil, publish.CacheResult{}, false
	}
	return a.resp, publish.CacheResult{Failures: cacheFailures, Reused: reuse}, true
}

// caches settles the solve's caches in so and res: the imports worth
// importing (none on a classic engine, whose BuildKit has no registry
// cache), returned, and, for a push, the exports: its own in the form
// the registry takes, or, when the imported R:cache-F is reused instead
// (its manifest returned; see reusableCache), compose's alone.
func (b *Builder) caches(ctx context.Context, j *plan.Job, so *client.SolveOpt, inRegistry digest.Digest, explained func(), res *outcome.Result) ([]plan.CacheEntry, digest.Digest) {
	var im publish.Imports
	if !b.classic() {
		im = b.pub.CacheImports(ctx, j.Imports)
		res.ImportFailed(im.Warnings...)
	}
	imports := im.Kept
	so.CacheImports = cacheEntries(imports)
	res.CacheImports, res.CacheExports = cacheRefs(imports), cacheRefs(nil)
	if !b.opt.Push || b.classic() {
		return imports, ""
	}
	exports := ownExportsLeft(j)
	reuse := b.reusableCache(j, im, inRegistry, explained, res)
	if reuse == "" {
		form, why := b.pub.CacheForm(ctx, j, im)
		exports, res.CacheForm, res.CacheFormWhy = withForm(j.Exports, form), string(form), why
	}
	so.CacheExports, res.CacheExports = cacheEntries(exports), cacheRefs(exports)
	return imports, reuse
}

// check reports whether the job ends without a solve (done): R:H is in
// the registry (then, with --push, R:F follows it), or a --load target
// the engine already holds. With --push and an output, an R:H already
// there is not pushed again: the solve makes only the output (or
// nothing, for a --load the engine holds), and R:F follows what R:H
// holds, returned as inRegistry.
func (b *Builder) check(ctx context.Context, j *plan.Job, layout string, res *outcome.Result) (inRegistry digest.Digest, done bool) {
	refs := j.Refs
	out, hasOutput := b.opt.Outputs[j.Name()]
	// --load of an image the engine already has under its hash: the same
	// inputs, so the same image; only its compose names are (re)applied.
	// Not when a dependent needs this build's layout.
	engineHas := func() bool {
		return hasOutput && out.intoEngine() && layout == "" && b.inEngine(ctx, refs.Image.String(), j.EngineNames)
	}
	// A service without a registry repository builds from buildkitd's
	// own cache: there is nothing to look up.
	if !b.opt.Force && !j.Local && (!hasOutput || b.opt.Push) {
		d, found, err := b.pub.Check(ctx, j)
		if err != nil {
			res.Fail(err)
			return "", true
		}
		if found && hasOutput && !engineHas() && !b.pulledIntoEngine(ctx, j, out, layout, res) {
			return d, false
		}
		if found {
			res.Status, res.Digest = outcome.Skipped, d
			if b.opt.Push {
				if err := b.pub.Promote(ctx, j, d, res); err != nil {
					res.Fail(err)
				}
			}
			return "", true
		}
	}
	if !b.opt.Force && !b.opt.Push && engineHas() {
		res.Status = outcome.Skipped
		return "", true
	}
	return "", false
}

// pulledIntoEngine puts R:H, found in the registry, into the Docker
// engine built on, under compose's names too: a pull costs less than a
// solve, even from cache. A failed pull is a warning; the solve follows.
func (b *Builder) pulledIntoEngine(ctx context.Context, j *plan.Job, out Output, layout string, res *outcome.Result) bool {
	e := b.pool.Engine()
	if e == nil || out.Type != "engine" || layout != "" {
		return false
	}
	image := j.Refs.Image.String()
	if err := e.pull(ctx, image, j.Refs.Image.Context().RegistryStr()); err != nil {
		res.Warn(fmt.Sprintf("pulling %s into the Docker engine failed, building it instead: %v", image, err))
		return false
	}
	return e.tag(ctx, image, j.EngineNames) == nil
}

// solveFailed records why a solve failed.
func (b *Builder) solveFailed(ctx context.Context, j *plan.Job, err error, res *outcome.Result) {
	switch {
	case ctx.Err() != nil:
		res.Cancel(ctx.Err())
	case grpcerrors.Code(err) == codes.Unavailable:
		res.Fail(fmt.Errorf("building %s: the connection to buildkitd was lost during the solve (did it stop or restart? its log says why); %s was not moved: %w", j.Refs.Image, j.Refs.Floating, err))
	case tooLargeRE().MatchString(err.Error()):
		res.Fail(fmt.Errorf("building %s: the registry refused a manifest as too large: %w; registries cap a manifest's size (distribution and ECR at 4 MiB), which an image or a cache (mode=max lists every layer of every stage) of very many layers passes: build with fewer layers (fewer RUN, COPY and ADD steps, or stages merged), or export a smaller cache with cache_to mode=min; %s was not moved", j.Refs.Image, err, j.Refs.Floating))
	case strings.Contains(err.Error(), "is not allowed by build daemon configuration"):
		res.Fail(fmt.Errorf("building %s: %w: the service's entitlements (build.entitlements, privileged:, network: host) must be allowed by buildkitd: start it with --allow-insecure-entitlement for each, or drop them from the service", j.Refs.Image, err))
	default:
		res.Fail(fmt.Errorf("building %s: %w", j.Refs.Image, err))
		res.ErrorAt = errorAt(j, err)
	}
}

// tooLargeRE matches how a registry refuses a manifest over its size
// limit, as containerd reports it: 413, or distribution's 400 for a body
// past its 4 MiB reader.
var tooLargeRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)\b413\b|request entity too large|payload too large|request body too large|manifest too big`)
})

// cacheRefs names the entries as records show them (CacheEntry.String).
func cacheRefs(entries []plan.CacheEntry) []string {
	out := []string{}
	for _, e := range entries {
		out = append(out, e.String())
	}
	return out
}

// errorAt is where in the service's Dockerfile a solve failed, from the
// source BuildKit attached to its error: the innermost one, which names
// the instruction that failed.
func errorAt(j *plan.Job, err error) *record.Location {
	for _, s := range errdefs.Sources(err) {
		if s.Info == nil || len(s.Ranges) == 0 || s.Ranges[0].Start == nil {
			continue
		}
		file := j.Service.Dockerfile
		if file == "" || j.Service.DockerfileInline != "" {
			file = s.Info.Filename
		}
		return &record.Location{File: file, Line: int(s.Ranges[0].Start.Line)}
	}
	return nil
}
