package publish

import (
	"context"
	"fmt"
	"sync"

	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
)

// CacheForm is the form j's own cache is exported in, and where that was
// decided. The own caches already in the registry were accepted in their
// form, so R:cache-H's or R:cache-F's, when imported, decides. Without
// them, the registry is probed once per run and host: the image-manifest
// form where it takes it, else the index form. A probe that fails for
// another reason leaves BuildKit's default, the image-manifest form, and
// says so.
func (p *Publisher) CacheForm(ctx context.Context, j *plan.Job, im Imports) (form registry.CacheForm, why string) {
	for _, t := range []registry.Tag{j.Refs.Cache, j.Refs.CacheFloat} {
		if f, ok := im.forms[t.String()]; ok {
			return f, "as " + t.String() + " is"
		}
	}
	host := j.Refs.Repository.RegistryStr()
	pr := p.probeOf(host)
	pr.once.Do(func() {
		ok, err := p.reg.AcceptsCacheManifest(ctx, j.Refs.Repository)
		switch {
		case err != nil:
			pr.form, pr.why = registry.ImageManifest, fmt.Sprintf("BuildKit's default: probing %s failed: %v", host, err)
		case ok:
			pr.form, pr.why = registry.ImageManifest, "probed: "+host+" takes it"
		default:
			pr.form, pr.why = registry.Index, "probed: "+host+" refuses a cache written as an OCI image manifest"
		}
	})
	return pr.form, pr.why
}

// probe is what one registry host said of the image-manifest form.
type probe struct {
	once sync.Once
	form registry.CacheForm
	why  string
}

func (p *Publisher) probeOf(host string) *probe {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.probes == nil {
		p.probes = map[string]*probe{}
	}
	if p.probes[host] == nil {
		p.probes[host] = &probe{}
	}
	return p.probes[host]
}
