package source

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
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

func FuzzIgnore(f *testing.F) {
	f.Add("*.log\n!keep.log\n", "a.log")
	f.Add("**/x\n# c\n", "d/x")
	f.Add("[\n", "a")
	f.Fuzz(func(t *testing.T, ignore, name string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte(ignore), 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, ".dockerignore")
		if err != nil {
			return // a parse error is a fine answer; a panic is not
		}
		fsys, err := s.FS(nil)
		if err != nil {
			return
		}
		_ = fsys.Walk(context.Background(), "", func(string, fs.DirEntry, error) error { return nil })
	})
}
