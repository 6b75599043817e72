package inputs

import (
	"context"
	"maps"
	"slices"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/statcache"
	digest "github.com/opencontainers/go-digest"
)

// ComputeAll computes the inputs of svcs, which list every service's
// `service:` dependencies before it, in that order. Every Dockerfile is
// read first, so that all the images the services read are looked up at
// once, each once.
func ComputeAll(ctx context.Context, svcs []*compose.Service, opt Options) ([]*Inputs, error) {
	opt.StatCache = storeFor(opt.StatCache, svcs)
	ps := make([]*prepared, len(svcs))
	for i, s := range svcs {
		p, err := prepare(s)
		if err != nil {
			return nil, &Error{Service: s.Name, Err: err}
		}
		ps[i] = p
	}
	res, err := resolveAll(ctx, ps, opt.Resolver)
	if err != nil {
		return nil, err
	}
	hashes := map[string]digest.Digest{}
	out := make([]*Inputs, 0, len(svcs))
	for _, p := range ps {
		in, err := p.finish(ctx, hashes, res, opt)
		if err != nil {
			return nil, err
		}
		hashes[p.svc.Name] = in.Hash
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
		for _, c := range append([]compose.Context{s.Context}, slices.Collect(maps.Values(s.Contexts))...) {
			if c.Kind == compose.LocalContext {
				dirs[c.Source] = true
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
