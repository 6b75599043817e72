package solver

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
	digest "github.com/opencontainers/go-digest"
)

// Registry answers the registry-side questions of a build: does an image
// exist, and moves a tag to an existing manifest without blob traffic.
// Credentials come from the docker config and its credential helpers.
type Registry struct {
	insecure  []string // hosts reached over plain HTTP
	keychain  authn.Keychain
	transport http.RoundTripper
	// puller and pusher, in a Session, share pings, token exchanges and
	// connections between calls.
	puller *remote.Puller
	pusher *remote.Pusher
}

// RegistryOptions configure a Registry.
type RegistryOptions struct {
	// Insecure lists registry hosts (with port) that may be reached over
	// plain HTTP; loopback hosts always may.
	Insecure []string
	// Timeout bounds each wait for a registry (connecting, an answer's
	// headers); 0 means DefaultRegistryTimeout.
	Timeout time.Duration
}

// DefaultRegistryTimeout is how long bkcache waits for a registry to
// answer one request before taking it as a failure (which is retried).
const DefaultRegistryTimeout = 30 * time.Second

// NewRegistry returns a Registry.
func NewRegistry(opt RegistryOptions) *Registry {
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultRegistryTimeout
	}
	r := &Registry{insecure: opt.Insecure, keychain: authn.DefaultKeychain}
	r.transport = newTransport(opt.Timeout, r.IsInsecure)
	return r
}

// IsInsecure reports whether host may be reached over plain HTTP.
func (r *Registry) IsInsecure(host string) bool {
	return slices.Contains(r.insecure, host) || isLoopback(host)
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

func (r *Registry) parse(ref string) (name.Reference, error) {
	var opts []name.Option
	if r.IsInsecure(registryHost(ref)) {
		opts = append(opts, name.Insecure)
	}
	n, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid image reference %q: %w", ref, err)
	}
	return n, nil
}

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

// Head returns the digest of ref. It returns found=false, err=nil only for
// a definite "no such manifest" (404); every other failure is an error,
// never taken for a miss.
func (r *Registry) Head(ctx context.Context, ref string) (d digest.Digest, found bool, err error) {
	n, err := r.parse(ref)
	if err != nil {
		return "", false, err
	}
	desc, err := remote.Head(n, r.opts(ctx)...)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return "", false, nil
		}
		return "", false, r.wrap(ref, err)
	}
	return digest.Digest(desc.Digest.String()), true, nil
}

// Copy points the tag dst at the manifest of src, in the same repository,
// by writing the manifest under the new tag: no blob is transferred.
func (r *Registry) Copy(ctx context.Context, src, dst string) error {
	s, err := r.parse(src)
	if err != nil {
		return err
	}
	d, err := r.parse(dst)
	if err != nil {
		return err
	}
	tag, ok := d.(name.Tag)
	if !ok {
		return fmt.Errorf("%s is not a tag", dst)
	}
	desc, err := remote.Get(s, r.opts(ctx)...)
	if err != nil {
		return r.wrap(src, err)
	}
	if err := remote.Tag(tag, desc, r.opts(ctx)...); err != nil {
		return r.wrap(dst, err)
	}
	return nil
}

// maxBlob bounds the JSON blobs bkcache reads (manifests, cache configs).
const maxBlob = 64 << 20

// blob reads a small blob (a JSON document) from the registry; ref names
// what it belongs to, for errors.
func (r *Registry) blob(ctx context.Context, ref string, d name.Digest) ([]byte, error) {
	l, err := remote.Layer(d, r.opts(ctx)...)
	if err != nil {
		return nil, r.wrap(ref, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, r.wrap(ref, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxBlob))
	if err != nil {
		return nil, r.wrap(ref, err)
	}
	return b, nil
}

func (r *Registry) wrap(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("%s: %w (HTTP %d): log in with `docker login %s` or check the credential helper in ~/.docker/config.json", ref, ErrAuth, te.StatusCode, registryHost(ref))
	}
	return fmt.Errorf("registry %s: %w", registryHost(ref), err)
}

// registryHost returns the registry part of an image reference, with
// Docker Hub's default for bare names.
func registryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if !ok || (!strings.ContainsAny(first, ".:") && first != "localhost") {
		return "docker.io"
	}
	return first
}
