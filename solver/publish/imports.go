package publish

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

// Imports are the caches worth importing, and what the registry named
// by each registry cache among them when CacheImports asked.
type Imports struct {
	Kept     []plan.CacheEntry
	Warnings []string
	digests  map[string]digest.Digest      // by ref
	forms    map[string]registry.CacheForm // by ref
}

// Digest is the manifest ref named when CacheImports asked, for a kept
// registry cache.
func (im Imports) Digest(ref name.Reference) (digest.Digest, bool) {
	d, ok := im.digests[ref.String()]
	return d, ok
}

// CacheImports keeps the caches worth importing: it asks the registry for
// each registry cache, all at once. A cache that is not there yet (404)
// is dropped quietly: the first build of a hash has none. A cache the
// registry cannot serve (5xx after retries, reset, timeout, refused
// credentials) is dropped with a warning: the build goes on without it
// rather than failing or hanging on it inside buildkitd. Other backends
// are kept as they are.
func (p *Publisher) CacheImports(ctx context.Context, entries []plan.CacheEntry) Imports {
	found := make([]digest.Digest, len(entries))
	forms := make([]registry.CacheForm, len(entries))
	warn := make([]string, len(entries))
	eachRegistryCache(entries, func(i int, e plan.CacheEntry) {
		d, mt, ok, err := p.reg.HeadType(ctx, e.Ref)
		switch {
		case err != nil:
			warn[i] = fmt.Sprintf("cache import from %s skipped: %v", e.Attrs["ref"], err)
		case ok:
			found[i], forms[i] = d, registry.FormOf(mt)
		}
	})
	im := Imports{digests: map[string]digest.Digest{}, forms: map[string]registry.CacheForm{}}
	for i, e := range entries {
		switch {
		case e.Ref == nil:
			im.Kept = append(im.Kept, e)
		case found[i] != "":
			im.Kept = append(im.Kept, e)
			im.digests[e.Ref.String()], im.forms[e.Ref.String()] = found[i], forms[i]
		}
		if warn[i] != "" {
			im.Warnings = append(im.Warnings, warn[i])
		}
	}
	return im
}

// CacheConfigs reads the configs of the registry caches among entries
// (the graphs of cache keys they hold), all at once, for naming what
// differed in a key: those it could not read are left out, and said in
// the warnings.
func (p *Publisher) CacheConfigs(ctx context.Context, entries []plan.CacheEntry) ([][]byte, []string) {
	configs := make([][]byte, len(entries))
	warn := make([]string, len(entries))
	eachRegistryCache(entries, func(i int, e plan.CacheEntry) {
		b, err := p.reg.CacheConfig(ctx, e.Ref)
		if err != nil {
			warn[i] = fmt.Sprintf("reading the cache config of %s: %v", e.Ref, err)
		}
		configs[i] = b
	})
	return slices.DeleteFunc(configs, func(b []byte) bool { return b == nil }), slices.DeleteFunc(warn, func(w string) bool { return w == "" })
}

// eachRegistryCache calls fn for each registry cache among entries (by
// its index), all at once, and waits for them.
func eachRegistryCache(entries []plan.CacheEntry, fn func(i int, e plan.CacheEntry)) {
	var wg sync.WaitGroup
	for i, e := range entries {
		if e.Ref != nil {
			wg.Go(func() { fn(i, e) })
		}
	}
	wg.Wait()
}
