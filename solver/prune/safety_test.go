package prune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// The tests of what prune must never do: delete what something kept
// still needs, lose an image tagged while it runs, walk a crafted index
// forever, or stop at a cache in BuildKit's index form.

// TestDecideProtectsChildren: a kept index keeps the manifests it lists,
// however old the hash image tagged on them; so does a referrer of a
// manifest kept only that way.
func TestDecideProtectsChildren(t *testing.T) {
	x := &manifest{digest: dg("x"), tags: []string{hash(1)}, created: t0, attached: true}
	idx := &manifest{digest: dg("idx"), tags: []string{hash(2), "ci"}, created: t0.Add(time.Hour), attached: true, children: []digest.Digest{dg("x")}}
	doc := &manifest{digest: dg("doc"), subject: dg("x")}
	other := &manifest{digest: dg("other"), tags: []string{hash(3)}, created: t0, attached: true}
	ms := map[digest.Digest]*manifest{x.digest: x, idx.digest: idx, doc.digest: doc, other.digest: other}
	d := decide(ms, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)})
	for _, tc := range []struct {
		m    *manifest
		want string
	}{{x, Keep}, {idx, Keep}, {doc, Keep}, {other, Delete}} {
		if it := d.items[tc.m.digest]; it.Action != tc.want {
			t.Errorf("%v: %s (%s), want %s", tc.m.tags, it.Action, it.Reason, tc.want)
		}
	}
	if slicesContain(d.order, x.digest) || slicesContain(d.order, doc.digest) {
		t.Errorf("deletions %v name a protected manifest", d.order)
	}
}

func slicesContain(ds []digest.Digest, d digest.Digest) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

// TestRunKeepsChildOfKeptIndex is finding 1 on a real registry: X is
// tagged H1 and old; an index listing X is tagged H2 and ci. Keeping one
// image must leave X, or ci names an index with a missing child.
func TestRunKeepsChildOfKeptIndex(t *testing.T) {
	_, reg, repo := serveRepo(t)
	ctx := context.Background()
	x := digest.Digest(rt.PushRandom(t, repo.Tag(hash(1)).String()))
	idx := putIndex(t, repo.Tag(hash(2)), x)
	tagAt(t, repo, "ci", idx)
	attach(t, reg, repo, x, t0)
	attach(t, reg, repo, idx, t0.Add(time.Hour))
	rep, err := Run(ctx, reg, Target{Repository: repo, Floating: []string{"ci"}}, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !present(t, reg, repo, x) {
		t.Fatalf("the prune deleted %s, which the kept index %s (ci) lists; report: %+v", x, idx, rep.Items)
	}
	if _, err := remote.Index(repo.Tag("ci")); err != nil {
		t.Fatal(err)
	}
}

// TestRunKeepsTagMadeDuringPrune is finding 2: a branch build tags
// ci-feature on an old image after prune listed the tags (at the exact
// request that reads the old image's referrers), or pushes an index that
// wraps it. The image must stay.
func TestRunKeepsTagMadeDuringPrune(t *testing.T) {
	// ci and cache-ci are floating tags the listing saw elsewhere, which
	// move onto a candidate (an image, a cache) before the deletions.
	for _, tag := range []string{"ci-feature", "release-7", hash(9), "new-index", "ci", "cache-ci"} {
		t.Run(tag, func(t *testing.T) {
			p, reg, direct, repo := faultyRepo(t)
			ctx := context.Background()
			imgs, caches := pushBuilds(t, reg, direct, 3)
			tagAt(t, direct, "ci", imgs[2])
			tagAt(t, direct, "cache-ci", caches[2])
			moved := imgs[0]
			if tag == "cache-ci" {
				moved = caches[0]
			}
			// Between the listing and the deletions: as the recheck lists
			// the tags (the listing's own list passes first). Not during
			// the listing, whose reads run at once: a tag moved there is
			// seen where it points, with no "during the prune" to report.
			p.Inject(faultproxy.Fault{Method: "GET", Path: "/tags/list$", Times: 1})
			p.Inject(faultproxy.Fault{Method: "GET", Path: "/tags/list$", Times: 1, Before: func() {
				if tag == "new-index" {
					// A manifest the listing never saw, which reaches
					// the old image: an index that wraps it.
					putIndex(t, direct.Tag(tag), imgs[0])
					return
				}
				tagAt(t, direct, tag, moved)
			}})
			rep, err := Run(ctx, reg, Target{Repository: repo, Floating: []string{"ci"}}, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)}, false)
			if err != nil {
				t.Fatal(err)
			}
			if !present(t, reg, direct, moved) {
				t.Fatalf("the manifest tagged %s during the prune was deleted: %+v", tag, rep.Items)
			}
			if present(t, reg, direct, imgs[1]) {
				t.Errorf("the middle image, which nothing tagged, was kept")
			}
			// The report names the manifest by every tag it holds: the one
			// made during the prune and those the listing saw.
			if tag != "new-index" {
				i := slices.IndexFunc(rep.Items, func(it Item) bool { return it.Digest == moved })
				if i < 0 || !slices.Contains(rep.Items[i].Tags, tag) || len(rep.Items[i].Tags) < 2 || !strings.Contains(rep.Items[i].Reason, "during the prune") {
					t.Errorf("the report on the manifest tagged %s during the prune: %+v", tag, rep.Items[max(i, 0)])
				}
			}
		})
	}
}

