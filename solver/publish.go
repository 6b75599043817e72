package solver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	digest "github.com/opencontainers/go-digest"
)

// ErrCacheExportRequired marks a failure only because Options.
// RequireCacheExport asked for the cache to be exported, or moved.
var ErrCacheExportRequired = errors.New("a cache export is required")

// finish takes a service from a successful solve to its end state:
// cacheFailures are the solve's failed cache exports. With --push the
// image is published; nothing moves when the solve's report is short of
// what publishing needs.
func (b *Builder) finish(ctx context.Context, j *plan.Job, resp *client.SolveResponse, cacheFailures []string, layout string, res *Result) {
	refs := j.Refs
	res.cacheExported = len(cacheFailures) == 0
	if len(cacheFailures) > 0 {
		res.warn(cacheFailures...)
		if b.opt.RequireCacheExport {
			res.fail(fmt.Errorf("exporting the cache of %s failed and %w: %s; %s not moved", refs.Image, ErrCacheExportRequired, strings.Join(cacheFailures, "; "), refs.Floating))
			return
		}
	}
	res.Status = Built
	if d := resp.ExporterResponse[exptypes.ExporterImageDigestKey]; d != "" {
		res.Digest = digest.Digest(d)
	}
	if layout != "" {
		res.layout = layout
	}
	if b.opt.Push && res.inRegistry != "" {
		// Solved for an output only: R:H was there, and stays as it was.
		res.Digest = res.inRegistry
		if err := b.promote(ctx, j, res.inRegistry, res); err != nil {
			res.fail(err)
		}
		return
	}
	if b.opt.Push {
		if res.Digest == "" {
			res.fail(fmt.Errorf("pushing %s: buildkitd reported no image digest", refs.Image))
			return
		}
		b.publish(ctx, j, res)
	}
}

// publish runs a pushed service's registry steps: check R:H, attach the
// manifest, move R:cache-F and then R:F. They share one registry
// session.
func (b *Builder) publish(ctx context.Context, j *plan.Job, res *Result) {
	refs := j.Refs
	reg := b.registry.Session(ctx)
	// BuildKit reports no byte counts for a registry cache export: record
	// the size of the cache it wrote, as the registry lists it, read
	// while R:H is checked.
	var sizes sync.WaitGroup
	if res.cacheExported {
		sizes.Go(func() {
			if size, err := reg.CacheSize(ctx, refs.Cache); err == nil {
				res.CacheExportBytes = size
			}
		})
	}
	// Trust the registry, not the report: R:F moves only to an image
	// the registry serves under R:H. Another run that built the same
	// hash at the same time may have pushed R:H after us; its image
	// has the same inputs, and R:F follows what R:H holds.
	got, found, err := reg.Head(ctx, refs.Image)
	sizes.Wait()
	switch {
	case err != nil:
		res.fail(fmt.Errorf("checking the push of %s: %w; %s not moved", refs.Image, err, refs.Floating))
		return
	case !found:
		res.fail(fmt.Errorf("pushing %s: buildkitd reported %s but the registry has no such tag; %s not moved", refs.Image, res.Digest, refs.Floating))
		return
	case got != res.Digest:
		res.warn(fmt.Sprintf("%s was pushed again by another build of the same inputs while this one ran: it holds %s, not this build's %s", refs.Image, got, res.Digest))
		res.Digest = got
	}
	// In this order, so that a failed attach moves nothing: R:cache-F
	// ahead of R:F (when moving R:F itself fails) costs nothing, as it
	// is only the cache of newer inputs.
	if err := b.attach(ctx, reg, j, res); err != nil {
		res.fail(fmt.Errorf("%w; %s not moved", err, refs.Floating))
		return
	}
	if err := b.moveFloating(ctx, reg, refs, res.Digest, moveCache(ctx, reg, refs), res); err != nil {
		res.fail(err)
	}
}

// attach stores the service's manifest on its image in the registry, so
// that the floating tag carries it once it moves there.
func (b *Builder) attach(ctx context.Context, reg *registry.Registry, j *plan.Job, res *Result) error {
	if !b.opt.Attach {
		return nil
	}
	doc, err := b.opt.Recorder.document(j, res)
	if err != nil {
		return fmt.Errorf("recording the manifest of %s: %w", j.Refs.Image, err)
	}
	if err := reg.Attach(ctx, j.Refs.Repository.Digest(res.Digest.String()), doc, time.Now()); err != nil {
		return fmt.Errorf("attaching the manifest to %s: %w", j.Refs.Image, err)
	}
	return nil
}

