package solver

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/moby/buildkit/solver/pb"
)

// contextJob is a job whose Dockerfile reads paths of its local context
// dir (nil: all of it) with the ignore file's excludes.
func contextJob(name, dir string, excludes []string, paths ...string) *plan.Job {
	src := inputs.Source{Name: dockerfile.MainContext, Excludes: excludes, Whole: paths == nil}
	for _, p := range paths {
		src.Patterns = append(src.Patterns, dockerfile.Pattern{Path: p})
	}
	return &plan.Job{
		Service: &compose.Service{Name: name, Context: compose.Context{Kind: compose.LocalContext, Source: dir}},
		Inputs:  &inputs.Inputs{Service: name, Sources: []inputs.Source{src}},
	}
}

// TestContextGroups: the services that read one directory with the same
// excludes form one group, sent the paths of those that solve.
func TestContextGroups(t *testing.T) {
	ignore := []string{"*.log"}
	a := contextJob("a", "/repo", ignore, "lib", "services/a")
	b := contextJob("b", "/repo", ignore, "lib", "services/b")
	c := contextJob("c", "/repo", ignore, "lib", "services/c")
	own := contextJob("own-ignore", "/repo", []string{"secret"}, "lib")
	other := contextJob("other-dir", "/elsewhere", ignore, "lib")
	none := contextJob("reads-nothing", "/repo", ignore)
	none.Inputs.Sources = nil
	remote := contextJob("remote", "https://example.com/r.git", nil, "x")
	remote.Service.Context.Kind = compose.RemoteContext

	groups := groupContexts([]*plan.Job{a, b, c, own, other, none, remote})
	if groups[a] == nil || groups[a] != groups[b] || groups[a] != groups[c] {
		t.Fatal("services reading one directory with the same excludes are not one group")
	}
	if groups[own] == groups[a] || groups[other] == groups[a] || groups[own] == nil || groups[other] == nil {
		t.Error("other excludes or another directory share a group")
	}
	if groups[none] != nil || groups[remote] != nil {
		t.Error("a service that reads no local context has a group")
	}

	groups[b].skip(b)
	lc := groups[a].context(a)
	if want := []string{"lib", "services/a", "services/c"}; !slices.Equal(lc.paths, want) {
		t.Errorf("paths %q, want %q: those of every member not skipped, once each, sorted", lc.paths, want)
	}
	groups[c].skip(c)
	if again := groups[c].context(c); again != lc {
		t.Error("a group's context changed after its first solve: the solves would no longer share it")
	}
	if lc.dir != "/repo" || !slices.Equal(lc.excludes, ignore) {
		t.Errorf("context %+v: want /repo with the ignore file's excludes", lc)
	}
	if groups[none].context(none) != nil {
		t.Error("a job without a group has a context")
	}

	whole := contextJob("whole", "/repo", ignore)
	groups = groupContexts([]*plan.Job{a, whole})
	if p := groups[a].context(a).paths; p != nil {
		t.Errorf("a member that reads the whole directory leaves paths %q", p)
	}
}

// TestContextState: every solve of a group gets the same local source
// (what lets buildkitd run it once for all), through the shared session,
// with the group's paths and excludes; the copy buildkitd keeps is named
// by the excludes alone, so a run solving other services of the group
// brings the same copy up to date.
func TestContextState(t *testing.T) {
	lc := &localContext{dir: "/repo", excludes: []string{"*.log"}, paths: []string{"lib", "services/a"}}
	def1, err := lc.state("session-1").Marshal(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	def2, _ := lc.state("session-1").Marshal(context.Background())
	if !slices.EqualFunc(def1.Def, def2.Def, func(x, y []byte) bool { return string(x) == string(y) }) {
		t.Fatal("two solves of a group get different sources")
	}
	src := sourceOp(t, def1.Def)
	if src.Identifier != "local://context" {
		t.Errorf("identifier %q", src.Identifier)
	}
	for k, want := range map[string]string{
		pb.AttrLocalSessionID:   "session-1",
		pb.AttrFollowPaths:      `["lib","services/a"]`,
		pb.AttrExcludePatterns:  `["*.log"]`,
		pb.AttrSharedKeyHint:    lc.hint(),
		pb.AttrIncludePatterns:  "",
		pb.AttrMetadataTransfer: "",
	} {
		if got := src.Attrs[k]; got != want {
			t.Errorf("attr %s = %q, want %q", k, got, want)
		}
	}
	others := &localContext{dir: "/repo", excludes: lc.excludes, paths: []string{"lib"}}
	if others.hint() != lc.hint() {
		t.Error("the kept copy's name depends on the paths")
	}
	if (&localContext{excludes: []string{"secret"}}).hint() == lc.hint() || !strings.HasPrefix(lc.hint(), "bkcache:") {
		t.Error("another ignore file names the same copy")
	}
}

func sourceOp(t *testing.T, def [][]byte) *pb.SourceOp {
	t.Helper()
	for _, dt := range def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		if s := op.GetSource(); s != nil {
			return s
		}
	}
	t.Fatal("no source op in the definition")
	return nil
}
