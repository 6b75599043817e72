package source

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// smallReader returns a batch reader over dir, or ends the test where the
// system has none.
func smallReaderFor(t *testing.T, dir string) *SmallReader {
	t.Helper()
	return smallReaderOf(t, viewOf(t, dir))
}

// viewOf is the whole of dir as a source view.
func viewOf(t *testing.T, dir string) *View {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.FS(nil)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// smallReaderOf is a batch reader of v, closed when the test ends; the
// test skips (fails under CI) where there is none.
func smallReaderOf(t *testing.T, v *View) *SmallReader {
	t.Helper()
	r := v.SmallReader()
	if r == nil {
		if runtime.GOOS != "linux" {
			t.Skip("batch reads are Linux-only")
		}
		sourcetest.Unavailable(t, sourcetest.NoIOURing)
	}
	t.Cleanup(r.Close)
	return r
}

func TestSmallReader(t *testing.T) {
	dir := t.TempDir()
	data := func(n int) string { return strings.Repeat("x", n) }
	sourcetest.Write(t, dir, map[string]string{
		"empty":     "",
		"one":       "1",
		"page":      data(4096),
		"max":       data(SmallMax),
		"sub/file":  "in a subdirectory",
		"link":      "->one",
		"grew":      data(10),
		"shrank":    data(10),
		"dir/inner": "x",
	})
	r := smallReaderFor(t, dir)
	cases := []struct {
		path  string
		size  int64  // what the walk saw
		whole bool   // read whole
		data  string // if whole
	}{
		{"empty", 0, true, ""},
		{"one", 1, true, "1"},
		{"page", 4096, true, data(4096)},
		{"max", SmallMax, true, data(SmallMax)},
		{"sub/file", 17, true, "in a subdirectory"},
		{"link", 3, false, ""},    // never followed: Open reports it
		{"missing", 0, false, ""}, // removed since the walk
		{"grew", 5, false, ""},    // larger than the walk saw
		{"shrank", 20, false, ""}, // smaller than the walk saw
		{"dir", 0, false, ""},     // a directory now
	}
	for _, tc := range cases {
		if !r.Add(tc.path, tc.size) {
			t.Fatalf("Add(%s, %d) = false on a batch of %d", tc.path, tc.size, r.Len())
		}
	}
	files := r.Read()
	if len(files) != len(cases) || r.Len() != 0 {
		t.Fatalf("Read returned %d files and left %d queued, want %d and 0", len(files), r.Len(), len(cases))
	}
	for i, tc := range cases {
		f := files[i]
		if f.Path != tc.path || f.Whole != tc.whole || string(f.Data) != tc.data {
			t.Errorf("%s: got %s, whole %v, %d bytes; want whole %v, %d bytes", tc.path, f.Path, f.Whole, len(f.Data), tc.whole, len(tc.data))
		}
	}
}

func TestSmallReaderBatches(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{}
	for i := range 3*smallBatch + 5 {
		files[fmt.Sprintf("f%03d", i)] = fmt.Sprintf("file %d", i)
	}
	sourcetest.Write(t, dir, files)
	r := smallReaderFor(t, dir)

	if r.Add("big", SmallMax+1) {
		t.Error("Add took a file larger than SmallMax")
	}
	// The batch fills at smallBatch files; each Read empties it, and the
	// ring's slots serve the next batch.
	read := 0
	for i := range 3*smallBatch + 5 {
		p := fmt.Sprintf("f%03d", i)
		if !r.Add(p, int64(len(files[p]))) {
			if r.Len() != smallBatch {
				t.Fatalf("Add refused %s with %d files queued, want a full batch of %d", p, r.Len(), smallBatch)
			}
			read += check(t, r.Read(), files)
			if !r.Add(p, int64(len(files[p]))) {
				t.Fatalf("Add refused %s on an empty batch", p)
			}
		}
	}
	read += check(t, r.Read(), files)
	if read != len(files) {
		t.Errorf("read %d files whole, want %d", read, len(files))
	}

	// The arena fills before the batch does with files near SmallMax.
	big := strings.Repeat("b", SmallMax)
	if err := os.WriteFile(filepath.Join(dir, "big"), []byte(big), 0o644); err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Add("big", SmallMax) {
		n++
	}
	if n == 0 || n >= smallBatch || n > smallArena/SmallMax {
		t.Errorf("the arena took %d files of SmallMax bytes, want 1 to %d", n, smallArena/SmallMax)
	}
	for _, f := range r.Read() {
		if !f.Whole || string(f.Data) != big {
			t.Fatalf("%s: whole %v, %d bytes, want %d", f.Path, f.Whole, len(f.Data), len(big))
		}
	}
}

func check(t *testing.T, got []SmallFile, want map[string]string) int {
	t.Helper()
	for _, f := range got {
		if !f.Whole || string(f.Data) != want[f.Path] {
			t.Errorf("%s: whole %v, data %q, want %q", f.Path, f.Whole, f.Data, want[f.Path])
		}
	}
	return len(got)
}
