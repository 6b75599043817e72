package inputs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/context/imageref"
	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
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

// Remote is a source fetched from elsewhere: a Git or HTTP context, or an
// ADD of a URL.
type Remote struct {
	URL string `json:"url"` // as written
	// Kind is "git" or "http".
	Kind string `json:"kind"`
	// Resolved is what URL gave when it was hashed: a Git ref's commit,
	// or an HTTP resource's validators (or its content's digest); empty
	// when hashed as written or pinned by --checksum.
	Resolved string   `json:"resolved,omitempty"`
	Checksum string   `json:"checksum,omitempty"` // ADD --checksum
	By       []string `json:"by"`
}

// Resolver gives the digest each image ref names now, and what each
// remote source is now.
type Resolver interface {
	Resolve(ctx context.Context, refs []string) (map[string]digest.Digest, error)
	// ResolveRemotes returns, by URL, a Git ref's commit or an HTTP
	// resource's validators.
	ResolveRemotes(ctx context.Context, remotes []Remote) (map[string]string, error)
}

// RemoteError is a failure to resolve a remote source.
type RemoteError struct {
	URL string
	Err error
}

func (e *RemoteError) Error() string { return fmt.Sprintf("remote source %s: %v", e.URL, e.Err) }
func (e *RemoteError) Unwrap() error { return e.Err }

// ErrUndecidedImage reports a FROM whose image, or an ADD whose URL, is
// only known at build time, so that it cannot be looked up.
var ErrUndecidedImage = errors.New("an image or download cannot be looked up")

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
	n, _, err := normalize(ref)
	return n, err
}

// normalize is Normalize, and the digest the ref is pinned to, if any.
func normalize(ref string) (string, digest.Digest, error) {
	r, err := imageref.Parse(ref)
	if err != nil {
		return "", "", err
	}
	return r.String(), r.Digest, nil
}

// imagesOf normalizes the images an analysis found, and the image
// contexts (by name), merging those that name the same image.
func imagesOf(an *dockerfile.Analysis, contexts map[string]string) ([]Image, error) {
	var out []Image
	add := func(ref, by string) error {
		n, pinned, err := normalize(ref)
		if err != nil {
			return fmt.Errorf("%s: %q is not a valid image reference: %w", by, ref, err)
		}
		i := slices.IndexFunc(out, func(im Image) bool { return im.Ref == n })
		if i < 0 {
			out = append(out, Image{Ref: n, Digest: pinned})
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

// remotesOf lists the remote sources: the Git and HTTP contexts (refs)
// and the ADDs of URLs, merged by URL.
func remotesOf(an *dockerfile.Analysis, refs []Ref) []Remote {
	var out []Remote
	add := func(url, checksum, by string) {
		i := slices.IndexFunc(out, func(r Remote) bool { return r.URL == url && r.Checksum == checksum })
		if i < 0 {
			kind := "http"
			if _, isGit, _ := dfgitutil.ParseGitRef(url); isGit {
				kind = "git"
			}
			out = append(out, Remote{URL: url, Kind: kind, Checksum: checksum})
			i = len(out) - 1
		}
		if !slices.Contains(out[i].By, by) {
			out[i].By = append(out[i].By, by)
		}
	}
	for _, r := range refs {
		if dockerfile.IsURL(r.Value) {
			add(r.Value, "", dockerfile.DescribeSource(r.Name))
		}
	}
	for _, d := range an.Downloads {
		add(d.URL, d.Checksum, fmt.Sprintf("line %d: %s", d.Origin.Line, d.Origin.Instruction))
	}
	slices.SortFunc(out, func(a, b Remote) int { return strings.Compare(a.URL+"\x00"+a.Checksum, b.URL+"\x00"+b.Checksum) })
	return out
}

// resolved is what a run's lookups found: image digests by ref, remote
// sources by URL.
type resolved struct {
	images  map[string]digest.Digest
	remotes map[string]string
}

// resolveAll looks up, once each and all at once, the images of ps that
// are not pinned by digest and the remotes not pinned by checksum; a nil
// resolver looks up nothing.
func resolveAll(ctx context.Context, ps []*prepared, r Resolver) (resolved, error) {
	var res resolved
	if r == nil {
		return res, nil
	}
	var refs []string
	var remotes []Remote
	needs := map[string]string{} // ref or URL -> the first service that reads it
	for _, p := range ps {
		for _, im := range p.images {
			if im.Digest == "" && needs[im.Ref] == "" {
				refs = append(refs, im.Ref)
				needs[im.Ref] = p.svc.Name
			}
		}
		for _, rm := range p.remotes {
			if rm.Checksum == "" && needs[rm.URL] == "" {
				remotes = append(remotes, rm)
				needs[rm.URL] = p.svc.Name
			}
		}
	}
	// Images and remotes at once: the run waits for one round trip.
	var g errgroup.Group
	if len(refs) > 0 {
		g.Go(func() (err error) { res.images, err = r.Resolve(ctx, refs); return err })
	}
	if len(remotes) > 0 {
		g.Go(func() (err error) { res.remotes, err = r.ResolveRemotes(ctx, remotes); return err })
	}
	err := g.Wait()
	var ie *ImageError
	var re *RemoteError
	switch {
	case errors.As(err, &ie):
		return res, &Error{Service: needs[ie.Ref], Err: err}
	case errors.As(err, &re):
		return res, &Error{Service: needs[re.URL], Err: err}
	}
	return res, err
}
