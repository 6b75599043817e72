package main

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"strconv"

	"golang.org/x/tools/go/ast/astutil"
)

// Linking a package's test binary costs seconds; running its tests,
// milliseconds to seconds. So, as mutation-schemata tools do, every
// mutant of a package is compiled into one test binary, each behind a
// switch, and each run turns one on through the environment. Switched,
// a mutant behaves as its planted edit does:
//
//	stmt            if !on(id) { stmt }                   (a deleted statement or return)
//	err in return   mutantErr(id, err)                    (nil-error)
//	c in if         on(t) || (!on(f) && (c))              (cond-true, cond-false)
//	x && y          on(a) && (x) || on(b) && (y) || !on(a) && !on(b) && (x && y)
//
// A statement outside a statement list (an if's or for's init) cannot
// be wrapped; such mutants are planted alone, the slow way.

// mutantEnv names the mutant a schema binary runs with.
const mutantEnv = "BKCACHE_MUTANT"

// Names the switched code calls, declared by helperFile.
const (
	onFunc  = "bkcacheMutantOn"
	errFunc = "bkcacheMutantErr"
)

// helperFile declares the switches for package pkg.
func helperFile(pkg string) []byte {
	return fmt.Appendf(nil, `package %s

import (
	"os"
	"strconv"
)

var bkcacheMutantID, _ = strconv.Atoi(os.Getenv(%q))

func %s(id int) bool { return id == bkcacheMutantID }

func %s(id int, err error) error {
	if id == bkcacheMutantID {
		return nil
	}
	return err
}
`, pkg, mutantEnv, onFunc, errFunc)
}

// switched is a mutant with its switch: it is on when mutantEnv is ID.
type switched struct {
	Mutant
	ID int
}

type span struct{ start, end int }

// switchFile returns src with every mutant of ms behind its switch, the
// package's name, and the mutants it could not switch (to plant alone).
func switchFile(name string, src []byte, ms []switched) (out []byte, pkg string, left []switched, err error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, "", nil, err
	}
	at := map[span][]switched{}
	for _, m := range ms {
		at[span{m.Start, m.End}] = append(at[span{m.Start, m.End}], m)
	}
	offset := func(p token.Pos) int { return fset.Position(p).Offset }
	spans := map[ast.Node]span{} // taken before any child is replaced
	done := map[int]bool{}
	pre := func(c *astutil.Cursor) bool {
		if n := c.Node(); n != nil {
			spans[n] = span{offset(n.Pos()), offset(n.End())}
		}
		return true
	}
	post := func(c *astutil.Cursor) bool {
		n := c.Node()
		if n == nil || len(at[spans[n]]) == 0 {
			return true
		}
		if r := rewrite(c, n, at[spans[n]], done); r != nil {
			c.Replace(r)
		}
		return true
	}
	astutil.Apply(f, pre, post)
	for _, m := range ms {
		if !done[m.ID] {
			left = append(left, m)
		}
	}
	var b bytes.Buffer
	cfg := printer.Config{Mode: printer.UseSpaces | printer.TabIndent, Tabwidth: 8}
	if err := cfg.Fprint(&b, fset, f); err != nil {
		return nil, "", nil, err
	}
	return b.Bytes(), f.Name.Name, left, nil
}

// rewrite returns what replaces n so that each of ms (the mutants whose
// span is n's) is behind its switch, marking those it switched in done;
// nil leaves n as it is.
func rewrite(c *astutil.Cursor, n ast.Node, ms []switched, done map[int]bool) ast.Node {
	switch n := n.(type) {
	case *ast.AssignStmt, *ast.ExprStmt, *ast.ReturnStmt:
		return wrapStmt(c, n.(ast.Stmt), ms, done)
	case ast.Expr:
		return wrapExpr(n, ms, done)
	}
	return nil
}

// wrapStmt puts a statement of a statement list behind the switch of its
// deletion.
func wrapStmt(c *astutil.Cursor, s ast.Stmt, ms []switched, done map[int]bool) ast.Node {
	switch c.Parent().(type) {
	case *ast.BlockStmt, *ast.CaseClause, *ast.CommClause:
	default:
		return nil
	}
	if c.Index() < 0 {
		return nil
	}
	for _, m := range ms {
		switch m.Kind {
		case DeleteAssign, DeleteCall, DropReturn:
			done[m.ID] = true
			return &ast.IfStmt{Cond: not(on(m.ID)), Body: &ast.BlockStmt{List: []ast.Stmt{s}}}
		}
	}
	return nil
}

// wrapExpr puts an expression behind the switches of its mutants: first
// the dropped clauses (n is then an && or ||), then cond-true and
// cond-false around the result, or nil-error.
func wrapExpr(n ast.Expr, ms []switched, done map[int]bool) ast.Expr {
	out := n
	var alts []ast.Expr // on(id) && (the side kept)
	var offs []ast.Expr // !on(id) for each of them
	for _, m := range ms {
		b, ok := n.(*ast.BinaryExpr)
		if m.Kind != DropClause || !ok {
			continue
		}
		side := b.Y
		if m.KeepLeft {
			side = b.X
		}
		alts = append(alts, and(on(m.ID), paren(side)))
		offs = append(offs, not(on(m.ID)))
		done[m.ID] = true
	}
	if len(alts) > 0 {
		out = or(append(alts, and(append(offs, paren(n))...))...)
	}
	for _, m := range ms {
		switch m.Kind {
		case CondTrue:
			out, done[m.ID] = or(on(m.ID), paren(out)), true
		case CondFalse:
			out, done[m.ID] = and(not(on(m.ID)), paren(out)), true
		case NilError:
			out, done[m.ID] = &ast.CallExpr{Fun: ast.NewIdent(errFunc), Args: []ast.Expr{intLit(m.ID), out}}, true
		}
	}
	if out == n {
		return nil
	}
	return out
}

func on(id int) ast.Expr {
	return &ast.CallExpr{Fun: ast.NewIdent(onFunc), Args: []ast.Expr{intLit(id)}}
}

func intLit(i int) ast.Expr { return &ast.BasicLit{Kind: token.INT, Value: strconv.Itoa(i)} }

func not(x ast.Expr) ast.Expr   { return &ast.UnaryExpr{Op: token.NOT, X: x} }
func paren(x ast.Expr) ast.Expr { return &ast.ParenExpr{X: x} }

func and(xs ...ast.Expr) ast.Expr { return chain(token.LAND, xs) }
func or(xs ...ast.Expr) ast.Expr  { return paren(chain(token.LOR, xs)) }

func chain(op token.Token, xs []ast.Expr) ast.Expr {
	out := xs[0]
	for _, x := range xs[1:] {
		out = &ast.BinaryExpr{X: out, Op: op, Y: x}
	}
	return out
}
