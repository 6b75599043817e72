package solver

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bkcache/bkcache/solver/outcome"
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
	vx := func(name string, cached bool) *client.Vertex {
		return &client.Vertex{Digest: digest.FromString(name), Name: name, Cached: cached, Started: &t0, Completed: &t1}
	}
	exp := vx("exporting cache to registry", false)
	push := vx("exporting to image", false)
	imp := vx("importing cache manifest from r/app:cache-ci", false)
	// A step loaded from cache whose layers are pulled for a later step,
	// as BuildKit v0.33.1 reports it; a FROM and an image context pull
	// from images; a step that ran pulls nothing from the cache.
	copied := vx("[build 2/3] COPY src/ /src/", true)
	from := vx("[build 1/3] FROM docker.io/library/busybox:latest", true)
	context := vx("[context base] r/base:abc", true)
	ran := vx("[build 3/3] RUN make", false)
	layer := func(v *client.Vertex, id string, total int64) *client.VertexStatus {
		return &client.VertexStatus{ID: id, Vertex: v.Digest, Total: total, Current: total}
	}
	in := make(chan *client.SolveStatus, 2)
	in <- &client.SolveStatus{
		Vertexes: []*client.Vertex{exp, imp, copied, from, context, ran, push},
		Statuses: []*client.VertexStatus{
			layer(copied, "sha256:aaa", 1148924), layer(copied, "extracting sha256:aaa", 1148924),
			layer(from, "sha256:bbb", 500), layer(context, "sha256:ccc", 700), layer(ran, "sha256:ddd", 900),
			layer(exp, "writing layer sha256:eee", 0),
		},
	}
	in <- &client.SolveStatus{Statuses: []*client.VertexStatus{layer(copied, "sha256:fff", 180)}}
	close(in)
	c := newStepCounter("s", nil)
	c.run(in)
	i, e := c.cacheIO()
	if i != (cacheIO{Duration: 250 * time.Millisecond, Bytes: 1148924 + 180}) || e != (cacheIO{Duration: 250 * time.Millisecond}) {
		t.Fatalf("import %+v export %+v", i, e)
	}
	if p := c.pushing(); p != 250*time.Millisecond {
		t.Errorf("pushing %s, want the image export's 250ms alone", p)
	}
}

// TestExporting: the image's export and push, and the wall time they
// and the cache export took together, as BuildKit v0.33.1 reports them
// (the image exporter's vertex sent again, restarted, for the push it
// runs beside the cache export) and as older ones did (in turn).
func TestExporting(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms int) *time.Time { x := t0.Add(time.Duration(ms) * time.Millisecond); return &x }
	vx := func(name string, start, end int) *client.Vertex {
		v := &client.Vertex{Digest: digest.FromString(name), Name: name, Started: at(start)}
		if end >= 0 {
			v.Completed = at(end)
		}
		return v
	}
	const img, cache = "exporting to image", "exporting cache to registry"
	for _, c := range []struct {
		name              string
		updates           [][]*client.Vertex
		pushing, together time.Duration
	}{
		{"v0.33: the push beside the cache export", [][]*client.Vertex{
			{vx(img, 0, -1)}, {vx(img, 0, 700)}, {vx(img, 700, -1), vx(cache, 700, -1)},
			{vx(img, 700, 1100)}, {vx(cache, 700, 1150)},
		}, 1100 * time.Millisecond, 1150 * time.Millisecond},
		{"in turn", [][]*client.Vertex{{vx(img, 0, 500)}, {vx(cache, 500, 800)}}, 500 * time.Millisecond, 800 * time.Millisecond},
		{"a gap between them", [][]*client.Vertex{{vx(img, 0, 100)}, {vx(cache, 200, 300)}}, 100 * time.Millisecond, 200 * time.Millisecond},
		{"the cache export inside the push", [][]*client.Vertex{{vx(img, 0, 900)}, {vx(cache, 100, 300)}}, 900 * time.Millisecond, 900 * time.Millisecond},
		{"no push: a local build's cache export only", [][]*client.Vertex{{vx(cache, 100, 300)}, {vx("[build 1/2] RUN make", 0, 100)}}, 0, 200 * time.Millisecond},
		{"an export still running counts nothing", [][]*client.Vertex{{vx(img, 0, -1)}}, 0, 0},
	} {
		// The steps are a map: its order changes from run to run.
		for range 20 {
			in := make(chan *client.SolveStatus, len(c.updates))
			for _, vs := range c.updates {
				in <- &client.SolveStatus{Vertexes: vs}
			}
			close(in)
			sc := newStepCounter("s", nil)
			sc.run(in)
			if p, e := sc.pushing(), sc.exporting(); p != c.pushing || e != c.together {
				t.Fatalf("%s: pushing %s, together %s; want %s, %s", c.name, p, e, c.pushing, c.together)
			}
		}
	}
}

