package inputs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/distribution/reference"
	digest "github.com/opencontainers/go-digest"
)

// BaseImages says how images enter the hash.
type BaseImages string

// The modes of hashing images. The mode is part of the encoding, so the
// two never give the same hash.
const (
	Resolve   BaseImages = "resolve"    // by the digest the ref names now
	AsWritten BaseImages = "as-written" // by the ref's text (offline work)
)

// Image is an image the build reads.
type Image struct {
	// Ref is the reference as BuildKit resolves it: normalized, Docker
	// Hub names in full (docker.io/library/node:20).
	Ref string `json:"ref"`
	// Digest is what Ref named when it was hashed (its own, for a ref
	// pinned by digest); empty when hashed as written.
	Digest digest.Digest `json:"digest,omitempty"`
	By     []string      `json:"by"` // the instructions and contexts that read it
}

// Resolver gives the digest each image ref names now.
type Resolver interface {
	Resolve(ctx context.Context, refs []string) (map[string]digest.Digest, error)
}

// ErrUndecidedImage reports a FROM whose image is only known at build
// time, so that it cannot be looked up.
var ErrUndecidedImage = errors.New("an image cannot be looked up")

// ImageError is a failure to look an image up.
type ImageError struct {
	Ref string
	Err error
}

func (e *ImageError) Error() string { return fmt.Sprintf("image %s: %v", e.Ref, e.Err) }
func (e *ImageError) Unwrap() error { return e.Err }

// Normalize writes an image ref as BuildKit resolves it: docker.io and
// library/ filled in, :latest when it has neither tag nor digest.
func Normalize(ref string) (string, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", err
	}
	return reference.TagNameOnly(n).String(), nil
}

// imagesOf normalizes the images an analysis found, and the image
// contexts (by name), merging those that name the same image.
func imagesOf(an *dockerfile.Analysis, contexts map[string]string) ([]Image, error) {
	var out []Image
	add := func(ref, by string) error {
		n, err := Normalize(ref)
		if err != nil {
			return fmt.Errorf("%s: %q is not a valid image reference: %w", by, ref, err)
		}
		i := slices.IndexFunc(out, func(im Image) bool { return im.Ref == n })
		if i < 0 {
			im := Image{Ref: n}
			if d, ok := reference.ParseNormalizedNamed(n); ok == nil {
				if c, isDigest := d.(reference.Canonical); isDigest {
					im.Digest = c.Digest()
				}
			}
			out = append(out, im)
			i = len(out) - 1
		}
		if !slices.Contains(out[i].By, by) {
			out[i].By = append(out[i].By, by)
		}
		return nil
	}
	for _, im := range an.Images {
		for _, o := range im.Origins {
			if err := add(im.Ref, fmt.Sprintf("line %d: %s", o.Line, o.Instruction)); err != nil {
				return nil, err
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(contexts)) {
		if err := add(contexts[name], fmt.Sprintf("additional context %q", name)); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Image) int { return strings.Compare(a.Ref, b.Ref) })
	return out, nil
}

// resolveImages looks up, once each and all at once, the images of ps
// that are not pinned by digest; a nil resolver looks up nothing.
func resolveImages(ctx context.Context, ps []*prepared, r Resolver) (map[string]digest.Digest, error) {
	if r == nil {
		return nil, nil
	}
	var refs []string
	needs := map[string]string{} // ref -> the first service that reads it
	for _, p := range ps {
		for _, im := range p.images {
			if im.Digest == "" && needs[im.Ref] == "" {
				refs = append(refs, im.Ref)
				needs[im.Ref] = p.svc.Name
			}
		}
	}
	if len(refs) == 0 {
		return nil, nil
	}
	digests, err := r.Resolve(ctx, refs)
	var ie *ImageError
	if errors.As(err, &ie) {
		return nil, &Error{Service: needs[ie.Ref], Err: err}
	}
	return digests, err
}