// TestDeepIndex is finding 3: each level of a crafted index lists the one
// below it twice. Prune reads each distinct manifest once, and refuses
// nesting deeper than registry.MaxIndexDepth with a clear error.
func TestDeepIndex(t *testing.T) {
	s, reg, repo := serveRepo(t)
	ctx := context.Background()
	leaf := digest.Digest(rt.PushRandom(t, repo.Tag("leaf").String()))
	top, depth := leaf, 0
	deepen := func(to int) {
		for ; depth < to; depth++ {
			top = putIndex(t, repo.Tag(fmt.Sprintf("level%d", depth+1)), top, top)
		}
	}
	deepen(registry.MaxIndexDepth)
	tagAt(t, repo, hash(1), top)
	attach(t, reg, repo, top, t0)
	before := s.Manifests()
	if _, err := list(ctx, reg, repo); err != nil {
		t.Fatalf("listing an index %d deep: %v", depth, err)
	}
	// Each tag once, each level's children once: far below the 2^depth
	// requests of a walk that follows every path.
	if n := s.Manifests() - before; n > int64(4*depth+10) {
		t.Errorf("listing made %d manifest requests for %d levels", n, depth)
	}
	deepen(registry.MaxIndexDepth + 2)
	tagAt(t, repo, hash(2), top)
	_, err := list(ctx, reg, repo)
	if !errors.Is(err, registry.ErrIndexShape) {
		t.Fatalf("listing an index %d deep: %v, want ErrIndexShape", depth, err)
	}
}

// TestIndexFormCache is finding 4: a cache in BuildKit's index form
// (image-manifest=false) lists its blobs in an index. Prune reads it as
// blobs, and deletes it with its image.
func TestIndexFormCache(t *testing.T) {
	_, reg, repo := serveRepo(t)
	ctx := context.Background()
	imgs, _ := pushBuilds(t, reg, repo, 2)
	rt.PushCache(t, repo.Tag("cache-"+hash(1)).String(), "index")
	cache, _, err := reg.Head(ctx, repo.Tag("cache-"+hash(1)))
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(ctx, reg, Target{Repository: repo}, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)}, false)
	if err != nil {
		t.Fatalf("prune with an index-form cache: %v", err)
	}
	if present(t, reg, repo, imgs[0]) {
		t.Error("the old image stayed")
	}
	if present(t, reg, repo, cache) {
		t.Error("its index-form cache stayed")
	}
	for _, it := range rep.Items {
		if it.Kind == KindCache && it.Action == Delete && it.Bytes < int64(len(rt.CacheConfig)) {
			t.Errorf("the index-form cache frees %d bytes: its blobs were not counted", it.Bytes)
		}
	}
}

