package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bkcache/bkcache/solver/manifest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const createdKey = "org.opencontainers.image.created"

// Attach stores doc as an OCI artifact whose subject is the image at
// subject. Registries with the referrers API index it; for others
// go-containerregistry maintains the referrers tag schema's fallback
// index.
func (r *Registry) Attach(ctx context.Context, subject name.Digest, doc []byte, created time.Time) error {
	desc, err := remote.Head(subject, r.opts(ctx)...)
	if err != nil {
		return wrap(subject, err)
	}
	// The config's media type is the artifact type: registries index
	// referrers by it when a manifest has no artifactType field.
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), manifest.ArtifactType)
	img, err = mutate.Append(img, mutate.Addendum{Layer: static.NewLayer(doc, manifest.ArtifactType), MediaType: manifest.ArtifactType})
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

// ErrNoManifest reports an image with no bkcache manifest attached.
var ErrNoManifest = errors.New("no bkcache manifest is attached to the image")

// HasManifest reports whether a bkcache manifest is attached to the
// image at d.
func (r *Registry) HasManifest(ctx context.Context, d name.Digest) (bool, error) {
	refs, err := r.Referrers(ctx, d)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(refs, func(ref Referrer) bool { return ref.ArtifactType == manifest.ArtifactType }), nil
}

// FetchManifest returns the newest bkcache manifest attached to the image
// at ref (a tag or digest).
func (r *Registry) FetchManifest(ctx context.Context, ref name.Reference) (*manifest.Manifest, error) {
	dg, found, err := r.Head(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	repo := ref.Context()
	idx, err := remote.Referrers(repo.Digest(dg.String()), append(r.opts(ctx), remote.WithFilter("artifactType", manifest.ArtifactType))...)
	if err != nil {
		return nil, wrap(ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, wrap(ref, err)
	}
	refs := slices.DeleteFunc(slices.Clone(im.Manifests), func(d v1.Descriptor) bool { return d.ArtifactType != manifest.ArtifactType })
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s (%s): %w", ref, dg, ErrNoManifest)
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
		(am.ArtifactType != manifest.ArtifactType && am.Config.MediaType != manifest.ArtifactType) {
		return nil, fmt.Errorf("%s: the attached manifest %s is malformed", ref, newest.Digest)
	}
	doc, err := r.blob(ctx, ref, repo.Digest(am.Layers[0].Digest.String()))
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return m, nil
}
