// Package publish is everything that happens to a service in the
// registry: the skip check, publishing a pushed build (checking R:H,
// attaching its record, moving R:cache-F and then R:F), promoting a
// skipped one, the records of a run and reading them back, and the cache
// imports worth asking buildkitd for. It never talks to buildkitd.
package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	digest "github.com/opencontainers/go-digest"
)

// ErrCacheExportRequired marks a failure only because Options.
// RequireCacheExport asked for the cache to be exported, or moved.
var ErrCacheExportRequired = errors.New("a cache export is required")

// Options say what publishing does.
type Options struct {
	// Attach stores each pushed service's record on its image before
	// the floating tag moves, as Recorder writes it.
	Attach   bool
	Recorder Recorder
	// RequireCacheExport fails a service whose cache export failed, or
	// whose cache could not be moved; by default that is a warning and
	// the image is pushed all the same.
	RequireCacheExport bool
	// Explain compares each solved service's inputs with the record of
	// the image its floating tag names, into Result.Changes.
	Explain bool
}

// Publisher publishes services in one registry session per service.
type Publisher struct {
	reg *registry.Registry
	opt Options

	mu     sync.Mutex
	probes map[string]*probe // by registry host: see CacheForm
}

// New returns a Publisher on reg.
func New(reg *registry.Registry, opt Options) *Publisher {
	return &Publisher{reg: reg, opt: opt}
}

// Check returns what R:H holds, as the registry was asked while the
// project hashed: the skip check.
func (p *Publisher) Check(ctx context.Context, j *plan.Job) (digest.Digest, bool, error) {
	d, found, err := p.reg.HeadPrefetched(ctx, j.Refs.Image)
	if err != nil {
		return "", false, fmt.Errorf("checking whether %s exists: %w", j.Refs.Image, err)
	}
	return d, found, nil
}

// CacheResult is what became of a solve's caches.
type CacheResult struct {
	// Failures are the cache exports that failed: warnings, unless a
	// cache export is required.
	Failures []string
	// Reused is the manifest of R:cache-F the solve imported every
	// step from, exporting nothing of its own: R:cache-H is pointed at
	// it, as it is the cache an export would have written.
	Reused digest.Digest
}

// Publish runs a built service's registry steps under --push, with what
// became of its caches. After a solve that pushed R:H: check R:H,
// attach the record, move R:cache-F and then R:F, in one registry
// session. After a solve for an output only (inRegistry, what R:H held
// at the check): promote what R:H holds. Nothing moves when the solve's
// report is short of what publishing needs.
func (p *Publisher) Publish(ctx context.Context, j *plan.Job, res *outcome.Result, cache CacheResult, inRegistry digest.Digest) {
	if len(cache.Failures) > 0 {
		res.Warn(cache.Failures...)
		if p.opt.RequireCacheExport {
			res.Fail(fmt.Errorf("exporting the cache of %s failed and %w: %s; %s not moved", j.Refs.Image, ErrCacheExportRequired, strings.Join(cache.Failures, "; "), j.Refs.Floating))
			return
		}
	}
	if inRegistry != "" {
		res.Digest = inRegistry // R:H was there, and stays as it was
		if err := p.Promote(ctx, j, inRegistry, res); err != nil {
			res.Fail(err)
		}
		return
	}
	if res.Digest == "" {
		res.Fail(fmt.Errorf("pushing %s: buildkitd reported no image digest", j.Refs.Image))
		return
	}
	p.publish(ctx, j, res, cache)
}

