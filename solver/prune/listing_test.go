package prune

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
)

// pushCreated pushes, untracked by bkcache (no attached manifest), an
// image whose config says it was created at when.
func pushCreated(t *testing.T, tag name.Tag, when time.Time) digest.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: when}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return digest.Digest(d.String())
}

// TestRunDates: an image's date is its newest attached bkcache
// manifest's time; without one, its config's created time.
func TestRunDates(t *testing.T) {
	_, reg, repo := serveRepo(t)
	ctx := context.Background()
	fromConfig := pushCreated(t, repo.Tag(hash(1)), t0.Add(3*time.Hour))
	twice := pushCreated(t, repo.Tag(hash(2)), t0.Add(9*time.Hour))
	attach(t, reg, repo, twice, t0)
	attach(t, reg, repo, twice, t0.Add(2*time.Hour))
	rep, err := Run(ctx, reg, Target{Repository: repo}, Rules{Keep: 5, Now: t0.Add(48 * time.Hour)}, true)
	if err != nil {
		t.Fatal(err)
	}
	want := map[digest.Digest]time.Time{fromConfig: t0.Add(3 * time.Hour), twice: t0.Add(2 * time.Hour)}
	for _, it := range rep.Items {
		if w, ok := want[digest.Digest(it.Digest)]; ok {
			if it.Created == nil || !it.Created.Equal(w) {
				t.Errorf("%s: created %v, want %v", it.Digest, it.Created, w)
			}
			delete(want, digest.Digest(it.Digest))
		}
	}
	if len(want) != 0 {
		t.Errorf("not in the report: %v", want)
	}
}

