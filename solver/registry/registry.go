// Package registry is everything bkcache says to an image registry
// itself: whether a manifest exists, moving a tag registry-side,
// attaching and reading cache manifests, inspecting BuildKit caches. Its
// transport bounds every wait and retries what a registry says may pass.
// Credentials come from the docker config and its credential helpers.
package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	digest "github.com/opencontainers/go-digest"
)

// Hosts decides which registries are reached over plain HTTP: loopback
// ones, and those named insecure. Its parsers give references that
// go-containerregistry reaches accordingly.
type Hosts struct{ insecure []string }

// NewHosts returns Hosts that also reach the named hosts (host:port)
// over plain HTTP.
func NewHosts(insecure ...string) Hosts { return Hosts{insecure: slices.Clone(insecure)} }

// PlainHTTP reports whether host may be reached over plain HTTP.
func (h Hosts) PlainHTTP(host string) bool { return h.Named(host) || isLoopback(host) }

// Named reports whether host was named insecure and is not loopback:
// what BuildKit must be told (it reaches loopback over HTTP by itself).
func (h Hosts) Named(host string) bool { return slices.Contains(h.insecure, host) && !isLoopback(host) }

// Reference parses an image reference, a tag or a digest.
func (h Hosts) Reference(s string) (name.Reference, error) {
	r, err := name.ParseReference(s)
	if err != nil {
		return nil, err
	}
	if !h.Named(r.Context().RegistryStr()) {
		return r, nil
	}
	return name.ParseReference(s, name.Insecure)
}

// Repository parses an image repository.
func (h Hosts) Repository(s string) (name.Repository, error) {
	r, err := name.NewRepository(s)
	if err != nil || !h.Named(r.RegistryStr()) {
		return r, err
	}
	return name.NewRepository(s, name.Insecure)
}

