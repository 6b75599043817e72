// Package solver executes a plan on buildkitd: each service is checked
// (by package publish, in the registry; or in the Docker engine), solved
// on buildkitd with registry cache keyed by the hash and by a floating
// tag, and handed to publish, which moves the floating tag only after
// everything succeeded. It schedules the solves over a pool of nodes in
// the order service: contexts impose. It talks to buildkitd, never to a
// registry itself.
package solver

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
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
	Done func(*outcome.Result)
	// Outputs sends the named services' images to this machine too. A
	// service with an output is solved even when R:H exists.
	Outputs map[string]Output
	// Attempts is how many times a solve failing on a transient registry
	// error is tried in all; <= 0 means DefaultAttempts.
	Attempts int
}

// Builder builds a plan's jobs on a pool of buildkitd nodes (often one).
type Builder struct {
	pool *Pool
	sems map[*Node]chan struct{} // solves at once, per node
	pub  *publish.Publisher
	opt  Options
	// pushed is told each manifest a service's solve pushed: the run's
	// schedule, set by Build.
	pushed func(service, ref string, d digest.Digest)
}

// NewBuilder returns a Builder on pool, each node solving up to
// opt.Parallel services at once, or as many as its workers take; pub
// does the registry's part.
func NewBuilder(pool *Pool, pub *publish.Publisher, opt Options) *Builder {
	if opt.Attempts <= 0 {
		opt.Attempts = DefaultAttempts
	}
	b := &Builder{pool: pool, sems: map[*Node]chan struct{}{}, pub: pub, opt: opt}
	for _, n := range pool.Nodes() {
		b.sems[n] = make(chan struct{}, b.perNode(n))
	}
	return b
}

// classic reports whether the run builds on a Docker engine with the
// classic image store: its BuildKit has neither an image exporter (the
// engine pushes) nor registry cache export or import.
func (b *Builder) classic() bool {
	e := b.pool.Engine()
	return e != nil && !e.Containerd
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
// in the order service: contexts impose. It returns one outcome.Result per job,
// in job order, and an error when any service did not end built or
// skipped.
func (b *Builder) Build(ctx context.Context, p *plan.Plan) ([]*outcome.Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	layouts, err := b.layoutsDir(p)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(layouts)
	s := newSchedule(p, b.width())
	b.pushed = s.pushed
	groups := groupContexts(p.Jobs)
	var wg sync.WaitGroup
	for i, j := range p.Jobs {
		res := s.results[i]
		wg.Go(func() {
			defer s.finished(j.Name())
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
				res.Stop(ctx, err)
				return
			}
			defer s.release()
			b.buildOne(ctx, j, groups[j], deps, layoutFor(layouts, j, s.needed), res)
			s.repushed(res)
			if res.Status == outcome.Failed && !b.opt.KeepGoing {
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
