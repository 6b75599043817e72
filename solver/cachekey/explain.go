package cachekey

import (
	"fmt"
	"slices"
)

// Explain says, for each step of steps whose key the imported caches do
// not hold, which part of it differed: keyed by the step's line. local
// is the daemon's cache store after the build; imported the graphs of
// the caches the build imported; sessions the ids of the sessions that
// sent this build's local sources, which tell its keys from those of
// other builds in the store. A step it cannot place in the store is
// left out.
func Explain(local *Graph, imported []*Graph, sessions []string, steps []Step) map[int]string {
	all := &Graph{recs: map[int]*Record{}, byOp: map[string][]*Record{}, plain: map[string]*Plain{}}
	for _, g := range imported {
		all.merge(g)
	}
	d := newDiffer(local, all)
	ours := local.descendants(sessions)
	records := map[int]*Record{} // step line -> its record
	lineOf := map[int]int{}      // record id -> step line
	for _, s := range steps {
		if r := d.recordOf(s, ours); r != nil {
			records[s.Line] = r
			lineOf[r.ID] = s.Line
		}
	}
	out := map[int]string{}
	for _, s := range steps {
		r := records[s.Line]
		switch {
		case r == nil:
			continue
		case d.matched(r):
			out[s.Line] = "the imported cache holds BuildKit's key for it, yet BuildKit ran it: that cache's layers for it could not be read"
			continue
		}
		f := d.why(r)
		if f.after == nil {
			out[s.Line] = "BuildKit's cache key differs from the imported cache's " + f.words
		} else if line, ok := lineOf[f.after.ID]; ok {
			out[s.Line] = fmt.Sprintf("BuildKit's cache key differs from the imported cache's because line %d's does", line)
		} else {
			out[s.Line] = "BuildKit's cache key differs from the imported cache's because an earlier step's does"
		}
	}
	return out
}

// recordOf is the record of this build for step s: one whose operation
// is s's instruction, among this build's own (ours) where it has some,
// preferring one the imported cache does not hold.
func (d *differ) recordOf(s Step, ours map[int]bool) *Record {
	var cands []*Record
	for op, recs := range d.local.byOp {
		o := d.local.op(op)
		if o == nil || !o.matches(s.Instruction) {
			continue
		}
		cands = append(cands, recs...)
	}
	if slices.ContainsFunc(cands, func(r *Record) bool { return ours[r.ID] }) {
		cands = slices.DeleteFunc(cands, func(r *Record) bool { return !ours[r.ID] })
	}
	slices.SortFunc(cands, func(a, b *Record) int { return a.ID - b.ID })
	for _, r := range cands {
		if !d.matched(r) {
			return r
		}
	}
	if len(cands) > 0 {
		return cands[0]
	}
	return nil
}

// descendants are the records computed, directly or not, from a root
// sent by one of the sessions.
func (g *Graph) descendants(sessions []string) map[int]bool {
	out := map[int]bool{}
	children := g.children()
	var visit func(id int)
	visit = func(id int) {
		if out[id] {
			return
		}
		out[id] = true
		for _, c := range children[id] {
			visit(c.ID)
		}
	}
	for _, r := range g.recs {
		if g.hasSession(r, sessions) {
			visit(r.ID)
		}
	}
	return out
}
