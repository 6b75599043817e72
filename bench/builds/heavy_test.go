package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// TestBreakdown: each run of a vertex counts once, from its start to its
// end, however often BuildKit sends it: the image exporter's export and,
// restarted, its push; a step loaded from cache and, restarted, the pull
// of its layers.
func TestBreakdown(t *testing.T) {
	t0 := time.Unix(100, 0)
	at := func(ms int) *time.Time { x := t0.Add(time.Duration(ms) * time.Millisecond); return &x }
	vx := func(name string, start, end int, cached bool) *client.Vertex {
		v := &client.Vertex{Digest: digest.FromString(name), Name: name, Started: at(start), Cached: cached}
		if end >= 0 {
			v.Completed = at(end)
		}
		return v
	}
	var lines []string
	for _, vs := range [][]*client.Vertex{
		{vx("[internal] load build context", 0, 50, false)},
		{vx("[build 2/3] COPY --from=deps /deps /deps", 60, 60, true)},
		{vx("[build 3/3] RUN make", 60, -1, false)},
		{vx("[build 2/3] COPY --from=deps /deps /deps", 70, -1, false)}, // its layers pulled
		{vx("[build 2/3] COPY --from=deps /deps /deps", 70, 370, false)},
		{vx("[build 3/3] RUN make", 60, 1060, false)},
		{vx("exporting to image", 1100, -1, false)},
		{vx("exporting to image", 1100, 1300, false)},
		{vx("exporting to image", 1300, -1, false), vx("exporting cache to registry", 1300, -1, false)},
		{vx("exporting to image", 1300, 1400, false)},
		{vx("exporting cache to registry", 1300, 1700, false)},
	} {
		b, err := json.Marshal(client.SolveStatus{Vertexes: vs})
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
	}
	p := breakdown("#1 some text\n"+strings.Join(lines, "\n"), 2*time.Second)
	want := phases{wall: 2 * time.Second, context: 50 * time.Millisecond, steps: 1300 * time.Millisecond,
		image: 300 * time.Millisecond, cacheExport: 400 * time.Millisecond, own: 300 * time.Millisecond}
	if p != want {
		t.Errorf("breakdown\n got %+v\nwant %+v", p, want)
	}
}
