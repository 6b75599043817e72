package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"sort"
	"strings"
)

// The bugs people write are rarely a flipped operator: they forget an
// assignment, drop a return, lose a clause of a condition, or return nil
// where an error was due. Each Mutant is one such bug, as an edit of the
// source: the bytes [Start, End) replaced by Text.

// Kinds of mutants.
const (
	DeleteAssign = "delete-assignment" // x = v, x += v, x.f = v
	DeleteCall   = "delete-call"       // f(x) as a statement
	DropReturn   = "drop-return"       // a return inside a block that goes on
	NilError     = "nil-error"         // return ..., err becomes return ..., nil
	CondTrue     = "cond-true"         // if c becomes if true
	CondFalse    = "cond-false"        // if c becomes if false
	DropClause   = "drop-clause"       // a && b becomes a, or b
)

// Mutant is one planted bug.
type Mutant struct {
	File       string
	Func       string // the function (declared, not a literal) it is in
	Line, Col  int
	Kind       string
	Start, End int    // byte offsets in the file
	Text       string // what replaces them
	KeepLeft   bool   // a drop-clause that keeps the left side
}

func (m Mutant) String() string {
	s := fmt.Sprintf("%s:%d:%d %s", m.File, m.Line, m.Col, m.Kind)
	if m.Kind == DropClause {
		// Several clauses of one chain start at the same column: say
		// which side this one keeps.
		keep := strings.Join(strings.Fields(m.Text), " ")
		if len(keep) > 50 {
			keep = keep[:47] + "..."
		}
		s += " keeps " + keep
	}
	return s
}

// Apply returns src with m planted.
func (m Mutant) Apply(src []byte) []byte {
	out := append([]byte{}, src[:m.Start]...)
	out = append(out, m.Text...)
	return append(out, src[m.End:]...)
}

// Generate returns the mutants of one Go file, in source order.
func Generate(name string, src []byte) ([]Mutant, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	g := &generator{fset: fset, name: name, src: src}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Body != nil {
			g.fn, g.results, g.body = fn.Name.Name, fn.Type.Results, fn.Body
			ast.Inspect(fn.Body, g.visit)
		}
	}
	sort.SliceStable(g.out, func(i, j int) bool { return g.out[i].Start < g.out[j].Start })
	return g.out, nil
}

type generator struct {
	fset    *token.FileSet
	name    string
	src     []byte
	fn      string         // the declared function being walked
	results *ast.FieldList // of the function being walked
	body    *ast.BlockStmt // its body
	out     []Mutant
}

func (g *generator) add(n ast.Node, kind, text string) {
	p := g.fset.Position(n.Pos())
	g.out = append(g.out, Mutant{File: g.name, Func: g.fn, Line: p.Line, Col: p.Column, Kind: kind,
		Start: g.fset.Position(n.Pos()).Offset, End: g.fset.Position(n.End()).Offset, Text: text})
}

func (g *generator) text(n ast.Node) string {
	return string(g.src[g.fset.Position(n.Pos()).Offset:g.fset.Position(n.End()).Offset])
}

func (g *generator) visit(n ast.Node) bool {
	switch n := n.(type) {
	case *ast.FuncLit:
		// A closure's returns are its own.
		results, body := g.results, g.body
		g.results, g.body = n.Type.Results, n.Body
		ast.Inspect(n.Body, g.visit)
		g.results, g.body = results, body
		return false
	case *ast.BlockStmt:
		g.block(n)
	case *ast.AssignStmt:
		if n.Tok != token.DEFINE {
			g.add(n, DeleteAssign, "")
		}
	case *ast.ExprStmt:
		if _, ok := n.X.(*ast.CallExpr); ok {
			g.add(n, DeleteCall, "")
		}
	case *ast.ReturnStmt:
		g.nilError(n)
	case *ast.IfStmt:
		g.condition(n.Cond)
	case *ast.ForStmt:
		if n.Cond != nil {
			g.clauses(n.Cond)
		}
	}
	return true
}

// block drops each return but a function body's last statement (without
// which it would not compile): a return inside an if, a case or a loop,
// whose removal lets the code after it run.
func (g *generator) block(b *ast.BlockStmt) {
	for i, s := range b.List {
		if r, ok := s.(*ast.ReturnStmt); ok && !(b == g.body && i == len(b.List)-1) {
			g.add(r, DropReturn, "")
		}
	}
}

// nilError makes a return of a function whose last result is an error
// return nil for it, where it returned something else.
func (g *generator) nilError(r *ast.ReturnStmt) {
	if g.results == nil || len(r.Results) != g.results.NumFields() || len(r.Results) == 0 {
		return
	}
	last := g.results.List[len(g.results.List)-1]
	if id, ok := last.Type.(*ast.Ident); !ok || id.Name != "error" {
		return
	}
	e := r.Results[len(r.Results)-1]
	if id, ok := e.(*ast.Ident); ok && id.Name == "nil" {
		return
	}
	g.add(e, NilError, "nil")
}

// condition plants an if's condition as always true, always false, and
// less each clause of its && and || chains.
func (g *generator) condition(c ast.Expr) {
	g.add(c, CondTrue, "true")
	g.add(c, CondFalse, "false")
	g.clauses(c)
}

// clauses plants, for each && or || in c, the expression less one of its
// two sides.
func (g *generator) clauses(c ast.Expr) {
	ast.Inspect(c, func(n ast.Node) bool {
		b, ok := n.(*ast.BinaryExpr)
		if !ok || (b.Op != token.LAND && b.Op != token.LOR) {
			return !isFunc(n)
		}
		g.add(b, DropClause, "("+g.text(b.X)+")")
		g.out[len(g.out)-1].KeepLeft = true
		g.add(b, DropClause, "("+g.text(b.Y)+")")
		return true
	})
}

func isFunc(n ast.Node) bool {
	_, ok := n.(*ast.FuncLit)
	return ok
}
