package source

import (
	"context"
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
)

func walk(t *testing.T, s *Source, follow []string) []string {
	t.Helper()
	fsys, err := s.FS(follow)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	err = fsys.Walk(context.Background(), "", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, filepath.ToSlash(p))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func TestSelection(t *testing.T) {
	files := map[string]string{
		"Dockerfile":              "FROM scratch",
		"Dockerfile.dockerignore": "secret*\n",
		".dockerignore":           "*.log\nnode_modules\n!keep.log\n",
		"a.log":                   "x",
		"keep.log":                "x",
		"secret.txt":              "x",
		"src/main.go":             "x",
		"src/util/u.go":           "x",
		"node_modules/m/i.js":     "x",
		"docs/readme":             "x",
		"link":                    "->src/main.go",
		"escape":                  "->../../etc/passwd",
	}
	for _, tc := range []struct {
		name    string
		ignores []string
		follow  []string
		want    string
	}{
		{"root ignore file", []string{".dockerignore"}, nil,
			".dockerignore,Dockerfile,Dockerfile.dockerignore,docs,docs/readme,escape,keep.log,link,secret.txt,src,src/main.go,src/util,src/util/u.go"},
		{"dockerfile ignore file wins", []string{"Dockerfile.dockerignore", ".dockerignore"}, nil,
			".dockerignore,Dockerfile,Dockerfile.dockerignore,a.log,docs,docs/readme,escape,keep.log,link,node_modules,node_modules/m,node_modules/m/i.js,src,src/main.go,src/util,src/util/u.go"},
		{"follow paths", []string{".dockerignore"}, []string{"src/util"}, "src,src/util,src/util/u.go"},
		{"wildcard follow path", []string{".dockerignore"}, []string{"*.log"}, "keep.log"},
		{"symlink in follow paths pulls its target", []string{".dockerignore"}, []string{"link"}, "link,src,src/main.go"},
		{"escaping symlink stays a link", []string{".dockerignore"}, []string{"escape"}, "escape"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sourcetest.Write(t, dir, files)
			s, err := Open(dir, tc.ignores...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(walk(t, s, tc.follow), ","); got != tc.want {
				t.Fatalf("walk:\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	sourcetest.Write(t, dir, map[string]string{"file": "x", ".dockerignore": "[\n"})
	if _, err := Open(filepath.Join(dir, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing dir: %v", err)
	}
	if _, err := Open(filepath.Join(dir, "file")); !errors.Is(err, ErrNotDir) {
		t.Fatalf("file as dir: %v", err)
	}
	_, err := Open(dir, ".dockerignore")
	if err == nil || !strings.Contains(err.Error(), ".dockerignore") {
		t.Fatalf("bad ignore file: %v", err)
	}
}

// ignoreTree is the tree FuzzIgnore filters: names that patterns with
// wildcards, negations, ** and character classes tell apart.
var ignoreTree = map[string]string{
	"a.log":          "x",
	"keep.log":       "x",
	"d/x":            "x",
	"d/e/x":          "x",
	"d/e/f.go":       "x",
	"Dockerfile":     "x",
	".hidden":        "x",
	"sp ace/[b]":     "x",
	"link":           "->d/x",
	"dir-link":       "->d",
	"node_modules/m": "x",
}

// FuzzIgnore checks the ignore rules against BuildKit's own client side:
// for any ignore file and one more file of any name, the paths (with
// their types and link targets) a Source's view walks are the ones
// fsutil's host FS under the same FilterOpt sends, and an ignore file
// the Source refuses is one BuildKit's parsers refuse too.
func FuzzIgnore(f *testing.F) {
	f.Add("*.log\n!keep.log\n", "a.log")
	f.Add("**/x\n# c\n", "d/x")
	f.Add("[\n", "a")
	f.Add("d\n!d/e/*.go\n", "d/e/g.go")
	f.Add("*\n!Dockerfile\n", "z")
	f.Fuzz(func(t *testing.T, ignore, name string) {
		dir := t.TempDir()
		files := maps.Clone(ignoreTree)
		if extraName(name) {
			files[name] = "x"
		}
		sourcetest.Write(t, dir, files)
		if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ignore), 0o644); err != nil {
			t.Fatal(err)
		}
		patterns, refErr := ignorefile.ReadAll(strings.NewReader(ignore))
		var ref fsutil.FS
		if refErr == nil {
			ref, refErr = fsutil.NewFS(dir)
		}
		if refErr == nil {
			ref, refErr = fsutil.NewFilterFS(ref, &fsutil.FilterOpt{ExcludePatterns: patterns})
		}
		s, err := Open(dir, ".dockerignore")
		var view *View
		if err == nil {
			view, err = s.FS(nil)
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("ignore file %q: bkcache says %v, fsutil says %v", ignore, err, refErr)
		}
		if err != nil {
			return
		}
		got, err := fuzzListing(view)
		want, refErr := fuzzListing(ref)
		if (err == nil) != (refErr == nil) {
			t.Fatalf("ignore file %q: bkcache's walk says %v, fsutil's %v", ignore, err, refErr)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("ignore file %q:\nbkcache %q\nfsutil  %q", ignore, got, want)
		}
	})
}

// extraName reports whether name can be one more file of ignoreTree.
func extraName(name string) bool {
	if !fs.ValidPath(name) || name == "." || len(name) > 64 || strings.ContainsAny(name, "\\\x00") {
		return false
	}
	for p := range ignoreTree {
		if p == name || strings.HasPrefix(p, name+"/") || strings.HasPrefix(name, p+"/") {
			return false
		}
	}
	return name != ".dockerignore"
}

// fuzzListing walks fsys: each path with its type and, for links, target.
func fuzzListing(fsys fsutil.FS) ([]string, error) {
	var out []string
	err := fsys.Walk(context.Background(), "", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		line := filepath.ToSlash(p) + " " + d.Type().String()
		if d.Type()&fs.ModeSymlink != 0 {
			info, err := d.Info()
			if err != nil {
				return err
			}
			if st, ok := info.Sys().(*fstypes.Stat); ok {
				line += " -> " + st.Linkname
			}
		}
		out = append(out, line)
		return nil
	})
	slices.Sort(out)
	return out, err
}
