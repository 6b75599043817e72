package registry

import (
	"context"
	"errors"
	"strings"
	"testing"

	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
)

func TestInspectCache(t *testing.T) {
	host := rt.Serve(t, true).Host
	r := New(Options{})
	for _, form := range []string{"index", "image-manifest"} {
		ref := host + "/p/app:cache-" + form
		rt.PushCache(t, ref, form)
		info, err := r.InspectCache(context.Background(), rt.Ref(t, ref))
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		if cfg, err := r.CacheConfig(context.Background(), rt.Ref(t, ref)); err != nil || string(cfg) != rt.CacheConfig {
			t.Errorf("%s: config %q, %v", form, cfg, err)
		}
		if info.Form != form || info.Records != 2 || len(info.Layers) != 2 || info.Size != int64(len("layer one")+len("layer two!")+len(rt.CacheConfig)) || info.Created == nil || info.Created.Hour() != 13 {
			t.Errorf("%s: %+v", form, info)
		}
	}
	if _, err := r.InspectCache(context.Background(), rt.Ref(t, host+"/p/app:cache-missing")); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing ref: %v", err)
	}
	rt.PushRandom(t, host+"/p/app:image")
	if _, err := r.InspectCache(context.Background(), rt.Ref(t, host+"/p/app:image")); err == nil || !strings.Contains(err.Error(), "not a BuildKit cache") {
		t.Errorf("an image is not a cache: %v", err)
	}
	if _, err := r.CacheConfig(context.Background(), rt.Ref(t, host+"/p/app:image")); err == nil || !strings.Contains(err.Error(), "not a BuildKit cache") {
		t.Errorf("an image has no cache config: %v", err)
	}
}
