// Package sourcetest writes file trees for tests: build contexts and
// compose projects described as a map from slash-separated paths to
// contents, where a value "->TARGET" makes a symbolic link.
package sourcetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Write creates files below dir.
func Write(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for p, data := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(data, "->"); ok {
			if err := os.Symlink(target, full); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// Tree creates files in a new temporary directory and returns it.
func Tree(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	Write(t, dir, files)
	return dir
}

// NoIOURing says why a test of batched reads cannot run.
const NoIOURing = "io_uring is unavailable (kernel older than 5.17, blocked by seccomp, or BKCACHE_IO_URING=0): run on a host that allows it"

// Unavailable skips t because this machine lacks something it needs,
// saying what and how to get it; under CI (CI=true), where every test
// must run, it fails t instead.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
