package prune

import (
	"cmp"
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

var regen = flag.Bool("regen-golden", false, "rewrite the golden files in testdata (see TestReportGolden, TestECRGolden)")

var t0 = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

func dg(s string) digest.Digest { return digest.FromString(s) }

func hash(i int) string { return fmt.Sprintf("%064x", i) }

// repoOf is a repository as prune lists it: n hash images built an hour
// apart (the newest last), each with its cache, an attached manifest and
// a referrers fallback index, and ci, cache-ci on the newest.
func repoOf(n int) map[digest.Digest]*manifest {
	ms := map[digest.Digest]*manifest{}
	add := func(m *manifest) *manifest { ms[m.digest] = m; return m }
	for i := 1; i <= n; i++ {
		h := hash(i)
		img := add(&manifest{digest: dg("image" + h), tags: []string{h}, created: t0.Add(time.Duration(i) * time.Hour), attached: true,
			blobs: map[digest.Digest]int64{dg("base"): 1000, dg("layer" + h): 10}})
		add(&manifest{digest: dg("cache" + h), tags: []string{"cache-" + h}, blobs: map[digest.Digest]int64{dg("cachelayer" + h): 100}})
		add(&manifest{digest: dg("attached" + h), subject: img.digest, blobs: map[digest.Digest]int64{dg("doc" + h): 1}})
		add(&manifest{digest: dg("index" + h), tags: []string{"sha256-" + img.digest.Encoded()}, subject: img.digest})
		if i == n {
			img.tags = append(img.tags, "ci")
			ms[dg("cache"+h)].tags = append(ms[dg("cache"+h)].tags, "cache-ci")
		}
	}
	return ms
}

func actions(d *decision) map[string]string {
	out := map[string]string{}
	for _, it := range d.items {
		key := strings.Join(it.Tags, ",")
		if key == "" {
			key = "untagged " + it.Kind
		}
		if prev, ok := out[key]; ok && prev != it.Action {
			key += " " + string(it.Digest)
		}
		out[key] = it.Action
	}
	return out
}

// TestDecide: what the rules keep and delete, and why.
func TestDecide(t *testing.T) {
	now := t0.Add(7 * time.Hour)
	for _, tc := range []struct {
		name   string
		edit   func(map[digest.Digest]*manifest)
		rules  Rules
		keep   []int // hash images kept, by number
		others map[string]string
	}{
		{"keep 2, nothing younger", nil, Rules{Keep: 2, Now: now}, []int{5, 6}, nil},
		{"release-1 pins its image", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(2))].tags = append(ms[dg("image"+hash(2))].tags, "release-1")
		}, Rules{Keep: 2, Now: now}, []int{2, 5, 6}, nil},
		{"keep-within 1h keeps all", nil, Rules{Keep: 2, KeepWithin: 24 * time.Hour, Now: now}, []int{1, 2, 3, 4, 5, 6}, nil},
		{"keep-within 90m keeps the young", nil, Rules{Keep: 1, KeepWithin: 150 * time.Minute, Now: now}, []int{5, 6}, nil},
		{"a ci-feature floating tag keeps its image", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(1))].tags = append(ms[dg("image"+hash(1))].tags, "ci-feature")
		}, Rules{Keep: 1, Now: now}, []int{1, 6}, nil},
		{"a --ci-tag value keeps its image", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(3))].tags = append(ms[dg("image"+hash(3))].tags, "nightly")
		}, Rules{Keep: 1, Floating: []string{"nightly"}, Now: now}, []int{3, 6}, nil},
		{"--keep-ref by tag and by digest", nil, Rules{Keep: 1, KeepRefs: []string{hash(2), dg("image" + hash(4)).String()}, Now: now}, []int{2, 4, 6}, nil},
		{"keep 0 keeps only what ci points at", nil, Rules{Keep: 0, Now: now}, []int{6}, nil},
		{"an undated image is kept while keep-within is set", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(1))].created = time.Time{}
		}, Rules{Keep: 1, KeepWithin: time.Hour, Now: now}, []int{1, 6}, nil},
		{"an undated image goes with keep-within 0s", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(1))].created = time.Time{}
		}, Rules{Keep: 1, Now: now}, []int{6}, nil},
		{"keep-within 0s keeps none for its age, even dated after now", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(2))].created = now.Add(time.Hour) // a builder's clock ahead of prune's
		}, Rules{Keep: 0, Now: now}, []int{6}, nil},
		{"a cache another kept tag points at stays", func(ms map[digest.Digest]*manifest) {
			// cache-ci copied from an image's cache that is now old
			c := ms[dg("cache"+hash(6))]
			c.tags = []string{"cache-" + hash(6)}
			ms[dg("cache"+hash(1))].tags = append(ms[dg("cache"+hash(1))].tags, "cache-ci")
		}, Rules{Keep: 1, Now: now}, []int{6}, map[string]string{"cache-" + hash(1) + ",cache-ci": Keep}},
		{"an orphan cache stays unless keep-within 0", func(ms map[digest.Digest]*manifest) {
			ms[dg("orphan")] = &manifest{digest: dg("orphan"), tags: []string{"cache-" + hash(99)}}
		}, Rules{Keep: 6, KeepWithin: time.Hour, Now: now}, []int{1, 2, 3, 4, 5, 6}, map[string]string{"cache-" + hash(99): Keep}},
		{"an orphan cache goes with keep-within 0", func(ms map[digest.Digest]*manifest) {
			ms[dg("orphan")] = &manifest{digest: dg("orphan"), tags: []string{"cache-" + hash(99)}}
		}, Rules{Keep: 6, Now: now}, []int{1, 2, 3, 4, 5, 6}, map[string]string{"cache-" + hash(99): Delete}},
		{"a fallback index whose subject is gone goes", func(ms map[digest.Digest]*manifest) {
			ms[dg("stale")] = &manifest{digest: dg("stale"), tags: []string{"sha256-" + hash(98)}, subject: goneSubject}
		}, Rules{Keep: 6, Now: now}, []int{1, 2, 3, 4, 5, 6}, map[string]string{"sha256-" + hash(98): Delete}},
		{"a hash-shaped tag with no bkcache manifest is not bkcache's", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(2))].attached = false
		}, Rules{Keep: 1, Now: now}, []int{2, 6}, nil},
		{"latest, v1.2.3 and other tags are never touched", func(ms map[digest.Digest]*manifest) {
			ms[dg("latest")] = &manifest{digest: dg("latest"), tags: []string{"latest", "v1.2.3"}}
			ms[dg("short")] = &manifest{digest: dg("short"), tags: []string{"abc123"}}
		}, Rules{Keep: 0, Now: now}, []int{6}, map[string]string{"latest,v1.2.3": Keep, "abc123": Keep}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := repoOf(6)
			if tc.edit != nil {
				tc.edit(ms)
			}
			d := decide(ms, tc.rules)
			for i := 1; i <= 6; i++ {
				want := Delete
				for _, k := range tc.keep {
					if k == i {
						want = Keep
					}
				}
				h := hash(i)
				img := d.items[dg("image"+h)]
				for what, it := range map[string]*Item{"image": img, "its attached manifest": d.items[dg("attached"+h)], "its fallback index": d.items[dg("index"+h)]} {
					if it.Action != want {
						t.Errorf("image %d, %s: %s (%s), want %s", i, what, it.Action, it.Reason, want)
					}
				}
				if c := d.items[dg("cache"+h)]; c.Action != want && tc.others["cache-"+h+",cache-ci"] == "" {
					t.Errorf("cache %d: %s (%s), want %s", i, c.Action, c.Reason, want)
				}
			}
			got := actions(d)
			for k, want := range tc.others {
				if got[k] != want {
					t.Errorf("%s: %q, want %q", k, got[k], want)
				}
			}
			last := -1
			for _, dgst := range d.order {
				r := deletionRank[d.items[dgst].Kind]
				if r < last {
					t.Errorf("deletion order: %v after a later kind", d.items[dgst].Kind)
				}
				last = r
			}
		})
	}
}

