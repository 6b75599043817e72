package registry

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// CacheForm is how a registry cache's manifest is written, BuildKit's
// image-manifest attribute.
type CacheForm string

// The two forms of a registry cache.
const (
	// ImageManifest is an OCI image manifest whose config is BuildKit's
	// cache config: BuildKit's default since v0.21, and the form Harbor
	// takes (it refuses the index, goharbor/harbor#14774).
	ImageManifest CacheForm = "image-manifest"
	// Index is an OCI index listing the layers and the config: the form
	// of older BuildKits, for registries that refuse the first (ECR
	// before 2023, Artifactory and Quay as moby/buildkit#2251 found them).
	Index CacheForm = "index"
)

// FormOf is the form of a cache whose manifest has media type mt.
func FormOf(mt types.MediaType) CacheForm {
	if mt.IsIndex() {
		return Index
	}
	return ImageManifest
}

// AcceptsCacheManifest reports whether the registry takes a cache in the
// ImageManifest form: it writes a manifest of that form with an empty
// config and no layer into repo, by digest (no tag names it). A refusal
// of the manifest itself (415, or 400 MANIFEST_INVALID or UNSUPPORTED)
// is false; any other failure is an error, which tells nothing about
// the form.
func (r *Registry) AcceptsCacheManifest(ctx context.Context, repo name.Repository) (bool, error) {
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), CacheConfigType)
	d, err := img.Digest()
	if err != nil {
		return false, err
	}
	ref := repo.Digest(d.String())
	err = remote.Write(ref, img, r.opts(ctx)...)
	var te *transport.Error
	switch {
	case err == nil:
		return true, nil
	case errors.As(err, &te) && refusesManifest(te):
		return false, nil
	}
	return false, wrap(ref, err)
}

// refusesManifest reports whether te refuses a manifest for what it is,
// not for a blob it lacks or a tag it keeps.
func refusesManifest(te *transport.Error) bool {
	if te.StatusCode == http.StatusUnsupportedMediaType {
		return true
	}
	return te.StatusCode == http.StatusBadRequest && slices.ContainsFunc(te.Errors, func(d transport.Diagnostic) bool {
		return d.Code == transport.ManifestInvalidErrorCode || d.Code == transport.UnsupportedErrorCode
	})
}
