package solver

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/plan"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/grpcerrors"
	"google.golang.org/grpc/codes"
)

// buildOne takes one job from its skip check to its end state.
// sends are the job's local sources, sent with the run's others.
func (b *Builder) buildOne(ctx context.Context, j *plan.Job, sends []send, deps map[string]depImage, layout string, res *Result) {
	start := time.Now()
	res.Start = start
	defer func() { res.Duration = time.Since(start).Round(time.Millisecond) }()
	if b.skip(ctx, j, layout, res) {
		skip(j, sends)
		return
	}
	out, hasOutput := b.opt.Outputs[j.Name()]
	var single string // the platform of a one-platform output, solved apart
	if hasOutput && oneImage(out, j) {
		var err error
		if single, err = loadPlatform(j, out); err != nil {
			res.fail(err)
			return
		}
	}
	so, cleanup, err := b.solveOpt(j, deps, layout, b.opt.Push && res.inRegistry == "")
	defer cleanup()
	if err != nil {
		res.fail(err)
		return
	}
	var warnings []string
	so.CacheImports, warnings = b.checkImports(ctx, so.CacheImports)
	res.warn(warnings...)
	res.CacheImports, res.CacheExports = cacheRefs(so.CacheImports), cacheRefs(so.CacheExports)
	explained := b.explain(ctx, j, res)
	a := b.solveOnNodes(ctx, j.Name(), so, sends, res)
	explained()
	res.Log = a.counter.tail
	res.CachedSteps, res.TotalSteps = a.counter.counts()
	imp, exp := a.counter.cacheIO()
	res.CacheImportMs, res.CacheExportMs = imp.Duration.Milliseconds(), exp.Duration.Milliseconds()
	res.CacheImportBytes, res.CacheExportBytes = imp.Bytes, exp.Bytes
	res.warn(a.counter.failed("importing cache manifest")...)
	if a.err != nil {
		b.solveFailed(ctx, j, a.err, res)
		return
	}
	if single != "" {
		if err := b.exportPlatform(ctx, j, so, sends, out, single, res); err != nil {
			b.solveFailed(ctx, j, err, res)
			return
		}
	}
	b.finish(ctx, j, a.resp, a.counter.failed("exporting cache"), layout, res)
}

// skip reports whether the job ends without a solve: R:H is in the
// registry (then, with --push, R:F follows it), or a --load target the
// engine already holds. With --push and an output, an R:H already there
// is not pushed again: the solve makes only the output (or nothing, for
// a --load the engine holds), and R:F follows R:H.
func (b *Builder) skip(ctx context.Context, j *plan.Job, layout string, res *Result) bool {
	refs := j.Refs
	out, hasOutput := b.opt.Outputs[j.Name()]
	// --load of an image the engine already has under its hash: the same
	// inputs, so the same image; only its compose names are (re)applied.
	// Not when a dependent needs this build's layout.
	engineHas := func() bool {
		return hasOutput && out.Type == "load" && layout == "" && inEngine(ctx, refs.Image.String(), j.EngineNames)
	}
	// A service without a registry repository builds from buildkitd's
	// own cache: there is nothing to look up.
	if !b.opt.Force && !j.Local && (!hasOutput || b.opt.Push) {
		d, found, err := b.registry.HeadPrefetched(ctx, refs.Image)
		if err != nil {
			res.fail(fmt.Errorf("checking whether %s exists: %w", refs.Image, err))
			return true
		}
		if found && hasOutput && !engineHas() {
			res.inRegistry = d
			return false
		}
		if found {
			res.Status, res.Digest = Skipped, d
			if b.opt.Push {
				if err := b.promote(ctx, j, d, res); err != nil {
					res.fail(err)
				}
			}
			return true
		}
	}
	if !b.opt.Force && !b.opt.Push && engineHas() {
		res.Status = Skipped
		return true
	}
	return false
}

// solveFailed records why a solve failed.
func (b *Builder) solveFailed(ctx context.Context, j *plan.Job, err error, res *Result) {
	switch {
	case ctx.Err() != nil:
		res.cancel(ctx.Err())
	case grpcerrors.Code(err) == codes.Unavailable:
		res.fail(fmt.Errorf("building %s: the connection to buildkitd was lost during the solve (did it stop or restart? its log says why); %s was not moved: %w", j.Refs.Image, j.Refs.Floating, err))
	case tooLargeRE().MatchString(err.Error()):
		res.fail(fmt.Errorf("building %s: the registry refused a manifest as too large: %w; registries cap a manifest's size (distribution and ECR at 4 MiB), which an image or a cache (mode=max lists every layer of every stage) of very many layers passes: build with fewer layers (fewer RUN, COPY and ADD steps, or stages merged), or export a smaller cache with cache_to mode=min; %s was not moved", j.Refs.Image, err, j.Refs.Floating))
	default:
		res.fail(fmt.Errorf("building %s: %w", j.Refs.Image, err))
		res.ErrorAt = errorAt(j, err)
	}
}

// tooLargeRE matches how a registry refuses a manifest over its size
// limit, as containerd reports it: 413, or distribution's 400 for a body
// past its 4 MiB reader.
var tooLargeRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`(?i)\b413\b|request entity too large|payload too large|request body too large|manifest too big`)
})

func cacheRefs(entries []client.CacheOptionsEntry) []string {
	out := []string{}
	for _, e := range entries {
		if ref := e.Attrs["ref"]; ref != "" {
			out = append(out, e.Type+":"+ref)
		} else {
			out = append(out, e.Type)
		}
	}
	return out
}
