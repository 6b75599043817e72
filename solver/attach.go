package solver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bkcache/bkcache/hash/manifest"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const createdKey = "org.opencontainers.image.created"

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// Attach stores doc as an OCI artifact whose subject is the image at
// ref (which must carry its digest, REPO@sha256:...). Registries with the
// referrers API index it; for others go-containerregistry maintains the
// referrers tag schema's fallback index.
func (r *Registry) Attach(ctx context.Context, ref string, doc []byte, created time.Time) error {
	n, err := r.parse(ref)
	if err != nil {
		return err
	}
	d, ok := n.(name.Digest)
	if !ok {
		return fmt.Errorf("attaching a manifest to %s: need a digest reference", ref)
	}
	subject, err := remote.Head(d, r.opts(ctx)...)
	if err != nil {
		return r.wrap(ref, err)
	}
	// The config's media type is the artifact type as well: registries
	// that predate OCI 1.1's artifactType field index referrers by it.
	cfg := static.NewLayer([]byte("{}"), manifest.ArtifactType)
	layer := static.NewLayer(doc, manifest.ArtifactType)
	for _, l := range []v1.Layer{cfg, layer} {
		if err := remote.WriteLayer(d.Context(), l, r.opts(ctx)...); err != nil {
			return r.wrap(ref, err)
		}
	}
	desc := func(l v1.Layer, mt types.MediaType) v1.Descriptor {
		dg, _ := l.Digest()
		sz, _ := l.Size()
		return v1.Descriptor{MediaType: mt, Digest: dg, Size: sz}
	}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        desc(cfg, manifest.ArtifactType),
		Layers:        []v1.Descriptor{desc(layer, manifest.ArtifactType)},
		Subject:       &v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:   map[string]string{createdKey: created.UTC().Format(time.RFC3339Nano)},
	}
	b, err := json.Marshal(struct {
		v1.Manifest
		ArtifactType string `json:"artifactType"`
	}{m, manifest.ArtifactType})
	if err != nil {
		return err
	}
	h, _, err := v1.SHA256(bytes.NewReader(b))
	if err != nil {
		return err
	}
	if err := remote.Put(d.Context().Digest(h.String()), rawManifest{b, types.OCIManifestSchema1}, r.opts(ctx)...); err != nil {
		return r.wrap(ref, err)
	}
	return nil
}

// ErrNoManifest reports an image with no bkcache manifest attached.
var ErrNoManifest = errors.New("no bkcache manifest is attached to the image")

// ErrNotFound reports a reference the registry does not have.
var ErrNotFound = errors.New("not found in the registry")

// FetchManifest returns the newest bkcache manifest attached to the image
// at ref (a tag or digest).
func (r *Registry) FetchManifest(ctx context.Context, ref string) (*manifest.Manifest, error) {
	dg, found, err := r.Head(ctx, ref)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("%s: %w", ref, ErrNotFound)
	}
	n, err := r.parse(ref)
	if err != nil {
		return nil, err
	}
	subject := n.Context().Digest(dg.String())
	idx, err := remote.Referrers(subject, append(r.opts(ctx), remote.WithFilter("artifactType", manifest.ArtifactType))...)
	if err != nil {
		return nil, r.wrap(ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, r.wrap(ref, err)
	}
	refs := slices.DeleteFunc(slices.Clone(im.Manifests), func(d v1.Descriptor) bool { return d.ArtifactType != manifest.ArtifactType })
	if len(refs) == 0 {
		return nil, fmt.Errorf("%s (%s): %w", ref, dg, ErrNoManifest)
	}
	slices.SortFunc(refs, func(a, b v1.Descriptor) int {
		return strings.Compare(a.Annotations[createdKey], b.Annotations[createdKey])
	})
	newest := refs[len(refs)-1]
	art, err := remote.Get(n.Context().Digest(newest.Digest.String()), r.opts(ctx)...)
	if err != nil {
		return nil, r.wrap(ref, err)
	}
	var am v1.Manifest
	if err := json.Unmarshal(art.Manifest, &am); err != nil || len(am.Layers) != 1 {
		return nil, fmt.Errorf("%s: the attached manifest %s is malformed", ref, newest.Digest)
	}
	doc, err := r.blob(ctx, ref, n.Context().Digest(am.Layers[0].Digest.String()))
	if err != nil {
		return nil, err
	}
	m, err := manifest.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return m, nil
}
