package solver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const testCacheConfig = `{"layers":[],"records":[{"digest":"a"},{"digest":"b"}]}`

// pushCache writes a BuildKit-shaped registry cache in the given form:
// a config with two records and two layers.
func pushCache(t *testing.T, ref, form string) {
	t.Helper()
	n, _ := name.ParseReference(ref, name.Insecure)
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cfg := static.NewLayer([]byte(testCacheConfig), cacheConfigType)
	var layers []v1.Descriptor
	for i, body := range []string{"layer one", "layer two!"} {
		l := static.NewLayer([]byte(body), types.OCILayer)
		if err := remote.WriteLayer(n.Context(), l); err != nil {
			t.Fatal(err)
		}
		d, _ := l.Digest()
		at := created.Add(time.Duration(i) * time.Hour).Format(time.RFC3339Nano)
		layers = append(layers, v1.Descriptor{MediaType: types.OCILayer, Digest: d, Size: int64(len(body)), Annotations: map[string]string{"buildkit/createdat": at}})
	}
	if err := remote.WriteLayer(n.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	cd, _ := cfg.Digest()
	cs, _ := cfg.Size()
	cfgDesc := v1.Descriptor{MediaType: cacheConfigType, Digest: cd, Size: cs}
	var raw []byte
	var mt types.MediaType
	if form == "index" {
		raw, _ = json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: append(layers, cfgDesc)})
		mt = types.OCIImageIndex
	} else {
		raw, _ = json.Marshal(v1.Manifest{SchemaVersion: 2, MediaType: types.OCIManifestSchema1, Config: cfgDesc, Layers: layers})
		mt = types.OCIManifestSchema1
	}
	if err := remote.Put(n, rawManifest{raw, mt}); err != nil {
		t.Fatal(err)
	}
}

func TestInspectCache(t *testing.T) {
	host := testRegistry(t)
	r := NewRegistry(RegistryOptions{})
	for _, form := range []string{"index", "image-manifest"} {
		ref := host + "/p/app:cache-" + form
		pushCache(t, ref, form)
		info, err := r.InspectCache(context.Background(), ref)
		if err != nil {
			t.Fatalf("%s: %v", form, err)
		}
		if info.Form != form || info.Records != 2 || len(info.Layers) != 2 || info.Size != int64(len("layer one")+len("layer two!")+len(testCacheConfig)) || info.Created == nil || info.Created.Hour() != 13 {
			t.Errorf("%s: %+v", form, info)
		}
	}
	if _, err := r.InspectCache(context.Background(), host+"/p/app:cache-missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing ref: %v", err)
	}
	pushRandom(t, host+"/p/app:image")
	if _, err := r.InspectCache(context.Background(), host+"/p/app:image"); err == nil || !strings.Contains(err.Error(), "not a BuildKit cache") {
		t.Errorf("an image is not a cache: %v", err)
	}
}
