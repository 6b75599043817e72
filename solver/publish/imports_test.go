package publish

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
)

// TestCacheImports: caches that do not exist yet are dropped quietly,
// caches the registry cannot serve are dropped with a warning naming
// them, others (and other backends, unasked) are kept, in order.
func TestCacheImports(t *testing.T) {
	p, host := rt.Faulty(t)
	h := rt.PushRandom(t, host+"/p/app:cache-h")
	rt.PushRandom(t, host+"/p/app:cache-broken")
	p.Inject(faultproxy.Fault{Path: `/manifests/cache-broken$`, Status: 502})
	entry := func(tag string) plan.CacheEntry { return registryEntry(t, p.Addr+"/p/app:"+tag) }
	pub := New(registry.New(registry.Options{}), Options{})
	im := pub.CacheImports(context.Background(), []plan.CacheEntry{entry("cache-h"), entry("cache-ci"), entry("cache-broken"), localEntry})
	kept, warnings := im.Kept, im.Warnings
	var got []string
	for _, e := range kept {
		got = append(got, e.String())
	}
	if fmt.Sprint(got) != fmt.Sprint([]string{"registry:" + p.Addr + "/p/app:cache-h", "local"}) {
		t.Errorf("kept %v", got)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "cache-broken") || !strings.Contains(warnings[0], "502") {
		t.Errorf("warnings %q", warnings)
	}
	// What the registry named, as asked: for the kept cache only.
	for tag, want := range map[string]string{"cache-h": h, "cache-ci": "", "cache-broken": ""} {
		if d, _ := im.Digest(entry(tag).Ref); string(d) != want {
			t.Errorf("digest of %s: %q, want %q", tag, d, want)
		}
	}
}

// TestCacheConfigs: the configs of the registry caches are read, those
// the registry cannot serve are named in a warning, and other backends
// are not asked for.
func TestCacheConfigs(t *testing.T) {
	p, host := rt.Faulty(t)
	rt.PushCache(t, host+"/p/app:cache-h", "image-manifest")
	rt.PushCache(t, host+"/p/app:cache-broken", "index")
	p.Inject(faultproxy.Fault{Path: `/manifests/cache-broken$`, Status: 502})
	entry := func(tag string) plan.CacheEntry { return registryEntry(t, p.Addr+"/p/app:"+tag) }
	pub := New(registry.New(registry.Options{}), Options{})
	configs, warnings := pub.CacheConfigs(context.Background(), []plan.CacheEntry{localEntry, entry("cache-h"), entry("cache-broken")})
	if len(configs) != 1 || string(configs[0]) != rt.CacheConfig {
		t.Errorf("configs %q", configs)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "cache-broken") || !strings.Contains(warnings[0], "502") {
		t.Errorf("warnings %q", warnings)
	}
}

// registryEntry is a compose registry cache entry of ref.
func registryEntry(t *testing.T, ref string) plan.CacheEntry {
	return plan.CacheEntry{CacheEntry: compose.CacheEntry{Type: "registry", Attrs: map[string]string{"ref": ref}}, Ref: rt.Ref(t, ref)}
}

// localEntry is a cache entry of another backend, which no registry is
// asked about.
var localEntry = plan.CacheEntry{CacheEntry: compose.CacheEntry{Type: "local", Attrs: map[string]string{"src": "/tmp/c"}}}
