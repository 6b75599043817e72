package publish

import (
	"context"
	"errors"
	"fmt"

	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/google/go-containerregistry/pkg/name"
)

// ErrNoRecord reports an image with no bkcache record attached.
var ErrNoRecord = errors.New("no bkcache manifest is attached to the image")

// ReadRecord returns the newest bkcache record attached to the image at
// ref (a tag or digest).
func ReadRecord(ctx context.Context, reg *registry.Registry, ref name.Reference) (*record.Run, error) {
	doc, err := reg.FetchArtifact(ctx, ref, record.ArtifactType)
	var none *registry.NoArtifactError
	if errors.As(err, &none) {
		return nil, fmt.Errorf("%s (%s): %w", ref, none.Digest, ErrNoRecord)
	}
	if err != nil {
		return nil, err
	}
	m, err := record.Parse(doc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ref, err)
	}
	return m, nil
}

// hasRecord reports whether a bkcache record is attached to the image
// at d.
func hasRecord(ctx context.Context, reg *registry.Registry, d name.Digest) (bool, error) {
	return reg.HasArtifact(ctx, d, record.ArtifactType)
}
