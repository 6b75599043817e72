package inputs

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzFileJSON: any file name and link target, UTF-8 or not, reads back
// from a record exactly, and a UTF-8 one is stored as it is.
func FuzzFileJSON(f *testing.F) {
	f.Add("src/a.txt", "")
	f.Add("caf\xe9.txt", "t\xff")
	f.Add(`a"b\c`, "\x00\n")
	f.Add("\xe2\x28\xa1", "ok")
	f.Fuzz(func(t *testing.T, path, link string) {
		in := File{Path: path, Type: "file", Mode: "0644", Link: link}
		b, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		var out File
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if out != in {
			t.Fatalf("%q, %q read back as %q, %q (%s)", in.Path, in.Link, out.Path, out.Link, b)
		}
		if utf8.ValidString(path) && strings.Contains(string(b), "pathEscaped") {
			t.Fatalf("a UTF-8 name was escaped: %s", b)
		}
	})
}

// TestNonUTF8NamesStayApart: two names that differ only in bytes that
// are not UTF-8 stay two names in a record (JSON alone would make both
// U+FFFD).
func TestNonUTF8NamesStayApart(t *testing.T) {
	a, b := File{Path: "x\xff"}, File{Path: "x\xfe"}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) == string(jb) {
		t.Fatalf("both stored as %s", ja)
	}
}
