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

// resolver looks images up in their registries (or mirrors), and remote
// sources up where they live, all at once; the hashing asks it once per
// run for every distinct ref.
type resolver struct {
	reg     *registry.Registry
	hosts   registry.Hosts
	mirrors registry.Mirrors
}

// lookupAll runs look for every item at once and collects the answers
// by key; the first failure ends it.
func lookupAll[T any, V any](ctx context.Context, items []T, key func(T) string, look func(context.Context, T) (V, error)) (map[string]V, error) {
	var mu sync.Mutex
	out := make(map[string]V, len(items))
	g, ctx := errgroup.WithContext(ctx)
	for _, it := range items {
		g.Go(func() error {
			v, err := look(ctx, it)
			if err != nil {
				return err
			}
			mu.Lock()
			out[key(it)] = v
			mu.Unlock()
			return nil
		})
	}
	return out, g.Wait()
}

// Resolve returns the digest of each ref, or the first failure as an
// *inputs.ImageError.
func (r *resolver) Resolve(ctx context.Context, refs []string) (map[string]digest.Digest, error) {
	reg := r.reg
	if reg == nil {
		reg = registry.New(registry.Options{Hosts: r.hosts})
	}
	reg = reg.Session(ctx)
	return lookupAll(ctx, refs, func(ref string) string { return ref }, func(ctx context.Context, ref string) (digest.Digest, error) {
		n, err := r.hosts.Reference(ref)
		if err != nil {
			return "", &inputs.ImageError{Ref: ref, Err: fmt.Errorf("not a valid reference: %w", err)}
		}
		d, err := reg.Resolve(ctx, n, r.mirrors)
		if err != nil {
			return "", &inputs.ImageError{Ref: ref, Err: err}
		}
		return d, nil
	})
}

// ResolveRemotes returns, by URL, each Git source's commit and each HTTP
// source's validators, or the first failure as an *inputs.RemoteError.
func (r *resolver) ResolveRemotes(ctx context.Context, remotes []inputs.Remote) (map[string]string, error) {
	return lookupAll(ctx, remotes, func(rm inputs.Remote) string { return rm.URL }, func(ctx context.Context, rm inputs.Remote) (string, error) {
		look := remote.HTTP
		if rm.Kind == "git" {
			look = remote.GitCommit
		}
		v, err := look(ctx, rm.URL)
		if err != nil {
			return "", &inputs.RemoteError{URL: rm.URL, Err: err}
		}
		return v, nil
	})
}
