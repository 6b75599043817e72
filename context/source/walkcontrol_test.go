package source

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/tonistiigi/fsutil"
)

// TestWalkControlMatchesFsutil: what a walk function returns steers the
// walk as it steers fsutil's host FS walk, which BuildKit's file
// transfer uses: SkipDir on a directory (its files unvisited) and on a
// file (the rest of its directory unvisited), SkipAll, an error (the
// walk ends with it), a not-exist error (taken as SkipDir), for the
// whole tree and for a target below it, with several workers.
func TestWalkControlMatchesFsutil(t *testing.T) {
	files := map[string]string{"link": "->a"}
	for _, d := range []string{"a", "b", "b/c", "d"} {
		for i := range 20 { // more than a directory's parallel stat threshold
			files[fmt.Sprintf("%s/f%02d", d, i)] = "x"
		}
	}
	dir := sourcetest.Tree(t, files)
	errStop := errors.New("stop")
	for _, tc := range []struct {
		name   string
		target string
		at     string // the path whose visit returns ret
		ret    error
	}{
		{"plain", "", "", nil},
		{"SkipDir on a directory", "", "b", fs.SkipDir},
		{"SkipDir on a nested directory", "", "b/c", fs.SkipDir},
		{"SkipDir on a file", "", "b/f03", fs.SkipDir},
		{"SkipAll", "", "b/c/f05", fs.SkipAll},
		{"an error", "", "d/f10", errStop},
		{"an error on a directory", "", "b", errStop},
		{"not exist is SkipDir", "", "b", fs.ErrNotExist},
		{"a target directory", "b", "", nil},
		{"a target file", "b/f01", "", nil},
		{"a missing target", "nope", "", nil},
		{"SkipDir on the target", "b", "b", fs.SkipDir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			walk := func(w func(context.Context, string, fs.WalkDirFunc) error) (string, error) {
				var seen []string
				err := w(context.Background(), tc.target, func(p string, d fs.DirEntry, err error) error {
					if err != nil {
						seen = append(seen, p+" ! "+strings.TrimPrefix(err.Error(), dir))
						return err
					}
					seen = append(seen, p)
					if p == tc.at {
						return tc.ret
					}
					return nil
				})
				return strings.Join(seen, "\n"), err
			}
			ref, err := fsutil.NewFS(dir)
			if err != nil {
				t.Fatal(err)
			}
			want, wantErr := walk(ref.Walk)
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, workers := range []int{1, 4} {
				v, err := s.FS(nil)
				if err != nil {
					t.Fatal(err)
				}
				v.base.workers = workers
				walks := map[string]func(context.Context, string, fs.WalkDirFunc) error{"dirFS": v.base.Walk, "view": v.Walk}
				if tc.target == "nope" {
					delete(walks, "view") // fsutil's own filter says nothing of a missing target
				}
				for name, w := range walks {
					got, gotErr := walk(w)
					if got != want {
						t.Errorf("%s, workers %d: visited\n%s\nfsutil visits\n%s", name, workers, got, want)
					}
					if (gotErr == nil) != (wantErr == nil) || (wantErr != nil && !errors.Is(gotErr, tc.ret)) {
						t.Errorf("%s, workers %d: walk returned %v, fsutil %v", name, workers, gotErr, wantErr)
					}
				}
			}
		})
	}
}