// TestBytes: a deletion frees the blobs no kept manifest holds, each
// counted once.
func TestBytes(t *testing.T) {
	d := decide(repoOf(3), Rules{Keep: 1, Now: t0.Add(4 * time.Hour)})
	rep := &Report{}
	d.report(rep)
	// Two images go: each its own 10-byte layer (the 1000-byte base is
	// the kept image's too), 100 of cache and 1 of attached document.
	if rep.Freed != 2*(10+100+1) {
		t.Errorf("freed %d bytes, want %d", rep.Freed, 2*(10+100+1))
	}
}

// TestBytesSharedByDeleted: a blob only deleted manifests hold is freed
// once, however many of them hold it.
func TestBytesSharedByDeleted(t *testing.T) {
	ms := repoOf(3)
	for _, i := range []int{1, 2} {
		ms[dg("image"+hash(i))].blobs[dg("only the old ones")] = 7000
	}
	d := decide(ms, Rules{Keep: 1, Now: t0.Add(4 * time.Hour)})
	rep := &Report{}
	d.report(rep)
	if want := int64(7000 + 2*(10+100+1)); rep.Freed != want {
		t.Errorf("freed %d bytes, want %d", rep.Freed, want)
	}
}

// TestReportGolden: the JSON report's fields and order stay as the README
// documents them. Regenerate on purpose: go test ./solver/prune -regen-golden.
func TestReportGolden(t *testing.T) {
	ms := repoOf(3)
	ms[dg("image"+hash(1))].tags = append(ms[dg("image"+hash(1))].tags, "release-1")
	d := decide(ms, Rules{Keep: 1, Now: t0.Add(4 * time.Hour)})
	rep := &Report{Repository: "registry.example/app", Services: []string{"app"}, DryRun: true}
	d.report(rep)
	golden(t, "report.json", []*Report{rep})
}

