//go:build unix

package source

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestUnreadableDirectory: a directory the user may not list, or whose
// entries the user may not look up, fails the walk naming it and why:
// never a directory that looks empty, whose files would then be missing
// from the hash.
func TestUnreadableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root lists directories whatever their mode: run this test
		// again, in a copy of the test binary, as nobody.
		sourcetest.AsNobody(t, "^TestUnreadableDirectory$")
		return
	}
	for _, tc := range []struct {
		name string
		mode os.FileMode
		want string
	}{
		{"not listable", 0o000, "open"},
		{"listable, not searchable", 0o600, "lstat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sourcetest.Write(t, dir, map[string]string{"a/x": "x", "locked/y": "y", "z": "z"})
			locked := filepath.Join(dir, "locked")
			if err := os.Chmod(locked, tc.mode); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(locked, 0o755) })
			s, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			v, err := s.FS(nil)
			if err != nil {
				t.Fatal(err)
			}
			var seen []string
			err = v.Walk(context.Background(), "", func(p string, _ fs.DirEntry, err error) error {
				seen = append(seen, p)
				return err
			})
			if err == nil || !strings.Contains(err.Error(), "locked") || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("walked %q, error %v; want a %s error naming locked and why", seen, err, tc.want)
			}
		})
	}
}
