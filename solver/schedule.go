package solver

import (
	"context"
	"fmt"
	"sync"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

// schedule orders one Build: each job waits for the jobs its service:
// contexts name, then for one of a bounded number of slots (registry
// checks and publishing are bounded here; solves, per node).
type schedule struct {
	results []*outcome.Result
	byName  map[string]*outcome.Result
	jobs    map[string]*plan.Job
	done    map[string]chan struct{}
	needed  map[string]bool // services others depend on
	slots   chan struct{}
	// ready closes when a job's dependents may start: when the solve
	// has pushed its image (see pushed), or when the job is done.
	ready map[string]chan struct{}
	mu    sync.Mutex
	early map[string]depImage // the image pushed, for those readied by it
}

func newSchedule(p *plan.Plan, slots int) *schedule {
	s := &schedule{byName: map[string]*outcome.Result{}, jobs: map[string]*plan.Job{}, done: map[string]chan struct{}{}, needed: dependedOn(p),
		slots: make(chan struct{}, slots), ready: map[string]chan struct{}{}, early: map[string]depImage{}}
	for _, j := range p.Jobs {
		r := &outcome.Result{Service: j.Name(), Hash: j.Inputs.Tag(), Image: j.Refs.Image.String()}
		s.results = append(s.results, r)
		s.byName[j.Name()] = r
		s.jobs[j.Name()] = j
		s.done[j.Name()] = make(chan struct{})
		s.ready[j.Name()] = make(chan struct{})
	}
	return s
}

// pushed is told each manifest a solve of service pushed, as BuildKit's
// progress names it (REF@DIGEST). The first that is the job's R:H readies
// the services that read it: they start from R:H@DIGEST while this
// solve still exports its cache, which BuildKit does after, or beside,
// the push (see Build).
func (s *schedule) pushed(service, ref string, d digest.Digest) {
	// Only the services others read are readied early (each is a job:
	// the plan checks that every service: context names one).
	if !s.needed[service] || !sameTag(ref, s.jobs[service].Refs.Image.Tag) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.ready[service]:
		return // readied by an earlier push, or done
	default:
	}
	j := s.jobs[service]
	s.early[service] = depImage{Ref: j.Refs.Image.String() + "@" + d.String(), Digest: d}
	close(s.ready[service])
}

// sameTag reports whether ref, as BuildKit spells a pushed name, is tag.
func sameTag(ref string, tag name.Tag) bool {
	t, err := name.NewTag(ref)
	return err == nil && t.Name() == tag.Name()
}

// finished marks service done, and ready if its push had not readied
// it.
func (s *schedule) finished(service string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, early := s.early[service]; !early {
		close(s.ready[service])
	}
	close(s.done[service])
}

// repushed warns, on a job its push readied, when R:H ends at another
// image (a retry of its solve pushed again, or another run of the same
// inputs did): its dependents read the first.
func (s *schedule) repushed(res *outcome.Result) {
	s.mu.Lock()
	im, early := s.early[res.Service]
	s.mu.Unlock()
	if early && res.Digest != "" && res.Digest != im.Digest {
		res.Warn(fmt.Sprintf("the services that read %s through service: contexts started from %s, the image its solve pushed first; %s holds %s since", res.Service, im.Ref, res.Image, res.Digest))
	}
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
		case <-s.ready[d]:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
		im, early := s.early[d]
		s.mu.Unlock()
		if early {
			deps[d] = im
			continue
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
