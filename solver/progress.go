package solver

import (
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// stepCounter forwards a solve's status updates to the shared progress
// channel, naming each vertex after its service so that interleaved
// output stays attributable, and counts the steps that ran and that
// came from cache.
type stepCounter struct {
	service string
	out     chan<- *client.SolveStatus
	steps   map[digest.Digest]*client.Vertex
	// cached remembers vertices BuildKit loaded from cache. A step loaded
	// lazily from a registry cache is reported cached first, then again,
	// uncached, while its layers are pulled for a later step.
	cached map[digest.Digest]bool
}

func newStepCounter(service string, out chan<- *client.SolveStatus) *stepCounter {
	return &stepCounter{service: service, out: out, steps: map[digest.Digest]*client.Vertex{}, cached: map[digest.Digest]bool{}}
}

// run consumes in until it is closed (BuildKit's Solve closes it).
func (s *stepCounter) run(in <-chan *client.SolveStatus) {
	for st := range in {
		for _, v := range st.Vertexes {
			s.steps[v.Digest] = v
			if v.Cached {
				s.cached[v.Digest] = true
			}
		}
		if s.out == nil {
			continue
		}
		cp := *st
		cp.Vertexes = make([]*client.Vertex, len(st.Vertexes))
		for i, v := range st.Vertexes {
			vv := *v
			vv.Name = "[" + s.service + "] " + v.Name
			cp.Vertexes[i] = &vv
		}
		s.out <- &cp
	}
}

// cacheTime sums how long BuildKit spent importing and exporting cache,
// from its own vertex timestamps ("importing cache manifest from ...",
// "exporting cache to ...").
func (s *stepCounter) cacheTime() (importing, exporting time.Duration) {
	for _, v := range s.steps {
		if v.Started == nil || v.Completed == nil {
			continue
		}
		d := v.Completed.Sub(*v.Started)
		switch {
		case strings.HasPrefix(v.Name, "importing cache manifest"):
			importing += d
		case strings.HasPrefix(v.Name, "exporting cache"):
			exporting += d
		}
	}
	return importing, exporting
}

// counts returns the completed steps and those of them that were cached.
func (s *stepCounter) counts() (cached, total int) {
	for _, v := range s.steps {
		if v.Completed == nil {
			continue
		}
		total++
		if s.cached[v.Digest] {
			cached++
		}
	}
	return cached, total
}
