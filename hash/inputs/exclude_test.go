package inputs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/hash/dockerfile"
)

// TestExclude: a file that every COPY reading it leaves out with
// --exclude is not an input; one another COPY reads still is; an
// undecidable source ignores --exclude (never less).
func TestExclude(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dockerfile string
		edit       string // a file edited afterwards
		moves      bool
	}{
		{"excluded from the whole context", "FROM scratch\nCOPY --exclude=*.md . /app\n", "README.md", false},
		{"excluded below a directory", "FROM scratch\nCOPY --exclude=*.md docs /docs\n", "docs/guide.md", false},
		{"kept file moves", "FROM scratch\nCOPY --exclude=*.md . /app\n", "main.go", true},
		{"read by another COPY", "FROM scratch\nCOPY --exclude=*.md . /app\nCOPY README.md /\n", "README.md", true},
		{"excluded directory", "FROM scratch\nCOPY --exclude=docs . /app\n", "docs/guide.md", false},
		{"wildcard source: excludes not applied", "FROM scratch\nCOPY --exclude=*.md do* /x/\n", "docs/guide.md", true},
		{"undecidable: whole, excludes not applied", "FROM scratch\nARG TARGETARCH\nCOPY --exclude=*.md . /app\nCOPY bin/$TARGETARCH /bin\n", "README.md", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			files := map[string]string{
				"compose.yaml":  "services:\n  s:\n    build: .\n",
				"Dockerfile":    tc.dockerfile,
				"README.md":     "readme",
				"main.go":       "package main",
				"docs/guide.md": "guide",
			}
			writeFixture(t, dir, files, time.Unix(1700000000, 0))
			before := computeDir(t, dir)["s"]
			if err := os.WriteFile(filepath.Join(dir, tc.edit), []byte("edited"), 0o644); err != nil {
				t.Fatal(err)
			}
			after := computeDir(t, dir)["s"]
			if moved := before.Hash != after.Hash; moved != tc.moves {
				t.Errorf("editing %s moved the hash: %v, want %v", tc.edit, moved, tc.moves)
			}
		})
	}
}

func TestExcluderSkip(t *testing.T) {
	use := &dockerfile.Use{Patterns: []dockerfile.Pattern{
		{Path: ".", Excludes: []string{"*.md", "tmp"}},
		{Path: "docs", Excludes: []string{"draft*"}},
	}}
	x := newExcluder(use)
	for path, want := range map[string]bool{
		"README.md": true, "main.go": false, "tmp/x": true, "sub/README.md": false,
		"docs/draft1.txt": false, // docs/draft1.txt: "." keeps it (not *.md), so it counts
		"docs/x.md":       false, // "." excludes it, docs keeps it
	} {
		if got := x.skip(path); got != want {
			t.Errorf("skip(%s) = %v, want %v", path, got, want)
		}
	}
	if newExcluder(&dockerfile.Use{Patterns: []dockerfile.Pattern{{Path: "."}}}) != nil {
		t.Error("an excluder without --exclude")
	}
}

// FuzzNormalize: a normalized ref normalizes to itself, and names the
// same repository as the ref it came from.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"node:20", "alpine", "reg:5000/a/b:t", "docker.io/library/x@sha256:" + strings.Repeat("a", 64), "Upper"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		n, err := Normalize(ref)
		if err != nil {
			return
		}
		again, err := Normalize(n)
		if err != nil || again != n {
			t.Fatalf("Normalize(%q) = %q, which normalizes to %q, %v", ref, n, again, err)
		}
	})
}

// TestExcluderEdges: a single file copied with its own name excluded,
// a wildcard source (whose excludes cannot be placed), an invalid
// pattern (keep everything), a path no pattern reaches.
func TestExcluderEdges(t *testing.T) {
	for _, tc := range []struct {
		name     string
		patterns []dockerfile.Pattern
		skips    map[string]bool
	}{
		{"a single file", []dockerfile.Pattern{{Path: "b.txt", Excludes: []string{"b.txt"}}}, map[string]bool{"b.txt": true, "c.txt": false}},
		{"a wildcard source", []dockerfile.Pattern{{Path: "docs/*.txt", Excludes: []string{"a.txt"}}}, map[string]bool{"docs/a.txt": false, "docs/b.txt": false}},
		{"an invalid pattern", []dockerfile.Pattern{{Path: "[", Excludes: []string{"x"}}, {Path: "d", Excludes: []string{"x"}}}, map[string]bool{"d/x": false, "x": false}},
		{"unreached", []dockerfile.Pattern{{Path: "docs", Excludes: []string{"*.md"}}}, map[string]bool{"docs/a.md": true, "docs/a.go": false, "other.md": false}},
	} {
		x := newExcluder(&dockerfile.Use{Patterns: tc.patterns})
		for p, want := range tc.skips {
			if got := x.skip(p); got != want {
				t.Errorf("%s: skip(%s) = %v, want %v", tc.name, p, got, want)
			}
		}
	}
}

// TestAttributionEdges: an invalid pattern credits nothing (and breaks
// nothing), and a file no pattern names is a parent or a link target.
func TestAttributionEdges(t *testing.T) {
	o := dockerfile.Origin{Line: 3, Instruction: "COPY a /a"}
	a := newAttributor(&dockerfile.Use{Patterns: []dockerfile.Pattern{{Path: "["}, {Path: "a", Origin: o}}})
	if got := a.by("a/x"); got != "line 3: COPY a /a" {
		t.Errorf("a/x by %q", got)
	}
	if got := a.by("elsewhere"); got != "parent directory or symlink target of a selected path" {
		t.Errorf("elsewhere by %q", got)
	}
}

// TestExcludeBelowTheSource: an --exclude is relative to the directory
// copied, so a pattern names that directory's own paths, not base names
// deeper down.
func TestExcludeBelowTheSource(t *testing.T) {
	x := newExcluder(&dockerfile.Use{Patterns: []dockerfile.Pattern{{Path: "docs", Excludes: []string{"x"}}}})
	for p, want := range map[string]bool{"docs/x": true, "docs/sub/x": false, "docs/x/y": true} {
		if got := x.skip(p); got != want {
			t.Errorf("skip(%s) = %v, want %v", p, got, want)
		}
	}
}
