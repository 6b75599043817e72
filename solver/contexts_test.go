package solver

import (
	"context"
	iofs "io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/solver/pb"
	"github.com/tonistiigi/fsutil"
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

// group is the group that sends j's source name, or nil.
func group(sends map[*plan.Job][]send, j *plan.Job, name string) *contextGroup {
	for _, s := range sends[j] {
		if s.name == name {
			return s.group
		}
	}
	return nil
}

// TestContextGroups: the sources of a run's services that are one
// directory with the same excludes (as the build context or as an
// additional context) form one group, sent the paths of those that solve.
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
	named := contextJob("named", "/elsewhere", ignore, "x")
	named.Service.Contexts = map[string]compose.Context{"mono": {Kind: compose.LocalContext, Source: "/repo"}, "img": {Kind: compose.ImageContext, Source: "busybox"}}
	named.Inputs.Sources = append(named.Inputs.Sources,
		inputs.Source{Name: "mono", Excludes: ignore, Patterns: []dockerfile.Pattern{{Path: "tools"}}},
		inputs.Source{Name: "img", Patterns: []dockerfile.Pattern{{Path: "y"}}})

	sends := groupContexts([]*plan.Job{a, b, c, own, other, none, remote, named})
	g := group(sends, a, "context")
	if g == nil || group(sends, b, "context") != g || group(sends, c, "context") != g {
		t.Fatal("services reading one directory with the same excludes are not one group")
	}
	if group(sends, named, "mono") != g || group(sends, named, "context") != group(sends, other, "context") {
		t.Error("an additional context of the same directory is not in the directory's group")
	}
	if o := group(sends, own, "context"); o == g || o == nil || group(sends, other, "context") == g {
		t.Error("other excludes or another directory share a group")
	}
	if len(sends[none]) != 0 || len(sends[remote]) != 0 || group(sends, named, "img") != nil {
		t.Error("a source that is no local directory has a group")
	}

	skip(b, sends[b])
	lc := g.context()
	if want := []string{"lib", "services/a", "services/c", "tools"}; !slices.Equal(lc.paths, want) {
		t.Errorf("paths %q, want %q: those of every member not skipped, once each, sorted", lc.paths, want)
	}
	skip(c, sends[c])
	if again := g.context(); again != lc {
		t.Error("a group's context changed after its first solve: the solves would no longer share it")
	}
	if lc.dir != "/repo" || !slices.Equal(lc.excludes, ignore) {
		t.Errorf("context %+v: want /repo with the ignore file's excludes", lc)
	}

	whole := contextJob("whole", "/repo", ignore)
	sends = groupContexts([]*plan.Job{a, whole})
	if p := group(sends, a, "context").context().paths; p != nil {
		t.Errorf("a member that reads the whole directory leaves paths %q", p)
	}
}

// TestWithContext: a solve takes its sources as frontend inputs, through
// the node's session for each directory: the build context by its name,
// an additional context through "input:", the other attrs as they were.
func TestWithContext(t *testing.T) {
	repo, lib := t.TempDir(), t.TempDir()
	for _, dir := range []string{repo, lib} {
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(dir)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n := &Node{contexts: newContextSessions(nil)}
	sessions := map[string]*session.Session{}
	for _, dir := range []string{repo, lib} {
		s, err := session.NewSession(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		n.contexts.live[dir], sessions[dir] = s, s
	}
	group := func(dir string) *contextGroup {
		return &contextGroup{dir: dir, paths: map[member][]string{}, skipped: map[*plan.Job]bool{}}
	}
	own, err := fsutil.NewFS(repo)
	if err != nil {
		t.Fatal(err)
	}
	so := &client.SolveOpt{FrontendAttrs: map[string]string{"target": "t"}, LocalMounts: map[string]fsutil.FS{"context": own}}
	if got, _ := n.withContext(so, nil); got != so {
		t.Error("a solve without local sources was changed")
	}
	got, err := n.withContext(so, []send{{"context", group(repo)}, {"mono", group(lib)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.FrontendInputs) != 2 || got.FrontendAttrs["context:mono"] != "input:mono" || got.FrontendAttrs["target"] != "t" {
		t.Errorf("inputs %v, attrs %v", slices.Collect(maps.Keys(got.FrontendInputs)), got.FrontendAttrs)
	}
	if _, ok := got.FrontendAttrs["context:context"]; ok || len(so.FrontendAttrs) != 1 || len(so.LocalMounts) != 1 {
		t.Errorf("attrs %v, the solve's own %v and mounts %v", got.FrontendAttrs, so.FrontendAttrs, so.LocalMounts)
	}
	// Each source is read through its directory's shared session, under
	// a name that the solve's own session serves with the same directory
	// (buildkitd's fallback), never under "context", which there is the
	// service's build context.
	for name, dir := range map[string]string{"context": repo, "mono": lib} {
		def, err := got.FrontendInputs[name].Marshal(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		src := sourceOp(t, def.Def)
		if id := src.Attrs[pb.AttrLocalSessionID]; id != sessions[dir].ID() {
			t.Errorf("%s read through session %q, want its directory's %q", name, id, sessions[dir].ID())
		}
		local := strings.TrimPrefix(src.Identifier, "local://")
		if fs := got.LocalMounts[local]; fs == nil || !holds(t, fs, filepath.Base(dir)) {
			t.Errorf("%s read as %q, which the solve's own session does not serve as %s", name, local, dir)
		}
	}
	if got.LocalMounts["context"] != own {
		t.Error("the solve's own build context mount was dropped")
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
	if src.Identifier != "local://"+sourceName("/repo") || sourceName("/repo") == sourceName("/elsewhere") {
		t.Errorf("identifier %q: want the directory's own name", src.Identifier)
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

// holds reports whether fs has a file called name at its root.
func holds(t *testing.T, fs fsutil.FS, name string) bool {
	t.Helper()
	found := false
	err := fs.Walk(context.Background(), "", func(p string, _ iofs.DirEntry, err error) error {
		found = found || p == name
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
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
