package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
)

// images is a project of ten services on two bases: alpine from Docker
// Hub (through a mirror at reg) and a base of reg's own, read by
// COPY --from; one more is pinned by digest.
func images(reg, pinned string) map[string]string {
	var b strings.Builder
	b.WriteString("services:\n")
	for i := range 10 {
		fmt.Fprintf(&b, "  s%d:\n    build: ./s\n", i)
	}
	b.WriteString("  pinned:\n    build:\n      context: ./s\n      dockerfile: Pinned\n")
	return map[string]string{
		"compose.yaml": b.String(),
		"s/Dockerfile": "FROM alpine:3.20\nCOPY --from=" + reg + "/tools:1 /t /t\n",
		"s/Pinned":     "FROM " + reg + "/tools@" + pinned + "\n",
	}
}

// TestResolveImages: every image a build reads enters the hash by the
// digest its tag names now, looked up once per distinct ref (Docker Hub
// names through the mirror); a moved tag moves the hash, as-written
// hashes the text, and a ref pinned by digest is not looked up.
func TestResolveImages(t *testing.T) {
	reg := rt.Serve(t, true)
	alpine := rt.PushRandom(t, reg.Host+"/library/alpine:3.20")
	tools := rt.PushRandom(t, reg.Host+"/tools:1")
	files := images(reg.Host, tools)
	opt := Options{Mirrors: registry.Mirrors{"docker.io": reg.Host}}
	before := reg.Manifests()
	p, err := resolve(t, files, opt)
	if err != nil {
		t.Fatal(err)
	}
	if n := reg.Manifests() - before; n != 2 {
		t.Errorf("%d manifest requests for 2 distinct refs over 11 services, want 2", n)
	}
	s0 := p.Job("s0").Inputs
	got := map[string]string{}
	for _, im := range s0.Images {
		got[im.Ref] = im.Digest.String() + " by " + strings.Join(im.By, "; ")
	}
	want := map[string]string{
		"docker.io/library/alpine:3.20": alpine + " by line 1: FROM alpine:3.20",
		reg.Host + "/tools:1":           tools + " by line 2: COPY --from=" + reg.Host + "/tools:1 /t /t",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("images\n got %v\nwant %v", got, want)
	}
	if s0.BaseImages != inputs.Resolve || p.Job("pinned").Inputs.Images[0].Digest.String() != tools {
		t.Errorf("mode %s, pinned %+v", s0.BaseImages, p.Job("pinned").Inputs.Images)
	}

	// The tag moves: the hash moves with it; the pinned one stays.
	rt.PushRandom(t, reg.Host+"/library/alpine:3.20")
	moved, err := resolve(t, files, opt)
	if err != nil {
		t.Fatal(err)
	}
	if moved.Job("s0").Inputs.Hash == s0.Hash {
		t.Error("alpine:3.20 moved but the hash did not")
	}
	if moved.Job("pinned").Inputs.Hash != p.Job("pinned").Inputs.Hash {
		t.Error("an image pinned by digest moved the hash")
	}
	// As written: no lookup, a hash of its own that tags do not move.
	before = reg.Manifests()
	w1, err := resolve(t, files, Options{BaseImages: inputs.AsWritten})
	if err != nil {
		t.Fatal(err)
	}
	if reg.Manifests() != before {
		t.Errorf("as written: %d manifest requests", reg.Manifests()-before)
	}
	rt.PushRandom(t, reg.Host+"/tools:1")
	w2, _ := resolve(t, files, Options{BaseImages: inputs.AsWritten})
	if h := w1.Job("s0").Inputs.Hash; h != w2.Job("s0").Inputs.Hash || h == s0.Hash || h == moved.Job("s0").Inputs.Hash {
		t.Errorf("as-written hash %s: must stay when tags move and differ from the resolved ones", h)
	}
}

// TestResolveImageFailures: a lookup that fails is an error naming the
// service, the ref and the registry's answer; never a silent fallback.
func TestResolveImageFailures(t *testing.T) {
	p, host := rt.Faulty(t)
	rt.PushRandom(t, host+"/tools:1")
	rt.PushRandom(t, host+"/library/alpine:3.20")
	files := images(p.Addr, "sha256:"+strings.Repeat("0", 64))
	manifests := `/manifests/1$`
	for _, tc := range []struct {
		name  string
		fault faultproxy.Fault
		files map[string]string
		want  []string
	}{
		{"tag missing", faultproxy.Fault{Path: "^$"}, map[string]string{"s/Dockerfile": "FROM " + p.Addr + "/tools:nope\n"}, []string{"tools:nope", "not found"}},
		{"401", faultproxy.Fault{Path: manifests, Status: 401}, nil, []string{"tools:1", "401", "docker login " + p.Addr}},
		{"500", faultproxy.Fault{Path: manifests, Status: 500}, nil, []string{"tools:1", "500"}},
		{"reset", faultproxy.Fault{Path: manifests, Reset: true}, nil, []string{"tools:1", p.Addr}},
		{"timeout", faultproxy.Fault{Path: manifests, Delay: 5 * time.Second}, nil, []string{"tools:1", p.Addr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			p.Inject(tc.fault)
			f := map[string]string{}
			for k, v := range files {
				f[k] = v
			}
			for k, v := range tc.files {
				f[k] = v
			}
			_, err := resolve(t, f, Options{
				Services: []string{"s3"}, Mirrors: registry.Mirrors{"docker.io": host},
				Registry: registry.New(registry.Options{Timeout: 200 * time.Millisecond}),
			})
			var ie *inputs.ImageError
			if !errors.As(err, &ie) {
				t.Fatalf("error %v, want an ImageError", err)
			}
			for _, w := range append(tc.want, `service "s3"`) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
	// A FROM only known at build time cannot be looked up.
	_, err := resolve(t, map[string]string{"compose.yaml": "services:\n  a:\n    build: ./a\n", "a/Dockerfile": "FROM base-${TARGETARCH}\n"}, Options{})
	if err == nil || !strings.Contains(err.Error(), "only known at build time") {
		t.Errorf("undecidable FROM: %v", err)
	}
}
