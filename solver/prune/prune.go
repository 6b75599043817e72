// Package prune decides which of the tags bkcache made in a repository
// may go, and deletes them: hash images (R:<hash>), their caches
// (R:cache-<hash>) and what refers to them (the attached bkcache
// manifest, and the referrers fallback tag of registries without the
// referrers API). It never touches another tag, nor a manifest any kept
// tag points at: a registry deletes a manifest by digest, with every tag
// on it.
package prune

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bkcache/bkcache/solver/report"
	digest "github.com/opencontainers/go-digest"
)

// Rules say what is kept.
type Rules struct {
	Keep       int           // the newest hash images kept per repository
	KeepWithin time.Duration // hash images younger than this are kept
	KeepRefs   []string      // tags or digests (sha256:...) kept, with what they point at
	Floating   []string      // the floating tags besides ci and ci-*: --ci-tag values
	Now        time.Time
}

// Actions.
const (
	Keep   = "keep"
	Delete = "delete"
)

// Kinds of manifests.
const (
	KindImage     = "image"     // R:<hash>
	KindCache     = "cache"     // R:cache-<hash>
	KindReferrer  = "referrer"  // refers to an image: the attached bkcache manifest
	KindReferrers = "referrers" // a referrers fallback tag's index
	KindOther     = "tagged"    // a floating tag's, or one bkcache did not make
)

// Item is one manifest and what prune does with it.
type Item struct {
	Digest  digest.Digest `json:"digest"`
	Tags    []string      `json:"tags"`
	Kind    string        `json:"kind"`
	Action  string        `json:"action"`
	Reason  string        `json:"reason"`
	Created *time.Time    `json:"created,omitempty"` // hash images: the build time
	Bytes   int64         `json:"bytes"`             // blobs deleting it frees (no kept manifest holds them)
}

var (
	hashTag     = regexp.MustCompile(`^[0-9a-f]{64}$`)
	cacheTag    = regexp.MustCompile(`^cache-([0-9a-f]{64})$`)
	fallbackTag = regexp.MustCompile(`^sha256-([0-9a-f]{64})$`)
)

// floating reports whether tag is a floating tag, or a floating tag's
// cache: ci, ci-<anything>, a --ci-tag value, and cache- before either.
func (r Rules) floating(tag string) bool {
	t := strings.TrimPrefix(tag, "cache-")
	return t == "ci" || strings.HasPrefix(t, "ci-") || slices.Contains(r.Floating, t)
}

// manifest is what the decision knows of one digest in the repository.
type manifest struct {
	digest   digest.Digest
	tags     []string
	blobs    map[digest.Digest]int64
	children []digest.Digest // an index's manifests
	created  time.Time       // hash images: when built; zero if unknown
	attached bool            // a bkcache manifest refers to it: bkcache pushed it
	subject  digest.Digest   // a referrer's or referrers index's subject
	config   digest.Digest   // an image's config blob, which dates it
	late     string          // why it is kept: tagged after the listing (see recheck)
}

// decision is one repository's items, decided.
type decision struct {
	items map[digest.Digest]*Item
	order []digest.Digest // the order deletions go in (see sortDeletions)
}

