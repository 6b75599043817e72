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
	rt.PushRandom(t, host+"/p/app:cache-h")
	rt.PushRandom(t, host+"/p/app:cache-broken")
	p.Inject(faultproxy.Fault{Path: `/manifests/cache-broken$`, Status: 502})
	entry := func(tag string) plan.CacheEntry {
		ref := p.Addr + "/p/app:" + tag
		return plan.CacheEntry{CacheEntry: compose.CacheEntry{Type: "registry", Attrs: map[string]string{"ref": ref}}, Ref: rt.Ref(t, ref)}
	}
	local := plan.CacheEntry{CacheEntry: compose.CacheEntry{Type: "local", Attrs: map[string]string{"src": "/tmp/c"}}}
	pub := New(registry.New(registry.Options{}), Options{})
	kept, warnings := pub.CacheImports(context.Background(), []plan.CacheEntry{entry("cache-h"), entry("cache-ci"), entry("cache-broken"), local})
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
}
