package solver

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/bkcache/bkcache/solver/history"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/record"
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
	// sizes keeps the largest total BuildKit reported per status (a layer
	// written or pulled), by the vertex it belongs to.
	sizes map[digest.Digest]map[string]int64
	// tail is the end of the solve's output, as reports show it.
	tail []string
	// started and ended are the steps the tail has the start and the
	// end of: BuildKit sends a step again with each change of it.
	started, ended map[digest.Digest]bool
	// began is when each vertex first started. BuildKit v0.33 reports
	// its image exporter's vertex twice: the export, then, restarted,
	// the push, which runs beside the cache export.
	began map[digest.Digest]time.Time
	// pushed, when set, is told each manifest BuildKit has pushed.
	pushed func(ref string, d digest.Digest)
}

// LogLines is how much of a service's output its result keeps.
const LogLines = 50

func newStepCounter(service string, out chan<- *client.SolveStatus) *stepCounter {
	return &stepCounter{service: service, out: out, steps: map[digest.Digest]*client.Vertex{}, cached: map[digest.Digest]bool{},
		sizes: map[digest.Digest]map[string]int64{}, started: map[digest.Digest]bool{}, ended: map[digest.Digest]bool{},
		began: map[digest.Digest]time.Time{}}
}

// keep adds lines to the tail, dropping the oldest beyond LogLines.
func (s *stepCounter) keep(lines ...string) {
	s.tail = append(s.tail, lines...)
	if n := len(s.tail) - LogLines; n > 0 {
		s.tail = slices.Delete(s.tail, 0, n)
	}
}

// record keeps what st says in the tail: steps as they start (and
// whether from cache), their output, their errors.
func (s *stepCounter) record(st *client.SolveStatus) {
	for _, v := range st.Vertexes {
		if v.Started != nil && !s.started[v.Digest] {
			s.started[v.Digest] = true
			s.keep(v.Name)
		}
		if v.Completed == nil || s.ended[v.Digest] {
			continue
		}
		s.ended[v.Digest] = true
		switch {
		case v.Error != "":
			s.keep("ERROR " + v.Name + ": " + v.Error)
		case v.Cached:
			s.keep("CACHED " + v.Name)
		}
	}
	for _, l := range st.Logs {
		for _, line := range strings.Split(strings.TrimRight(string(l.Data), "\n"), "\n") {
			s.keep("  " + line)
		}
	}
}

