// Package solver executes a plan on buildkitd: it skips a service whose
// image for its input hash is already in the registry, otherwise solves
// its Dockerfile with registry cache keyed by the hash and by a floating
// tag, pushes the image and moves the floating tag only after everything
// succeeded, recording each service's manifest on the way. It schedules
// the solves over a pool of nodes in the order service: contexts impose.
package solver

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/manifest"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
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
	Push      bool // export cache, push images, move the floating tag
	Force     bool // build even when R:H exists
	Parallel  int  // services solved at once per node; <= 0: SolvesPerWorker per worker it reports
	KeepGoing bool // let other services finish when one fails
	// Progress receives status updates of every solve, vertex names
	// prefixed with the service; nil discards them. Never closed here.
	Progress chan<- *client.SolveStatus
	// ProgressOf, when set, gives each service a channel of its own
	// instead of Progress (to show each service's output apart).
	ProgressOf func(service string) chan<- *client.SolveStatus
	// Done, when set, is called with each service's result once it is
	// final, as soon as it is: after its last update was sent.
	Done func(*Result)
	// Outputs sends the named services' images to this machine too. A
	// service with an output is solved even when R:H exists.
	Outputs map[string]Output
	// RequireCacheExport fails a service whose cache export failed; by
	// default that is a warning and the image is pushed all the same.
	RequireCacheExport bool
	// Attempts is how many times a solve failing on a transient registry
	// error is tried in all; <= 0 means DefaultAttempts.
	Attempts int
	// Attach stores each pushed service's manifest on its image before
	// the floating tag moves, as Recorder writes it.
	Attach   bool
	Recorder Recorder
	// Explain compares each solved service's inputs with the manifest of
	// the image its floating tag names, into Result.Changes.
	Explain bool
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
	Duration    time.Duration `json:"-"` // as durationMs in JSON
	Error       string        `json:"error,omitempty"`
	Node        string        `json:"node,omitempty"` // the buildkitd that solved it
	// SameAs names the service whose build made this same image: this
	// one was not built again, and reports that one's outcome.
	SameAs string `json:"sameAs,omitempty"`
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
	// Start is when the service's turn came: its skip check.
	Start time.Time `json:"-"`
	// Log is the end of the service's build output (its steps, their
	// output and errors), at most LogLines lines.
	Log []string `json:"-"`
	// ErrorAt is where in the Dockerfile a failed build failed.
	ErrorAt *manifest.Location `json:"errorAt,omitempty"`
	// Changes is why a solved service rebuilt (with Options.Explain).
	Changes *manifest.Report `json:"-"`
	err     error
	layout  string // OCI layout of a local (unpushed) build, for dependents
	// cacheExported says the solve's cache exports all succeeded.
	cacheExported bool
	// inRegistry is what R:H held at the skip check of a --push run
	// that solves only for an output: R:H is not pushed again, and R:F
	// follows what it holds.
	inRegistry digest.Digest
}

// MarshalJSON writes the duration in milliseconds, the unit of every
// duration bkcache writes.
func (r *Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		*plain
		DurationMs int64 `json:"durationMs"`
	}{(*plain)(r), r.Duration.Milliseconds()})
}

// Err returns the service's error, if it failed or was cancelled.
func (r *Result) Err() error { return r.err }

func (r *Result) fail(err error) {
	r.Status, r.err, r.Error = Failed, err, err.Error()
}

func (r *Result) warn(w ...string) {
	r.Warnings = append(r.Warnings, w...)
}

func (r *Result) cancel(err error) {
	r.Status, r.err, r.Error = Cancelled, err, "cancelled: "+err.Error()
}

// Builder builds a plan's jobs on a pool of buildkitd nodes (often one).
type Builder struct {
	pool     *Pool
	sems     map[*Node]chan struct{} // solves at once, per node
	registry *registry.Registry
	opt      Options
}

// NewBuilder returns a Builder on pool, each node solving up to
// opt.Parallel services at once, or as many as its workers take.
func NewBuilder(pool *Pool, reg *registry.Registry, opt Options) *Builder {
	if opt.Attempts <= 0 {
		opt.Attempts = DefaultAttempts
	}
	b := &Builder{pool: pool, sems: map[*Node]chan struct{}{}, registry: reg, opt: opt}
	for _, n := range pool.Nodes() {
		b.sems[n] = make(chan struct{}, b.perNode(n))
	}
	return b
}

// perNode is how many services n solves at once.
func (b *Builder) perNode(n *Node) int {
	if b.opt.Parallel > 0 {
		return b.opt.Parallel
	}
	return n.capacity()
}

// width is how many services the whole pool solves at once.
func (b *Builder) width() int {
	w := 0
	for _, n := range b.pool.Nodes() {
		w += b.perNode(n)
	}
	return max(w, 1)
}

// ErrDependency reports a service not built because one it needs failed.
var ErrDependency = errors.New("a service it depends on did not build")

// Build builds the plan's jobs, running up to Parallel at once per node
// in the order service: contexts impose. It returns one Result per job,
// in job order, and an error when any service did not end built or
// skipped.
func (b *Builder) Build(ctx context.Context, p *plan.Plan) ([]*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	layouts, err := b.layoutsDir(p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(layouts)
	s := newSchedule(p, b.width())
	groups := groupContexts(p.Jobs)
	var wg sync.WaitGroup
	for i, j := range p.Jobs {
		res := s.results[i]
		wg.Go(func() {
			defer close(s.done[j.Name()])
			if b.opt.Done != nil {
				defer b.opt.Done(res)
			}
			if b.follows(j) {
				skip(j, groups[j])
				s.follow(ctx, j, res)
				return
			}
			deps, err := s.acquire(ctx, j)
			if err != nil {
				res.stop(ctx, err)
				return
			}
			defer s.release()
			b.buildOne(ctx, j, groups[j], deps, layoutFor(layouts, j, s.needed), res)
			if res.Status == Failed && !b.opt.KeepGoing {
				cancel()
			}
		})
	}
	wg.Wait()
	return s.results, s.err()
}

// follows reports whether j takes another job's result instead of
// building the same image again: not when either sends its image to
// this machine, which each needs of its own.
func (b *Builder) follows(j *plan.Job) bool {
	if j.SameAs == "" {
		return false
	}
	_, out := b.opt.Outputs[j.Name()]
	_, leaderOut := b.opt.Outputs[j.SameAs]
	return !out && !leaderOut
}

// layoutsDir is where, without --push, a service that others read
// through service: contexts is also exported as an OCI layout they can
// use; "" when there is none.
func (b *Builder) layoutsDir(p *plan.Plan) (string, error) {
	if b.opt.Push || len(dependedOn(p)) == 0 {
		return "", nil
	}
	return os.MkdirTemp("", "bkcache-layouts-")
}

func layoutFor(dir string, j *plan.Job, needed map[string]bool) string {
	if dir == "" || !needed[j.Name()] {
		return ""
	}
	return filepath.Join(dir, sanitizeStoreID(j.Name()))
}

// stop ends a result that never started: cancelled with the run, or
// failed for want of a dependency.
func (r *Result) stop(ctx context.Context, err error) {
	if ctx.Err() != nil {
		r.cancel(ctx.Err())
	} else {
		r.fail(err)
	}
}
