package inputs

import (
	"context"
	"maps"
	"runtime"
	"slices"
	"sync"

	"github.com/bkcache/bkcache/context/compose"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// ComputeAll computes the inputs of svcs, which list every service's
// `service:` dependencies before it, in that order. Every Dockerfile is
// read first, so that all the images the services read are looked up at
// once, each once.
func ComputeAll(ctx context.Context, svcs []*compose.Service, opt Options) ([]*Inputs, error) {
	if opt.shared == nil && !opt.reference && sharesSource(svcs) {
		opt.shared = newShared()
	}
	ps := make([]*prepared, len(svcs))
	for i, s := range svcs {
		p, err := prepare(s)
		if err != nil {
			return nil, &Error{Service: s.Name, Err: err}
		}
		p.in.Args = opt.Redact.keyed(p.in.Args)
		ps[i] = p
	}
	res, err := resolveAll(ctx, ps, opt.Resolver)
	if err != nil {
		return nil, err
	}
	return finishAll(ctx, ps, res, opt)
}

// finishAll hashes the prepared services, up to GOMAXPROCS at once, each
// once the services it depends on have their hashes. A failure stops the
// others; the first one is returned.
func finishAll(ctx context.Context, ps []*prepared, res resolved, opt Options) ([]*Inputs, error) {
	out := make([]*Inputs, len(ps))
	done := map[string]chan struct{}{}
	for _, p := range ps {
		done[p.svc.Name] = make(chan struct{})
	}
	var mu sync.Mutex
	hashes := map[string]digest.Digest{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(2 * runtime.GOMAXPROCS(0))
	for i, p := range ps {
		// Dependencies come first in ps, so waiting for them here never
		// holds a slot they need.
		for _, d := range p.deps {
			if ch, ok := done[d.Service]; ok {
				select {
				case <-ch:
				case <-gctx.Done():
				}
			}
		}
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			deps := map[string]digest.Digest{}
			mu.Lock()
			for _, d := range p.deps {
				if h, ok := hashes[d.Service]; ok {
					deps[d.Service] = h
				}
			}
			mu.Unlock()
			in, err := p.finish(gctx, deps, res, opt)
			if err != nil {
				return err
			}
			mu.Lock()
			hashes[p.svc.Name] = in.Hash
			mu.Unlock()
			out[i] = in
			close(done[p.svc.Name])
			if opt.Done != nil {
				opt.Done(i, in)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// sharesSource reports whether two of the services hash the same local
// directory (as written: a context, or a local additional context). Only
// then are shared listings worth their bookkeeping (an identity and a
// digest recorded per file, about 6% of a cold hash of one context).
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
