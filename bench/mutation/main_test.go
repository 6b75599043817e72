package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	data, err := os.ReadFile("testdata/canon.json") // gremlins v0.6.0's output for hash/canon
	if err != nil {
		t.Fatal(err)
	}
	got, err := report("abc1234", 3, []string{"hash/canon"}, map[string][]byte{"hash/canon": data})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"At abc1234, in 3 minutes",
		"| hash/canon | 7 | 5 | 1 | 1 | 92.3% |", // timed out counts as killed: 12 of 13
		"| **all** | | | 1 | | **92.3%** |",
		"- `hash/canon/canon.go:122:25 CONDITIONALS_BOUNDARY`",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	if _, err := report("x", 1, []string{"p"}, map[string][]byte{"p": []byte("{")}); err == nil {
		t.Error("malformed JSON reported")
	}
}

func TestReplaceBlock(t *testing.T) {
	file := filepath.Join(t.TempDir(), "testing.md")
	os.WriteFile(file, []byte("# T\n\n"+begin+"\nold\n"+end+"\n\nhand-written\n"), 0o644)
	if err := replaceBlock(file, "new\n"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(file)
	if want := "# T\n\n" + begin + "\nnew\n" + end + "\n\nhand-written\n"; string(b) != want {
		t.Fatalf("got %q\nwant %q", b, want)
	}
	os.WriteFile(file, []byte("no markers"), 0o644)
	if err := replaceBlock(file, "new\n"); err == nil {
		t.Fatal("a file without markers was accepted")
	}
}
