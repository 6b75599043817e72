package registry

import (
	"context"
	"testing"
	"time"

	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
)

// TestRetention: the primitives prune reads a repository with: its tags,
// what a manifest holds, what refers to an image and when the attached
// manifest was made (through the referrers API and through the fallback
// tag alike), and deleting by digest, which a second time is no error.
func TestRetention(t *testing.T) {
	for _, referrers := range []bool{true, false} {
		s := rt.Serve(t, referrers)
		ref := s.Host + "/p/app:h"
		rt.PushRandom(t, ref)
		r := New(Options{})
		ctx := context.Background()
		img := rt.Ref(t, ref)
		d, err := r.Describe(ctx, img)
		if err != nil || len(d.Blobs) < 2 || d.Config == "" {
			t.Fatalf("referrers=%v: Describe: %+v, %v", referrers, d, err)
		}
		at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
		subject := img.Context().Digest(d.Digest.String())
		if err := r.Attach(ctx, subject, testArtifactType, []byte(`{"schemaVersion":1}`), at); err != nil {
			t.Fatal(err)
		}
		refs, err := r.Referrers(ctx, subject)
		if err != nil || len(refs) != 1 || refs[0].ArtifactType != testArtifactType || !refs[0].Created.Equal(at) {
			t.Errorf("referrers=%v: Referrers = %+v, %v; want one bkcache manifest made at %v", referrers, refs, err, at)
		}
		tags, err := r.Tags(ctx, img.Context())
		if err != nil || len(tags) != map[bool]int{true: 1, false: 2}[referrers] {
			t.Errorf("referrers=%v: Tags = %v, %v", referrers, tags, err)
		}
		if tags, err := r.Tags(ctx, rt.Ref(t, s.Host+"/never/pushed:x").Context()); err != nil || len(tags) != 0 {
			t.Errorf("referrers=%v: Tags of a repository never pushed = %v, %v; want none", referrers, tags, err)
		}
		for range 2 {
			if err := r.Delete(ctx, img.Context(), d.Digest); err != nil {
				t.Errorf("referrers=%v: Delete: %v", referrers, err)
			}
		}
		if _, found, _ := r.Head(ctx, subject); found {
			t.Errorf("referrers=%v: the deleted image still answers", referrers)
		}
	}
}

const testArtifactType = "application/vnd.test.doc.v1+json"
