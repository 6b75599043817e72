package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	digest "github.com/opencontainers/go-digest"
)

// What bkcache prune asks of a registry: the tags of a repository, what
// each manifest is and which blobs it holds, what refers to it, and
// deleting manifests by digest.

// Tags lists the tags of repo; a repository that does not exist has none.
func (r *Registry) Tags(ctx context.Context, repo name.Repository) ([]string, error) {
	tags, err := remote.List(repo, r.opts(ctx)...)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(repo.Tag("latest"), err)
	}
	return tags, nil
}

// Described is a manifest in a registry: its digest and media type, the
// blobs it holds (for an index, those of the manifests it lists too) and
// the configuration blob of an image, which dates it.
type Described struct {
	Digest    digest.Digest
	MediaType string
	Blobs     map[digest.Digest]int64 // blob digest → size
	Config    digest.Digest           // an image's config; "" otherwise
	Children  []digest.Digest         // the manifests an index lists
}

// Describe reads the manifest at ref and, for an index, the manifests it
// lists.
func (r *Registry) Describe(ctx context.Context, ref name.Reference) (*Described, error) {
	desc, err := remote.Get(ref, r.opts(ctx)...)
	if err != nil {
		return nil, wrap(ref, err)
	}
	d := &Described{Digest: digest.Digest(desc.Digest.String()), MediaType: string(desc.MediaType), Blobs: map[digest.Digest]int64{}}
	if desc.MediaType.IsIndex() {
		var idx v1.IndexManifest
		if err := json.Unmarshal(desc.Manifest, &idx); err != nil {
			return nil, fmt.Errorf("%s: reading its index: %w", ref, err)
		}
		for _, m := range idx.Manifests {
			d.Children = append(d.Children, digest.Digest(m.Digest.String()))
			child, err := r.Describe(ctx, ref.Context().Digest(m.Digest.String()))
			if err != nil {
				return nil, err
			}
			for b, n := range child.Blobs {
				d.Blobs[b] = n
			}
		}
		return d, nil
	}
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return nil, fmt.Errorf("%s: reading its manifest: %w", ref, err)
	}
	if desc.MediaType.IsImage() {
		d.Config = digest.Digest(m.Config.Digest.String())
	}
	d.Blobs[digest.Digest(m.Config.Digest.String())] = m.Config.Size
	for _, l := range m.Layers {
		d.Blobs[digest.Digest(l.Digest.String())] = l.Size
	}
	return d, nil
}

// Referrer is a manifest whose subject is another: the bkcache manifest
// attached to an image, or an attestation.
type Referrer struct {
	Digest       digest.Digest
	ArtifactType string
	Created      time.Time // its created annotation; zero when absent
}

// Referrers lists what refers to the manifest subject: through the
// referrers API, or the fallback tag where the registry has none.
func (r *Registry) Referrers(ctx context.Context, subject name.Digest) ([]Referrer, error) {
	idx, err := remote.Referrers(subject, r.opts(ctx)...)
	if err != nil {
		return nil, wrap(subject, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, wrap(subject, err)
	}
	var out []Referrer
	for _, m := range im.Manifests {
		ref := Referrer{Digest: digest.Digest(m.Digest.String()), ArtifactType: m.ArtifactType}
		if t, err := time.Parse(time.RFC3339Nano, m.Annotations[createdKey]); err == nil {
			ref.Created = t
		}
		out = append(out, ref)
	}
	return out, nil
}

// Created reads the created time of the image whose config blob is
// config, in repo; zero when the config has none.
func (r *Registry) Created(ctx context.Context, repo name.Repository, config digest.Digest) (time.Time, error) {
	ref := repo.Digest(config.String())
	b, err := r.blob(ctx, ref, ref)
	if err != nil {
		return time.Time{}, err
	}
	var cf struct {
		Created *time.Time `json:"created"`
	}
	if err := json.Unmarshal(b, &cf); err != nil || cf.Created == nil {
		return time.Time{}, nil
	}
	return *cf.Created, nil
}

// ErrNoDelete reports a registry that refuses to delete manifests.
var ErrNoDelete = errors.New("the registry does not allow deleting manifests")

// Delete deletes the manifest d in repo, and with it every tag on it. A
// manifest already gone is not an error.
func (r *Registry) Delete(ctx context.Context, repo name.Repository, d digest.Digest) error {
	ref := repo.Digest(d.String())
	err := remote.Delete(ref, r.opts(ctx)...)
	var te *transport.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
		return nil
	case errors.As(err, &te) && (te.StatusCode == http.StatusMethodNotAllowed || hasCode(te, transport.UnsupportedErrorCode)):
		return fmt.Errorf("registry %s: %w (HTTP %d)", hostOf(repo), ErrNoDelete, te.StatusCode)
	}
	return wrap(ref, err)
}

func hasCode(te *transport.Error, code transport.ErrorCode) bool {
	for _, d := range te.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}
