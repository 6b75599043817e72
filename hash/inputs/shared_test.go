package inputs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/statcache"
)

// The fuzz targets' vocabulary: paths of a small tree in which patterns
// overlap, nest and name each other's parents, and the patterns COPY and
// .dockerignore use on it.
var (
	fuzzFiles = []string{
		"a/x.go", "a/y.txt", "a/c/z.go", "a/c/d/w.go", "b/x.go", "b/c/z.go",
		"lib/m/f.go", "lib/m/g.go", "lib/n/h.go", "svc/s1/src/main.go", "svc/s2/src/main.go",
		"top.go", "a.go", "a-b/x", "node_modules/p/i.js",
	}
	fuzzLinks = map[string]string{"l": "a/c", "lib/link": "../b/x.go", "svc/s1/dep": "../../lib/n"}
	fuzzCopy  = []string{
		"a", "a/c", "a/c/d", "b", "lib", "lib/m", "svc/s1/src", "svc/s2/src", "svc/s1", ".",
		"*.go", "a/*", "lib/*/f.go", "a/c/*.go", "a/c/d*", "lib/m*", "l", "lib/link", "svc/s1/dep", "missing", "top.go",
	}
	fuzzExclude = []string{"", "*.txt", "**/z.go", "d"}
	fuzzIgnore  = []string{"", "node_modules", "**/*.txt", "a/c\n!a/c/z.go", "lib/m/g.go"}
)

// FuzzShared: whatever the tree, Dockerfiles and ignore rules, services
// hashed through the run's shared listing and parts get exactly what each
// source's own walk gives them: hashes, files, modes, digests and the
// instructions the files are credited to.
func FuzzShared(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{10, 11, 12, 13, 200, 14, 15, 16, 17, 18, 3})
	f.Add([]byte{4, 5, 6, 0, 1, 9, 2, 7, 3, 1, 1, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		svcs := fuzzProject(t, dir, b)
		shared, err := ComputeAll(context.Background(), svcs, Options{shared: newShared()})
		ref, refErr := ComputeAll(context.Background(), svcs, Options{reference: true})
		if (err == nil) != (refErr == nil) {
			t.Fatalf("shared: %v; own walks: %v", err, refErr)
		}
		if err == nil {
			sameInputs(t, shared, ref)
		}
	})
}

// fuzzProject writes a tree and up to four services on it as b says, and
// returns the services.
func fuzzProject(t *testing.T, dir string, b []byte) []*compose.Service {
	next := func() int {
		if len(b) == 0 {
			return 0
		}
		v := int(b[0])
		b = b[1:]
		return v
	}
	files := next()<<8 | next() // which of fuzzFiles exist
	for i, p := range fuzzFiles {
		if files&(1<<i) == 0 && i%3 != 0 {
			continue
		}
		write(t, filepath.Join(dir, p), p, os.FileMode(0o644|0o111*(i%2)))
	}
	for l, target := range fuzzLinks {
		if next()%2 == 0 {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, l)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(dir, l)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if ig := fuzzIgnore[next()%len(fuzzIgnore)]; ig != "" {
		write(t, filepath.Join(dir, ".dockerignore"), ig+"\n", 0o644)
	}
	var svcs []*compose.Service
	for s := range 1 + next()%4 {
		var df strings.Builder
		df.WriteString("FROM scratch\n")
		for range 1 + next()%4 {
			src := fuzzCopy[next()%len(fuzzCopy)]
			ex := fuzzExclude[next()%len(fuzzExclude)]
			if ex != "" {
				ex = "--exclude=" + ex + " "
			}
			fmt.Fprintf(&df, "COPY %s%s /dst/\n", ex, src)
		}
		name := fmt.Sprintf("s%d", s)
		path := filepath.Join(dir, name+".Dockerfile")
		write(t, path, df.String(), 0o644)
		if v := next(); v%3 == 0 {
			// Its own ignore file, which wins over .dockerignore.
			write(t, path+".dockerignore", fuzzIgnore[v/3%len(fuzzIgnore)]+"\n", 0o644)
		}
		svcs = append(svcs, &compose.Service{Name: name, Context: compose.Context{Kind: compose.LocalContext, Source: dir}, Dockerfile: path})
	}
	return svcs
}

func write(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestWarmStatCache: services hashed again through a stat cache on disk,
// which then gives the digests of unchanged files and the names in
// unchanged directories, get what their own walks give, also after an
// entry was added to a directory whose modification time was put back;
// and the cache records the directories, so the warm run can skip their
// listing. The files are left quiet for the racy window first (their
// change times cannot be put back).
func TestWarmStatCache(t *testing.T) {
	t.Parallel()
	dir, cache := t.TempDir(), t.TempDir()
	writeFixture(t, dir, fixture, time.Unix(1700000000, 0))
	time.Sleep(statcache.RacyWindow + 100*time.Millisecond)
	svcs := loadServices(t, dir)
	run := func() []*Inputs {
		t.Helper()
		store := statcache.NewStore(cache)
		all, err := ComputeAll(context.Background(), svcs, Options{StatCache: store, shared: newShared()})
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Save(); err != nil {
			t.Fatal(err)
		}
		ref, err := ComputeAll(context.Background(), svcs, Options{reference: true})
		if err != nil {
			t.Fatal(err)
		}
		sameInputs(t, all, ref)
		return all
	}
	run()
	files, _ := filepath.Glob(filepath.Join(cache, "*"))
	roots := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, err := statcache.Decode(data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if _, ok := c.Dirs["."]; ok {
			roots++
		}
	}
	if roots == 0 || roots != len(files) {
		t.Fatalf("%d of %d stat cache files record their source's root directory", roots, len(files))
	}
	byName := func(all []*Inputs) map[string]string {
		m := map[string]*Inputs{}
		for _, in := range all {
			m[in.Service] = in
		}
		return hashes(m)
	}
	before := byName(run())
	base := filepath.Join(dir, "base") // base copies its context whole
	st, err := os.Stat(base)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "added.txt"), []byte("new\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(base, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if after := byName(run()); after["base"] == before["base"] {
		t.Fatal("a file added to base/ did not move base's hash")
	}
}

func TestWithin(t *testing.T) {
	for _, tc := range []struct {
		p, dir string
		want   bool
	}{
		{"a", "a", true}, {"a/b", "a", true}, {"a/b/c", "a/b", true},
		{"ab", "a", false}, {"a-b/c", "a", false}, {"a", "a/b", false}, {"b", "a", false},
		{"", "", true}, {"/x", "", true}, {"x", "", false},
	} {
		if got := within(tc.p, tc.dir); got != tc.want {
			t.Errorf("within(%q, %q) = %v, want %v", tc.p, tc.dir, got, tc.want)
		}
	}
}