// decide applies the rules to the repository's manifests, by digest.
func decide(ms map[digest.Digest]*manifest, rules Rules) *decision {
	d := &decision{items: map[digest.Digest]*Item{}}
	item := func(m *manifest, kind string) *Item {
		it := &Item{Digest: m.digest, Tags: append([]string{}, slices.Sorted(slices.Values(m.tags))...), Kind: kind}
		d.items[m.digest] = it
		return it
	}
	// Tags bkcache did not make, floating tags and --keep-ref keep their
	// manifests, whatever else points at them.
	pinned := map[digest.Digest]string{}
	for _, m := range ms {
		for _, t := range m.tags {
			if why := rules.pins(t); why != "" {
				pinned[m.digest] = why
			}
		}
		if m.late != "" {
			pinned[m.digest] = m.late
		}
		if slices.Contains(rules.KeepRefs, m.digest.String()) {
			pinned[m.digest] = "named by --keep-ref " + m.digest.String()
		}
		if pinned[m.digest] == "" && !m.attached && slices.ContainsFunc(m.tags, hashTag.MatchString) {
			// A hash-shaped tag is bkcache's only with its manifest on it.
			pinned[m.digest] = "no bkcache manifest is attached (pushed with --no-attach-manifest, or not by bkcache)"
		}
	}
	d.images(ms, rules, pinned, item)
	for _, m := range ms {
		if d.items[m.digest] != nil || m.subject != "" {
			continue
		}
		switch {
		case pinned[m.digest] != "":
			it := item(m, kindOf(m))
			it.Action, it.Reason = Keep, pinned[m.digest]
		case isCache(m):
			d.cache(item(m, KindCache), m, ms, rules)
		default:
			it := item(m, KindOther)
			it.Action, it.Reason = Keep, "not a tag bkcache makes"
		}
	}
	// What refers to a manifest goes with it, once that is decided.
	for _, m := range ms {
		if m.subject == "" {
			continue
		}
		it := item(m, kindOf(m))
		sub := d.items[m.subject]
		switch {
		case pinned[m.digest] != "":
			it.Action, it.Reason = Keep, pinned[m.digest]
		case m.subjectGone():
			it.Action, it.Reason = Delete, "its subject is gone"
		case sub != nil && sub.Action == Delete && sub.Kind == KindImage:
			it.Action, it.Reason = Delete, "its subject "+short(m.subject)+" is deleted"
		default:
			it.Action, it.Reason = Keep, "its subject "+short(m.subject)+" is kept"
		}
	}
	d.protect(ms)
	d.bytes(ms)
	d.sortDeletions()
	return d
}

// protect keeps every manifest something kept reaches: the manifests a
// kept index lists (an image that only gained attestations wraps the old
// manifest, unchanged, in a new index), and what refers to a kept
// manifest. Deleting one of those would break what is kept.
func (d *decision) protect(ms map[digest.Digest]*manifest) {
	for changed := true; changed; {
		changed = false
		for _, dg := range slices.Sorted(maps.Keys(d.items)) {
			if d.items[dg].Action != Keep {
				continue
			}
			for _, c := range ms[dg].children {
				if it := d.items[c]; it != nil && it.Action == Delete {
					it.Action, it.Reason = Keep, "listed by the kept index "+short(dg)
					changed = true
				}
			}
		}
		for _, m := range ms {
			it, sub := d.items[m.digest], d.items[m.subject]
			if it != nil && sub != nil && it.Action == Delete && sub.Action == Keep {
				it.Action, it.Reason = Keep, "its subject "+short(m.subject)+" is kept"
				changed = true
			}
		}
	}
}

func short(d digest.Digest) string { return report.Short(string(d)) }

// deletionRank is the order kinds are deleted in.
var deletionRank = map[string]int{KindCache: 0, KindImage: 1, KindReferrer: 2, KindReferrers: 3, KindOther: 4}

// subjectGone is set by the lister when a referrers fallback tag's
// subject answers 404; see markGone.
func (m *manifest) subjectGone() bool { return m.subject == goneSubject }

// goneSubject marks a referrers index whose subject no longer exists.
const goneSubject = digest.Digest("gone")

func kindOf(m *manifest) string {
	for _, t := range m.tags {
		if fallbackTag.MatchString(t) {
			return KindReferrers
		}
	}
	if m.subject != "" {
		return KindReferrer
	}
	return KindOther
}

func isCache(m *manifest) bool {
	return slices.ContainsFunc(m.tags, cacheTag.MatchString)
}

// pins returns why tag keeps its manifest whatever else holds: a
// floating tag, a --keep-ref, or a tag bkcache does not make.
func (r Rules) pins(tag string) string {
	switch {
	case slices.Contains(r.KeepRefs, tag):
		return "named by --keep-ref " + tag
	case r.floating(tag):
		return "floating tag " + tag
	case hashTag.MatchString(tag), cacheTag.MatchString(tag), fallbackTag.MatchString(tag):
		return ""
	}
	return "tagged " + tag + ", which bkcache does not make"
}

