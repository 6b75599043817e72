package solver

import (
	"context"
	"fmt"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
)

// schedule orders one Build: each job waits for the jobs its service:
// contexts name, then for one of a bounded number of slots (registry
// checks and publishing are bounded here; solves, per node).
type schedule struct {
	results []*outcome.Result
	byName  map[string]*outcome.Result
	done    map[string]chan struct{}
	needed  map[string]bool // services others depend on
	slots   chan struct{}
}

func newSchedule(p *plan.Plan, slots int) *schedule {
	s := &schedule{byName: map[string]*outcome.Result{}, done: map[string]chan struct{}{}, needed: dependedOn(p), slots: make(chan struct{}, slots)}
	for _, j := range p.Jobs {
		r := &outcome.Result{Service: j.Name(), Hash: j.Inputs.Tag(), Image: j.Refs.Image.String()}
		s.results = append(s.results, r)
		s.byName[j.Name()] = r
		s.done[j.Name()] = make(chan struct{})
	}
	return s
}

// dependedOn is the set of services some job reads through a service:
// context.
func dependedOn(p *plan.Plan) map[string]bool {
	needed := map[string]bool{}
	for _, j := range p.Jobs {
		for _, d := range j.Deps {
			needed[d] = true
		}
	}
	return needed
}

// acquire waits for j's dependencies and a slot, and returns how each
// dependency's image reaches j's solve.
func (s *schedule) acquire(ctx context.Context, j *plan.Job) (map[string]depImage, error) {
	deps := map[string]depImage{}
	for _, d := range j.Deps {
		select {
		case <-s.done[d]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		dr := s.byName[d]
		switch {
		case dr.Status != outcome.Built && dr.Status != outcome.Skipped:
			return nil, fmt.Errorf("%w: %s is %s", ErrDependency, d, dr.Status)
		case dr.Layout != "":
			deps[d] = depImage{Layout: dr.Layout, Digest: dr.Digest}
		default:
			deps[d] = depImage{Ref: dr.Image + "@" + dr.Digest.String()}
		}
	}
	select {
	case s.slots <- struct{}{}:
		return deps, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *schedule) release() { <-s.slots }

// follow waits for the job that makes the same image as j and reports
// its outcome as j's.
func (s *schedule) follow(ctx context.Context, j *plan.Job, res *outcome.Result) {
	select {
	case <-s.done[j.SameAs]:
	case <-ctx.Done():
		res.Cancel(ctx.Err())
		return
	}
	res.Follow(s.byName[j.SameAs])
}

// err says which services did not end built or skipped.
func (s *schedule) err() error {
	var failed []string
	for _, r := range s.results {
		if r.Status != outcome.Built && r.Status != outcome.Skipped {
			failed = append(failed, r.Service)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d services did not build: %v", len(failed), len(s.results), failed)
	}
	return nil
}
