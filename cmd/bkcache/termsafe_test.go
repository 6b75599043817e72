package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// FuzzEscapeTerminal: whatever goes in, what comes out is UTF-8 with no
// control or format character but newline and tab; text without any is
// left as it is.
func FuzzEscapeTerminal(f *testing.F) {
	f.Add([]byte("plain text\n\tindented"))
	f.Add([]byte("\x1b]0;pwned\x07 \x1b[2J \u202egnp.exe \x85 \x7f \xff\xfe"))
	f.Add([]byte(`{"a":"\u001b"}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		out := escapeTerminal(in)
		if !utf8.Valid(out) {
			t.Fatalf("%q gave invalid UTF-8 %q", in, out)
		}
		for _, r := range string(out) {
			if r != '\n' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
				t.Fatalf("%q gave %q, with %U", in, out, r)
			}
		}
		if !strings.ContainsFunc(string(in), unsafeRune) && utf8.Valid(in) && string(out) != string(in) {
			t.Fatalf("clean %q changed to %q", in, out)
		}
	})
}

// TestHostileNamesOnTerminal: file names and Dockerfile lines that hold
// terminal control sequences reach explain's and inputs' output escaped.
func TestHostileNamesOnTerminal(t *testing.T) {
	evil := "a\x1b]0;pwned\x07\u202e.txt"
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml":   "services:\n  app:\n    build: ./app\n",
		"app/Dockerfile": "FROM scratch\nCOPY . /\n",
		"app/main.txt":   "x",
	})
	if err := os.WriteFile(filepath.Join(dir, "app", evil), []byte("y"), 0o644); err != nil {
		t.Skipf("this file system refuses the name: %v", err)
	}
	m := filepath.Join(t.TempDir(), "m.json")
	if _, err := run(t, "hash", "--no-stat-cache", "--project-directory", dir, "--manifest", m); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "app", evil), []byte("z"), 0o644)
	os.WriteFile(filepath.Join(dir, "app", "Dockerfile"), []byte("FROM scratch\nCOPY . /\n# \x1b[2J\n"), 0o644)
	for _, args := range [][]string{
		{"explain", "app", "--against", m},
		{"inputs", "app"},
	} {
		out, err := run(t, append(args, "--no-stat-cache", "--project-directory", dir)...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if strings.ContainsAny(out, "\x1b\x07\u202e") || !strings.Contains(out, `a\u001b]0;pwned\u0007`) {
			t.Errorf("%v printed:\n%q", args, out)
		}
	}
}