// promote gives a service whose R:H was already there every name a
// build would have given it: its compose tags, then R:cache-F and R:F,
// at what R:H and R:cache-H hold. Nothing moves that is there already.
// An R:H pushed by a run stopped before it attached its manifest gets it
// now: R:F never names an image without one.
func (b *Builder) promote(ctx context.Context, j *plan.Job, d digest.Digest, res *Result) error {
	refs := j.Refs
	reg := b.registry.Session(ctx)
	// A revert onto an older R:H, or a push stopped between R:H and the
	// compose tags, leaves them on another image: the user deploys
	// :latest, so it must name what this run would have built.
	if err := convergeTags(ctx, reg, j, d); err != nil {
		return fmt.Errorf("%w; %s not moved", err, refs.Floating)
	}
	// Asked while the project hashed: R:F moved by another run since is
	// as if it had moved just after this read.
	cur, found, err := reg.HeadPrefetched(ctx, refs.Floating)
	if err != nil {
		return fmt.Errorf("reading %s: %w", refs.Floating, err)
	}
	if found && cur == d {
		res.Floating = refs.Floating.String()
		return nil
	}
	if b.opt.Attach {
		has, err := reg.HasManifest(ctx, refs.Repository.Digest(d.String()))
		if err != nil {
			return fmt.Errorf("reading the manifests attached to %s: %w; %s not moved", refs.Image, err, refs.Floating)
		}
		if !has {
			if err := b.attach(ctx, reg, j, res); err != nil {
				return fmt.Errorf("%w; %s not moved", err, refs.Floating)
			}
		}
	}
	return b.moveFloating(ctx, reg, refs, d, moveCache(ctx, reg, refs), res)
}

// convergeTags points each of the service's compose tags at d, the
// image R:H held when checked, where it names anything else. By digest,
// never by R:H: another run may push R:H again meanwhile.
func convergeTags(ctx context.Context, reg *registry.Registry, j *plan.Job, d digest.Digest) error {
	for _, t := range j.Tags {
		cur, found, err := reg.Head(ctx, t.Tag)
		if err != nil {
			return fmt.Errorf("reading the compose tag %s of service %q: %w", t, j.Name(), err)
		}
		if found && cur == d {
			continue
		}
		if err := reg.Copy(ctx, j.Refs.Repository.Digest(d.String()), t.Tag); err != nil {
			return fmt.Errorf("pointing the compose tag %s of service %q at %s: %w", t, j.Name(), j.Refs.Image, err)
		}
	}
	return nil
}

// moveFloating points R:F at d, the image R:H held when checked and the
// manifest was attached to, after R:cache-F was moved (cacheErr says
// how that went). By digest, never by R:H: another run may push R:H
// again meanwhile, an image of the same inputs without its manifest yet. The cache is an optimisation: failing to move
// R:cache-F costs the next build its cache, not correctness, so it is a
// warning unless a cache export is required.
func (b *Builder) moveFloating(ctx context.Context, reg *registry.Registry, refs plan.Refs, d digest.Digest, cacheErr error, res *Result) error {
	if cacheErr != nil {
		if b.opt.RequireCacheExport {
			return fmt.Errorf("%w (%w); %s not moved", cacheErr, ErrCacheExportRequired, refs.Floating)
		}
		res.warn(cacheErr.Error())
	}
	if err := reg.Copy(ctx, refs.Repository.Digest(d.String()), refs.Floating.Tag); err != nil {
		return fmt.Errorf("moving %s: %w", refs.Floating, err)
	}
	res.Floating = refs.Floating.String()
	return nil
}

// moveCache points R:cache-F at what R:cache-H holds, when there is one.
func moveCache(ctx context.Context, reg *registry.Registry, refs plan.Refs) error {
	d, ok, err := reg.Head(ctx, refs.Cache)
	if err != nil {
		return fmt.Errorf("reading %s: %w", refs.Cache, err)
	}
	if !ok {
		return nil
	}
	if err := reg.Copy(ctx, refs.Repository.Digest(d.String()), refs.CacheFloat.Tag); err != nil {
		return fmt.Errorf("moving %s: %w", refs.CacheFloat, err)
	}
	return nil
}