// TestStepCounterTail: the tail has each step's start and end once,
// however often BuildKit sends the step again, its output line by line,
// and no more than LogLines lines.
func TestStepCounterTail(t *testing.T) {
	now := time.Now()
	vx := func(name string, cached bool, done bool, errText string) *client.Vertex {
		v := &client.Vertex{Digest: digest.FromString(name), Name: name, Started: &now, Cached: cached, Error: errText}
		if done {
			v.Completed = &now
		}
		return v
	}
	c := newStepCounter("api", nil)
	in := make(chan *client.SolveStatus, 8)
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{vx("COPY a", true, true, ""), vx("RUN make", false, false, "")}}
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{vx("COPY a", true, true, "")},
		Logs: []*client.VertexLog{{Vertex: digest.FromString("RUN make"), Data: []byte("cc main.c\nerror: x\n")}}}
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{vx("RUN make", false, true, "exit code: 2")}}
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{vx("RUN make", false, true, "exit code: 2")}}
	close(in)
	c.run(in)
	want := []string{"COPY a", "CACHED COPY a", "RUN make", "  cc main.c", "  error: x", "ERROR RUN make: exit code: 2"}
	if !slices.Equal(c.tail, want) {
		t.Errorf("tail:\n%q\nwant\n%q", c.tail, want)
	}
	for i := range 2 * LogLines {
		c.keep(fmt.Sprint(i))
	}
	if len(c.tail) != LogLines || c.tail[LogLines-1] != fmt.Sprint(2*LogLines-1) {
		t.Errorf("after many lines the tail holds %d, ending %q", len(c.tail), c.tail[len(c.tail)-1])
	}
}

// TestReportImportFailures: a cache import BuildKit reports failed is a
// warning and an import failure, which the step check names as the
// cause of misses; a failed cache export is neither.
func TestReportImportFailures(t *testing.T) {
	now := time.Now()
	vx := func(name, errText string) *client.Vertex {
		return &client.Vertex{Digest: digest.FromString(name), Name: name, Started: &now, Completed: &now, Error: errText}
	}
	in := make(chan *client.SolveStatus, 1)
	in <- &client.SolveStatus{Vertexes: []*client.Vertex{
		vx("importing cache manifest from r/app:cache-ci", "unexpected EOF"),
		vx("exporting cache to registry", "403 Forbidden"),
		vx("importing cache manifest from r/app:cache-abc", ""),
	}}
	close(in)
	c := newStepCounter("s", nil)
	c.run(in)
	var res outcome.Result
	c.report(&res)
	want := []string{"importing cache manifest from r/app:cache-ci: unexpected EOF"}
	if !slices.Equal(res.ImportFailures, want) || !slices.Equal(res.Warnings, want) {
		t.Errorf("import failures %q, warnings %q; want %q for both", res.ImportFailures, res.Warnings, want)
	}
}

// TestPushedManifest: the status BuildKit's push writes once an image's
// manifests are in the registry names the ref and digest pushed; nothing
// else does, nor that status before it completes.
func TestPushedManifest(t *testing.T) {
	now := time.Now()
	d := digest.FromString("image")
	for _, c := range []struct {
		id        string
		completed bool
		ref       string
		ok        bool
	}{
		{"pushing manifest for 127.0.0.1:5000/p/app:abc@" + d.String(), true, "127.0.0.1:5000/p/app:abc", true},
		{"pushing manifest for docker.io/library/app:abc@" + d.String(), true, "docker.io/library/app:abc", true},
		{"pushing manifest for 127.0.0.1:5000/p/app:abc@" + d.String(), false, "", false}, // still pushing
		{"pushing layers", true, "", false},
		{"pushing manifest for 127.0.0.1:5000/p/app:abc", true, "", false},           // no digest
		{"pushing manifest for " + d.String(), true, "", false},                      // a digest, but no name
		{"pushing manifest for 127.0.0.1:5000/p/app:abc@sha256:zz", true, "", false}, // not a digest
		{"exporting manifest " + d.String(), true, "", false},
	} {
		vs := &client.VertexStatus{ID: c.id}
		if c.completed {
			vs.Completed = &now
		}
		ref, got, ok := pushedManifest(vs)
		if ok != c.ok || ref != c.ref || (ok && got != d) {
			t.Errorf("%q (completed %v): %q %s %v, want %q %v", c.id, c.completed, ref, got, ok, c.ref, c.ok)
		}
	}

	// The step counter tells what was pushed, as it comes.
	var told []string
	sc := newStepCounter("s", nil)
	sc.pushed = func(ref string, d digest.Digest) { told = append(told, ref+"@"+d.String()) }
	in := make(chan *client.SolveStatus, 2)
	id := "pushing manifest for r/app:h@" + d.String()
	in <- &client.SolveStatus{Statuses: []*client.VertexStatus{{ID: id, Started: &now}}}
	in <- &client.SolveStatus{Statuses: []*client.VertexStatus{{ID: id, Started: &now, Completed: &now}}}
	close(in)
	sc.run(in)
	if len(told) != 1 || told[0] != "r/app:h@"+d.String() {
		t.Errorf("told %q", told)
	}
}