// images decides the hash images: those pinned are kept, then the newest
// Keep, then those younger than KeepWithin; the others are deleted.
func (d *decision) images(ms map[digest.Digest]*manifest, rules Rules, pinned map[digest.Digest]string, item func(*manifest, string) *Item) {
	var hs []*manifest
	for _, m := range ms {
		if slices.ContainsFunc(m.tags, hashTag.MatchString) {
			hs = append(hs, m)
		}
	}
	// Newest first; undated ones count as oldest; ties by digest, so
	// that the decision does not depend on map order.
	slices.SortFunc(hs, func(a, b *manifest) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		return strings.Compare(string(a.digest), string(b.digest))
	})
	for i, m := range hs {
		it := item(m, KindImage)
		if !m.created.IsZero() {
			t := m.created
			it.Created = &t
		}
		switch {
		case pinned[m.digest] != "":
			it.Action, it.Reason = Keep, pinned[m.digest]
		case i < rules.Keep:
			it.Action, it.Reason = Keep, fmt.Sprintf("among the newest %d (--keep)", rules.Keep)
		case m.created.IsZero() && rules.KeepWithin > 0:
			it.Action, it.Reason = Keep, "no build time to judge its age by (kept unless --keep-within 0s)"
		case rules.KeepWithin > 0 && rules.Now.Sub(m.created) < rules.KeepWithin:
			it.Action, it.Reason = Keep, fmt.Sprintf("younger than %s (--keep-within)", rules.KeepWithin)
		default:
			it.Action, it.Reason = Delete, "older and beyond the newest kept"
		}
	}
}

// cache decides a cache manifest: it goes with its image.
func (d *decision) cache(it *Item, m *manifest, ms map[digest.Digest]*manifest, rules Rules) {
	for _, t := range m.tags {
		sub := cacheTag.FindStringSubmatch(t)
		if sub == nil {
			continue
		}
		img := imageTagged(ms, sub[1])
		switch {
		case img != nil && d.items[img.digest].Action == Keep:
			it.Action, it.Reason = Keep, "the cache of a kept image ("+report.Short(sub[1])+")"
			return
		case img == nil && rules.KeepWithin > 0:
			it.Action, it.Reason = Keep, "its image "+report.Short(sub[1])+" is not there (a build may be pushing it; kept unless --keep-within 0s)"
			return
		}
	}
	it.Action, it.Reason = Delete, "the cache of a deleted image"
}

func imageTagged(ms map[digest.Digest]*manifest, tag string) *manifest {
	for _, m := range ms {
		if slices.Contains(m.tags, tag) {
			return m
		}
	}
	return nil
}

// bytes credits each deleted manifest with the blobs no kept manifest
// holds, each blob once.
func (d *decision) bytes(ms map[digest.Digest]*manifest) {
	held := map[digest.Digest]bool{}
	for dg, it := range d.items {
		if it.Action == Keep {
			for b := range ms[dg].blobs {
				held[b] = true
			}
		}
	}
	for _, dg := range slices.Sorted(maps.Keys(d.items)) {
		it := d.items[dg]
		if it.Action != Delete {
			continue
		}
		for b, n := range ms[dg].blobs {
			if !held[b] {
				it.Bytes += n
				held[b] = true
			}
		}
	}
}

// sortDeletions orders what is deleted so that an interrupted prune
// leaves nothing a later one would misjudge: caches first, then the
// images (while their attached manifests still date them, for a rerun
// to judge them alike), then what referred to them (a rerun finds a
// fallback index whose subject is gone, and deletes it with what it
// lists).
func (d *decision) sortDeletions() {
	rank := deletionRank
	for dg, it := range d.items {
		if it.Action == Delete {
			d.order = append(d.order, dg)
		}
	}
	slices.SortFunc(d.order, func(a, b digest.Digest) int {
		if c := rank[d.items[a].Kind] - rank[d.items[b].Kind]; c != 0 {
			return c
		}
		return strings.Compare(string(a), string(b))
	})
}
