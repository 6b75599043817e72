package plan

import (
	"context"
	"fmt"
	"sync"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/bkcache/bkcache/solver/remote"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// resolver looks images up in their registries (or mirrors), all at
// once; the hashing asks it once per run for every distinct ref.
type resolver struct {
	reg     *registry.Registry
	hosts   registry.Hosts
	mirrors registry.Mirrors
}

// Resolve returns the digest of each ref, or the first failure as an
// *inputs.ImageError.
func (r *resolver) Resolve(ctx context.Context, refs []string) (map[string]digest.Digest, error) {
	reg := r.reg
	if reg == nil {
		reg = registry.New(registry.Options{Hosts: r.hosts})
	}
	reg = reg.Session(ctx)
	var mu sync.Mutex
	out := make(map[string]digest.Digest, len(refs))
	g, ctx := errgroup.WithContext(ctx)
	for _, ref := range refs {
		g.Go(func() error {
			n, err := r.hosts.Reference(ref)
			if err != nil {
				return &inputs.ImageError{Ref: ref, Err: fmt.Errorf("not a valid reference: %w", err)}
			}
			d, err := reg.Resolve(ctx, n, r.mirrors)
			if err != nil {
				return &inputs.ImageError{Ref: ref, Err: err}
			}
			mu.Lock()
			out[ref] = d
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

// ResolveRemotes returns, by URL, each Git source's commit and each HTTP
// source's validators, or the first failure as an *inputs.RemoteError.
func (r *resolver) ResolveRemotes(ctx context.Context, remotes []inputs.Remote) (map[string]string, error) {
	var mu sync.Mutex
	out := make(map[string]string, len(remotes))
	g, ctx := errgroup.WithContext(ctx)
	for _, rm := range remotes {
		g.Go(func() error {
			var v string
			var err error
			if rm.Kind == "git" {
				v, err = remote.GitCommit(ctx, rm.URL)
			} else {
				v, err = remote.HTTP(ctx, rm.URL)
			}
			if err != nil {
				return &inputs.RemoteError{URL: rm.URL, Err: err}
			}
			mu.Lock()
			out[rm.URL] = v
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}
