package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// What bkcache prune asks of a registry: the tags of a repository, what
// each manifest is and which blobs it holds, what refers to it, and
// deleting manifests by digest.

// Tags lists the tags of repo; a repository that does not exist has none.
func (r *Registry) Tags(ctx context.Context, repo name.Repository) ([]string, error) {
	tags, err := remote.List(repo, r.opts(ctx)...)
	if notFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(repo.Tag("latest"), err)
	}
	return tags, nil
}

// Described is a manifest in a registry: its digest and media type, the
// blobs it holds (for an index, those of the manifests it reaches too)
// and the configuration blob of an image, which dates it.
type Described struct {
	Digest    digest.Digest
	MediaType string
	Blobs     map[digest.Digest]int64 // blob digest → size
	Config    digest.Digest           // an image's config; "" otherwise
	// Children are the manifests an index reaches: those it lists, and
	// theirs, each once. Deleting any of them breaks the index.
	Children []digest.Digest
	height   int // how deep indexes nest below and in it: 0 for an image
}

// MaxIndexDepth bounds how deep indexes may nest. Real images nest one
// level (an index of platform manifests and attestations); a registry
// serving deeper nesting is hostile or broken.
const MaxIndexDepth = 8

// ErrIndexShape reports an index that cannot be walked: nested deeper
// than MaxIndexDepth, or listing itself.
var ErrIndexShape = errors.New("the index cannot be walked")

// Describer describes manifests, each digest once: an index that lists
// the same manifest many times, at every level, costs one request per
// distinct manifest, not one per path to it. Safe for concurrent use.
type Describer struct {
	r  *Registry
	mu sync.Mutex
	by map[digest.Digest]*Described
}

// NewDescriber returns a Describer for one sequence of reads: a prune's
// listing and its recheck.
func (r *Registry) NewDescriber() *Describer {
	return &Describer{r: r, by: map[digest.Digest]*Described{}}
}

// Describe reads the manifest at ref and, for an index, every manifest
// it reaches.
func (r *Registry) Describe(ctx context.Context, ref name.Reference) (*Described, error) {
	return r.NewDescriber().Describe(ctx, ref)
}

// Describe reads the manifest at ref and, for an index, every manifest
// it reaches.
func (ds *Describer) Describe(ctx context.Context, ref name.Reference) (*Described, error) {
	return ds.describe(ctx, ref, nil)
}

// describe reads ref, below the indexes on path (outermost first).
func (ds *Describer) describe(ctx context.Context, ref name.Reference, path []digest.Digest) (*Described, error) {
	if dg, ok := ref.(name.Digest); ok {
		if d := ds.known(digest.Digest(dg.DigestStr())); d != nil {
			return d, nil
		}
	}
	desc, err := remote.Get(ref, ds.r.opts(ctx)...)
	if err != nil {
		return nil, wrap(ref, err)
	}
	d := &Described{Digest: digest.Digest(desc.Digest.String()), MediaType: string(desc.MediaType), Blobs: map[digest.Digest]int64{}}
	if desc.MediaType.IsIndex() {
		if err := ds.index(ctx, ref, d, desc.Manifest, append(slices.Clip(path), d.Digest)); err != nil {
			return nil, err
		}
	} else if err := image(ref, d, desc); err != nil {
		return nil, err
	}
	ds.mu.Lock()
	ds.by[d.Digest] = d
	ds.mu.Unlock()
	return d, nil
}

func (ds *Describer) known(d digest.Digest) *Described {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	return ds.by[d]
}

// index fills d from the index raw, whose own digest ends path (the
// cycle check; the depth bound is on the height, which a memoised
// manifest keeps). An entry
// that is not a manifest is a blob: BuildKit's cache in its index form
// (image-manifest=false) lists its layers and cache config there.
func (ds *Describer) index(ctx context.Context, ref name.Reference, d *Described, raw []byte, path []digest.Digest) error {
	if len(path) > MaxIndexDepth {
		return fmt.Errorf("%s: %w: indexes nest more than %d deep", ref, ErrIndexShape, MaxIndexDepth)
	}
	var idx v1.IndexManifest
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("%s: reading its index: %w", ref, err)
	}
	seen := map[digest.Digest]bool{}
	for _, m := range idx.Manifests {
		cd := digest.Digest(m.Digest.String())
		if !isManifest(m.MediaType) {
			d.Blobs[cd] = m.Size
			continue
		}
		if slices.Contains(path, cd) {
			return fmt.Errorf("%s: %w: it lists %s, which lists it in turn (a cycle)", ref, ErrIndexShape, cd)
		}
		child, err := ds.describe(ctx, ref.Context().Digest(cd.String()), path)
		if err != nil {
			return err
		}
		for _, c := range append([]digest.Digest{cd}, child.Children...) {
			if !seen[c] {
				seen[c] = true
				d.Children = append(d.Children, c)
			}
		}
		maps.Copy(d.Blobs, child.Blobs)
		d.height = max(d.height, child.height)
	}
	if d.height++; d.height > MaxIndexDepth {
		return fmt.Errorf("%s: %w: indexes nest more than %d deep", ref, ErrIndexShape, MaxIndexDepth)
	}
	return nil
}

// image fills d from an image (or artifact) manifest.
func image(ref name.Reference, d *Described, desc *remote.Descriptor) error {
	var m v1.Manifest
	if err := json.Unmarshal(desc.Manifest, &m); err != nil {
		return fmt.Errorf("%s: reading its manifest: %w", ref, err)
	}
	if desc.MediaType.IsImage() {
		d.Config = digest.Digest(m.Config.Digest.String())
	}
	d.Blobs[digest.Digest(m.Config.Digest.String())] = m.Config.Size
	for _, l := range m.Layers {
		d.Blobs[digest.Digest(l.Digest.String())] = l.Size
	}
	return nil
}

// isManifest reports whether an index entry of media type mt is a
// manifest (or index) rather than a blob.
func isManifest(mt types.MediaType) bool {
	return mt.IsIndex() || mt.IsImage() || mt == "application/vnd.oci.artifact.manifest.v1+json"
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
	case notFound(err):
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