func isLoopback(host string) bool {
	h, _, err := net.SplitHostPort(host)
	if err != nil {
		h = host
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Registry answers the registry-side questions of a build.
type Registry struct {
	hosts     Hosts
	keychain  authn.Keychain
	transport http.RoundTripper
	// puller and pusher, in a Session, share pings, token exchanges and
	// connections between calls.
	puller *remote.Puller
	pusher *remote.Pusher
	ahead  *lookahead // see Prefetch
}

// Options configure a Registry.
type Options struct {
	Hosts Hosts
	// Timeout bounds each wait for a registry (connecting, an answer's
	// headers); 0 means DefaultTimeout.
	Timeout time.Duration
}

// DefaultTimeout is how long bkcache waits for a registry to answer one
// request before taking it as a failure (which is retried).
const DefaultTimeout = 30 * time.Second

// New returns a Registry.
func New(opt Options) *Registry {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	r := &Registry{hosts: opt.Hosts, keychain: authn.DefaultKeychain, ahead: newLookahead()}
	r.transport = newTransport(opt.Timeout, opt.Hosts.PlainHTTP)
	return r
}

// Hosts returns the hosts the registry reaches over plain HTTP.
func (r *Registry) Hosts() Hosts { return r.hosts }

func (r *Registry) opts(ctx context.Context) []remote.Option {
	o := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(r.keychain), remote.WithTransport(r.transport)}
	if r.puller != nil {
		o = append(o, remote.Reuse(r.puller), remote.Reuse(r.pusher))
	}
	return o
}

// Session returns a Registry whose calls share the registry ping, token
// exchanges and connections per repository, instead of setting them up
// for every call: a sequence of a dozen requests then costs a dozen
// round trips, not twice as many. A failure while setting up sticks to
// the session (go-containerregistry caches it), so a session is for one
// short sequence, such as one service's steps after its push, which
// fail together anyway.
func (r *Registry) Session(ctx context.Context) *Registry {
	s := *r
	base := r.opts(ctx)
	var err1, err2 error
	s.puller, err1 = remote.NewPuller(base...)
	s.pusher, err2 = remote.NewPusher(base...)
	if err1 != nil || err2 != nil {
		return r // only option errors, which these are not; no reuse then
	}
	return &s
}

// ErrAuth reports a registry that refused our credentials.
var ErrAuth = errors.New("registry refused the credentials")

// ErrNotFound reports a reference the registry does not have.
var ErrNotFound = errors.New("not found in the registry")

// notFound reports whether err is the registry's definite "no such
// thing" (404).
func notFound(err error) bool {
	var te *transport.Error
	return errors.As(err, &te) && te.StatusCode == http.StatusNotFound
}

// Head returns the digest of ref. It returns found=false, err=nil only for
// a definite "no such manifest" (404); every other failure is an error,
// never taken for a miss.
func (r *Registry) Head(ctx context.Context, ref name.Reference) (d digest.Digest, found bool, err error) {
	d, _, found, err = r.HeadType(ctx, ref)
	return d, found, err
}

// HeadType is Head, with the media type of the manifest found.
func (r *Registry) HeadType(ctx context.Context, ref name.Reference) (d digest.Digest, mt types.MediaType, found bool, err error) {
	desc, err := remote.Head(ref, r.opts(ctx)...)
	if err != nil {
		if notFound(err) {
			return "", "", false, nil
		}
		return "", "", false, wrap(ref, err)
	}
	return digest.Digest(desc.Digest.String()), desc.MediaType, true, nil
}

// Copy points the tag dst at the manifest of src. In the same repository
// it writes the manifest under the new tag: no blob is transferred.
// Elsewhere the registry mounts the blobs from src's repository where it
// can (the same registry), and they are copied where it cannot.
func (r *Registry) Copy(ctx context.Context, src name.Reference, dst name.Tag) error {
	desc, err := remote.Get(src, r.opts(ctx)...)
	if err != nil {
		return wrap(src, err)
	}
	return r.Put(ctx, Manifest{src, desc}, dst)
}

// Manifest is a manifest read to be written under another tag (Fetch,
// then Put: Copy in two steps, for a caller that reads several first).
type Manifest struct {
	src  name.Reference
	desc *remote.Descriptor
}

// Fetch reads the manifest ref names: found is false when the registry
// has none (404).
func (r *Registry) Fetch(ctx context.Context, ref name.Reference) (m Manifest, found bool, err error) {
	desc, err := remote.Get(ref, r.opts(ctx)...)
	if err != nil {
		if notFound(err) {
			return Manifest{}, false, nil
		}
		return Manifest{}, false, wrap(ref, err)
	}
	return Manifest{ref, desc}, true, nil
}

// Put points the tag dst at m, as Copy does.
func (r *Registry) Put(ctx context.Context, m Manifest, dst name.Tag) error {
	var err error
	switch {
	case m.src.Context() == dst.Context():
		err = remote.Tag(dst, m.desc, r.opts(ctx)...)
	case m.desc.MediaType.IsIndex():
		err = writeIndex(ctx, r, m.desc, dst)
	default:
		err = writeImage(ctx, r, m.desc, dst)
	}
	if err != nil {
		return wrap(dst, err)
	}
	return nil
}

func writeIndex(ctx context.Context, r *Registry, desc *remote.Descriptor, dst name.Tag) error {
	idx, err := desc.ImageIndex()
	if err != nil {
		return err
	}
	return remote.WriteIndex(dst, idx, r.opts(ctx)...)
}

func writeImage(ctx context.Context, r *Registry, desc *remote.Descriptor, dst name.Tag) error {
	img, err := desc.Image()
	if err != nil {
		return err
	}
	return remote.Write(dst, img, r.opts(ctx)...)
}

// maxBlob bounds the JSON blobs bkcache reads (manifests, cache configs).
const maxBlob = 64 << 20

// blob reads a small blob (a JSON document) from the registry; ref names
// what it belongs to, for errors.
func (r *Registry) blob(ctx context.Context, ref name.Reference, d name.Digest) ([]byte, error) {
	l, err := remote.Layer(d, r.opts(ctx)...)
	if err != nil {
		return nil, wrap(ref, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, wrap(ref, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxBlob))
	if err != nil {
		return nil, wrap(ref, err)
	}
	return b, nil
}

// wrap names the registry, and for refused credentials how to log in.
func wrap(ref name.Reference, err error) error {
	host := hostOf(ref.Context())
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%s: %w (HTTP %d): log in with `docker login %s` or check the credential helper in ~/.docker/config.json", ref, ErrAuth, te.StatusCode, host)
	}
	if immutable(te) {
		return fmt.Errorf("%s: %w: %v", ref, ErrImmutableTag, err)
	}
	return fmt.Errorf("registry %s: %w", host, err)
}

// ErrImmutableTag reports a registry that refused to point an existing
// tag elsewhere: ECR's IMMUTABLE tag setting, or a registry like it.
var ErrImmutableTag = errors.New("the registry refused to move an existing tag (its tags are immutable)")

// immutable reports whether te is a refusal to overwrite a tag: ECR
// answers 400 TAG_INVALID "... cannot be overwritten because the
// repository is immutable".
func immutable(te *transport.Error) bool {
	if te == nil || te.StatusCode != http.StatusBadRequest {
		return false
	}
	for _, d := range te.Errors {
		if d.Code == transport.TagInvalidErrorCode || strings.Contains(strings.ToLower(d.Message), "immutable") {
			return true
		}
	}
	return false
}

// hostOf is the registry host of repo as people write it: docker.io for
// Docker Hub, which go-containerregistry calls index.docker.io.
func hostOf(repo name.Repository) string {
	if h := repo.RegistryStr(); h != name.DefaultRegistry {
		return h
	}
	return "docker.io"
}

// Tag is an image tag parsed once that prints as it was written: a
// Docker Hub name stays app:v1, not index.docker.io/library/app:v1.
type Tag struct {
	name.Tag
	text string
}

// String returns the tag as written.
func (t Tag) String() string { return t.text }

// Tag parses a tag.
func (h Hosts) Tag(s string) (Tag, error) {
	t, err := name.NewTag(s)
	if err == nil && h.Named(t.RegistryStr()) {
		t, err = name.NewTag(s, name.Insecure)
	}
	if err != nil {
		return Tag{}, err
	}
	return Tag{Tag: t, text: s}, nil
}

// Mirrors maps a registry host (docker.io for Docker Hub) to the
// pull-through mirror images from it are fetched through, as buildkitd's
// [registry."HOST"] mirrors are.
type Mirrors map[string]string

// ParseMirrors reads HOST=MIRROR entries.
func ParseMirrors(entries []string) (Mirrors, error) {
	m := Mirrors{}
	for _, e := range entries {
		host, mirror, ok := strings.Cut(strings.TrimSpace(e), "=")
		mirror = strings.TrimPrefix(strings.TrimPrefix(mirror, "https://"), "http://")
		if !ok || host == "" || mirror == "" || strings.Contains(mirror, "/") {
			return nil, fmt.Errorf("registry mirror %q: want HOST=MIRROR, for example docker.io=mirror.example.com:5000", e)
		}
		m[host] = mirror
	}
	return m, nil
}

// mirrored returns ref on the mirror of its registry, if it has one.
func (m Mirrors) mirrored(h Hosts, ref name.Reference) (name.Reference, bool) {
	mirror, ok := m[hostOf(ref.Context())]
	if !ok {
		return nil, false
	}
	sep := ":"
	if _, isDigest := ref.(name.Digest); isDigest {
		sep = "@"
	}
	r, err := h.Reference(mirror + "/" + ref.Context().RepositoryStr() + sep + ref.Identifier())
	return r, err == nil
}

// Resolve returns the digest ref names now: what a manifest HEAD gives
// (an index's digest for a multi-platform image), asked of its
// registry's mirror first when it has one, as buildkitd asks.
func (r *Registry) Resolve(ctx context.Context, ref name.Reference, mirrors Mirrors) (digest.Digest, error) {
	if m, ok := mirrors.mirrored(r.hosts, ref); ok {
		d, found, err := r.Head(ctx, m)
		if err == nil && found {
			return d, nil
		}
	}
	d, found, err := r.Head(ctx, ref)
	switch {
	case err != nil:
		return "", err
	case !found:
		return "", fmt.Errorf("%s: %w (manifest unknown)", ref, ErrNotFound)
	}
	return d, nil
}
