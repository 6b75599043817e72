package solver

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	"github.com/bkcache/bkcache/solver/record"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/moby/buildkit/solver/errdefs"
	"github.com/moby/buildkit/solver/pb"
)

// TestMissCause: a step that ran although nothing it depends on changed
// gets the first cause bkcache can see, in this order: --no-cache, a
// cache import that failed, no cache imported, a mode=min cache the only
// one imported (for a step outside the final stage), and otherwise a
// different cache key.
func TestMissCause(t *testing.T) {
	const df = "FROM busybox AS deps\nRUN true\nFROM busybox AS app\nCOPY --from=deps / /\n"
	job := func(mut func(*plan.Job)) *plan.Job {
		j := plantest.Job(t, "127.0.0.1:1/p/app", testHash, &compose.Service{Name: "s", Image: "127.0.0.1:1/p/app"})
		j.Inputs.Dockerfile.Content = df
		if mut != nil {
			mut(j)
		}
		return j
	}
	own := func(j *plan.Job) plan.CacheEntry {
		return plan.CacheEntry{CacheEntry: compose.CacheEntry{Type: "registry"}, Ref: j.Refs.CacheFloat.Tag, Own: true}
	}
	shared := plan.CacheEntry{CacheEntry: compose.CacheEntry{Type: "registry", Attrs: map[string]string{"ref": "127.0.0.1:1/shared:cache"}}, Ref: rt.Ref(t, "127.0.0.1:1/shared:cache")}
	minTo := func(mode string) func(*plan.Job) {
		return func(j *plan.Job) {
			to := shared
			to.Attrs = map[string]string{"ref": "127.0.0.1:1/shared:cache"}
			if mode != "" {
				to.Attrs["mode"] = mode
			}
			j.CacheTo = []plan.CacheEntry{to}
		}
	}
	for _, tc := range []struct {
		name     string
		mut      func(*plan.Job)
		imports  func(*plan.Job) []plan.CacheEntry
		failures []string
		stage    string
		want     string
	}{
		{"no-cache", func(j *plan.Job) { j.NoCache = true }, nil, []string{"importing cache manifest from x: boom"}, "deps", "ran without cache"},
		{"a failed import", nil, func(j *plan.Job) []plan.CacheEntry { return []plan.CacheEntry{own(j)} }, []string{"cache import from x skipped: 503"}, "deps", "importing the cache failed: cache import from x skipped: 503"},
		{"nothing imported", nil, nil, nil, "deps", "no cache was imported: the registry holds no 127.0.0.1:1/p/app:cache-"},
		{"a mode=min cache alone", minTo("min"), func(*plan.Job) []plan.CacheEntry { return []plan.CacheEntry{shared} }, nil, "deps", "exported with mode=min"},
		{"a cache_to without a mode is min", minTo(""), func(*plan.Job) []plan.CacheEntry { return []plan.CacheEntry{shared} }, nil, "deps", "exported with mode=min"},
		{"mode=min keeps the final stage", minTo("min"), func(*plan.Job) []plan.CacheEntry { return []plan.CacheEntry{shared} }, nil, "app", "different cache key"},
		{"mode=max", minTo("max"), func(*plan.Job) []plan.CacheEntry { return []plan.CacheEntry{shared} }, nil, "deps", "different cache key"},
		{"own cache beside a mode=min one", minTo("min"), func(j *plan.Job) []plan.CacheEntry { return []plan.CacheEntry{own(j), shared} }, nil, "deps", "different cache key"},
		{"the target is the final stage", func(j *plan.Job) { minTo("min")(j); j.Inputs.Target = "deps" }, func(*plan.Job) []plan.CacheEntry { return []plan.CacheEntry{shared} }, nil, "deps", "different cache key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := job(tc.mut)
			var imports []plan.CacheEntry
			if tc.imports != nil {
				imports = tc.imports(j)
			}
			got := missCause(j, imports, tc.failures, nil)(record.Step{Stage: tc.stage, Line: 2})
			if !strings.Contains(got, tc.want) {
				t.Errorf("cause %q, want it to say %q", got, tc.want)
			}
			// With the daemon's keys to ask, a different cache key is
			// theirs to explain, and only that: what bkcache sees
			// itself comes first.
			keyed := missCause(j, imports, tc.failures, func(s record.Step) string { return fmt.Sprintf("the keys of line %d", s.Line) })
			want := tc.want
			if want == "different cache key" {
				want = "the keys of line 2"
			}
			if got := keyed(record.Step{Stage: tc.stage, Line: 2}); !strings.Contains(got, want) {
				t.Errorf("with keys, cause %q, want it to say %q", got, want)
			}
		})
	}
}

// TestErrorAt: a failed solve is placed on the innermost Dockerfile
// source BuildKit attached to its error that has a line: in the
// service's Dockerfile, or for an inline Dockerfile (or one the service
// does not name) in the file BuildKit names.
func TestErrorAt(t *testing.T) {
	src := func(file string, ranges ...*pb.Range) *errdefs.Source {
		return &errdefs.Source{Info: &pb.SourceInfo{Filename: file}, Ranges: ranges}
	}
	at := func(line int32) *pb.Range { return &pb.Range{Start: &pb.Position{Line: line}} }
	wrap := func(srcs ...*errdefs.Source) error {
		err := errors.New("process did not complete successfully")
		for _, s := range srcs {
			err = errdefs.WithSource(err, s)
		}
		return err
	}
	for _, tc := range []struct {
		name string
		svc  compose.Service
		err  error
		want string // file:line, or "" for none
	}{
		{"the service's Dockerfile", compose.Service{Dockerfile: "/p/app/Dockerfile.ci"}, wrap(src("Dockerfile", at(7))), "/p/app/Dockerfile.ci:7"},
		{"an inline Dockerfile", compose.Service{Dockerfile: "/p/app/Dockerfile", DockerfileInline: "FROM x"}, wrap(src("Dockerfile", at(2))), "Dockerfile:2"},
		{"no Dockerfile named", compose.Service{}, wrap(src("Dockerfile", at(3))), "Dockerfile:3"},
		{"the innermost source with a line", compose.Service{Dockerfile: "D"}, wrap(&errdefs.Source{Ranges: []*pb.Range{at(9)}}, src("D"), src("D", &pb.Range{}), src("D", at(4)), src("D", at(1))), "D:4"},
		{"no source", compose.Service{Dockerfile: "D"}, errors.New("boom"), ""},
		{"a source without a line", compose.Service{Dockerfile: "D"}, wrap(src("D")), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := plantest.Job(t, "127.0.0.1:1/p/app", testHash, &tc.svc)
			got := ""
			if l := errorAt(j, tc.err); l != nil {
				got = fmt.Sprintf("%s:%d", l.File, l.Line)
			}
			if got != tc.want {
				t.Errorf("errorAt = %q, want %q", got, tc.want)
			}
		})
	}
}
