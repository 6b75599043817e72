package history

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/solver/record"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
)

// The fixtures are a real build's, on the sandbox's buildkitd, of
//
//	1 FROM busybox AS deps
//	2 COPY a.txt /a.txt
//	3 RUN cat /a.txt > /b
//	4
//	5 FROM deps
//	6 RUN echo two \
//	7   > /c
//	8 COPY --from=deps /b /d
//
// for linux/amd64 and linux/arm64: the provenance BuildKit's history
// kept (one per platform), and the completed vertices of its progress,
// cold (every step ran) and then warm (every step from cache). Each
// build has vertices of its own: a local source's digest is the
// session's.

func readJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// progress reads vertices as the step counter keeps them: the last
// report of each, and whether any report said cached.
func progress(t *testing.T, name string) (map[digest.Digest]*client.Vertex, map[digest.Digest]bool) {
	var vs []*client.Vertex
	readJSON(t, name, &vs)
	last, cached := map[digest.Digest]*client.Vertex{}, map[digest.Digest]bool{}
	for _, v := range vs {
		last[v.Digest] = v
		cached[v.Digest] = cached[v.Digest] || v.Cached
	}
	return last, cached
}

func TestSteps(t *testing.T) {
	lines := []record.Step{
		{Stage: "deps", Line: 2, Instruction: "COPY a.txt /a.txt"},
		{Stage: "deps", Line: 3, Instruction: "RUN cat /a.txt > /b"},
		{Stage: "stage-1", Line: 6, Instruction: "RUN echo two   > /c"},
		{Stage: "stage-1", Line: 8, Instruction: "COPY --from=deps /b /d"},
	}
	for _, tc := range []struct {
		build  string
		status string
	}{
		{"cold", record.StepRan},
		{"warm", record.StepCached},
	} {
		t.Run(tc.build, func(t *testing.T) {
			var provs []*Provenance
			readJSON(t, "provenance-"+tc.build+".json", &provs)
			vs, cached := progress(t, "vertices-"+tc.build+".json")
			got := Steps(provs, vs, cached)
			if len(got) != len(lines) {
				t.Fatalf("steps %+v, want lines 2, 3, 6 and 8", got)
			}
			for i, s := range got {
				want := lines[i]
				want.Status, want.DurationMs = tc.status, s.DurationMs
				if s != want || s.DurationMs < 0 {
					t.Errorf("step %d: %+v, want %+v", i, s, want)
				}
			}
			// A RUN takes time on each platform: its vertices' summed.
			if tc.status == record.StepRan && got[1].DurationMs != runMs(vs, "RUN cat /a.txt > /b") {
				t.Errorf("line 3 took %d ms, its vertices %d", got[1].DurationMs, runMs(vs, "RUN cat /a.txt > /b"))
			}
		})
	}
}

// TestStepsMerge: a line runs once per platform; it ran if either
// platform's vertex ran, and its time is both vertices'. A vertex the
// progress never completed is no step, and a provenance without a
// Dockerfile source places none.
func TestStepsMerge(t *testing.T) {
	var provs []*Provenance
	readJSON(t, "provenance-warm.json", &provs)
	vs, cached := progress(t, "vertices-warm.json")
	var armCopy, amdRun digest.Digest
	for d, v := range vs {
		switch v.Name {
		case "[linux/arm64 deps 2/3] COPY a.txt /a.txt":
			armCopy = d
		case "[linux/amd64 stage-1 1/2] RUN echo two   > /c":
			amdRun = d
		}
	}
	if armCopy == "" || amdRun == "" {
		t.Fatal("the fixture changed: no arm64 COPY or amd64 RUN")
	}
	delete(cached, armCopy) // arm64 ran line 2, amd64 took it from cache
	// amd64's line 6 never completed: not a step that ran, though not
	// reported cached either.
	vs[amdRun] = &client.Vertex{}
	delete(cached, amdRun)
	got := Steps(provs, vs, cached)
	if len(got) != 4 || got[0].Line != 2 || got[0].Status != record.StepRan || got[2].Line != 6 || got[2].Status != record.StepCached {
		t.Errorf("steps %+v: want line 2 ran (one platform did) and line 6 cached (from the platform that completed it)", got)
	}
	provs[0].RunDetails.Metadata.BuildKitMetadata.Source.Infos[0].Language = "Markdown"
	provs[1].RunDetails.Metadata.BuildKitMetadata.Source.Infos[0].Language = "Markdown"
	if got := Steps(provs, vs, cached); len(got) != 0 {
		t.Errorf("steps without a Dockerfile source: %+v", got)
	}
}