// run consumes in until it is closed (BuildKit's Solve closes it).
func (s *stepCounter) run(in <-chan *client.SolveStatus) {
	for st := range in {
		s.record(st)
		for _, v := range st.Vertexes {
			s.steps[v.Digest] = v
			if _, ok := s.began[v.Digest]; !ok && v.Started != nil {
				s.began[v.Digest] = *v.Started
			}
			if v.Cached {
				s.cached[v.Digest] = true
			}
		}
		for _, vs := range st.Statuses {
			if s.pushed != nil {
				if ref, d, ok := pushedManifest(vs); ok {
					s.pushed(ref, d)
				}
			}
			m := s.sizes[vs.Vertex]
			if m == nil {
				m = map[string]int64{}
				s.sizes[vs.Vertex] = m
			}
			m[vs.ID] = max(m[vs.ID], vs.Total, vs.Current)
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

// pushedManifest reads a status BuildKit's push writes when it has
// pushed an image's manifests ("pushing manifest for REF@DIGEST",
// completed): the name pushed, as BuildKit spells it, and the digest.
func pushedManifest(vs *client.VertexStatus) (ref string, d digest.Digest, ok bool) {
	rest, found := strings.CutPrefix(vs.ID, "pushing manifest for ")
	at := strings.LastIndex(rest, "@")
	if !found || vs.Completed == nil || at < 0 {
		return "", "", false
	}
	d, err := digest.Parse(rest[at+1:])
	if err != nil {
		return "", "", false
	}
	return rest[:at], d, true
}

// cacheIO is the time and bytes spent on cache import or export.
type cacheIO struct {
	Duration time.Duration
	Bytes    int64
}

// cacheIO sums how long BuildKit spent importing and exporting cache,
// from its own vertices ("importing cache manifest from ...", "exporting
// cache to ..."), and the bytes of cache layers it pulled: the layer
// statuses (IDs "sha256:...") of steps it reported loaded from cache.
// BuildKit reports no byte counts for a registry cache export; the
// builder asks the registry for the exported cache's size instead.
func (s *stepCounter) cacheIO() (importing, exporting cacheIO) {
	for _, v := range s.steps {
		var io *cacheIO
		switch {
		case strings.HasPrefix(v.Name, "importing cache manifest"):
			io = &importing
		case isCacheExport(v):
			io = &exporting
		default:
			if s.cached[v.Digest] && !pullsImage(v.Name) {
				for id, n := range s.sizes[v.Digest] {
					if strings.HasPrefix(id, "sha256:") {
						importing.Bytes += n
					}
				}
			}
			continue
		}
		if start, end, ok := s.interval(v); ok {
			io.Duration += end.Sub(start)
		}
	}
	return importing, exporting
}

// interval is when a completed vertex ran: from its first start.
func (s *stepCounter) interval(v *client.Vertex) (start, end time.Time, ok bool) {
	if v.Completed == nil {
		return time.Time{}, time.Time{}, false
	}
	start, ok = s.began[v.Digest]
	return start, *v.Completed, ok
}

// isImageExport names the image and moby exporters' vertex, which
// exports the image and pushes (or stores) it.
func isImageExport(v *client.Vertex) bool { return v.Name == "exporting to image" }

// isCacheExport names a cache exporter's vertex.
func isCacheExport(v *client.Vertex) bool { return strings.HasPrefix(v.Name, "exporting cache") }

// pushing sums how long BuildKit spent exporting the image and pushing
// it ("exporting to image", from its export's start to its push's end).
func (s *stepCounter) pushing() time.Duration {
	var d time.Duration
	for _, v := range s.steps {
		if start, end, ok := s.interval(v); ok && isImageExport(v) {
			d += end.Sub(start)
		}
	}
	return d
}

// exporting is the wall time the image's export and push and the cache
// export took together: BuildKit v0.33 pushes the image while it exports
// the cache, so the two overlap, where older ones ran them in turn.
func (s *stepCounter) exporting() time.Duration {
	type span struct{ start, end time.Time }
	var spans []span
	for _, v := range s.steps {
		if start, end, ok := s.interval(v); ok && (isImageExport(v) || isCacheExport(v)) {
			spans = append(spans, span{start, end})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start.Compare(b.start) })
	var d time.Duration
	var reach time.Time // the end of the spans counted so far
	for _, sp := range spans {
		if sp.start.Before(reach) {
			sp.start = reach
		}
		if sp.end.After(sp.start) {
			d += sp.end.Sub(sp.start)
			reach = sp.end
		}
	}
	return d
}

// pullsImage reports whether a step (named as BuildKit's dockerfile
// frontend names it) is a FROM or an image context, whose layer pulls
// come from an image, not from the cache.
func pullsImage(name string) bool {
	return strings.Contains(name, "] FROM ") || strings.HasPrefix(name, "[context ") || strings.HasPrefix(name, "FROM ")
}

// dockerfileSteps reads how the solve ref ran the Dockerfile's steps,
// from the provenance buildkitd's history keeps of it.
func (s *stepCounter) dockerfileSteps(ctx context.Context, c *client.Client, ref string) ([]record.Step, error) {
	provs, err := history.Read(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	return history.Steps(provs, s.steps, s.cached), nil
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

// failed returns "name: error" for each step whose name starts with
// prefix and that ended in an error, sorted: how BuildKit reports a
// cache import or an ignore-error cache export that did not work.
func (s *stepCounter) failed(prefix string) []string {
	var out []string
	for _, v := range s.steps {
		if v.Error != "" && strings.HasPrefix(v.Name, prefix) {
			out = append(out, v.Name+": "+v.Error)
		}
	}
	slices.Sort(out)
	return out
}

// report puts what the solve's progress said into res: the end of its
// output, its steps, its cache import and export, and a cache import
// that failed.
func (s *stepCounter) report(res *outcome.Result) {
	res.Log = s.tail
	res.CachedSteps, res.TotalSteps = s.counts()
	imp, exp := s.cacheIO()
	res.CacheImportMs, res.CacheExportMs = imp.Duration.Milliseconds(), exp.Duration.Milliseconds()
	res.CacheImportBytes, res.CacheExportBytes = imp.Bytes, exp.Bytes
	res.PushMs, res.ExportMs = s.pushing().Milliseconds(), s.exporting().Milliseconds()
	res.ImportFailed(s.failed("importing cache manifest")...)
}
