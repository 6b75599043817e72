// Package solver builds compose services on buildkitd: it skips a service
// whose image for its input hash is already in the registry, otherwise
// solves its Dockerfile with registry cache keyed by the hash and by a
// floating tag, pushes the image and moves the floating tag only after
// everything succeeded. It is the only package that talks to buildkitd
// or a registry.
package solver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	"github.com/moby/buildkit/util/grpcerrors"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/grpc/codes"
)

// Status is the outcome of one service.
type Status string

// Outcomes of a service's build.
const (
	Built     Status = "built"
	Skipped   Status = "skipped"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// Options control a build.
type Options struct {
	Push      bool   // export cache, push images, move the floating tag
	Force     bool   // build even when R:H exists
	Floating  string // floating tag, default "ci"
	Parallel  int    // services solved at once per node; <= 0 means 4
	KeepGoing bool   // let other services finish when one fails
	// Repository overrides each service's image repository with
	// Repository/SERVICE.
	Repository string
	// Progress receives status updates of every solve, vertex names
	// prefixed with the service; nil discards them. Never closed here.
	Progress chan<- *client.SolveStatus
	// CacheFallback lists floating tags whose caches are also imported
	// (R:cache-TAG), in order, after R:cache-H and R:cache-Floating: a
	// branch build (--ci-tag ci-feature) reusing the main line's (ci).
	CacheFallback []string
	// Outputs sends the named services' images to this machine too. A
	// service with an output is solved even when R:H exists.
	Outputs map[string]Output
	// RequireCacheExport fails a service whose cache export failed; by
	// default that is a warning and the image is pushed all the same.
	RequireCacheExport bool
	// Attempts is how many times a solve failing on a transient registry
	// error is tried in all; <= 0 means DefaultAttempts.
	Attempts int
	// Record, when set, turns a pushed service's result into the manifest
	// attached to its image before the floating tag moves.
	Record func(Job, *Result) ([]byte, error)
}

// Job is one service to build, with its computed inputs.
type Job struct {
	Service *compose.Service
	Inputs  *inputs.Inputs
}

// Result is what happened to one service.
type Result struct {
	Service     string        `json:"service"`
	Status      Status        `json:"status"`
	Hash        string        `json:"hash"`
	Image       string        `json:"image"`
	Digest      digest.Digest `json:"digest,omitempty"`
	Floating    string        `json:"floating,omitempty"` // R:F, when moved or already there
	CachedSteps int           `json:"cachedSteps"`
	TotalSteps  int           `json:"totalSteps"`
	Duration    time.Duration `json:"duration"`
	Error       string        `json:"error,omitempty"`
	Node        string        `json:"node,omitempty"` // the buildkitd that solved it
	// CacheImports and CacheExports are the cache refs the solve used.
	CacheImports     []string `json:"cacheImports,omitempty"`
	CacheExports     []string `json:"cacheExports,omitempty"`
	CacheImportMs    int64    `json:"cacheImportMs,omitempty"`
	CacheExportMs    int64    `json:"cacheExportMs,omitempty"`
	CacheImportBytes int64    `json:"cacheImportBytes,omitempty"`
	CacheExportBytes int64    `json:"cacheExportBytes,omitempty"`
	// Warnings are what went wrong without failing the service: a cache
	// that could not be imported or exported, a retried attempt.
	Warnings []string `json:"warnings,omitempty"`
	err      error
	layout   string // OCI layout of a local (unpushed) build, for dependents
	// cacheExported says the solve's cache exports all succeeded.
	cacheExported bool
}

// Err returns the service's error, if it failed or was cancelled.
func (r *Result) Err() error { return r.err }

// Builder builds services on a pool of buildkitd nodes (often one).
type Builder struct {
	nodes    []*Node
	registry *Registry
	project  string
	opt      Options
}

// NewBuilder returns a Builder for project's services on nodes, each
// solving up to opt.Parallel services at once.
func NewBuilder(nodes []*Node, reg *Registry, project string, opt Options) *Builder {
	if opt.Floating == "" {
		opt.Floating = "ci"
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	if opt.Attempts <= 0 {
		opt.Attempts = DefaultAttempts
	}
	for _, n := range nodes {
		n.sem = make(chan struct{}, opt.Parallel)
	}
	return &Builder{nodes: nodes, registry: reg, project: project, opt: opt}
}

// ErrDependency reports a service not built because one it needs failed.
var ErrDependency = errors.New("a service it depends on did not build")

// Build builds jobs, which must list dependencies before dependents,
// running up to Parallel at once in the order service: contexts impose.
// It returns one Result per job, in job order, and an error when any
// service did not end built or skipped.
func (b *Builder) Build(ctx context.Context, jobs []Job) ([]*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make([]*Result, len(jobs))
	done := map[string]chan struct{}{}
	for i, j := range jobs {
		results[i] = &Result{Service: j.Service.Name, Hash: j.Inputs.Tag()}
		done[j.Service.Name] = make(chan struct{})
	}
	byName := map[string]*Result{}
	for _, r := range results {
		byName[r.Service] = r
	}
	// Without --push, a service that others read through service:
	// contexts is also exported to an OCI layout they can use.
	needed := map[string]bool{}
	for _, j := range jobs {
		for _, d := range j.Service.ServiceDeps() {
			needed[d] = true
		}
	}
	var layouts string
	if !b.opt.Push && len(needed) > 0 {
		var err error
		if layouts, err = os.MkdirTemp("", "bkcache-layouts-"); err != nil {
			return nil, err
		}
		defer os.RemoveAll(layouts)
	}
	// Registry checks and publishing are bounded here; solves, per node.
	sem := make(chan struct{}, b.opt.Parallel*len(b.nodes))
	var wg sync.WaitGroup
	for i, j := range jobs {
		res := results[i]
		wg.Go(func() {
			defer close(done[j.Service.Name])
			deps, err := waitDeps(ctx, j, done, byName)
			if err != nil {
				if ctx.Err() != nil {
					res.cancel(ctx.Err())
				} else {
					res.fail(err)
				}
				return
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				res.cancel(ctx.Err())
				return
			}
			defer func() { <-sem }()
			layout := ""
			if layouts != "" && needed[j.Service.Name] {
				layout = filepath.Join(layouts, sanitizeStoreID(j.Service.Name))
			}
			b.buildOne(ctx, j, deps, layout, res)
			if res.Status == Failed && !b.opt.KeepGoing {
				cancel()
			}
		})
	}
	wg.Wait()
	var failed []string
	for _, r := range results {
		if r.Status != Built && r.Status != Skipped {
			failed = append(failed, r.Service)
		}
	}
	if len(failed) > 0 {
		return results, fmt.Errorf("%d of %d services did not build: %v", len(failed), len(results), failed)
	}
	return results, nil
}

// waitDeps waits until the services j's service: contexts name are done
// and returns how each of their images reaches j's solve.
func waitDeps(ctx context.Context, j Job, done map[string]chan struct{}, results map[string]*Result) (map[string]depImage, error) {
	deps := map[string]depImage{}
	for _, d := range j.Service.ServiceDeps() {
		ch, ok := done[d]
		if !ok {
			return nil, fmt.Errorf("service %q is needed for a service: context but was not selected", d)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		dr := results[d]
		switch {
		case dr.Status != Built && dr.Status != Skipped:
			return nil, fmt.Errorf("%w: %s is %s", ErrDependency, d, dr.Status)
		case dr.layout != "":
			deps[d] = depImage{Layout: dr.layout, Digest: dr.Digest}
		default:
			deps[d] = depImage{Ref: dr.Image + "@" + dr.Digest.String()}
		}
	}
	return deps, nil
}

// NoRepositoryError is the error for pushing, or looking up, services
// that name no registry repository (no image:, no --repository).
func NoRepositoryError(services ...string) error {
	if len(services) == 1 {
		return fmt.Errorf("service %q has no image: and no --repository was given, so it has no registry repository: give it one (for example image: ghcr.io/acme/%s) or pass --repository ghcr.io/acme", services[0], services[0])
	}
	return fmt.Errorf("services %s have no image: and no --repository was given, so they have no registry repository: give each an image: (for example image: ghcr.io/acme/%s) or pass --repository ghcr.io/acme", strings.Join(services, ", "), services[0])
}

func (r *Result) fail(err error) {
	r.Status, r.err, r.Error = Failed, err, err.Error()
}

func (r *Result) warn(w ...string) {
	r.Warnings = append(r.Warnings, w...)
}

func (r *Result) cancel(err error) {
	r.Status, r.err, r.Error = Cancelled, err, "cancelled: "+err.Error()
}

func (b *Builder) buildOne(ctx context.Context, j Job, deps map[string]depImage, layout string, res *Result) {
	start := time.Now()
	defer func() { res.Duration = time.Since(start).Round(time.Millisecond) }()
	repo := j.Service.Repository(b.project, b.opt.Repository)
	refs := NewRefs(repo, j.Inputs.Tag(), b.opt.Floating)
	res.Image = refs.Image

	// A service without a registry repository (no image:, no --repository)
	// builds from buildkitd's own cache: there is nothing to look up.
	local := !j.Service.HasRepository(b.opt.Repository)
	if local && b.opt.Push {
		res.fail(NoRepositoryError(j.Service.Name))
		return
	}
	out, hasOutput := b.opt.Outputs[j.Service.Name]
	if !b.opt.Force && !hasOutput && !local {
		d, found, err := b.registry.Head(ctx, refs.Image)
		if err != nil {
			res.fail(fmt.Errorf("checking whether %s exists: %w", refs.Image, err))
			return
		}
		if found {
			res.Status, res.Digest = Skipped, d
			if b.opt.Push {
				if err := b.promote(ctx, refs, d, res); err != nil {
					res.fail(err)
				}
			}
			return
		}
	}

	// --load of an image the engine already has under its hash: the same
	// inputs, so the same image; only its compose names are (re)applied.
	// Not when a dependent needs this build's layout, or with --push.
	if hasOutput && out.Type == "load" && !b.opt.Force && !b.opt.Push && layout == "" &&
		inEngine(ctx, refs.Image, engineAliases(j.Service, b.project, refs.Image)) {
		res.Status = Skipped
		return
	}

	for _, f := range b.opt.CacheFallback {
		refs.Fallbacks = append(refs.Fallbacks, refs.Repository+":cache-"+f)
	}
	req := &solveRequest{svc: j.Service, project: b.project, refs: refs, push: b.opt.Push, local: local, deps: deps, registry: b.registry, layout: layout}
	if hasOutput {
		req.output = &out
	}
	so, cleanup, err := req.solveOpt()
	defer cleanup()
	if err != nil {
		res.fail(err)
		return
	}
	var warnings []string
	so.CacheImports, warnings = b.checkImports(ctx, so.CacheImports)
	res.warn(warnings...)
	res.CacheImports, res.CacheExports = cacheRefs(so.CacheImports), cacheRefs(so.CacheExports)
	a := b.solveOnNodes(ctx, j.Service.Name, so, res)
	res.CachedSteps, res.TotalSteps = a.counter.counts()
	imp, exp := a.counter.cacheIO()
	res.CacheImportMs, res.CacheExportMs = imp.Duration.Milliseconds(), exp.Duration.Milliseconds()
	res.CacheImportBytes, res.CacheExportBytes = imp.Bytes, exp.Bytes
	res.warn(a.counter.failed("importing cache manifest")...)
	if a.err != nil {
		if ctx.Err() != nil {
			res.cancel(ctx.Err())
			return
		}
		if grpcerrors.Code(a.err) == codes.Unavailable {
			res.fail(fmt.Errorf("building %s: the connection to buildkitd was lost during the solve (did it stop or restart? its log says why); %s was not moved: %w", refs.Image, refs.Floating, a.err))
			return
		}
		res.fail(fmt.Errorf("building %s: %w", refs.Image, a.err))
		return
	}
	b.finish(ctx, j, refs, a.resp, a.counter.failed("exporting cache"), layout, res)
}

// finish takes a service from a successful solve to its end state:
// cacheFailures are the solve's failed cache exports. With --push the
// image is published; nothing moves when the solve's report is short of
// what publishing needs.
func (b *Builder) finish(ctx context.Context, j Job, refs Refs, resp *client.SolveResponse, cacheFailures []string, layout string, res *Result) {
	res.cacheExported = len(cacheFailures) == 0
	if len(cacheFailures) > 0 {
		res.warn(cacheFailures...)
		if b.opt.RequireCacheExport {
			res.fail(fmt.Errorf("exporting the cache of %s failed and --require-cache-export is set: %s; %s not moved", refs.Image, strings.Join(cacheFailures, "; "), refs.Floating))
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
	if b.opt.Push {
		if res.Digest == "" {
			res.fail(fmt.Errorf("pushing %s: buildkitd reported no image digest", refs.Image))
			return
		}
		b.publish(ctx, j, refs, res)
	}
}

// publish runs a pushed service's registry steps: check R:H, attach the
// manifest, move R:cache-F and then R:F. They share one registry
// session.
func (b *Builder) publish(ctx context.Context, j Job, refs Refs, res *Result) {
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
	if err := b.attach(ctx, reg, j, refs, res); err != nil {
		res.fail(fmt.Errorf("%w; %s not moved", err, refs.Floating))
		return
	}
	if err := b.moveFloating(ctx, reg, refs, moveCache(ctx, reg, refs), res); err != nil {
		res.fail(err)
	}
}

// attach stores the service's manifest on its image in the registry, so
// that the floating tag carries it once it moves there.
func (b *Builder) attach(ctx context.Context, reg *Registry, j Job, refs Refs, res *Result) error {
	if b.opt.Record == nil {
		return nil
	}
	doc, err := b.opt.Record(j, res)
	if err != nil {
		return fmt.Errorf("recording the manifest of %s: %w", refs.Image, err)
	}
	if err := reg.Attach(ctx, refs.Repository+"@"+res.Digest.String(), doc, time.Now()); err != nil {
		return fmt.Errorf("attaching the manifest to %s: %w", refs.Image, err)
	}
	return nil
}

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

// promote points R:F and R:cache-F at what R:H and R:cache-H hold, for a
// service whose R:H was already there; nothing moves when R:F is there
// too.
func (b *Builder) promote(ctx context.Context, refs Refs, d digest.Digest, res *Result) error {
	reg := b.registry.Session(ctx)
	cur, found, err := reg.Head(ctx, refs.Floating)
	if err != nil {
		return fmt.Errorf("reading %s: %w", refs.Floating, err)
	}
	if found && cur == d {
		res.Floating = refs.Floating
		return nil
	}
	return b.moveFloating(ctx, reg, refs, moveCache(ctx, reg, refs), res)
}

// moveFloating points R:F at R:H, after R:cache-F was moved (cacheErr
// says how that went). The cache is an optimisation: failing to move
// R:cache-F costs the next build its cache, not correctness, so it is a
// warning unless --require-cache-export asks otherwise.
func (b *Builder) moveFloating(ctx context.Context, reg *Registry, refs Refs, cacheErr error, res *Result) error {
	if cacheErr != nil {
		if b.opt.RequireCacheExport {
			return fmt.Errorf("%w (--require-cache-export); %s not moved", cacheErr, refs.Floating)
		}
		res.warn(cacheErr.Error())
	}
	if err := reg.Copy(ctx, refs.Image, refs.Floating); err != nil {
		return fmt.Errorf("moving %s: %w", refs.Floating, err)
	}
	res.Floating = refs.Floating
	return nil
}

// moveCache points R:cache-F at R:cache-H when there is one.
func moveCache(ctx context.Context, reg *Registry, refs Refs) error {
	_, ok, err := reg.Head(ctx, refs.Cache)
	if err != nil {
		return fmt.Errorf("reading %s: %w", refs.Cache, err)
	}
	if !ok {
		return nil
	}
	if err := reg.Copy(ctx, refs.Cache, refs.CacheFloat); err != nil {
		return fmt.Errorf("moving %s: %w", refs.CacheFloat, err)
	}
	return nil
}