// runMs sums the time of the vertices whose name ends in instruction.
func runMs(vs map[digest.Digest]*client.Vertex, instruction string) int64 {
	var ms int64
	for _, v := range vs {
		if strings.HasSuffix(v.Name, "] "+instruction) && v.Started != nil && v.Completed != nil {
			ms += v.Completed.Sub(*v.Started).Milliseconds()
		}
	}
	return ms
}

// TestStepsPlacement: only a completed vertex that the provenance
// places on a line of the Dockerfile source is a step; a provenance
// short of a build config, metadata or a source map places none.
func TestStepsPlacement(t *testing.T) {
	fresh := func() ([]*Provenance, map[digest.Digest]*client.Vertex, map[digest.Digest]bool) {
		var provs []*Provenance
		readJSON(t, "provenance-cold.json", &provs)
		vs, cached := progress(t, "vertices-cold.json")
		return provs, vs, cached
	}
	provs, vs, cached := fresh()
	if n := len(Steps(provs, vs, cached)); n != 4 {
		t.Fatalf("%d steps from the fixture, want 4", n)
	}
	locations := func(p []*Provenance, each func(*pb.Location)) {
		for _, pr := range p {
			for _, l := range pr.RunDetails.Metadata.BuildKitMetadata.Source.Locations {
				for _, loc := range l.Locations {
					each(loc)
				}
			}
		}
	}
	for _, tc := range []struct {
		name  string
		spoil func([]*Provenance, map[digest.Digest]*client.Vertex)
		want  int
	}{
		{"a vertex the progress never sent", func(_ []*Provenance, vs map[digest.Digest]*client.Vertex) {
			for d, v := range vs {
				if strings.Contains(v.Name, "COPY a.txt") {
					delete(vs, d)
				}
			}
		}, 3},
		{"the Dockerfile is the second source", func(p []*Provenance, _ map[digest.Digest]*client.Vertex) {
			for _, pr := range p {
				src := pr.RunDetails.Metadata.BuildKitMetadata.Source
				src.Infos = append([]SourceInfo{{Filename: "main.go", Language: "Go"}}, src.Infos...)
			}
			locations(p, func(l *pb.Location) { l.SourceIndex++ })
		}, 4},
		{"locations in another source", func(p []*Provenance, _ map[digest.Digest]*client.Vertex) {
			locations(p, func(l *pb.Location) { l.SourceIndex++ })
		}, 0},
		{"locations without ranges", func(p []*Provenance, _ map[digest.Digest]*client.Vertex) {
			locations(p, func(l *pb.Location) { l.Ranges = nil })
		}, 0},
		{"ranges without a start", func(p []*Provenance, _ map[digest.Digest]*client.Vertex) {
			locations(p, func(l *pb.Location) {
				for _, r := range l.Ranges {
					r.Start = nil
				}
			})
		}, 0},
		{"no build config", func(p []*Provenance, _ map[digest.Digest]*client.Vertex) {
			for _, pr := range p {
				pr.BuildDefinition.InternalParameters.BuildConfig = nil
			}
		}, 0},
		{"no metadata", func(p []*Provenance, _ map[digest.Digest]*client.Vertex) {
			for _, pr := range p {
				pr.RunDetails.Metadata = nil
			}
		}, 0},
		{"no source map", func(p []*Provenance, _ map[digest.Digest]*client.Vertex) {
			for _, pr := range p {
				pr.RunDetails.Metadata.BuildKitMetadata.Source = nil
			}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			provs, vs, cached := fresh()
			tc.spoil(provs, vs)
			if got := Steps(provs, vs, cached); len(got) != tc.want {
				t.Errorf("%d steps %+v, want %d", len(got), got, tc.want)
			}
		})
	}
}
