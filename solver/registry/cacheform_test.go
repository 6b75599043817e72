package registry

import (
	"context"
	"errors"
	"net/http"
	"testing"

	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestAcceptsCacheManifest: a registry that takes the probe, one that
// refuses the manifest, and one that refuses the push (which says
// nothing of the form: an error).
func TestAcceptsCacheManifest(t *testing.T) {
	for _, c := range []struct {
		name    string
		fault   *faultproxy.Fault
		want    bool
		errAuth bool
	}{
		{"takes it", nil, true, false},
		{"refuses the manifest", &faultproxy.Fault{Method: "PUT", Path: `/manifests/sha256:`, Status: 400, Code: "MANIFEST_INVALID"}, false, false},
		{"refuses the push", &faultproxy.Fault{Method: "PUT", Status: 403, Code: "DENIED"}, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, _ := rt.Faulty(t)
			if c.fault != nil {
				p.Inject(*c.fault)
			}
			repo, err := name.NewRepository(p.Addr + "/p/app")
			if err != nil {
				t.Fatal(err)
			}
			ok, err := New(Options{}).AcceptsCacheManifest(context.Background(), repo)
			if ok != c.want || errors.Is(err, ErrAuth) != c.errAuth || (err != nil) != c.errAuth {
				t.Errorf("AcceptsCacheManifest = %v, %v; want %v, an auth error %v", ok, err, c.want, c.errAuth)
			}
			if tags := faultproxy.Match(p.Log(), "PUT", "/manifests/", "/manifests/sha256:"); len(tags) != len(faultproxy.Match(p.Log(), "PUT", "/manifests/")) {
				t.Errorf("the probe tagged something: %q", p.Log())
			}
		})
	}
}

// TestRefusesManifest: only a refusal of the manifest itself tells that
// a registry does not take a form; a missing blob, a kept tag or refused
// credentials say nothing about it.
func TestRefusesManifest(t *testing.T) {
	for _, c := range []struct {
		status int
		code   transport.ErrorCode
		want   bool
	}{
		{http.StatusUnsupportedMediaType, "", true},
		{http.StatusBadRequest, transport.ManifestInvalidErrorCode, true},
		{http.StatusBadRequest, transport.UnsupportedErrorCode, true},
		{http.StatusBadRequest, transport.ManifestBlobUnknownErrorCode, false},
		{http.StatusBadRequest, transport.TagInvalidErrorCode, false},
		{http.StatusBadRequest, "", false},
		{http.StatusForbidden, transport.DeniedErrorCode, false},
		{http.StatusInternalServerError, transport.UnknownErrorCode, false},
	} {
		te := &transport.Error{StatusCode: c.status}
		if c.code != "" {
			te.Errors = []transport.Diagnostic{{Code: c.code}}
		}
		if got := refusesManifest(te); got != c.want {
			t.Errorf("%d %s: %v, want %v", c.status, c.code, got, c.want)
		}
	}
}

func TestFormOf(t *testing.T) {
	for mt, want := range map[types.MediaType]CacheForm{
		types.OCIImageIndex:      Index,
		types.DockerManifestList: Index,
		types.OCIManifestSchema1: ImageManifest,
	} {
		if got := FormOf(mt); got != want {
			t.Errorf("FormOf(%s) = %s, want %s", mt, got, want)
		}
	}
}
