package publish

import (
	"context"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
)

// refusesCacheManifest is a registry that refuses a cache written as an
// OCI image manifest, by its config's media type, as ECR did before 2023.
var refusesCacheManifest = faultproxy.Fault{Method: "PUT", Path: `/manifests/`, ContentType: `image\.manifest`, Body: `cacheconfig`,
	Status: 400, Code: "MANIFEST_INVALID", Message: "unsupported config media type"}

// TestCacheForm: an own cache already in the registry decides the form;
// without one, one probe per host and run does, and a failed probe leaves
// BuildKit's default.
func TestCacheForm(t *testing.T) {
	for _, c := range []struct {
		name      string
		fault     *faultproxy.Fault
		floatForm string // R:cache-F's form, "" for none
		want      registry.CacheForm
		why       string
		probed    bool // the first service's form needed a probe
	}{
		{"a registry that takes it", nil, "", registry.ImageManifest, "probed: ", true},
		{"a registry that refuses it", &refusesCacheManifest, "", registry.Index, "refuses a cache written as an OCI image manifest", true},
		{"a failed probe", &faultproxy.Fault{Method: "PUT", Status: 403, Code: "DENIED"}, "", registry.ImageManifest, "BuildKit's default: probing", true},
		{"R:cache-F in the index form", nil, "index", registry.Index, "as ", false},
		{"R:cache-F in the image-manifest form, the registry refusing it now", &refusesCacheManifest, "image-manifest", registry.ImageManifest, "as ", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, host := rt.Faulty(t)
			if c.floatForm != "" {
				rt.PushCache(t, host+"/p/app:cache-ci", c.floatForm)
			}
			if c.fault != nil {
				p.Inject(*c.fault)
			}
			pub := New(registry.New(registry.Options{}), Options{})
			var form registry.CacheForm
			var why string
			var probed bool
			var first int                                // the probe's requests, after the first service
			for _, svc := range []string{"app", "api"} { // two services of one host: one probe
				j := plantest.Job(t, p.Addr+"/p/"+svc, testHash, &compose.Service{Name: svc})
				im := pub.CacheImports(context.Background(), ownImports(j))
				form, why = pub.CacheForm(context.Background(), j, im)
				if svc != "app" {
					continue
				}
				if form != c.want || !strings.Contains(why, c.why) {
					t.Errorf("%s: form %s (%s), want %s (%s)", svc, form, why, c.want, c.why)
				}
				if probed = writes(p) > 0; probed != c.probed {
					t.Errorf("probed: %v, want %v:\n%s", probed, c.probed, strings.Join(p.Log(), "\n"))
				}
				first = writes(p)
			}
			// The second service, with no cache of its own yet: the run's
			// one probe of the host, made now if the first needed none.
			if c.floatForm == "" && form != c.want {
				t.Errorf("the second service: form %s (%s), want the first's %s", form, why, c.want)
			}
			if probedAgain := writes(p) > first; probedAgain == c.probed {
				t.Errorf("the second service probed: %v, want %v (one probe per run and host):\n%s", probedAgain, !c.probed, strings.Join(p.Log(), "\n"))
			}
		})
	}
}

// ownImports are j's own registry caches, R:cache-H and R:cache-F, as the
// plan lists them.
func ownImports(j *plan.Job) []plan.CacheEntry {
	var out []plan.CacheEntry
	for _, t := range []registry.Tag{j.Refs.Cache, j.Refs.CacheFloat} {
		out = append(out, plan.CacheEntry{CacheEntry: compose.CacheEntry{Type: "registry", Attrs: map[string]string{"ref": t.String()}}, Ref: t.Tag, Own: true})
	}
	return out
}

// writes counts the requests that write: only a probe writes here.
func writes(p *faultproxy.Proxy) int {
	return len(faultproxy.Match(p.Log(), "POST ")) + len(faultproxy.Match(p.Log(), "PUT "))
}
