package record

import "strings"

// The Dockerfile diff of a report. A record is a file anyone who can
// push an image writes, and a build compares with it whenever a report is
// asked for (always on GitHub Actions), so the diff's cost is bounded by
// what bkcache reads, not by the record: memory linear in the lines,
// time in their product, capped.

// Caps past which the Dockerfile is reported replaced, not diffed: the
// size of either text, and the product of the lines that differ once
// the common head and tail are set aside (each pair is compared about
// twice).
const (
	maxDiffBytes = 1 << 20
	maxDiffPairs = 25_000_000
)

// lineDiff returns the lines deleted from old and added in cur, in order,
// deletions before additions within each run of changes; replaced is
// true, and the lines nil, past the caps.
func lineDiff(old, cur string) (changes []LineChange, replaced bool) {
	if len(old) > maxDiffBytes || len(cur) > maxDiffBytes {
		return nil, true
	}
	a, b := splitLines(old), splitLines(cur)
	head := 0
	for head < len(a) && head < len(b) && a[head] == b[head] {
		head++
	}
	ta, tb := len(a), len(b)
	for ta > head && tb > head && a[ta-1] == b[tb-1] {
		ta, tb = ta-1, tb-1
	}
	if (ta-head)*(tb-head) > maxDiffPairs {
		return nil, true
	}
	var ops []byte
	ops = append(ops, strings.Repeat("=", head)...)
	ops = hirschberg(ops, a[head:ta], b[head:tb])
	ops = append(ops, strings.Repeat("=", len(a)-ta)...)
	return script(ops, a, b), false
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}

// hirschberg appends to ops an edit script from a to b that keeps a
// longest common subsequence: '=' keeps a line of both, '-' deletes one
// of a, '+' adds one of b. Hirschberg's divide and conquer (1975) needs
// two rows of the LCS table at a time, where the table itself is the
// product of the lengths.
func hirschberg(ops []byte, a, b []string) []byte {
	switch {
	case len(a) == 0:
		return append(ops, strings.Repeat("+", len(b))...)
	case len(b) == 0:
		return append(ops, strings.Repeat("-", len(a))...)
	case len(a) == 1:
		for j, l := range b {
			if l == a[0] {
				ops = append(ops, strings.Repeat("+", j)...)
				ops = append(ops, '=')
				return append(ops, strings.Repeat("+", len(b)-j-1)...)
			}
		}
		ops = append(ops, '-')
		return append(ops, strings.Repeat("+", len(b))...)
	}
	mid := len(a) / 2
	fwd := lcsRow(a[:mid], b, false)
	bwd := lcsRow(a[mid:], b, true)
	split, best := 0, -1
	for j := 0; j <= len(b); j++ {
		if s := fwd[j] + bwd[len(b)-j]; s > best {
			split, best = j, s
		}
	}
	ops = hirschberg(ops, a[:mid], b[:split])
	return hirschberg(ops, a[mid:], b[split:])
}

// lcsRow returns, for each j, the length of a longest common subsequence
// of a and b[:j]; reversed, of a and the last j lines of b (a read from
// its end too).
func lcsRow(a, b []string, reversed bool) []int {
	prev, row := make([]int, len(b)+1), make([]int, len(b)+1)
	at := func(s []string, i int) string {
		if reversed {
			return s[len(s)-1-i]
		}
		return s[i]
	}
	for i := range a {
		ai := at(a, i)
		for j := range b {
			if ai == at(b, j) {
				row[j+1] = prev[j] + 1
			} else {
				row[j+1] = max(row[j], prev[j+1])
			}
		}
		prev, row = row, prev
	}
	return prev
}

// script turns ops over a and b into line changes, each run of changes
// with its deletions first.
func script(ops []byte, a, b []string) []LineChange {
	var out, adds []LineChange
	i, j := 0, 0
	for _, op := range ops {
		switch op {
		case '=':
			out, adds = append(out, adds...), adds[:0]
			i, j = i+1, j+1
		case '-':
			out = append(out, LineChange{Op: "-", Line: i + 1, Text: a[i]})
			i++
		case '+':
			adds = append(adds, LineChange{Op: "+", Line: j + 1, Text: b[j]})
			j++
		}
	}
	return append(out, adds...)
}
