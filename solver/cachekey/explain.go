package cachekey

import (
	"fmt"
	"slices"
	"strings"
)

// Explain says, for each step of steps whose key the imported caches do
// not hold, which part of it differed: keyed by the step's line. local
// is the daemon's cache store after the build; imported the graphs of
// the caches the build imported; sessions the ids of the sessions that
// sent this build's local sources, which tell its keys from those of
// other builds in the store; hidden the values never to show (redacted
// build args, which BuildKit's plaintexts hold as a step's env). A step
// it cannot place in the store is left out.
func Explain(local *Graph, imported []*Graph, sessions []string, steps []Step, hidden []string) map[int]string {
	all := &Graph{recs: map[int]*Record{}, byOp: map[string][]*Record{}, plain: map[string]*Plain{}}
	for _, g := range imported {
		all.merge(g)
	}
	d := newDiffer(local, all)
	ours := local.sessionRoots(sessions)
	records := map[int]*Record{} // step line -> its record
	lineOf := map[int]int{}      // record id -> step line
	for _, s := range slices.SortedFunc(slices.Values(steps), func(a, b Step) int { return a.Line - b.Line }) {
		if r := d.recordOf(s, ours); r != nil {
			records[s.Line] = r
			lineOf[r.ID] = s.Line
			ours[r.ID] = true
		}
	}
	out := map[int]string{}
	defer func() {
		for line, why := range out {
			out[line] = mask(why, hidden)
		}
	}()
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
// is s's instruction, computed from the most of this build's records
// known so far (ours: its sources' roots, the records of earlier steps),
// preferring one the imported cache does not hold. Other builds' records
// of the same operation can link to this build's roots too (BuildKit
// adds the links of a key it finds again), but not to its earlier steps.
func (d *differ) recordOf(s Step, ours map[int]bool) *Record {
	var best *Record
	bestScore := -1
	for op, recs := range d.local.byOp {
		if o := d.local.op(op); o == nil || !o.matches(s.Instruction) {
			continue
		}
		for _, r := range recs {
			score := 2 * len(slices.DeleteFunc(slices.Clone(r.Parents), func(l Link) bool { return !ours[l.Target] }))
			if !d.matched(r) {
				score++
			}
			if score > bestScore || score == bestScore && r.ID < best.ID {
				best, bestScore = r, score
			}
		}
	}
	return best
}

// sessionRoots are the roots of the local sources the sessions sent.
func (g *Graph) sessionRoots(sessions []string) map[int]bool {
	out := map[int]bool{}
	for _, r := range g.recs {
		if g.hasSession(r, sessions) {
			out[r.ID] = true
		}
	}
	return out
}

// mask replaces each of the hidden values in s.
func mask(s string, hidden []string) string {
	for _, h := range hidden {
		if h != "" {
			s = strings.ReplaceAll(s, h, "[redacted]")
		}
	}
	return s
}
