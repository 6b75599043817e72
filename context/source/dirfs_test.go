package source

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"
)

// TestDirFSWalksLikeFsutil: dirFS, with its read-ahead, visits the same
// paths in the same order with the same metadata as fsutil's own host FS,
// including when the callback skips directories (as the filter does for
// ignored ones) and files.
func TestDirFSWalksLikeFsutil(t *testing.T) {
	files := map[string]string{}
	for i := range 40 {
		for j := range 6 {
			files[fmt.Sprintf("d%02d/s%d/f%d.txt", i, j%3, j)] = strings.Repeat("x", i+j)
		}
		files[fmt.Sprintf("d%02d/link", i)] = "->s0/f0.txt"
	}
	files["top.txt"] = "t"
	dir := sourcetest.Tree(t, files)
	for _, tc := range []struct {
		name string
		skip func(p string, isDir bool) error
	}{
		{"everything", func(string, bool) error { return nil }},
		{"skip some directories", func(p string, isDir bool) error {
			if isDir && (strings.HasSuffix(p, "3") || strings.HasSuffix(p, "s1")) {
				return fs.SkipDir
			}
			return nil
		}},
		{"skip the rest of a directory from a file", func(p string, isDir bool) error {
			if !isDir && strings.HasSuffix(p, "f3.txt") {
				return fs.SkipDir
			}
			return nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			visit := func(fsys fsutil.FS) []string {
				var out []string
				err := fsys.Walk(context.Background(), "", func(p string, d fs.DirEntry, err error) error {
					if err != nil {
						return err
					}
					fi, err := d.Info()
					if err != nil {
						return err
					}
					st := fi.Sys().(*types.Stat)
					out = append(out, fmt.Sprintf("%s %o %d %s", filepath.ToSlash(p), st.Mode, st.Size, st.Linkname))
					return tc.skip(p, d.IsDir())
				})
				if err != nil {
					t.Fatal(err)
				}
				return out
			}
			want, err := fsutil.NewFS(dir)
			if err != nil {
				t.Fatal(err)
			}
			for range 5 { // the read-ahead is concurrent: try a few times
				got, exp := visit(newDirFS(dir, false, nil)), visit(want)
				if strings.Join(got, "\n") != strings.Join(exp, "\n") {
					t.Fatalf("dirFS:\n%s\n\nfsutil:\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
				}
			}
		})
	}
}

// TestNotExistFromTheCallback: a callback that reports a path as gone (a
// file deleted mid-walk) skips the rest of its directory, as fsutil's own
// host FS does, instead of failing the walk.
func TestNotExistFromTheCallback(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"a/x": "x", "a/y": "y", "b/z": "z"})
	walk := func(fsys fsutil.FS) ([]string, error) {
		var seen []string
		err := fsys.Walk(context.Background(), "", func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			seen = append(seen, filepath.ToSlash(p))
			if filepath.ToSlash(p) == "a/x" {
				return &fs.PathError{Op: "lstat", Path: p, Err: fs.ErrNotExist}
			}
			return nil
		})
		return seen, err
	}
	ref, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, wantErr := walk(ref)
	got, err := walk(newDirFS(dir, false, nil))
	if (err == nil) != (wantErr == nil) || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("dirFS walked %v (%v), fsutil %v (%v)", got, err, want, wantErr)
	}
}