type rawIndex []byte

func (r rawIndex) RawManifest() ([]byte, error)        { return r, nil }
func (r rawIndex) MediaType() (types.MediaType, error) { return types.OCIImageIndex, nil }

// putIndex writes, at tag, an OCI index listing the manifests children
// (repeats allowed) and returns its digest.
func putIndex(t *testing.T, tag name.Tag, children ...digest.Digest) digest.Digest {
	t.Helper()
	idx := v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex}
	for _, c := range children {
		desc, err := remote.Head(tag.Context().Digest(c.String()))
		if err != nil {
			t.Fatal(err)
		}
		desc.Platform = &v1.Platform{OS: "linux", Architecture: "amd64"}
		idx.Manifests = append(idx.Manifests, *desc)
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Put(tag, rawIndex(raw)); err != nil {
		t.Fatal(err)
	}
	return digest.FromBytes(raw)
}

// faultyRepo starts an in-process registry with the referrers API
// behind the fault proxy, and returns the proxy, a Registry client, and
// repository p/app on the registry itself and through the proxy.
func faultyRepo(t *testing.T) (*faultproxy.Proxy, *registry.Registry, name.Repository, name.Repository) {
	t.Helper()
	p, host := rt.Faulty(t)
	direct, err := name.NewRepository(host + "/p/app")
	if err != nil {
		t.Fatal(err)
	}
	repo, err := name.NewRepository(p.Addr + "/p/app")
	if err != nil {
		t.Fatal(err)
	}
	return p, registry.New(registry.Options{}), direct, repo
}

// serveRepo starts an in-process registry with the referrers API and
// returns it, a Registry client and its repository p/app.
func serveRepo(t *testing.T) (*rt.Server, *registry.Registry, name.Repository) {
	t.Helper()
	s := rt.Serve(t, true)
	repo, err := name.NewRepository(s.Host + "/p/app")
	if err != nil {
		t.Fatal(err)
	}
	return s, registry.New(registry.Options{}), repo
}

func attach(t *testing.T, reg *registry.Registry, repo name.Repository, d digest.Digest, at time.Time) {
	t.Helper()
	if err := reg.Attach(context.Background(), repo.Digest(d.String()), record.ArtifactType, []byte(`{}`), at); err != nil {
		t.Fatal(err)
	}
}

