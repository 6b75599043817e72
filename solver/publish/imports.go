package publish

import (
	"context"
	"fmt"
	"slices"

	"github.com/bkcache/bkcache/solver/plan"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// CacheImports keeps the caches worth importing: it asks the registry for
// each registry cache, all at once. A cache that is not there yet (404)
// is dropped quietly: the first build of a hash has none. A cache the
// registry cannot serve (5xx after retries, reset, timeout, refused
// credentials) is dropped with a warning: the build goes on without it
// rather than failing or hanging on it inside buildkitd. Other backends
// are kept as they are.
func (p *Publisher) CacheImports(ctx context.Context, entries []plan.CacheEntry) ([]plan.CacheEntry, []string) {
	keep := make([]bool, len(entries))
	warn := make([]string, len(entries))
	var g errgroup.Group
	for i, e := range entries {
		if e.Ref == nil {
			keep[i] = true
			continue
		}
		g.Go(func() error {
			_, found, err := p.reg.Head(ctx, e.Ref)
			switch {
			case err != nil:
				warn[i] = fmt.Sprintf("cache import from %s skipped: %v", e.Attrs["ref"], err)
			case found:
				keep[i] = true
			}
			return nil
		})
	}
	g.Wait()
	var kept []plan.CacheEntry
	var warnings []string
	for i, e := range entries {
		if keep[i] {
			kept = append(kept, e)
		}
		if warn[i] != "" {
			warnings = append(warnings, warn[i])
		}
	}
	return kept, warnings
}

// CacheConfigs reads the configs of the registry caches among entries
// (the graphs of cache keys they hold), all at once, for naming what
// differed in a key: those it could not read are left out, and said in
// the warnings.
func (p *Publisher) CacheConfigs(ctx context.Context, entries []plan.CacheEntry) ([][]byte, []string) {
	configs := make([][]byte, len(entries))
	warn := make([]string, len(entries))
	var g errgroup.Group
	for i, e := range entries {
		if e.Ref == nil {
			continue
		}
		g.Go(func() error {
			b, err := p.reg.CacheConfig(ctx, e.Ref)
			if err != nil {
				warn[i] = fmt.Sprintf("reading the cache config of %s: %v", e.Ref, err)
			}
			configs[i] = b
			return nil
		})
	}
	g.Wait()
	return slices.DeleteFunc(configs, func(b []byte) bool { return b == nil }), slices.DeleteFunc(warn, func(w string) bool { return w == "" })
}

// CacheFloat is the manifest R:cache-F names now, when there is one (a
// registry that cannot say counts as none).
func (p *Publisher) CacheFloat(ctx context.Context, j *plan.Job) (digest.Digest, bool) {
	d, found, err := p.reg.Head(ctx, j.Refs.CacheFloat)
	return d, err == nil && found
}
