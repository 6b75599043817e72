package prune

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
)

// TestRun lists a real (in-process) registry, with and without the
// referrers API: three hash images dated by their attached manifests,
// their caches, ci on the newest and release-1 on the oldest. With keep 1
// and keep-within 0 the middle one goes with its cache and attached
// manifest; a dry run deletes nothing; the recheck keeps what ci was
// moved to after the listing.
func TestRun(t *testing.T) {
	for _, referrers := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers=%v", referrers), func(t *testing.T) {
			s := rt.Serve(t, referrers)
			reg := registry.New(registry.Options{})
			ctx := context.Background()
			repo, _ := name.NewRepository(s.Host + "/p/app")
			imgs, caches := pushBuilds(t, reg, repo, 3)
			tagAt(t, repo, "ci", imgs[2])
			tagAt(t, repo, "release-1", imgs[0])
			target := Target{Repository: repo, Services: []string{"app"}, Floating: []string{"ci"}}
			rules := Rules{Keep: 1, Now: t0.Add(5 * time.Hour)}

			dry, err := Run(ctx, reg, target, rules, true)
			if err != nil || dry.Deleted != 0 || dry.Freed == 0 {
				t.Fatalf("dry run: %+v, %v", dry, err)
			}
			present := func(d digest.Digest) bool {
				_, found, err := reg.Head(ctx, repo.Digest(d.String()))
				if err != nil {
					t.Fatal(err)
				}
				return found
			}
			if !present(imgs[1]) {
				t.Fatal("a dry run deleted")
			}
			rep, err := Run(ctx, reg, target, rules, false)
			if err != nil {
				t.Fatal(err)
			}
			if present(imgs[1]) || present(caches[1]) || !present(imgs[0]) || !present(imgs[2]) || !present(caches[0]) || !present(caches[2]) {
				t.Errorf("after the prune: images %v %v %v, caches %v %v %v; want the middle ones gone",
					present(imgs[0]), present(imgs[1]), present(imgs[2]), present(caches[0]), present(caches[1]), present(caches[2]))
			}
			if rep.Deleted < 3 { // the image, its cache, its attached manifest (and, without the API, its fallback index)
				t.Errorf("deleted %d manifests, want at least 3", rep.Deleted)
			}
		})
	}
}

// pushBuilds pushes n random hash images to repo, built an hour apart
// from t0 (dated by their attached bkcache manifests), each with its
// cache, and returns their digests, oldest first.
func pushBuilds(t *testing.T, reg *registry.Registry, repo name.Repository, n int) (imgs, caches []digest.Digest) {
	t.Helper()
	for i := range n {
		h := hash(i + 1)
		imgs = append(imgs, digest.Digest(rt.PushRandom(t, repo.Tag(h).String())))
		caches = append(caches, digest.Digest(rt.PushRandom(t, repo.Tag("cache-"+h).String())))
		if err := reg.Attach(context.Background(), repo.Digest(imgs[i].String()), record.ArtifactType, []byte(`{}`), t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	return imgs, caches
}

// tagAt points repo:tag at the manifest d.
func tagAt(t *testing.T, repo name.Repository, tag string, d digest.Digest) {
	t.Helper()
	desc, err := remote.Get(repo.Digest(d.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(repo.Tag(tag), desc); err != nil {
		t.Fatal(err)
	}
}

// TestRecheck: a floating tag moved after the listing, onto a manifest
// the decision would delete, keeps it; so does a tag that is new since
// the listing.
func TestRecheck(t *testing.T) {
	s := rt.Serve(t, true)
	reg := registry.New(registry.Options{})
	ctx := context.Background()
	repo, _ := name.NewRepository(s.Host + "/p/app")
	imgs, _ := pushBuilds(t, reg, repo, 3)
	rt.PushRandom(t, repo.Tag("ci").String())
	rules := Rules{Keep: 1, Now: t0.Add(5 * time.Hour)}
	l := &lister{reg: reg, repo: repo, ds: reg.NewDescriber()}
	ms, err := l.list(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := decide(ms, rules)
	if d.items[imgs[0]].Action != Delete || d.items[imgs[1]].Action != Delete {
		t.Fatalf("before: %s, %s; want both old images deleted", d.items[imgs[0]].Action, d.items[imgs[1]].Action)
	}
	tagAt(t, repo, "ci", imgs[0])
	tagAt(t, repo, "v2", imgs[1])
	changed, err := l.recheck(ctx, ms)
	if err != nil || !changed {
		t.Fatalf("recheck = %v, %v; want a change", changed, err)
	}
	d = decide(ms, rules)
	for _, img := range imgs[:2] {
		if it := d.items[img]; it.Action != Keep {
			t.Errorf("after the recheck %v: %s (%s)", it.Tags, it.Action, it.Reason)
		}
	}
}
