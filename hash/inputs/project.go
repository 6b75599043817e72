package inputs

import (
	"context"
	"strings"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/statcache"
	digest "github.com/opencontainers/go-digest"
)

// ComputeProject computes the inputs of the named services (all when
// names is empty) and of the services they depend on, dependencies first.
func ComputeProject(ctx context.Context, p *compose.Project, names []string, opt Options) ([]*Inputs, error) {
	svcs, err := p.Select(names)
	if err != nil {
		return nil, err
	}
	opt.StatCache = storeFor(opt.StatCache, svcs)
	hashes := map[string]digest.Digest{}
	out := make([]*Inputs, 0, len(svcs))
	for _, s := range svcs {
		in, err := Compute(ctx, s, hashes, opt)
		if err != nil {
			return nil, err
		}
		hashes[s.Name] = in.Hash
		out = append(out, in)
	}
	return out, nil
}

// storeFor is the stat cache a run hashes through: the one given, else,
// for services with a source in common (--no-stat-cache), one in memory
// so that this run reads each file once.
func storeFor(given *statcache.Store, svcs []*compose.Service) *statcache.Store {
	if given == nil && sharesSource(svcs) {
		return statcache.NewMemoryStore()
	}
	return given
}

// sharesSource reports whether two of the services hash the same local
// directory (as written: a context, or a local additional context). Only
// then is an in-memory cache worth its bookkeeping, about 6% of a cold
// hash of one context.
func sharesSource(svcs []*compose.Service) bool {
	seen := map[string]bool{}
	for _, s := range svcs {
		dirs := map[string]bool{}
		if !compose.IsRemote(s.Context) {
			dirs[s.Context] = true
		}
		for _, v := range s.Contexts {
			if isLocal(v) {
				dirs[v] = true
			}
		}
		for d := range dirs {
			if seen[d] {
				return true
			}
			seen[d] = true
		}
	}
	return false
}

// isLocal reports whether an additional context names a local directory:
// not a service: context, an image or other URL scheme, or a Git remote.
func isLocal(v string) bool {
	return !strings.HasPrefix(v, "service:") && !strings.Contains(v, "://") && !compose.IsRemote(v)
}
