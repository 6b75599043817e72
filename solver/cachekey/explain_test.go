package cachekey

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The graphs in testdata are what buildkitd v0.33.1, started with
// --save-cache-debug, served for the project below: built and pushed
// (cache exported), then src/a.txt given to uid 1234 and built again
// with the cache imported (store-chown: the store after, load-chown:
// the imported cache's config loaded), then given back to root and built
// on a fresh daemon importing the cache of the uid 1234 build
// (store-fresh, load-fresh). store-many is the first daemon's store
// after more builds: src/a.txt given back to root, then to uid 4321
// (with the cache of the root build imported, as load-chown holds it).
// The session ids are those that sent each build's sources.
//
//	FROM 127.0.0.1:5055/library/busybox:ci AS base
//	WORKDIR /app
//	COPY src/ src/
//	ARG MODE=fast
//	RUN echo $MODE > mode && cat src/* > all
//	COPY late.txt .
//	RUN cat late.txt > copy
var ranSteps = []Step{
	{3, "COPY src/ src/"},
	{5, "RUN echo $MODE > mode && cat src/* > all"},
	{6, "COPY late.txt ."},
	{7, "RUN cat late.txt > copy"},
}

const (
	chownSession = "tg4vx3ql81cmoai11jb1q7ypl"
	firstSession = "ig4kuxwocgabh80zcz66ax4eu"
	freshSession = "d9w2swx2ma3z023lk0vp51b6t"
	manySession  = "po5okdyp6ogm4h0cs270t37i4"
)

