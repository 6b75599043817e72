package compose

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestNormalizeDetails: what the hash and the solve read of each service
// is decided here once: the Dockerfile's path (by default, relative,
// absolute, in a remote context), the platform from the service's own
// platform:, ssh paths, the service: dependencies (sorted, once) and
// the engine's name for the image.
func TestNormalizeDetails(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"compose.yaml": `
name: shop
services:
  plain: {build: .}
  named: {image: reg.example/named:1, build: {context: ./sub, dockerfile: docker/Df}}
  abs: {build: {context: ., dockerfile: /etc/Df}}
  remote: {build: {context: "https://github.com/o/r.git#main", dockerfile: build/Df}}
  remotedefault: {build: {context: "https://github.com/o/r.git"}}
  onplatform: {platform: linux/arm64, build: .}
  keys: {build: {context: ., ssh: ["default", "deploy=/keys/id"]}}
  deps: {build: {context: ., additional_contexts: {z: "service:plain", a: "service:plain", m: "service:named"}}}
  priv: {build: {context: ., privileged: true}}
`})
	p := load(t, dir, Options{})
	svc := func(n string) *Service { return p.Services[n] }
	for _, tc := range []struct{ what, got, want string }{
		{"default Dockerfile", svc("plain").Dockerfile, filepath.Join(dir, "Dockerfile")},
		{"relative Dockerfile", svc("named").Dockerfile, filepath.Join(dir, "sub", "docker", "Df")},
		{"absolute Dockerfile", svc("abs").Dockerfile, "/etc/Df"},
		{"Dockerfile in a remote context", svc("remote").Dockerfile, "build/Df"},
		{"default Dockerfile in a remote context", svc("remotedefault").Dockerfile, "Dockerfile"},
		{"platform from platform:", strings.Join(svc("onplatform").Platforms, ","), "linux/arm64"},
		{"ssh", sshString(svc("keys").SSH), "default: deploy:/keys/id"},
		{"service deps", strings.Join(svc("deps").ServiceDeps(), ","), "named,plain"},
		{"privileged alone", strings.Join(svc("priv").Entitlements, ","), "security.insecure"},
		{"engine name with image:", svc("named").LocalImage("shop"), "reg.example/named:1"},
		{"engine name without", svc("plain").LocalImage("shop"), "shop-plain"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	// Sorted whatever order the contexts' map gives: ask many times.
	for range 50 {
		if got := strings.Join(svc("deps").ServiceDeps(), ","); got != "named,plain" {
			t.Fatalf("service deps %q, want them sorted and once each", got)
		}
	}
}

func sshString(ss []SSH) string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID+":"+strings.Join(s.Paths, ","))
	}
	return strings.Join(out, " ")
}

// TestSelectUnknown: a name that is no service that builds fails
// saying which services do.
func TestSelectUnknown(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"compose.yaml": "services:\n  app: {build: .}\n  top: {build: .}\n  db: {image: postgres}\n"})
	got, err := load(t, dir, Options{}).Select([]string{"app", "nope"})
	want := `no such service with a build section: "nope" (services that build: app, top)`
	if err == nil || err.Error() != want || got != nil {
		t.Errorf("Select = %v, %v; want the error %q", got, err, want)
	}
}
