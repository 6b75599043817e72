package record

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestLineDiff: changes at the first and last lines, in the middle, and
// whole runs are found, each run's deletions first.
func TestLineDiff(t *testing.T) {
	for _, tc := range []struct {
		old, cur string
		want     string
	}{
		{"A\nB\nC\n", "X\nB\nC\n", "-1 A|+1 X"},
		{"A\nB\nC\n", "A\nB\nY\n", "-3 C|+3 Y"},
		{"A\n", "A\n", ""},
		{"", "A\n", "+1 A"},
		{"A\n", "", "-1 A"},
		{"A\nB\nC\nD\n", "A\nX\nY\nD\n", "-2 B|-3 C|+2 X|+3 Y"},
		{"A\nB\nC\n", "A\nC\n", "-2 B"},
		{"A\nC\n", "A\nB\nC\n", "+2 B"},
		{"A\nB\nA\nB\n", "B\nA\nB\nA\n", "-1 A|+4 A"},
	} {
		got, replaced := lineDiff(tc.old, tc.cur)
		if s := render1(got); s != tc.want || replaced {
			t.Errorf("lineDiff(%q, %q) = %q (replaced %v), want %q", tc.old, tc.cur, s, replaced, tc.want)
		}
	}
}

func render1(ls []LineChange) string {
	var got []string
	for _, l := range ls {
		got = append(got, l.Op+itoa(l.Line)+" "+l.Text)
	}
	return strings.Join(got, "|")
}

// lcsTable is the reference: the length of a longest common
// subsequence, from the whole table.
func lcsTable(a, b []string) int {
	t := make([][]int, len(a)+1)
	for i := range t {
		t[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				t[i][j] = t[i+1][j+1] + 1
			} else {
				t[i][j] = max(t[i+1][j], t[i][j+1])
			}
		}
	}
	return t[0][0]
}

// FuzzLineDiff: for any two texts, the changes turn old into cur, are as
// few as a longest common subsequence allows (the reference's length),
// and name the right lines.
func FuzzLineDiff(f *testing.F) {
	f.Add("A\nB\nC\n", "X\nB\nC\n")
	f.Add("FROM a\nRUN x\nCOPY . .\n", "FROM b\nCOPY . .\nRUN y\n")
	f.Add("a\nb\na\nb\na\n", "b\na\nb\n")
	f.Fuzz(func(t *testing.T, old, cur string) {
		a, b := splitLines(old), splitLines(cur)
		if len(a) > 200 || len(b) > 200 {
			t.Skip()
		}
		got, replaced := lineDiff(old, cur)
		if replaced {
			t.Fatal("small texts reported replaced")
		}
		// Apply: walk a, dropping deleted lines and inserting added ones
		// at their positions in b.
		del := map[int]bool{}
		add := map[int]string{}
		for _, l := range got {
			switch l.Op {
			case "-":
				if l.Line < 1 || l.Line > len(a) || a[l.Line-1] != l.Text || del[l.Line] {
					t.Fatalf("bad deletion %+v", l)
				}
				del[l.Line] = true
			case "+":
				if l.Line < 1 || l.Line > len(b) || b[l.Line-1] != l.Text {
					t.Fatalf("bad addition %+v", l)
				}
				add[l.Line] = l.Text
			}
		}
		var kept []string
		for i, l := range a {
			if !del[i+1] {
				kept = append(kept, l)
			}
		}
		var rest []string
		for j, l := range b {
			if _, ok := add[j+1]; !ok {
				rest = append(rest, l)
			}
		}
		if strings.Join(kept, "\n") != strings.Join(rest, "\n") {
			t.Fatalf("what is kept of old (%q) is not what is kept of cur (%q)", kept, rest)
		}
		if n := lcsTable(a, b); len(kept) != n {
			t.Fatalf("keeps %d lines, a longest common subsequence has %d", len(kept), n)
		}
	})
}

// TestLineDiffBounded: a hostile record's Dockerfile of a million lines
// against a short one is reported replaced, and the diff of two large
// texts that are within the caps takes memory linear in their lines
// (the old table took their product: 1.5 GB for this record).
func TestLineDiffBounded(t *testing.T) {
	huge := strings.Repeat("RUN echo x\n", 1_000_000)
	short := "FROM scratch\n" + strings.Repeat("COPY a b\n", 49)
	if got, replaced := lineDiff(huge, short); !replaced || got != nil {
		t.Errorf("a %d-byte Dockerfile was diffed", len(huge))
	}
	var old, cur strings.Builder
	for i := range 4000 {
		fmt.Fprintf(&old, "RUN step %d\n", i)
		fmt.Fprintf(&cur, "RUN step %d\n", i+i%3)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	if _, replaced := lineDiff(old.String(), cur.String()); replaced {
		t.Fatal("4000 lines reported replaced")
	}
	runtime.ReadMemStats(&after)
	// The table would be 4001*4001 ints (128 MB); two rows a level are
	// a few hundred KB in all.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("the diff of two 4000-line texts allocated %d bytes", alloc)
	}
}

