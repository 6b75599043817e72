package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"

	"golang.org/x/tools/go/packages"
)

// A mutant that does not compile planted alone (a variable it leaves
// unused, a return its function needs) is not a bug anyone ships. The
// schema binary would compile it anyway, so the compiler's verdict on
// each mutant alone is taken from go/types first: milliseconds where a
// build takes seconds.

// checker type-checks one package with one of its files replaced.
type checker struct {
	fset    *token.FileSet
	path    string
	files   []string             // the package's Go files, absolute
	parsed  map[string]*ast.File // unmutated
	imports map[string]*types.Package
}

func newChecker(pkg string) (*checker, error) {
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedCompiledGoFiles | packages.NeedImports | packages.NeedDeps | packages.NeedTypes}
	pkgs, err := packages.Load(cfg, pkg)
	if err != nil {
		return nil, err
	}
	if len(pkgs) != 1 || len(pkgs[0].Errors) > 0 {
		return nil, fmt.Errorf("%s: loading the package for type checks: %v", pkg, pkgs)
	}
	p := pkgs[0]
	c := &checker{fset: token.NewFileSet(), path: p.PkgPath, files: p.CompiledGoFiles, parsed: map[string]*ast.File{}, imports: map[string]*types.Package{}}
	for path, ip := range p.Imports {
		c.imports[path] = ip.Types
	}
	for _, f := range c.files {
		af, err := parser.ParseFile(c.fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return nil, err
		}
		c.parsed[f] = af
	}
	return c, nil
}

// compiles reports whether the package type-checks with file's source
// replaced by src.
func (c *checker) compiles(file string, src []byte) bool {
	mutated, err := parser.ParseFile(c.fset, file, src, parser.SkipObjectResolution)
	if err != nil {
		return false
	}
	files := make([]*ast.File, 0, len(c.files))
	for _, f := range c.files {
		if f == abs(file) {
			files = append(files, mutated)
		} else {
			files = append(files, c.parsed[f])
		}
	}
	imp := importerFunc(func(path string) (*types.Package, error) {
		if p, ok := c.imports[path]; ok {
			return p, nil
		}
		return nil, fmt.Errorf("%s: not imported", path)
	})
	conf := types.Config{Importer: imp, Error: func(error) {}}
	_, err = conf.Check(c.path, c.fset, files, nil)
	return err == nil
}

// splitCompiling splits ms into the mutants that type-check planted
// alone and those that do not.
func splitCompiling(pkg string, ms []Mutant) (ok, bad []Mutant, err error) {
	c, err := newChecker(pkg)
	if err != nil {
		return nil, nil, err
	}
	srcs := map[string][]byte{}
	for _, m := range ms {
		if srcs[m.File] == nil {
			if srcs[m.File], err = os.ReadFile(filepath.Clean(m.File)); err != nil {
				return nil, nil, err
			}
		}
		if c.compiles(m.File, m.Apply(srcs[m.File])) {
			ok = append(ok, m)
		} else {
			bad = append(bad, m)
		}
	}
	return ok, bad, nil
}

type importerFunc func(path string) (*types.Package, error)

func (f importerFunc) Import(path string) (*types.Package, error) { return f(path) }
