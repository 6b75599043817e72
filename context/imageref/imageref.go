// Package imageref reads the image references a build names (FROM,
// compose's image contexts, an SBOM generator) with go-containerregistry's
// name package, the one image-ref library of bkcache, and spells them as
// BuildKit does: Docker Hub as docker.io, its official images under
// library/, and :latest when a ref has neither tag nor digest.
//
// BuildKit's Dockerfile frontend names images with distribution/reference.
// The two libraries split a ref the same way; they differ in how they spell
// Docker Hub (index.docker.io against docker.io) and in which host names
// they accept. Ref.String bridges the first. For the second, Parse refuses
// the one kind of ref BuildKit accepts that go-containerregistry cannot
// represent (a dotless host written in capitals), saying so; the tests
// hold the two libraries to the same answer on everything else.
package imageref

import (
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

const (
	// Hub is Docker Hub as BuildKit spells it.
	Hub = "docker.io"
	// officialNamespace holds Docker Hub's one-word images.
	officialNamespace = "library/"
	// maxPath is the longest repository path, library/ filled in, that
	// BuildKit (distribution/reference) reads.
	maxPath = 255
)

// Ref is an image reference, parsed.
type Ref struct {
	Repository name.Repository
	Tag        string        // as written; "" when none was
	Digest     digest.Digest // "" unless pinned
}

// Parse reads an image reference as BuildKit's Dockerfile frontend reads
// it. Its errors say what is wrong, not where: callers name the ref, its
// file and its service.
func Parse(s string) (Ref, error) {
	base, dig, pinned := strings.Cut(s, "@")
	var r Ref
	if pinned {
		d, err := digest.Parse(dig)
		if err != nil {
			return Ref{}, fmt.Errorf("digest: %w", err)
		}
		r.Digest = d
	}
	if err := hostInCapitals(base); err != nil {
		return Ref{}, err
	}
	// The default tag is left empty so that a tag written is told apart
	// from none: a ref pinned by digest gets no :latest.
	t, err := name.NewTag(base, name.WithDefaultTag(""))
	if err != nil {
		return Ref{}, err
	}
	r.Repository, r.Tag = t.Repository, t.TagStr()
	if path := r.Repository.RepositoryStr(); len(path) > maxPath {
		return Ref{}, fmt.Errorf("the repository path %s is %d characters long, and BuildKit takes at most %d", path, len(path), maxPath)
	}
	return r, nil
}

// hostInCapitals refuses a first component that BuildKit takes for a
// registry host only because it has capitals: go-containerregistry takes
// a host only by a dot, a port or localhost, and refuses the capitals.
func hostInCapitals(base string) error {
	first, _, ok := strings.Cut(base, "/")
	if !ok || strings.ContainsAny(first, ".:") || first == strings.ToLower(first) {
		return nil
	}
	if _, err := name.NewRegistry(first); err != nil {
		return nil // no host at all: the repository's error says more
	}
	return fmt.Errorf("registry host %q: write it in lowercase, or with its domain or port", first)
}

// Host is the registry as BuildKit spells it.
func (r Ref) Host() string {
	if h := r.Repository.RegistryStr(); h != name.DefaultRegistry {
		return h
	}
	return Hub
}

// Name is the repository as BuildKit spells it: docker.io/library/alpine.
func (r Ref) Name() string { return r.Host() + "/" + r.Repository.RepositoryStr() }

// String is the ref as BuildKit resolves it:
// docker.io/library/alpine:latest, a tag and a digest both kept.
func (r Ref) String() string {
	tag := r.Tag
	if tag == "" && r.Digest == "" {
		tag = name.DefaultTag
	}
	return r.Name() + suffix(tag, r.Digest)
}

// Familiar is the ref as docker writes it, with nothing filled in: alpine
// for docker.io/library/alpine, a tag only where one was written.
func (r Ref) Familiar() string { return r.FamiliarName() + suffix(r.Tag, r.Digest) }

// FamiliarName is the repository as docker writes it: alpine, bitnami/redis,
// ghcr.io/org/app.
func (r Ref) FamiliarName() string {
	n := r.Repository.RepositoryStr()
	if r.Host() != Hub {
		return r.Host() + "/" + n
	}
	if rest, ok := strings.CutPrefix(n, officialNamespace); ok && !strings.Contains(rest, "/") {
		return rest
	}
	return n
}

func suffix(tag string, d digest.Digest) string {
	var s string
	if tag != "" {
		s = ":" + tag
	}
	if d != "" {
		s += "@" + d.String()
	}
	return s
}
