package registry

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

const createdKey = "org.opencontainers.image.created"

// Attach stores doc as an OCI artifact of type artifactType whose
// subject is the image at subject. Registries with the referrers API
// index it; for others go-containerregistry maintains the referrers tag
// schema's fallback index.
func (r *Registry) Attach(ctx context.Context, subject name.Digest, artifactType string, doc []byte, created time.Time) error {
	desc, err := remote.Head(subject, r.opts(ctx)...)
	if err != nil {
		return wrap(subject, err)
	}
	// The config's media type is the artifact type: registries index
	// referrers by it when a manifest has no artifactType field.
	mt := types.MediaType(artifactType)
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), mt)
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(doc, mt), MediaType: mt})
	if err != nil {
		return err
	}
	img = mutate.Annotations(img, map[string]string{createdKey: created.UTC().Format(time.RFC3339Nano)}).(v1.Image)
	img = mutate.Subject(img, v1.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size}).(v1.Image)
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if err := remote.Write(subject.Context().Digest(d.String()), img, r.opts(ctx)...); err != nil {
		return wrap(subject, err)
	}
	return nil
}

// NoArtifactError reports an image with no artifact of the type asked
// for attached.
type NoArtifactError struct {
	Ref          name.Reference
	Digest       digest.Digest // what Ref named when asked
	ArtifactType string
}

func (e *NoArtifactError) Error() string {
	return fmt.Sprintf("%s (%s): no %s is attached to the image", e.Ref, e.Digest, e.ArtifactType)
}

// HasArtifact reports whether an artifact of type artifactType is
// attached to the image at d.
func (r *Registry) HasArtifact(ctx context.Context, d name.Digest, artifactType string) (bool, error) {
	refs, err := r.Referrers(ctx, d)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(refs, func(ref Referrer) bool { return ref.ArtifactType == artifactType }), nil
}

// FetchArtifact returns the content of the newest artifact of type
// artifactType attached to the image at ref (a tag or digest).
func (r *Registry) FetchArtifact(ctx context.Context, ref name.Reference, artifactType string) ([]byte, error) {
	dg, found, err := r.Head(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	repo := ref.Context()
	idx, err := remote.Referrers(repo.Digest(dg.String()), append(r.opts(ctx), remote.WithFilter("artifactType", artifactType))...)
	if err != nil {
		return nil, wrap(ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, wrap(ref, err)
	}
	refs := slices.DeleteFunc(slices.Clone(im.Manifests), func(d v1.Descriptor) bool { return d.ArtifactType != artifactType })
	if len(refs) == 0 {
		return nil, &NoArtifactError{Ref: ref, Digest: dg, ArtifactType: artifactType}
	}
	slices.SortFunc(refs, func(a, b v1.Descriptor) int {
		return strings.Compare(a.Annotations[createdKey], b.Annotations[createdKey])
	})
	newest := refs[len(refs)-1]
	art, err := remote.Get(repo.Digest(newest.Digest.String()), r.opts(ctx)...)
	if err != nil {
		return nil, wrap(ref, err)
	}
	var am v1.Manifest
	if err := json.Unmarshal(art.Manifest, &am); err != nil || len(am.Layers) != 1 ||
		(am.ArtifactType != artifactType && string(am.Config.MediaType) != artifactType) {
		return nil, fmt.Errorf("%s: the attached artifact %s is malformed", ref, newest.Digest)
	}
	return r.blob(ctx, ref, repo.Digest(am.Layers[0].Digest.String()))
}
