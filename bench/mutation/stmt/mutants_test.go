package main

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `package p

func f(a, b bool, xs []int) (int, error) {
	n := 0
	n = 1
	n += 2
	use(n)
	if a && (b || n > 1) {
		return n, errBad
	}
	for i := 0; i < len(xs) && !a; i++ {
		g := func() error { return errBad }
		_ = g
	}
	return n, nil
}
`

// TestGenerate: each kind where the code has one, with the edit it makes,
// and nothing else: a := is never deleted, a function body's last return
// never dropped, a nil error never "nil"ed, a closure's return judged by
// the closure's own results.
func TestGenerate(t *testing.T) {
	ms, err := Generate("p.go", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		got = append(got, m.Kind+" "+strings.TrimSpace(string([]byte(sample)[m.Start:m.End]))+" => "+m.Text)
	}
	want := []string{
		"delete-assignment n = 1 => ",
		"delete-assignment n += 2 => ",
		"delete-call use(n) => ",
		"cond-true a && (b || n > 1) => true",
		"cond-false a && (b || n > 1) => false",
		"drop-clause a && (b || n > 1) => (a)",
		"drop-clause a && (b || n > 1) => ((b || n > 1))",
		"drop-clause b || n > 1 => (b)",
		"drop-clause b || n > 1 => (n > 1)",
		"drop-return return n, errBad => ",
		"nil-error errBad => nil",
		"drop-clause i < len(xs) && !a => (i < len(xs))",
		"drop-clause i < len(xs) && !a => (!a)",
		"nil-error errBad => nil",
		"delete-assignment _ = g => ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mutants:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestMutantsParse: every mutant of the code in scope is still Go syntax
// (whether it type-checks is for the compiler to say, per mutant).
func TestMutantsParse(t *testing.T) {
	files, _ := filepath.Glob("../../../solver/prune/*.go")
	more, _ := filepath.Glob("../../../hash/inputs/*.go")
	n := 0
	for _, f := range append(files, more...) {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src := mustRead(t, f)
		ms, err := Generate(f, src)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			n++
			if _, err := parser.ParseFile(token.NewFileSet(), f, m.Apply(src), 0); err != nil {
				t.Errorf("%s: %v", m, err)
			}
		}
	}
	if n < 100 {
		t.Errorf("only %d mutants in solver/prune and hash/inputs", n)
	}
}

func mustRead(t *testing.T, f string) []byte {
	t.Helper()
	b, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOnlyReadsTheLog: the survivors cut from a run's log, as -only's
// help says, name exactly those mutants, drop-clauses told apart by the
// side they keep.
func TestOnlyReadsTheLog(t *testing.T) {
	ms, err := Generate("p.go", []byte(sample))
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for i, m := range ms {
		outcome := []string{Lived, Killed}[i%2]
		log.WriteString("2026/12/06 04:16:04 " + outcome + " " + m.String() + "\n")
	}
	var lived strings.Builder
	for _, l := range strings.Split(log.String(), "\n") {
		if f := strings.SplitN(l, " ", 4); len(f) == 4 && f[2] == Lived {
			lived.WriteString(f[3] + "\n")
		}
	}
	p := filepath.Join(t.TempDir(), "only")
	if err := os.WriteFile(p, []byte(lived.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := readOnly(p)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for i, m := range ms {
		if set[m.String()] != (i%2 == 0) {
			t.Errorf("%s: in the set %v, want %v", m, set[m.String()], i%2 == 0)
		}
		if i%2 == 0 {
			n++
		}
	}
	if len(set) != n {
		t.Errorf("%d mutants in the set, want %d (two mutants print alike)", len(set), n)
	}
}

// TestE2EMapByFunction: a mutant runs the e2e tests mapped to its
// declared function (a closure's mutants count as the function's), else
// those mapped to its file, else none.
func TestE2EMapByFunction(t *testing.T) {
	src := "package p\n\nfunc a(x int) { use(x) }\n\nfunc b(x int) {\n\tf := func() { use(x) }\n\tf()\n}\n"
	ms, err := Generate("dir/p.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "e2e.map")
	if err := os.WriteFile(path, []byte("# a comment\ndir/p.go ^(TestFile)$\n./dir/p.go#b   ^(TestB)$\nother.go#a ^(TestOther)$\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e2eMap, err := readMap(path)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range ms {
		re, _ := e2eTests(e2eMap, m)
		got = append(got, m.Func+" "+m.Kind+" "+re)
	}
	want := []string{"a delete-call ^(TestFile)$", "b delete-call ^(TestB)$", "b delete-call ^(TestB)$"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mapped:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, ok := e2eTests(e2eMap, Mutant{File: "elsewhere.go", Func: "a"}); ok {
		t.Errorf("a file the map does not name is mapped")
	}
}