// BenchmarkLineDiff: two 2000-line Dockerfiles a third of whose lines
// differ, diffed (Hirschberg) and, as the reference, their whole LCS
// table built (what the diff did before): compare the two in one run.
func BenchmarkLineDiff(b *testing.B) {
	var old, cur strings.Builder
	for i := range 2000 {
		fmt.Fprintf(&old, "RUN step %d\n", i)
		fmt.Fprintf(&cur, "RUN step %d\n", i+i%3)
	}
	b.Run("hirschberg", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			lineDiff(old.String(), cur.String())
		}
	})
	b.Run("table", func(b *testing.B) {
		b.ReportAllocs()
		x, y := splitLines(old.String()), splitLines(cur.String())
		for b.Loop() {
			lcsTable(x, y)
		}
	})
}

// TestLineDiffMinimal: over every pair of short texts of two distinct
// lines, the diff removes and adds exactly the lines outside a longest
// common subsequence.
func TestLineDiffMinimal(t *testing.T) {
	var texts []string
	var gen func(prefix string, n int)
	gen = func(prefix string, n int) {
		texts = append(texts, prefix)
		if n == 0 {
			return
		}
		gen(prefix+"A\n", n-1)
		gen(prefix+"B\n", n-1)
	}
	gen("", 4)
	for _, a := range texts {
		for _, b := range texts {
			l := lcsLen(splitLines(a), splitLines(b))
			var minus, plus int
			cs, _ := lineDiff(a, b)
			for _, c := range cs {
				if c.Op == "-" {
					minus++
				} else {
					plus++
				}
			}
			if minus != len(splitLines(a))-l || plus != len(splitLines(b))-l {
				t.Fatalf("lineDiff(%q, %q): -%d +%d, want -%d +%d", a, b, minus, plus, len(splitLines(a))-l, len(splitLines(b))-l)
			}
		}
	}
}

func lcsLen(a, b []string) int {
	if len(a) == 0 || len(b) == 0 {
		return 0
	}
	if a[0] == b[0] {
		return 1 + lcsLen(a[1:], b[1:])
	}
	return max(lcsLen(a[1:], b), lcsLen(a, b[1:]))
}

// TestLineDiffCaps: each cap holds at its boundary. A text of exactly
// maxDiffBytes is diffed; the differing middle of two texts is compared
// pair by pair up to maxDiffPairs and reported replaced past it; and the
// common head and tail are set aside before the pairs are counted, so a
// small edit in a long Dockerfile is diffed, with the lines numbered as
// they are.
func TestLineDiffCaps(t *testing.T) {
	exact := strings.Repeat("RUN a\n", maxDiffBytes/6) + strings.Repeat("#", maxDiffBytes%6-1) + "\n"
	if len(exact) != maxDiffBytes {
		t.Fatalf("built %d bytes", len(exact))
	}
	for _, tc := range []struct{ old, cur string }{{exact, "FROM scratch\n"}, {"FROM scratch\n", exact}} {
		if got, replaced := lineDiff(tc.old, tc.cur); replaced || len(got) != maxDiffBytes/6+2 {
			t.Errorf("a text of exactly %d bytes: %d changes, replaced %v", maxDiffBytes, len(got), replaced)
		}
	}
	lines := func(n int, format string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	side := 5000 // side*side is maxDiffPairs
	if side*side != maxDiffPairs {
		t.Fatalf("the test's side %d does not square to the cap %d", side, maxDiffPairs)
	}
	if _, replaced := lineDiff(lines(side, "RUN a%d\n"), lines(side, "RUN b%d\n")); replaced {
		t.Errorf("%d×%d differing lines, at the cap, reported replaced", side, side)
	}
	if _, replaced := lineDiff(lines(side+1, "RUN a%d\n"), lines(side+1, "RUN b%d\n")); !replaced {
		t.Errorf("%d×%d differing lines, past the cap, were diffed", side+1, side+1)
	}
	head, tail := lines(side+1, "RUN head %d\n"), lines(side+1, "RUN tail %d\n")
	got, replaced := lineDiff(head+"RUN old\n"+tail, head+"RUN new\n"+tail)
	if s := render1(got); replaced || s != fmt.Sprintf("-%d RUN old|+%d RUN new", side+2, side+2) {
		t.Errorf("one line edited between %d common lines on each side: %q, replaced %v", side+1, s, replaced)
	}
	// One line against a block of side lines, either way round: side
	// pairs, however long the common head.
	block := lines(side, "RUN new %d\n")
	for _, tc := range []struct{ old, cur string }{{head + "RUN old\n" + tail, head + block + tail}, {head + block + tail, head + "RUN old\n" + tail}} {
		if got, replaced := lineDiff(tc.old, tc.cur); replaced || len(got) != side+1 {
			t.Errorf("one line against %d, after %d common lines: %d changes, replaced %v", side, side+1, len(got), replaced)
		}
	}
}