// TestRunRemovesOrphanedFallback: on a registry without the referrers
// API, a prune stopped after deleting an image leaves its fallback
// index (sha256-IMAGE) and what it lists. The next prune finds the
// subject gone and deletes both; a fallback index whose subject is there
// stays.
func TestRunRemovesOrphanedFallback(t *testing.T) {
	s := rt.Serve(t, false)
	repo, _ := name.NewRepository(s.Host + "/p/app")
	reg := registry.New(registry.Options{})
	ctx := context.Background()
	imgs, _ := pushBuilds(t, reg, repo, 2)
	// What the interrupted prune got to: imgs[0]'s tag and manifest.
	if err := remote.Delete(repo.Tag(hash(1))); err != nil {
		t.Fatal(err)
	}
	if err := remote.Delete(repo.Digest(imgs[0].String())); err != nil {
		t.Fatal(err)
	}
	orphan, found, err := reg.Head(ctx, repo.Tag("sha256-"+imgs[0].Encoded()))
	if err != nil || !found {
		t.Fatalf("no fallback index for the deleted image: %v", err)
	}
	live, _, _ := reg.Head(ctx, repo.Tag("sha256-"+imgs[1].Encoded()))
	rep, err := Run(ctx, reg, Target{Repository: repo}, Rules{Keep: 5, Now: t0.Add(48 * time.Hour)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if present(t, reg, repo, orphan) {
		t.Errorf("the orphaned fallback index stayed: %+v", rep.Items)
	}
	if !present(t, reg, repo, live) || !present(t, reg, repo, imgs[1]) {
		t.Errorf("the live image or its fallback index went: %+v", rep.Items)
	}
	gone := 0
	for _, it := range rep.Items {
		if it.Action == Delete && it.Reason == "its subject is gone" {
			gone++
		}
	}
	if gone != 2 {
		t.Errorf("%d deleted for their subject is gone, want the fallback index and the manifest it lists: %+v", gone, rep.Items)
	}
}

// TestRunFailsOnReadErrors: a registry read the decision depends on that
// fails (an image's referrers, its config, a fallback index's subject,
// the recheck's listing) fails the prune and deletes nothing.
func TestRunFailsOnReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(p *faultproxy.Proxy, direct name.Repository, imgs []digest.Digest, cfg string)
	}{
		{"referrers", func(p *faultproxy.Proxy, direct name.Repository, imgs []digest.Digest, _ string) {
			p.Inject(faultproxy.Fault{Method: "GET", Path: "/referrers/", Status: 401, Code: "UNAUTHORIZED"})
		}},
		{"config", func(p *faultproxy.Proxy, direct name.Repository, _ []digest.Digest, cfg string) {
			p.Inject(faultproxy.Fault{Method: "GET", Path: "/blobs/" + cfg, Status: 401, Code: "UNAUTHORIZED"})
		}},
		{"subject", func(p *faultproxy.Proxy, direct name.Repository, _ []digest.Digest, _ string) {
			p.Inject(faultproxy.Fault{Method: "HEAD", Path: "/manifests/sha256:" + fmt.Sprintf("%064x", 77) + "$", Status: 401, Code: "UNAUTHORIZED"})
		}},
		{"recheck", func(p *faultproxy.Proxy, direct name.Repository, imgs []digest.Digest, _ string) {
			// After the listing has read the tags once.
			p.Inject(faultproxy.Fault{Method: "GET", Path: "/referrers/" + imgs[0].String() + "$", Times: 1, Before: func() {
				p.Inject(faultproxy.Fault{Method: "GET", Path: "/tags/list$", Status: 401, Code: "UNAUTHORIZED"})
			}})
		}},
		{"an attached record", func(p *faultproxy.Proxy, direct name.Repository, imgs []digest.Digest, _ string) {
			p.Inject(faultproxy.Fault{Path: "/manifests/" + recordOf(t, direct, imgs[0]).String() + "$", Status: 401, Code: "UNAUTHORIZED"})
		}},
		{"a manifest the recheck sees first", func(p *faultproxy.Proxy, direct name.Repository, imgs []digest.Digest, _ string) {
			p.Inject(faultproxy.Fault{Method: "GET", Path: "/referrers/" + imgs[0].String() + "$", Times: 1, Before: func() {
				late := pushCreated(t, direct.Tag("late"), t0)
				p.Inject(faultproxy.Fault{Path: "/manifests/" + late.String() + "$", Status: 401, Code: "UNAUTHORIZED"})
			}})
		}},
		{"a gone index's untagged child", func(p *faultproxy.Proxy, direct name.Repository, _ []digest.Digest, _ string) {
			child := pushUntagged(t, direct)
			putIndex(t, direct.Tag("sha256-"+hash(78)), child)
			p.Inject(faultproxy.Fault{Path: "/manifests/" + child.String() + "$", Status: 401, Code: "UNAUTHORIZED"})
		}},
		{"recheck's read of a tag", func(p *faultproxy.Proxy, direct name.Repository, imgs []digest.Digest, _ string) {
			p.Inject(faultproxy.Fault{Method: "GET", Path: "/referrers/" + imgs[0].String() + "$", Times: 1, Before: func() {
				p.Inject(faultproxy.Fault{Method: "HEAD", Path: "/manifests/" + hash(2) + "$", Status: 401, Code: "UNAUTHORIZED"})
			}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, reg, direct, repo := faultyRepo(t)
			ctx := context.Background()
			imgs, _ := pushBuilds(t, reg, direct, 3)
			// An untracked image, dated by its config, and a fallback
			// index whose subject is not listed.
			cfgImg := pushCreated(t, direct.Tag(hash(8)), t0)
			img, err := remote.Image(direct.Digest(cfgImg.String()))
			if err != nil {
				t.Fatal(err)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			putIndex(t, direct.Tag("sha256-"+fmt.Sprintf("%064x", 77)), imgs[2])
			tc.fault(p, direct, imgs, m.Config.Digest.String())
			rep, err := Run(ctx, reg, Target{Repository: repo}, Rules{Keep: 1, Now: t0.Add(48 * time.Hour)}, false)
			p.Clear()
			if err == nil || !errors.Is(err, registry.ErrAuth) {
				t.Fatalf("Run = %v, want the refusal", err)
			}
			if rep != nil && rep.Deleted != 0 {
				t.Errorf("deleted %d manifests after a failed read", rep.Deleted)
			}
			for _, d := range append(imgs, cfgImg) {
				if !present(t, reg, direct, d) {
					t.Errorf("%s deleted after a failed read", d)
				}
			}
		})
	}
}

// recordOf is the digest of a bkcache record attached to img in
// direct, the repository read around the proxy.
func recordOf(t *testing.T, direct name.Repository, img digest.Digest) digest.Digest {
	t.Helper()
	idx, err := remote.Referrers(direct.Digest(img.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) == 0 {
		t.Fatalf("no record attached to %s: %v", img, err)
	}
	return digest.Digest(im.Manifests[0].Digest.String())
}

// TestRunDatesByTheNewestRecord: an image with several records attached
// is dated by the newest, whatever order the registry lists them in (the
// in-process registry lists referrers in map order: five runs over eight
// records see the newest last by chance once in 30,000).
func TestRunDatesByTheNewestRecord(t *testing.T) {
	_, reg, repo := serveRepo(t)
	img := pushCreated(t, repo.Tag(hash(1)), t0)
	for _, h := range []int{3, 7, 1, 5, 2, 8, 4, 6} {
		attach(t, reg, repo, img, t0.Add(time.Duration(h)*time.Hour))
	}
	for range 5 {
		rep, err := Run(context.Background(), reg, Target{Repository: repo}, Rules{Keep: 5, Now: t0.Add(48 * time.Hour)}, true)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(rep.Items, func(it Item) bool { return it.Digest == img })
		if i < 0 || rep.Items[i].Created == nil || !rep.Items[i].Created.Equal(t0.Add(8*time.Hour)) {
			t.Fatalf("dated %v, want the newest record's %v", rep.Items[max(i, 0)].Created, t0.Add(8*time.Hour))
		}
	}
}

// TestRunIndexWithoutRecord: a multi-platform image under a hash tag with
// no record attached has no config to date it by: it is undated (and,
// not being bkcache's, kept), never a failed prune.
func TestRunIndexWithoutRecord(t *testing.T) {
	_, reg, repo := serveRepo(t)
	child := pushCreated(t, repo.Tag("child"), t0)
	idx := putIndex(t, repo.Tag(hash(1)), child)
	rep, err := Run(context.Background(), reg, Target{Repository: repo}, Rules{Keep: 0, Now: t0.Add(48 * time.Hour)}, true)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rep.Items, func(it Item) bool { return it.Digest == idx })
	if i < 0 || rep.Items[i].Created != nil || rep.Items[i].Action != Keep {
		t.Errorf("the index: %+v", rep.Items[max(i, 0)])
	}
}

// TestRunGoneIndexListsAKeptImage: a fallback index whose subject is
// gone, but which lists an image that is kept for its own sake (a crafted
// or reused index), takes only itself away: the image keeps its tags and
// its decision.
func TestRunGoneIndexListsAKeptImage(t *testing.T) {
	s := rt.Serve(t, false)
	repo, _ := name.NewRepository(s.Host + "/p/app")
	reg := registry.New(registry.Options{})
	imgs, _ := pushBuilds(t, reg, repo, 2)
	putIndex(t, repo.Tag("sha256-"+hash(78)), imgs[1])
	// A dry run says so too: no recheck there to catch a kept image
	// taken for a child of the gone index.
	dry, err := Run(context.Background(), reg, Target{Repository: repo}, Rules{Keep: 5, Now: t0.Add(48 * time.Hour)}, true)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(dry.Items, func(it Item) bool { return it.Digest == imgs[1] }); i < 0 || dry.Items[i].Action != Keep {
		t.Fatalf("the dry run would delete a kept image listed by a gone fallback index: %+v", dry.Items)
	}
	rep, err := Run(context.Background(), reg, Target{Repository: repo}, Rules{Keep: 5, Now: t0.Add(48 * time.Hour)}, false)
	if err != nil {
		t.Fatal(err)
	}
	if !present(t, reg, repo, imgs[1]) {
		t.Fatalf("a kept image listed by a gone fallback index was deleted: %+v", rep.Items)
	}
}

// pushUntagged pushes a random image by digest alone.
func pushUntagged(t *testing.T, repo name.Repository) digest.Digest {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	if err := remote.Write(repo.Digest(d.String()), img); err != nil {
		t.Fatal(err)
	}
	return digest.Digest(d.String())
}
