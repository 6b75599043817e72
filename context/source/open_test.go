package source

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestOpenIgnoreFiles: Open reads the first ignore file that exists, as
// BuildKit's frontend does: a missing one is passed over, an absolute one
// (the Dockerfile's own, beside a Dockerfile outside the context) is read
// where it is and named so, and one that exists but cannot be read or
// parsed is an error naming it. The source's directory is the one its
// links lead to.
func TestOpenIgnoreFiles(t *testing.T) {
	root := t.TempDir()
	sourcetest.Write(t, root, map[string]string{
		"ctx/.dockerignore":             "*.log\n",
		"ctx/Dockerfile":                "FROM scratch\n",
		"bare/Dockerfile":               "FROM scratch\n",
		"other/Dockerfile.dockerignore": "*.tmp\n",
		"other/bad.dockerignore":        "[\n",
		"other/away.dockerignore":       "->../ctx/.dockerignore",
		"ctx/dir.dockerignore/x":        "",
		"link":                          "->ctx",
		"other/long.dockerignore":       strings.Repeat("x", 70_000) + "\n", // past bufio.Scanner's line
	})
	ctx := filepath.Join(root, "ctx")
	for _, tc := range []struct {
		name     string
		dir      string
		ignores  []string
		wantFile string // IgnoreFile
		excludes []string
		err      string
	}{
		{"none named", ctx, nil, "", nil, ""},
		{"none exists", filepath.Join(root, "bare"), []string{"Dockerfile.dockerignore", ".dockerignore"}, "", nil, ""},
		{"the first missing, the second read", ctx, []string{"Dockerfile.dockerignore", ".dockerignore"}, filepath.Join(ctx, ".dockerignore"), []string{"*.log"}, ""},
		{"an absolute one, outside the context", ctx, []string{filepath.Join(root, "other/Dockerfile.dockerignore"), ".dockerignore"}, filepath.Join(root, "other/Dockerfile.dockerignore"), []string{"*.tmp"}, ""},
		{"an absolute one whose link leaves its directory", ctx, []string{filepath.Join(root, "other/away.dockerignore"), ".dockerignore"}, filepath.Join(ctx, ".dockerignore"), []string{"*.log"}, ""},
		{"through a link to the context", filepath.Join(root, "link"), []string{".dockerignore"}, filepath.Join(ctx, ".dockerignore"), []string{"*.log"}, ""},
		{"one that does not parse", ctx, []string{filepath.Join(root, "other/bad.dockerignore")}, "", nil, "parsing ignore file " + filepath.Join(root, "other/bad.dockerignore")},
		{"a line too long to scan", ctx, []string{filepath.Join(root, "other/long.dockerignore")}, "", nil, "parsing ignore file " + filepath.Join(root, "other/long.dockerignore")},
		{"one that is a directory", ctx, []string{"dir.dockerignore"}, "", nil, "reading ignore file " + filepath.Join(ctx, "dir.dockerignore")},
		{"a context that does not exist", filepath.Join(root, "missing"), nil, "", nil, filepath.Join(root, "missing")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.dir, tc.ignores...)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Open: %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Dir != ctx && s.Dir != tc.dir {
				t.Errorf("Dir %s", s.Dir)
			}
			if s.IgnoreFile != tc.wantFile || !slices.Equal(s.Excludes, tc.excludes) {
				t.Errorf("ignore file %q with %q, want %q with %q", s.IgnoreFile, s.Excludes, tc.wantFile, tc.excludes)
			}
		})
	}
	if s, err := Open(filepath.Join(root, "link")); err != nil || s.Dir != ctx {
		t.Errorf("a link to the context: Dir %v, %v; want %s", s, err, ctx)
	}
	if _, err := Open(filepath.Join(root, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing context: %v, want fs.ErrNotExist", err)
	}
}

// TestIgnoredDirs: the read-ahead skips a directory only when the ignore
// rules leave it out with everything in it: never with an exception
// ("!"), which may let something below back in, nor without rules.
func TestIgnoredDirs(t *testing.T) {
	if ignoredDirs(nil) != nil || ignoredDirs([]string{"node_modules", "!node_modules/keep"}) != nil {
		t.Errorf("a directory skipped where rules may let a file back in, or there are none")
	}
	ig := ignoredDirs([]string{"node_modules", "build/**"})
	for rel, want := range map[string]bool{"node_modules": true, "node_modules/a": true, "build/x": true, "src": false, "nodes": false} {
		if got := ig(rel); got != want {
			t.Errorf("%s ignored = %v, want %v", rel, got, want)
		}
	}
}

// TestFSRefusesBadFollowPaths: a follow path fsutil cannot parse fails the
// view, as it fails BuildKit's file sync.
func TestFSRefusesBadFollowPaths(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if v, err := s.FS([]string{"a["}); err == nil {
		t.Errorf("a follow path that does not parse gave a view: %v", v)
	}
}

// TestReadFileTooLarge: a Dockerfile or ignore file past MaxReadFile is
// refused, naming it, before more than one byte past the bound is read.
func TestReadFileTooLarge(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(root, "Dockerfile")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(p, MaxReadFile+1); err != nil { // sparse: nothing written
		t.Fatal(err)
	}
	if b, err := ReadFile(root, "Dockerfile"); err == nil || !strings.Contains(err.Error(), "larger than 64 MiB") || !strings.Contains(err.Error(), p) {
		t.Errorf("ReadFile of a file one byte too large: %d bytes, %v", len(b), err)
	}
	if err := os.Truncate(p, MaxReadFile); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(root, "Dockerfile"); err != nil || len(b) != MaxReadFile {
		t.Errorf("ReadFile at the bound: %d bytes, %v", len(b), err)
	}
}
