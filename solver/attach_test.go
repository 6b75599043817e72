package solver

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/hash/manifest"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func testRegistry(t *testing.T) (host string) {
	t.Helper()
	return serveRegistry(t, true)
}

// serveRegistry starts go-containerregistry's in-process registry, with or
// without the OCI 1.1 referrers API.
func serveRegistry(t *testing.T, referrers bool) (host string) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.WithReferrersSupport(referrers)))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func pushRandom(t *testing.T, ref string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := name.ParseReference(ref, name.Insecure)
	if err := remote.Write(n, img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

func TestAttachAndFetch(t *testing.T) {
	// A registry without the referrers API gets the referrers tag schema:
	// an index tagged sha256-<subject hex> listing the manifests.
	for _, referrers := range []bool{true, false} {
		t.Run(fmt.Sprintf("referrers=%v", referrers), func(t *testing.T) {
			testAttachAndFetch(t, serveRegistry(t, referrers), referrers)
		})
	}
}

func testAttachAndFetch(t *testing.T, host string, referrers bool) {
	ctx := context.Background()
	r := NewRegistry(RegistryOptions{})
	img := host + "/p/app"
	dg := pushRandom(t, img+":abc")

	if _, err := r.FetchManifest(ctx, img+":abc"); !errors.Is(err, ErrNoManifest) {
		t.Fatalf("before attaching: %v", err)
	}
	if _, err := r.FetchManifest(ctx, img+":nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing tag: %v", err)
	}
	for i, status := range []string{"built", "skipped"} {
		m := manifest.New("p", "test", time.Unix(int64(1000+i), 0))
		m.Services = append(m.Services, &manifest.Service{Service: "app", Status: status})
		var b strings.Builder
		m.Write(&b)
		if err := r.Attach(ctx, img+"@"+dg, []byte(b.String()), m.Created); err != nil {
			t.Fatal(err)
		}
	}
	// A tag that moves to the image carries its manifests with it.
	if err := r.Copy(ctx, img+":abc", img+":ci"); err != nil {
		t.Fatal(err)
	}
	got, err := r.FetchManifest(ctx, img+":ci")
	if err != nil {
		t.Fatal(err)
	}
	if got.Find("app") == nil || got.Find("app").Status != "skipped" {
		t.Fatalf("want the newest manifest, got %+v", got.Services)
	}
	// The fallback tag exists exactly when the registry lacks the API.
	fallback := img + ":" + strings.Replace(dg, ":", "-", 1)
	_, found, err := r.Head(ctx, fallback)
	if err != nil || found == referrers {
		t.Fatalf("referrers tag %s: found=%v, err=%v; registry has the referrers API: %v", fallback, found, err, referrers)
	}
}

func TestHeadClassifiesErrors(t *testing.T) {
	host := testRegistry(t)
	r := NewRegistry(RegistryOptions{})
	ctx := context.Background()
	if _, found, err := r.Head(ctx, host+"/p/x:missing"); found || err != nil {
		t.Fatalf("404 must be a plain miss: found=%v err=%v", found, err)
	}
	dg := pushRandom(t, host+"/p/x:t")
	if d, found, err := r.Head(ctx, host+"/p/x:t"); !found || err != nil || d.String() != dg {
		t.Fatalf("hit: %s %v %v", d, found, err)
	}
	if _, _, err := r.Head(ctx, "127.0.0.1:1/p/x:t"); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable registry must be an error naming it: %v", err)
	}
}