func present(t *testing.T, reg *registry.Registry, repo name.Repository, d digest.Digest) bool {
	t.Helper()
	_, found, err := reg.Head(context.Background(), repo.Digest(d.String()))
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// TestProtectClosure: the closure is transitive across both kinds of
// edge (an index's children, a referrer's subject), starts only from
// what is kept (a deleted index does not save its deleted children), and
// a referrer a rule pins is reported kept.
func TestProtectClosure(t *testing.T) {
	h := func(i int) string { return hash(i) }
	x := &manifest{digest: dg("x"), tags: []string{h(1)}, created: t0, attached: true}
	// ci's index lists x and an untagged platform manifest prune never
	// listed on its own (as most children are).
	idx := &manifest{digest: dg("idx"), tags: []string{h(2), "ci"}, created: t0.Add(time.Hour), attached: true, children: []digest.Digest{dg("x"), dg("untagged")}}
	// A referrer of x listing an old image's cache-tagged manifest:
	// kept through x, then its child through it.
	ref := &manifest{digest: dg("ref"), subject: dg("x"), children: []digest.Digest{dg("c")}}
	c := &manifest{digest: dg("c"), tags: []string{"cache-" + h(9)}}
	// A deleted index listing a deleted image: the image stays deleted.
	oldIdx := &manifest{digest: dg("oldidx"), tags: []string{h(3)}, created: t0, attached: true, children: []digest.Digest{dg("y")}}
	y := &manifest{digest: dg("y"), tags: []string{h(4)}, created: t0, attached: true}
	// A referrer pinned by --keep-ref, of a deleted image, and one that
	// is not: it goes with its image.
	pinnedRef := &manifest{digest: dg("pinnedref"), subject: dg("y")}
	yRef := &manifest{digest: dg("yref"), subject: dg("y")}
	ms := map[digest.Digest]*manifest{}
	for _, m := range []*manifest{x, idx, ref, c, oldIdx, y, pinnedRef, yRef} {
		ms[m.digest] = m
	}
	d := decide(ms, Rules{Keep: 1, KeepRefs: []string{dg("pinnedref").String()}, Now: t0.Add(48 * time.Hour)})
	for _, tc := range []struct {
		m    *manifest
		want string
	}{{x, Keep}, {ref, Keep}, {c, Keep}, {oldIdx, Delete}, {y, Delete}, {pinnedRef, Keep}, {yRef, Delete}} {
		if it := d.items[tc.m.digest]; it == nil || it.Action != tc.want {
			t.Errorf("%s: %+v, want %s", tc.m.digest.Encoded()[:8], it, tc.want)
		}
	}
	if it := d.items[dg("pinnedref")]; it.Reason != "named by --keep-ref "+dg("pinnedref").String() {
		t.Errorf("the pinned referrer's reason: %q", it.Reason)
	}
}

// TestRunFails: a registry that refuses the listing, or the deletions,
// fails the prune with an error that names why, and the report says how
// far it got; never a quiet success.
func TestRunFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault faultproxy.Fault
		want  error
	}{
		{"listing refused", faultproxy.Fault{Method: "GET", Path: "/tags/list$", Status: 401, Code: "UNAUTHORIZED"}, registry.ErrAuth},
		{"deletion refused", faultproxy.Fault{Method: "DELETE", Status: 405, Code: "UNSUPPORTED"}, registry.ErrNoDelete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, reg, direct, repo := faultyRepo(t)
			pushBuilds(t, reg, direct, 3)
			p.Inject(tc.fault)
			rep, err := Run(context.Background(), reg, Target{Repository: repo}, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)}, false)
			if !errors.Is(err, tc.want) || rep == nil || rep.Error == "" || rep.Deleted != 0 {
				t.Fatalf("Run = %+v, %v; want %v, reported", rep, err, tc.want)
			}
		})
	}
}

// TestFallbackIndexOfUntaggedChild: on a registry without the referrers
// API, a manifest attached to a platform child of a kept index (never
// tagged, never listed on its own) lives in a fallback index tagged
// sha256-CHILD. The child is kept through its index, so the fallback
// index and what it lists are kept too; an old image's go.
func TestFallbackIndexOfUntaggedChild(t *testing.T) {
	s := rt.Serve(t, false)
	repo, err := name.NewRepository(s.Host + "/p/app")
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(registry.Options{})
	old := digest.Digest(rt.PushRandom(t, repo.Tag(hash(1)).String()))
	attach(t, reg, repo, old, t0)
	child := digest.Digest(rt.PushRandom(t, repo.Tag("tmp").String()))
	if err := remote.Delete(repo.Tag("tmp")); err != nil {
		t.Skipf("the registry cannot untag: %v", err)
	}
	idx := putIndex(t, repo.Tag(hash(2)), child)
	attach(t, reg, repo, idx, t0.Add(time.Hour))
	attach(t, reg, repo, child, t0.Add(time.Hour)) // an attestation of the platform image
	rep, err := Run(context.Background(), reg, Target{Repository: repo}, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)}, false)
	if err != nil {
		t.Fatal(err)
	}
	for what, d := range map[string]digest.Digest{"the kept index": idx, "its child": child} {
		if !present(t, reg, repo, d) {
			t.Errorf("%s was deleted: %+v", what, rep.Items)
		}
	}
	fb, found, err := reg.Head(context.Background(), repo.Tag("sha256-"+child.Encoded()))
	if err != nil || !found {
		t.Fatalf("the child's fallback index was deleted (%v): %+v", err, rep.Items)
	}
	if !present(t, reg, repo, fb) {
		t.Errorf("the fallback index's manifest is gone")
	}
	if present(t, reg, repo, old) {
		t.Errorf("the old image was kept")
	}
}

