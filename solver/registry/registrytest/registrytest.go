// Package registrytest starts real in-process registries for tests
// (go-containerregistry's pkg/registry, optionally behind bkcache's fault
// proxy), counts the requests they answer, and writes images and
// BuildKit-shaped caches into them.
package registrytest

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Server is an in-process registry on loopback.
type Server struct {
	Host      string // host:port
	requests  atomic.Int64
	manifests atomic.Int64
	pings     atomic.Int64
}

// Pings is how many of them were a client's ping (GET /v2/), which it
// makes to learn the registry's scheme and how it authenticates.
func (s *Server) Pings() int64 { return s.pings.Load() }

// Requests is how many HTTP requests the registry has answered.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Manifests is how many of them were for a manifest (a HEAD or GET).
func (s *Server) Manifests() int64 { return s.manifests.Load() }

// Serve starts a registry, with or without the OCI 1.1 referrers API,
// stopped when the test ends.
func Serve(t testing.TB, referrers bool) *Server {
	t.Helper()
	s := &Server{}
	h := registry.New(registry.WithReferrersSupport(referrers))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if strings.Contains(r.URL.Path, "/manifests/") {
			s.manifests.Add(1)
		}
		if r.URL.Path == "/v2/" {
			s.pings.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	s.Host = strings.TrimPrefix(srv.URL, "http://")
	return s
}

// Faulty starts a registry with the referrers API behind a fault
// injecting proxy; it returns the proxy and the registry's own host.
func Faulty(t testing.TB) (*faultproxy.Proxy, string) {
	t.Helper()
	host := Serve(t, true).Host
	p, err := faultproxy.Start(host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, host
}

// Ref parses a reference to a test registry.
func Ref(t testing.TB, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// Tag parses a tag of a test registry.
func Tag(t testing.TB, s string) name.Tag {
	t.Helper()
	r, err := name.NewTag(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// PushRandom writes a small random image at ref and returns its digest.
func PushRandom(t testing.TB, ref string) string {
	t.Helper()
	img, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(Ref(t, ref), img); err != nil {
		t.Fatal(err)
	}
	d, _ := img.Digest()
	return d.String()
}

// CacheConfig is the config PushCache writes: two records.
const CacheConfig = `{"layers":[],"records":[{"digest":"a"},{"digest":"b"}]}`

// cacheConfigType is BuildKit's cache config media type.
const cacheConfigType = "application/vnd.buildkit.cacheconfig.v0"

type rawManifest struct {
	b  []byte
	mt types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.b, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mt, nil }

// PushCache writes a BuildKit-shaped registry cache in the given form
// ("index" or "image-manifest"): CacheConfig and two layers, "layer one"
// and "layer two!", created an hour apart from 2026-11-01 12:00 UTC.
func PushCache(t testing.TB, ref, form string) {
	t.Helper()
	n := Ref(t, ref)
	created := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	cfg := static.NewLayer([]byte(CacheConfig), cacheConfigType)
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

// Head is the digest ref names in the registry, "" when it has none.
func Head(t testing.TB, ref string) string {
	t.Helper()
	desc, err := remote.Head(Ref(t, ref))
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return desc.Digest.String()
}

// Retag points repository:tag at the manifest repository@d names,
// directly in the registry.
func Retag(t testing.TB, repository, d, tag string) {
	t.Helper()
	desc, err := remote.Get(Ref(t, repository+"@"+d))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Tag(Tag(t, repository+":"+tag), desc); err != nil {
		t.Fatal(err)
	}
}
