package registry

import (
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

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