// TestProtectChain: what a kept manifest reaches is kept however many
// levels down and in whatever order the digests sort: a chain of
// indexes and of referrers, each level reached only through the one
// before (one pass over the sorted digests would stop early).
func TestProtectChain(t *testing.T) {
	for _, kind := range []string{"indexes", "referrers"} {
		ms := map[digest.Digest]*manifest{}
		top := &manifest{digest: dg(kind + "top"), tags: []string{hash(1)}, created: t0, attached: true}
		ms[top.digest] = top
		prev := top
		var chain []*manifest
		for i := range 8 {
			// Tagged as the cache of no image: deleted on its own.
			m := &manifest{digest: dg(fmt.Sprint(kind, i)), tags: []string{"cache-" + hash(100+i)}}
			if kind == "indexes" {
				prev.children = []digest.Digest{m.digest}
			} else {
				m.subject = prev.digest
			}
			ms[m.digest] = m
			chain, prev = append(chain, m), m
		}
		d := decide(ms, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)})
		for i, m := range chain {
			if it := d.items[m.digest]; it == nil || it.Action != Keep {
				t.Errorf("%s: level %d deleted: %+v", kind, i+1, it)
			}
		}
	}
}

// TestCacheTagsInAnyOrder: a cache manifest that also carries a cache-
// tag bkcache does not make (cache-abc, listed first) is kept, whether
// its image is kept or not there at all.
func TestCacheTagsInAnyOrder(t *testing.T) {
	h := "f" + hash(1)[1:]
	img := &manifest{digest: dg("img"), tags: []string{h}, created: t0, attached: true}
	c := &manifest{digest: dg("cache"), tags: []string{"cache-abc", "cache-" + h}}
	// And the cache of an image that is not there, which a tag bkcache
	// does not make keeps.
	orphan := &manifest{digest: dg("orphan cache"), tags: []string{"cache-abc", "cache-e" + hash(7)[1:]}}
	ms := map[digest.Digest]*manifest{img.digest: img, c.digest: c, orphan.digest: orphan}
	d := decide(ms, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)})
	for _, m := range []*manifest{img, c} {
		if it := d.items[m.digest]; it == nil || it.Action != Keep {
			t.Errorf("%v: %+v, want kept", m.tags, it)
		}
	}
	if it := d.items[orphan.digest]; it == nil || it.Action != Keep || !strings.Contains(it.Reason, "cache-abc") {
		t.Errorf("the cache of no image, tagged cache-abc too: %+v, want kept for that tag", it)
	}
}

// TestRunTagGoneDuringRecheck: a tag the recheck lists but that is gone
// when it reads it (deleted in between, by a person or another prune)
// changes nothing: the prune goes on and keeps what it kept.
func TestRunTagGoneDuringRecheck(t *testing.T) {
	p, reg, direct, repo := faultyRepo(t)
	imgs, _ := pushBuilds(t, reg, direct, 3)
	tagAt(t, direct, "ci", imgs[2])
	tagAt(t, direct, "release-7", imgs[2])
	// The listing reads release-7 with GET; the recheck's HEAD finds it
	// gone.
	gone := p.Inject(faultproxy.Fault{Method: "HEAD", Path: "/manifests/release-7$", Status: http.StatusNotFound, Code: "MANIFEST_UNKNOWN"})
	rep, err := Run(context.Background(), reg, Target{Repository: repo, Floating: []string{"ci"}}, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)}, false)
	if err != nil {
		t.Fatalf("a tag gone between the recheck's list and its read failed the prune: %v\n%s", err, strings.Join(p.Log(), "\n"))
	}
	if gone.Hits() != 1 {
		t.Fatalf("the recheck read release-7 %d times with HEAD, want 1:\n%s", gone.Hits(), strings.Join(p.Log(), "\n"))
	}
	if !present(t, reg, direct, imgs[2]) || present(t, reg, direct, imgs[0]) {
		t.Errorf("kept the newest = %v, deleted the oldest = %v: %+v", present(t, reg, direct, imgs[2]), !present(t, reg, direct, imgs[0]), rep.Items)
	}
}
