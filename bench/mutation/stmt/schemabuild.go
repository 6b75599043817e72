package main

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
)

// schema is one package's test binary with all its switchable mutants.
type schema struct {
	dir     string // temporary: switched files, overlay, binary
	pkgDir  string // where the tests run
	overlay string // the switched files in place of the originals
	bin     string
	on      []switched // behind a switch in bin
	slow    []Mutant   // to plant alone: not switchable, or their function would not compile switched
}

// buildSchema compiles the test binary of pkg with the mutants ms of
// files behind switches. Where the switched code of a function does not
// compile (a dropped return the function needs to end, say), that
// function's mutants are planted alone instead, and it tries again.
func buildSchema(pkg string, files []string, ms []Mutant) (*schema, error) {
	dir, err := os.MkdirTemp("", "bkcache-schema-")
	if err != nil {
		return nil, err
	}
	s := &schema{dir: dir, overlay: filepath.Join(dir, "overlay.json"), bin: filepath.Join(dir, "pkg.test")}
	if s.pkgDir, err = filepath.Abs(pkg); err != nil {
		return nil, err
	}
	all := make([]switched, len(ms))
	for i, m := range ms {
		all[i] = switched{Mutant: m, ID: i + 1}
	}
	alone := map[int]bool{}
	for range 30 {
		printed, left, err := s.write(files, without(all, alone))
		if err != nil {
			s.cleanup()
			return nil, err
		}
		out, err := s.compile()
		if err == nil {
			s.finish(all, alone, left)
			return s, nil
		}
		bad := culprits(out, printed, files, all)
		if len(bad) == 0 {
			s.cleanup()
			return nil, fmt.Errorf("%s: the switched code does not compile, and the errors name no mutated function:\n%s", pkg, out)
		}
		for id := range bad {
			alone[id] = true
		}
	}
	s.cleanup()
	return nil, fmt.Errorf("%s: the switched code still does not compile after 30 tries", pkg)
}

func (s *schema) cleanup() { os.RemoveAll(s.dir) }

func (s *schema) finish(all []switched, alone map[int]bool, left []switched) {
	notOn := map[int]bool{}
	for _, m := range left {
		notOn[m.ID] = true
	}
	for _, m := range all {
		if alone[m.ID] || notOn[m.ID] {
			s.slow = append(s.slow, m.Mutant)
		} else {
			s.on = append(s.on, m)
		}
	}
}

func without(all []switched, alone map[int]bool) []switched {
	var out []switched
	for _, m := range all {
		if !alone[m.ID] {
			out = append(out, m)
		}
	}
	return out
}

// write puts each file, switched, and the switches' declarations in
// s.dir, and the overlay that puts them in the package. It returns the
// switched sources by file, and the mutants it could not switch.
func (s *schema) write(files []string, ms []switched) (map[string][]byte, []switched, error) {
	printed := map[string][]byte{}
	replace := map[string]string{}
	var left []switched
	var pkgName string
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, err
		}
		var mine []switched
		for _, m := range ms {
			if m.File == f {
				mine = append(mine, m)
			}
		}
		out, name, l, err := switchFile(f, src, mine)
		if err != nil {
			return nil, nil, err
		}
		pkgName, printed[f], left = name, out, append(left, l...)
		if replace[abs(f)], err = s.put(filepath.Base(f), out); err != nil {
			return nil, nil, err
		}
	}
	var err error
	if replace[filepath.Join(s.pkgDir, "zz_bkcache_mutant.go")], err = s.put("zz_bkcache_mutant.go", helperFile(pkgName)); err != nil {
		return nil, nil, err
	}
	doc, err := json.Marshal(map[string]any{"Replace": replace})
	if err == nil {
		err = os.WriteFile(s.overlay, doc, 0o644)
	}
	return printed, left, err
}

func (s *schema) put(name string, b []byte) (string, error) {
	p := filepath.Join(s.dir, name)
	return p, os.WriteFile(p, b, 0o644)
}

func abs(f string) string {
	a, err := filepath.Abs(f)
	if err != nil {
		return f
	}
	return a
}

func (s *schema) compile() (string, error) {
	cmd := exec.Command("go", "test", "-c", "-vet=off", "-o", s.bin, ".")
	cmd.Dir = s.pkgDir
	cmd.Env = append(os.Environ(), "GOFLAGS=-overlay="+s.overlay)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// run runs the tests with mutant id on (0: none), as CI does.
func (s *schema) run(ctx context.Context, id int) error {
	cmd := exec.CommandContext(ctx, s.bin, "-test.count=1", "-test.failfast")
	cmd.Dir = s.pkgDir
	cmd.Env = append(os.Environ(), "CI=true", mutantEnv+"="+strconv.Itoa(id))
	killGroup(cmd)
	return cmd.Run()
}

var compileErr = regexp.MustCompile(`(?m)^(?:\./)?(\S+\.go):(\d+):\d+: `)

// culprits returns the mutants of the functions the compiler's errors
// point into, by the switched sources: those become planted alone. An
// error outside any function blames the whole file.
func culprits(out string, printed map[string][]byte, files []string, ms []switched) map[int]bool {
	bad := map[int]bool{}
	for _, e := range compileErr.FindAllStringSubmatch(out, -1) {
		f := fileNamed(e[1], files)
		if f == "" {
			continue
		}
		line, _ := strconv.Atoi(e[2])
		from, to := funcSpan(f, printed[f], line)
		for _, m := range ms {
			if m.File == f && m.Start >= from && m.Start < to {
				bad[m.ID] = true
			}
		}
	}
	return bad
}

func fileNamed(name string, files []string) string {
	for _, f := range files {
		if filepath.Base(f) == filepath.Base(name) {
			return f
		}
	}
	return ""
}

// funcSpan returns the byte span, in the original file f, of the function
// that holds line of its switched source; the whole file when none does.
func funcSpan(f string, switchedSrc []byte, line int) (int, int) {
	key := ""
	fset := token.NewFileSet()
	if sf, err := parser.ParseFile(fset, f, switchedSrc, parser.SkipObjectResolution); err == nil {
		for _, d := range sf.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fset.Position(fn.Pos()).Line <= line && line <= fset.Position(fn.End()).Line {
				key = funcKey(fn)
			}
		}
	}
	src, err := os.ReadFile(f)
	if err != nil || key == "" {
		return 0, 1 << 62
	}
	fset = token.NewFileSet()
	of, err := parser.ParseFile(fset, f, src, parser.SkipObjectResolution)
	if err != nil {
		return 0, 1 << 62
	}
	for _, d := range of.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && funcKey(fn) == key {
			return fset.Position(fn.Pos()).Offset, fset.Position(fn.End()).Offset
		}
	}
	return 0, 1 << 62
}

// funcKey names a function or method: its receiver's type and its name.
func funcKey(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	if st, ok := t.(*ast.StarExpr); ok {
		t = st.X
	}
	if ix, ok := t.(*ast.IndexExpr); ok {
		t = ix.X
	}
	if id, ok := t.(*ast.Ident); ok {
		return id.Name + "." + fn.Name.Name
	}
	return fn.Name.Name
}