func readGraph(t testing.TB, name string) *Graph {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Parse(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return g
}

const cascade3 = "BuildKit's cache key differs from the imported cache's because line 3's does"

// TestExplain: the part of each step's key that differed, placed on the
// step by its operation, for the captured builds and variants of them.
func TestExplain(t *testing.T) {
	owners := "BuildKit's cache key differs from the imported cache's in the files it reads: src/a.txt: uid 1234 (was 0), gid 1234 (was 0) (file owners enter"
	for _, tc := range []struct {
		name     string
		local    string
		imported func(t *testing.T) []*Graph
		session  string
		steps    []Step
		hidden   []string
		want     map[int]string // a prefix of each step's explanation
	}{
		{"owners changed, on the daemon that made the cache", "store-chown.json", loaded("load-chown.json"), chownSession, ranSteps, nil, map[int]string{
			3: owners,
			5: cascade3,
			6: "BuildKit's cache key differs from the imported cache's because line 5's does",
			7: "BuildKit's cache key differs from the imported cache's because line 6's does",
		}},
		{"owners changed, on a fresh daemon", "store-fresh.json", loaded("load-fresh.json"), freshSession, ranSteps, nil, map[int]string{
			3: "BuildKit's cache key differs from the imported cache's in the files it reads (BuildKit's checksum sha256:39f1d68ebfb7, was sha256:69881225a59c); the cache was made on another daemon",
			5: cascade3,
			6: "BuildKit's cache key differs from the imported cache's because line 5's does",
			7: "BuildKit's cache key differs from the imported cache's because line 6's does",
		}},
		{"a store of several builds of the same steps", "store-many.json", loaded("load-chown.json"), manySession, ranSteps, nil, map[int]string{
			3: "BuildKit's cache key differs from the imported cache's in the files it reads: src/a.txt: uid 4321 (was 0), gid 4321 (was 0)",
			5: cascade3,
			6: "BuildKit's cache key differs from the imported cache's because line 5's does",
			7: "BuildKit's cache key differs from the imported cache's because line 6's does",
		}},
		{"the cache's plaintexts from this daemon's own store", "store-chown.json", func(t *testing.T) []*Graph { return []*Graph{stripped(t, "load-chown.json")} }, chownSession, ranSteps[:1], nil, map[int]string{
			3: owners,
		}},
		{"two caches imported, one of them this build's", "store-chown.json", loaded("load-fresh.json", "load-chown.json"), chownSession, ranSteps[:2], nil, map[int]string{
			3: "the imported cache holds BuildKit's key for it, yet BuildKit ran it",
			5: "the imported cache holds BuildKit's key for it, yet BuildKit ran it",
		}},
		{"the build that made the cache: every key in it", "store-chown.json", loaded("load-chown.json"), firstSession, ranSteps[:1], nil, map[int]string{
			3: "the imported cache holds BuildKit's key for it, yet BuildKit ran it",
		}},
		{"a step missing from the store", "store-chown.json", loaded("load-chown.json"), chownSession, []Step{{9, "RUN make"}}, nil, map[int]string{}},
		{"no cache imported", "store-chown.json", func(*testing.T) []*Graph { return nil }, chownSession, ranSteps[:1], nil, map[int]string{
			3: "BuildKit's cache key differs from the imported cache's in its definition or its inputs: the imported cache holds no step like it",
		}},
		{"the RUN's env differs from the cache's", "store-chown.json", func(t *testing.T) []*Graph { return []*Graph{withEnv(t, "MODE=slow")} }, firstSession, ranSteps[1:], nil, map[int]string{
			5: "BuildKit's cache key differs from the imported cache's in its definition: env MODE: fast (was slow)",
			6: "BuildKit's cache key differs from the imported cache's because line 5's does",
			7: "BuildKit's cache key differs from the imported cache's because line 6's does",
		}},
		{"a redacted arg's values are not shown", "store-chown.json", func(t *testing.T) []*Graph { return []*Graph{withEnv(t, "MODE=slow")} }, firstSession, ranSteps[1:2], []string{"slow", "fast"}, map[int]string{
			5: "BuildKit's cache key differs from the imported cache's in its definition: env MODE: [redacted] (was [redacted])",
		}},
		{"the cache's RUN unknown to this daemon", "store-chown.json", func(t *testing.T) []*Graph { return []*Graph{withEnv(t, "")} }, firstSession, ranSteps[1:2], nil, map[int]string{
			5: "BuildKit's cache key differs from the imported cache's in its definition (BuildKit's operation sha256:b85c83198f47, was sha256:",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Explain(readGraph(t, tc.local), tc.imported(t), []string{tc.session}, tc.steps, tc.hidden)
			for line, prefix := range tc.want {
				if !strings.HasPrefix(got[line], prefix) {
					t.Errorf("line %d: %q\nwant it to start %q", line, got[line], prefix)
				}
			}
			for _, line := range slices.Sorted(maps.Keys(got)) {
				if _, ok := tc.want[line]; !ok {
					t.Errorf("line %d explained, and should not be: %q", line, got[line])
				}
			}
		})
	}
}

func loaded(names ...string) func(t *testing.T) []*Graph {
	return func(t *testing.T) []*Graph {
		var out []*Graph
		for _, n := range names {
			out = append(out, readGraph(t, n))
		}
		return out
	}
}

// stripped is the named graph without its plaintexts, as a daemon that
// never computed its keys loads it.
func stripped(t *testing.T, name string) *Graph {
	t.Helper()
	g := readGraph(t, name)
	for _, r := range g.recs {
		r.Debug = nil
	}
	g.plain = map[string]*Plain{}
	return g
}

// withEnv is load-chown's graph with the first RUN's operation given
// another digest and, unless env is "", its MODE set to env, as a cache
// made with another value would hold it.
func withEnv(t *testing.T, env string) *Graph {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "load-chown.json"))
	if err != nil {
		t.Fatal(err)
	}
	const other = "sha256:00000000000000000000000000000000000000000000000000000000000000aa"
	full := findDigest(t, b, "sha256:b85c83198f47")
	s := strings.ReplaceAll(string(b), full, other)
	var recs []*Record
	if err := json.Unmarshal([]byte(s), &recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		for i, p := range r.Debug {
			if p.Digest != other {
				continue
			}
			if env == "" {
				r.Debug = slices.Delete(r.Debug, i, i+1)
				break
			}
			def := p.Sub[0].Data[0].Data
			p.Sub[0].Data[0].Data = []byte(strings.Replace(string(def), "MODE=fast", env, 1))
		}
	}
	g, err := newGraph(recs)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// findDigest is the full digest in b that starts with prefix.
func findDigest(t *testing.T, b []byte, prefix string) string {
	t.Helper()
	i := strings.Index(string(b), prefix)
	if i < 0 {
		t.Fatalf("%s not in the graph", prefix)
	}
	return string(b[i : i+len("sha256:")+64])
}

// TestExplainLeavesGraphsAsGiven: explaining reads the graphs, never
// changes them: the same graphs explain the same way again.
func TestExplainLeavesGraphsAsGiven(t *testing.T) {
	local, imported := readGraph(t, "store-chown.json"), []*Graph{readGraph(t, "load-fresh.json"), readGraph(t, "load-chown.json")}
	first := Explain(local, imported, []string{chownSession}, ranSteps, nil)
	again := Explain(local, imported, []string{chownSession}, ranSteps, nil)
	if !maps.Equal(first, again) || len(first) == 0 {
		t.Errorf("explained twice:\n%v\n%v", first, again)
	}
}
