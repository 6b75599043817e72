package cachekey

import (
	"fmt"
	"slices"
	"strings"
)

// A Step is a Dockerfile step BuildKit ran, as the solve's progress
// placed it.
type Step struct {
	Line        int
	Instruction string
}

// differ compares this build's keys (local) with an imported cache's.
type differ struct {
	local, imported *Graph
	roots           map[string]bool // the imported graph's root digests
	memo            map[[2]int]bool
}

func newDiffer(local, imported *Graph) *differ {
	d := &differ{local: local, imported: imported, roots: map[string]bool{}, memo: map[[2]int]bool{}}
	for _, r := range imported.recs {
		if r.root() && !r.Random {
			d.roots[r.Digest] = true
		}
	}
	return d
}

// match reports whether local record l is the imported record r: the
// same root, or the same operation on matching parents for every input.
func (d *differ) match(l, r *Record) bool {
	key := [2]int{l.ID, r.ID}
	if v, ok := d.memo[key]; ok {
		return v
	}
	d.memo[key] = false // a cycle matches nothing
	var ok bool
	switch {
	case l.root() || r.root():
		ok = l.root() && r.root() && !l.Random && l.Digest == r.Digest
	case l.op() == r.op():
		ok = len(d.unmatchedInputs(l, r)) == 0
	}
	d.memo[key] = ok
	return ok
}

// unmatchedInputs lists the inputs of l with no link matching one of
// r's on the same input: the same operation and paths, from matching
// parents.
func (d *differ) unmatchedInputs(l, r *Record) []int {
	return d.unmatchedBy(l, r, func(ll, rl Link) bool { return rl.Digest == ll.Digest && rl.Selector == ll.Selector })
}

// unmatchedBy lists the inputs of l with no link that same takes, from
// a parent matching that of a link of r on the same input.
func (d *differ) unmatchedBy(l, r *Record, same func(ll, rl Link) bool) []int {
	var out []int
	for _, i := range inputs(l, r) {
		if !slices.ContainsFunc(l.Parents, func(ll Link) bool {
			return ll.Input == i && slices.ContainsFunc(r.Parents, func(rl Link) bool {
				return rl.Input == i && same(ll, rl) && d.match(d.local.recs[ll.Target], d.imported.recs[rl.Target])
			})
		}) {
			out = append(out, i)
		}
	}
	return out
}

// inputs are the input indexes either record links, sorted.
func inputs(l, r *Record) []int {
	var out []int
	for _, p := range append(slices.Clone(l.Parents), r.Parents...) {
		out = append(out, p.Input)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// matched reports whether the imported cache holds l's key.
func (d *differ) matched(l *Record) bool {
	if l.root() {
		return !l.Random && d.roots[l.Digest]
	}
	return slices.ContainsFunc(d.imported.byOp[l.op()], func(r *Record) bool { return d.match(l, r) })
}

// A finding is why one of this build's keys is not in the imported
// cache: in words, or after (a parent of this build that is not either).
type finding struct {
	words string
	after *Record
}

// why finds why l, a key the imported cache does not hold, differs.
func (d *differ) why(l *Record) finding {
	cands := d.imported.byOp[l.op()]
	if len(cands) == 0 {
		return d.opDiffers(l)
	}
	best, missing := cands[0], d.unmatchedInputs(l, cands[0])
	for _, r := range cands[1:] {
		if m := d.unmatchedInputs(l, r); len(m) < len(missing) {
			best, missing = r, m
		}
	}
	i := missing[0]
	for _, ll := range l.Parents {
		if p := d.local.recs[ll.Target]; ll.Input == i && !p.root() && !d.matched(p) {
			return finding{after: p}
		}
	}
	for _, ll := range l.Parents {
		p := d.local.recs[ll.Target]
		if ll.Input != i || !p.root() || p.Random {
			continue
		}
		for _, rl := range best.Parents {
			if r := d.imported.recs[rl.Target]; rl.Input == i && r.root() && !r.Random {
				return d.contentDiffers(l, p, r)
			}
		}
	}
	return finding{words: fmt.Sprintf("in its input %d, or in the paths it reads of it", i)}
}

// contentDiffers names the files whose headers or content differ
// between the content l read (root p) and what the cache's key read (r).
func (d *differ) contentDiffers(l, p, r *Record) finding {
	now, okNow := d.local.files(p.Digest)
	was, okWas := d.imported.files(r.Digest)
	if !okWas {
		was, okWas = d.local.files(r.Digest) // this daemon computed it once
	}
	if !okNow || !okWas {
		return finding{words: fmt.Sprintf("in the files it reads (BuildKit's checksum %s, was %s); the cache was made on another daemon, so this one's debug database cannot name them", short(p.Digest), short(r.Digest))}
	}
	base := ""
	if op := d.local.op(l.op()); op != nil && len(op.Copies) == 1 {
		base = op.Copies[0]
	}
	diffs := diffFiles(now, was, base)
	if len(diffs) == 0 {
		return finding{words: "in the files it reads, in a way BuildKit's debug database does not show"}
	}
	return finding{words: "in the files it reads: " + capped(diffs, 5) + ownersHint(diffs)}
}

// opDiffers names what differs between l's operation and the one the
// imported cache holds on the same parents.
func (d *differ) opDiffers(l *Record) finding {
	now := d.local.op(l.op())
	for _, r := range d.imported.recs {
		if r.root() || !d.sameParents(l, r) {
			continue
		}
		was := d.imported.op(r.op())
		if was == nil {
			was = d.local.op(r.op())
		}
		if now != nil && was != nil {
			if diffs := now.diff(was); len(diffs) > 0 {
				return finding{words: "in its definition: " + capped(diffs, 5)}
			}
		}
		return finding{words: fmt.Sprintf("in its definition (BuildKit's operation %s, was %s); the cache was made on another daemon, so this one's debug database cannot say how", short(l.op()), short(r.op()))}
	}
	return finding{words: "in its definition or its inputs: the imported cache holds no step like it on the same inputs"}
}

// sameParents reports whether r is computed from parents matching all
// of l's, whatever the operation.
func (d *differ) sameParents(l, r *Record) bool {
	return len(d.unmatchedBy(l, r, func(Link, Link) bool { return true })) == 0
}

// ownersHint explains a difference in file owners alone, which changes
// BuildKit's key but not the image.
func ownersHint(diffs []string) string {
	for _, d := range diffs {
		_, fields, _ := strings.Cut(d, ": ")
		for _, f := range strings.Split(fields, ", ") {
			if !strings.HasPrefix(f, "uid ") && !strings.HasPrefix(f, "gid ") {
				return ""
			}
		}
	}
	return " (file owners enter BuildKit's key but not bkcache's hash: COPY and ADD without --chown make root the owner either way; " +
		"check the sources out as the same user everywhere to share the cache)"
}

func short(d string) string {
	if _, hex, ok := strings.Cut(d, ":"); ok && len(hex) > 12 {
		return d[:len(d)-len(hex)] + hex[:12]
	}
	return d
}

func capped(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, "; ")
	}
	return strings.Join(list[:n], "; ") + fmt.Sprintf("; and %d more", len(list)-n)
}