// publish checks the R:H a solve pushed, attaches the record and moves
// the floating tags.
func (p *Publisher) publish(ctx context.Context, j *plan.Job, res *outcome.Result, cache CacheResult) {
	refs := j.Refs
	reg := p.reg.Session(ctx)
	// BuildKit reports no byte counts for a registry cache export: record
	// the size of the cache it wrote, as the registry lists it, read
	// while R:H is checked. A reused cache is pointed at instead.
	var sizes sync.WaitGroup
	var reuseErr error
	switch {
	case cache.Reused != "":
		sizes.Go(func() { reuseErr = reuseCache(ctx, reg, refs, cache.Reused, res) })
	case len(cache.Failures) == 0:
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
	if reuseErr != nil {
		res.Warn(reuseErr.Error())
	}
	switch {
	case err != nil:
		res.Fail(fmt.Errorf("checking the push of %s: %w; %s not moved", refs.Image, err, refs.Floating))
		return
	case !found:
		res.Fail(fmt.Errorf("pushing %s: buildkitd reported %s but the registry has no such tag; %s not moved", refs.Image, res.Digest, refs.Floating))
		return
	case got != res.Digest:
		res.Warn(fmt.Sprintf("%s was pushed again by another build of the same inputs while this one ran: it holds %s, not this build's %s", refs.Image, got, res.Digest))
		res.Digest = got
	}
	attach := func() error { return p.attach(ctx, reg, j, res) }
	if err := p.settle(ctx, reg, refs, res.Digest, attach, res); err != nil {
		res.Fail(err)
	}
}

// attach stores the service's record on its image in the registry, so
// that the floating tag carries it once it moves there.
func (p *Publisher) attach(ctx context.Context, reg *registry.Registry, j *plan.Job, res *outcome.Result) error {
	if !p.opt.Attach {
		return nil
	}
	doc, err := p.opt.Recorder.document(j, res)
	if err != nil {
		return fmt.Errorf("recording the manifest of %s: %w", j.Refs.Image, err)
	}
	if err := reg.Attach(ctx, j.Refs.Repository.Digest(res.Digest.String()), record.ArtifactType, doc, time.Now()); err != nil {
		return fmt.Errorf("attaching the manifest to %s: %w", j.Refs.Image, err)
	}
	return nil
}

// Promote gives a service whose R:H was already there every name a
// build would have given it: its compose tags, then R:cache-F and R:F,
// at what R:H and R:cache-H hold. Nothing moves that is there already.
// An R:H pushed by a run stopped before it attached its record gets it
// now: R:F never names an image without one.
func (p *Publisher) Promote(ctx context.Context, j *plan.Job, d digest.Digest, res *outcome.Result) error {
	refs := j.Refs
	reg := p.reg.Session(ctx)
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
	attach := func() error {
		if !p.opt.Attach {
			return nil
		}
		has, err := hasRecord(ctx, reg, refs.Repository.Digest(d.String()))
		if err != nil {
			return fmt.Errorf("reading the manifests attached to %s: %w", refs.Image, err)
		}
		if has {
			return nil
		}
		return p.attach(ctx, reg, j, res)
	}
	return p.settle(ctx, reg, refs, d, attach, res)
}

// settle attaches the record (attach, which may find it there) and
// moves R:cache-F and R:F to the image d: a failed attach moves nothing.
// The reads the moves need (R:cache-H, the manifest at d) go out with
// the attach, and the two moves together, so that a promotion takes two
// round trips to the registry where it took six; with a cache export
// required, R:F moves only after R:cache-F.
func (p *Publisher) settle(ctx context.Context, reg *registry.Registry, refs plan.Refs, d digest.Digest, attach func() error, res *outcome.Result) error {
	var (
		wg                 sync.WaitGroup
		attachErr          error
		image, cache       registry.Manifest
		imageErr, cacheErr error
		cacheFound         bool
	)
	wg.Go(func() { attachErr = attach() })
	wg.Go(func() { image, _, imageErr = reg.Fetch(ctx, refs.Repository.Digest(d.String())) })
	wg.Go(func() { cache, cacheFound, cacheErr = reg.Fetch(ctx, refs.Cache) })
	wg.Wait()
	if attachErr != nil {
		return fmt.Errorf("%w; %s not moved", attachErr, refs.Floating)
	}
	if imageErr != nil {
		return fmt.Errorf("moving %s: %w", refs.Floating, imageErr)
	}
	if cacheErr != nil {
		cacheErr = fmt.Errorf("reading %s: %w", refs.Cache, cacheErr)
	}
	moveCache := func() {
		if cacheFound { // and so read without an error
			if err := reg.Put(ctx, cache, refs.CacheFloat.Tag); err != nil {
				cacheErr = fmt.Errorf("moving %s: %w", refs.CacheFloat, err)
			}
		}
	}
	if p.opt.RequireCacheExport {
		// R:F moves only once R:cache-F has.
		if moveCache(); cacheErr != nil {
			return fmt.Errorf("%w (%w); %s not moved", cacheErr, ErrCacheExportRequired, refs.Floating)
		}
		return moveFloating(ctx, reg, refs, image, res)
	}
	// Otherwise the two move at once. The cache is an optimisation:
	// failing to move R:cache-F costs the next build its cache, not
	// correctness, so it is a warning; R:F's failure leaves R:cache-F at
	// the cache of newer inputs, which costs nothing.
	var moved sync.WaitGroup
	moved.Go(moveCache)
	err := moveFloating(ctx, reg, refs, image, res)
	moved.Wait()
	if cacheErr != nil {
		res.Warn(cacheErr.Error())
	}
	return err
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

// moveFloating points R:F at image, the manifest R:H held when checked
// (read by digest) and the record was attached to. By digest, never by
// R:H: another run may push R:H again meanwhile, an image of the same
// inputs without its record yet.
func moveFloating(ctx context.Context, reg *registry.Registry, refs plan.Refs, image registry.Manifest, res *outcome.Result) error {
	if err := reg.Put(ctx, image, refs.Floating.Tag); err != nil {
		return fmt.Errorf("moving %s: %w", refs.Floating, err)
	}
	res.Floating = refs.Floating.String()
	return nil
}

// reuseCache points R:cache-H at d, the manifest of R:cache-F the solve
// imported every step from, unless R:cache-H is there already (a
// forced rebuild of the same inputs): nothing new was exported.
func reuseCache(ctx context.Context, reg *registry.Registry, refs plan.Refs, d digest.Digest, res *outcome.Result) error {
	if _, found, err := reg.Head(ctx, refs.Cache); err == nil && found {
		res.CacheReused = refs.Cache.String()
		return nil
	}
	if err := reg.Copy(ctx, refs.Repository.Digest(d.String()), refs.Cache.Tag); err != nil {
		return fmt.Errorf("pointing %s at %s@%s, whose cache the build reused: %w (the next build of these inputs imports %s instead)", refs.Cache, refs.CacheFloat, d, err, refs.CacheFloat)
	}
	res.CacheReused = refs.CacheFloat.String() + "@" + d.String()
	return nil
}
