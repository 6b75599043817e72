package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// program exercises every kind of mutant and prints what f does with
// each input, so that two builds that behave alike print alike.
const program = `package main

import (
	"errors"
	"fmt"
)

var errBad = errors.New("bad")

var sink int

func use(n int) { sink += n }

func f(a, b bool, xs []int) (int, error) {
	n := 0
	n = 1
	n += 2
	use(n)
	if a && (b || n > 1) {
		return n, errBad
	}
	for i := 0; i < len(xs) && !a; i = i + 1 {
		n += xs[i]
		if xs[i] < 0 || (b && xs[i] > 4) {
			return n, fmt.Errorf("at %d: %w", i, errBad)
		}
	}
	switch {
	case b:
		return n + 100, nil
	}
	if v, ok := map[bool]int{true: 7}[a]; ok {
		n += v
	}
	return n, nil
}

func main() {
	for _, a := range []bool{false, true} {
		for _, b := range []bool{false, true} {
			for _, xs := range [][]int{nil, {1, 2}, {3, -1, 5}, {5}} {
				n, err := f(a, b, xs)
				fmt.Println(a, b, xs, n, err, sink)
			}
		}
	}
}
`

// TestSchemaBehavesAsPlanted: the one binary with every mutant behind a
// switch behaves, with each switch on, exactly as that mutant planted
// alone; with none on, as the original. The statement in a for's post
// (not in a statement list) is left to plant alone.
func TestSchemaBehavesAsPlanted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a program per mutant")
	}
	dir := t.TempDir()
	src := []byte(program)
	ms, err := Generate("main.go", src)
	if err != nil {
		t.Fatal(err)
	}
	sw := make([]switched, len(ms))
	for i, m := range ms {
		sw[i] = switched{Mutant: m, ID: i + 1}
	}
	out, pkg, left, err := switchFile("main.go", src, sw)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Kind != DeleteAssign || left[0].Line != 22 {
		t.Errorf("left to plant alone: %v, want the for post i = i + 1 (line 22)", left)
	}
	write(t, filepath.Join(dir, "schema", "main.go"), out)
	write(t, filepath.Join(dir, "schema", "zz.go"), helperFile(pkg))
	schemaBin := build(t, filepath.Join(dir, "schema"))
	original := build(t, writeProgram(t, dir, "orig", src))
	want := run(t, original, 0)
	if got := run(t, schemaBin, 0); got != want {
		t.Fatalf("no switch on: got\n%s\nwant\n%s", got, want)
	}
	compared := 0
	for i, m := range sw {
		if isLeft(m, left) {
			continue
		}
		pdir := writeProgram(t, dir, strconv.Itoa(i), m.Apply(src))
		if !compiles(pdir) {
			continue // not a mutant anyone ships; the type check skips it
		}
		planted := run(t, build(t, pdir), 0)
		if got := run(t, schemaBin, m.ID); got != planted {
			t.Errorf("%s: switched prints\n%s\nplanted alone prints\n%s", m, got, planted)
		}
		compared++
	}
	if compared < 20 {
		t.Errorf("compared only %d mutants", compared)
	}
}

func isLeft(m switched, left []switched) bool {
	for _, l := range left {
		if l.ID == m.ID {
			return true
		}
	}
	return false
}

func writeProgram(t *testing.T, dir, name string, src []byte) string {
	t.Helper()
	d := filepath.Join(dir, name)
	write(t, filepath.Join(d, "main.go"), src)
	return d
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	mod := filepath.Join(filepath.Dir(path), "go.mod")
	if _, err := os.Stat(mod); err != nil {
		if err := os.WriteFile(mod, []byte("module p\n\ngo 1.22\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func compiles(dir string) bool {
	cmd := exec.Command("go", "build", "-o", os.DevNull, ".")
	cmd.Dir = dir
	return cmd.Run() == nil
}

func build(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "prog")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", dir, err, out)
	}
	return bin
}

func run(t *testing.T, bin string, id int) string {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), mutantEnv+"="+strconv.Itoa(id))
	out, err := cmd.Output() // stdout: a panic's trace names lines, which differ
	if err != nil {
		return string(out) + "exit: " + err.Error()
	}
	return string(out)
}

// TestCulprits: a compile error in the switched source blames the
// mutants of the function it points into, found by name in the original
// (whose lines differ), and an error outside any function the whole file.
func TestCulprits(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "main.go")
	write(t, f, []byte(program))
	ms, err := Generate(f, []byte(program))
	if err != nil {
		t.Fatal(err)
	}
	sw := make([]switched, len(ms))
	for i, m := range ms {
		sw[i] = switched{Mutant: m, ID: i + 1}
	}
	out, _, _, err := switchFile(f, []byte(program), sw)
	if err != nil {
		t.Fatal(err)
	}
	lineOf := func(s string) int { // of s in the switched source
		for i, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, s) {
				return i + 1
			}
		}
		t.Fatalf("%q not in the switched source", s)
		return 0
	}
	for _, tc := range []struct {
		name string
		at   int
		want int // mutants blamed
	}{
		{"in f", lineOf("switch {"), len(ms) - 2}, // all but use's sink += n and main's Println
		{"in main", lineOf("for _, a := range"), 1},
		{"outside functions", lineOf("var errBad"), len(ms)},
	} {
		msg := fmt.Sprintf("# p\n./main.go:%d:2: missing return\n", tc.at)
		if got := culprits(msg, map[string][]byte{f: out}, []string{f}, sw); len(got) != tc.want {
			t.Errorf("%s: %d mutants blamed, want %d", tc.name, len(got), tc.want)
		}
	}
}