// TestDecideDetails: the reason given is the first that pins an image,
// not a later one; an undated image reports no date, not year one; two
// images built at the same instant are ranked by digest, whatever the
// listing's order; and the report lists items of equal tags by digest.
func TestDecideDetails(t *testing.T) {
	now := t0.Add(7 * time.Hour)
	t.Run("the first reason stays", func(t *testing.T) {
		ms := repoOf(3)
		img := ms[dg("image"+hash(1))]
		img.attached = false
		d := decide(ms, Rules{Keep: 1, KeepRefs: []string{img.digest.String()}, Now: now})
		if it := d.items[img.digest]; it.Action != Keep || !strings.Contains(it.Reason, "--keep-ref") {
			t.Errorf("%s: %q", it.Action, it.Reason)
		}
	})
	t.Run("undated", func(t *testing.T) {
		ms := repoOf(3)
		ms[dg("image"+hash(1))].created = time.Time{}
		d := decide(ms, Rules{Keep: 1, Now: now})
		if c := d.items[dg("image"+hash(1))].Created; c != nil {
			t.Errorf("an undated image reports created %v", c)
		}
		if c := d.items[dg("image"+hash(2))].Created; c == nil || !c.Equal(t0.Add(2*time.Hour)) {
			t.Errorf("a dated image reports created %v", c)
		}
	})
	t.Run("a tie by digest", func(t *testing.T) {
		for range 20 { // map order varies: any listing order
			ms := repoOf(3)
			for i := 1; i <= 3; i++ {
				ms[dg("image"+hash(i))].created = t0
				ms[dg("image"+hash(i))].tags = []string{hash(i)} // ci on none
			}
			d := decide(ms, Rules{Keep: 1, Now: now})
			first := slices.MinFunc([]digest.Digest{dg("image" + hash(1)), dg("image" + hash(2)), dg("image" + hash(3))}, func(a, b digest.Digest) int { return strings.Compare(string(a), string(b)) })
			for i := 1; i <= 3; i++ {
				it := d.items[dg("image"+hash(i))]
				if want := map[bool]string{true: Keep, false: Delete}[it.Digest == first]; it.Action != want {
					t.Fatalf("image %d: %s, want %s (the smallest digest is the newest of a tie)", i, it.Action, want)
				}
			}
		}
	})
	t.Run("the report's order", func(t *testing.T) {
		for range 20 {
			rep := &Report{}
			decide(repoOf(4), Rules{Keep: 4, Now: now}).report(rep)
			if !slices.IsSortedFunc(rep.Items, func(a, b Item) int {
				return cmp.Or(strings.Compare(a.Action, b.Action), strings.Compare(a.Kind, b.Kind),
					strings.Compare(strings.Join(a.Tags, ","), strings.Join(b.Tags, ",")), strings.Compare(string(a.Digest), string(b.Digest)))
			}) {
				t.Fatalf("report not in order")
			}
		}
	})
}
