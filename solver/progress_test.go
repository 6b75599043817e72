package solver

import (
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

func TestStepCounter(t *testing.T) {
	now := time.Now()
	v := func(d string, cached, done bool) *client.Vertex {
		vx := &client.Vertex{Digest: digest.FromString(d), Name: d, Cached: cached}
		if done {
			vx.Completed = &now
		}
		return vx
	}
	in := make(chan *client.SolveStatus, 8)
	out := make(chan *client.SolveStatus, 8)
	// "lazy" is loaded from a registry cache (cached), then reported again
	// uncached while its layers are pulled; "run" executes; "open" never
	// completes.
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{v("lazy", true, true), v("run", false, false)}}
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{v("lazy", false, true), v("run", false, true), v("open", false, false)}}
	close(in)
	c := newStepCounter("api", out)
	c.run(in)
	if cached, total := c.counts(); cached != 1 || total != 2 {
		t.Fatalf("counts = %d/%d, want 1/2", cached, total)
	}
	first := <-out
	if first.Vertexes[0].Name != "[api] lazy" {
		t.Fatalf("forwarded name %q", first.Vertexes[0].Name)
	}
}

func TestCacheIO(t *testing.T) {
	t0 := time.Unix(100, 0)
	t1 := t0.Add(250 * time.Millisecond)
	exp := &client.Vertex{Digest: digest.FromString("exp"), Name: "exporting cache to registry", Started: &t0, Completed: &t1}
	in := make(chan *client.SolveStatus, 2)
	in <- &client.SolveStatus{
		Vertexes: []*client.Vertex{exp},
		Statuses: []*client.VertexStatus{{ID: "writing layer a", Vertex: exp.Digest, Total: 100, Current: 50}},
	}
	in <- &client.SolveStatus{Statuses: []*client.VertexStatus{
		{ID: "writing layer a", Vertex: exp.Digest, Total: 100, Current: 100},
		{ID: "writing layer b", Vertex: exp.Digest, Current: 7},
	}}
	close(in)
	c := newStepCounter("s", nil)
	c.run(in)
	imp, ex := c.cacheIO()
	if ex.Duration != 250*time.Millisecond || ex.Bytes != 107 || imp != (cacheIO{}) {
		t.Fatalf("import %+v export %+v", imp, ex)
	}
}
