package plan

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
)

// resolve loads the project in files and plans opt on it.
func resolve(t *testing.T, files map[string]string, opt Options) (*Plan, error) {
	t.Helper()
	dir := sourcetest.Tree(t, files)
	p, err := compose.LoadAnd(context.Background(), compose.Options{ProjectDir: dir}, func(*compose.Project) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	return New(context.Background(), p, opt)
}

// project is a fixture of every kind of context; REG is replaced by the
// registry the images are said to live in.
func project(reg string) map[string]string {
	return map[string]string{
		"compose.yaml": strings.ReplaceAll(`name: shop
services:
  base:
    image: REG/shop/base:dev
    build: ./base
  api:
    image: REG/shop/api
    build:
      context: ./api
      cache_from: ["REG/shop/api:cache-extra", "type=gha,scope=api"]
      cache_to: ["type=inline"]
      tags: ["REG/shop/api:latest"]
      additional_contexts:
        base: service:base
        lib: ./lib
        alpine: docker-image://alpine:3.20
        tools: https://github.com/acme/tools.git#v1
  local:
    build: ./base
  db:
    image: postgres
`, "REG", reg),
		"base/Dockerfile": "FROM scratch\nCOPY x /\n",
		"base/x":          "x",
		"api/Dockerfile":  "FROM base\nCOPY --from=lib a /\nCOPY --from=alpine /etc/os-release /\nCOPY --from=tools README /\nCOPY main.txt /\n",
		"api/main.txt":    "main",
		"lib/a":           "a",
	}
}

// TestResolveContextsAndRefs: each kind of context is classified once
// and enters the hash as what it is; each ref is parsed once, as the
// user wrote its repository.
func TestResolveContextsAndRefs(t *testing.T) {
	reg := rt.Serve(t, true)
	p, err := resolve(t, project(reg.Host), Options{Fallbacks: []Floating{mustFloating(t, "ci-main")}, BaseImages: inputs.AsWritten})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(p.Jobs); got != "base,api,local" {
		t.Fatalf("jobs %s, want dependencies first", got)
	}
	api := p.Job("api")
	kinds := map[string]compose.ContextKind{}
	for n, c := range api.Service.Contexts {
		kinds[n] = c.Kind
	}
	for n, want := range map[string]compose.ContextKind{"base": compose.ServiceContext, "lib": compose.LocalContext, "alpine": compose.ImageContext, "tools": compose.RemoteContext} {
		if kinds[n] != want {
			t.Errorf("context %s: kind %d, want %d", n, kinds[n], want)
		}
	}
	if api.Service.Context.Kind != compose.LocalContext || !slices.Equal(api.Deps, []string{"base"}) {
		t.Errorf("api: context %+v, deps %v", api.Service.Context, api.Deps)
	}
	if len(api.Inputs.Services) != 1 || api.Inputs.Services[0].Hash != p.Job("base").Inputs.Hash {
		t.Errorf("api's service: context does not carry base's hash: %+v", api.Inputs.Services)
	}
	var refs []string
	for _, r := range api.Inputs.Refs {
		refs = append(refs, r.Name+"="+r.Value)
	}
	if want := "alpine=docker-image://alpine:3.20 tools=https://github.com/acme/tools.git#v1"; strings.Join(refs, " ") != want {
		t.Errorf("refs %q, want %q", refs, want)
	}

	h := api.Inputs.Tag()
	r := api.Refs
	for _, tc := range []struct{ what, got, want string }{
		{"R:H", r.Image.String(), reg.Host + "/shop/api:" + h},
		{"R:F", r.Floating.String(), reg.Host + "/shop/api:ci"},
		{"R:cache-H", r.Cache.String(), reg.Host + "/shop/api:cache-" + h},
		{"R:cache-F", r.CacheFloat.String(), reg.Host + "/shop/api:cache-ci"},
		{"fallback", r.Fallbacks[0].String(), reg.Host + "/shop/api:cache-ci-main"},
		{"repository", r.Repository.Name(), reg.Host + "/shop/api"},
		{"base, tag dropped", p.Job("base").Refs.Image.String(), reg.Host + "/shop/base:" + p.Job("base").Inputs.Tag()},
		{"no image:", p.Job("local").Refs.Image.String(), "shop-local:" + p.Job("local").Inputs.Tag()},
		{"cache_from", api.CacheFrom[0].String() + " " + api.CacheFrom[1].String(), "registry:" + reg.Host + "/shop/api:cache-extra gha"},
		{"cache_to", api.CacheTo[0].String(), "inline"},
		{"engine names", strings.Join(api.EngineNames, " "), reg.Host + "/shop/api " + reg.Host + "/shop/api:latest"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.what, tc.got, tc.want)
		}
	}
	if r.Image.TagStr() != h || r.Image.RegistryStr() != reg.Host {
		t.Errorf("R:H parsed as tag %q on %q", r.Image.TagStr(), r.Image.RegistryStr())
	}
	if p.Job("api").Local || !p.Job("local").Local {
		t.Errorf("local: api %v, local %v", p.Job("api").Local, p.Job("local").Local)
	}
	for _, j := range p.Jobs {
		if !j.Asked {
			t.Errorf("%s not asked for, though no service was named (all were)", j.Name())
		}
	}
	// Asking for api plans base too, as a dependency only; with --push
	// every planned service has a repository, so it resolves.
	only, err := resolve(t, project(reg.Host), Options{Services: []string{"api"}, Push: true, BaseImages: inputs.AsWritten})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(only.Jobs); got != "base,api" || only.Job("base").Asked || !only.Job("api").Asked {
		t.Errorf("asking for api: jobs %s, base asked %v, api asked %v", got, only.Job("base").Asked, only.Job("api").Asked)
	}
	if reg.Requests() != 0 {
		t.Errorf("resolving made %d registry requests, want none", reg.Requests())
	}
}

// TestResolveRepositories: where each service is pushed, as written.
func TestResolveRepositories(t *testing.T) {
	for _, tc := range []struct {
		name, image, prefix, want string
	}{
		{"image: with registry and tag", "registry.local:5000/shop/api:dev", "", "registry.local:5000/shop/api"},
		{"image: by digest", "reg.io/a/b@sha256:" + strings.Repeat("0", 64), "", "reg.io/a/b"},
		{"Docker Hub name", "acme/api:1", "", "acme/api"},
		{"official image", "myapp", "", "myapp"},
		{"prefix", "ignored/x", "reg:5000/ci/", "reg:5000/ci/api"},
		{"prefix without slash", "", "reg:5000/ci", "reg:5000/ci/api"},
		{"default", "", "", "shop-api"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			image := ""
			if tc.image != "" {
				image = "\n    image: " + tc.image
			}
			p, err := resolve(t, map[string]string{
				"compose.yaml":   "name: shop\nservices:\n  api:" + image + "\n    build: ./api\n",
				"api/Dockerfile": "FROM scratch\n",
			}, Options{Repository: tc.prefix})
			if err != nil {
				t.Fatal(err)
			}
			j := p.Jobs[0]
			if got := strings.TrimSuffix(j.Refs.Image.String(), ":"+j.Inputs.Tag()); got != tc.want {
				t.Errorf("repository %q, want %q", got, tc.want)
			}
		})
	}
}

// TestInsecureHosts: refs on a host named insecure are reached over
// plain HTTP; others over HTTPS; loopback always over HTTP.
func TestInsecureHosts(t *testing.T) {
	files := map[string]string{
		"compose.yaml":    "services:\n  a:\n    image: reg.internal:5000/a\n    build: ./a\n  b:\n    image: reg.example.com/b\n    build: ./a\n  c:\n    image: 127.0.0.1:5000/c\n    build: ./a\n",
		"a/Dockerfile":    "FROM scratch\n",
		"a/.dockerignore": "",
	}
	p, err := resolve(t, files, Options{Hosts: registry.NewHosts("reg.internal:5000")})
	if err != nil {
		t.Fatal(err)
	}
	for svc, want := range map[string]string{"a": "http", "b": "https", "c": "http"} {
		if got := p.Job(svc).Refs.Image.Scheme(); got != want {
			t.Errorf("%s: scheme %s, want %s", svc, got, want)
		}
	}
}

// TestNoCacheAndPull: the run's no-cache and pull add to what each
// service's own no_cache and pull say.
func TestNoCacheAndPull(t *testing.T) {
	files := map[string]string{
		"compose.yaml": "services:\n  plain:\n    build: ./a\n  keys:\n    build:\n      context: ./a\n      no_cache: true\n      pull: true\n",
		"a/Dockerfile": "FROM scratch\n",
	}
	for _, tc := range []struct {
		noCache, pull bool
	}{{false, false}, {true, false}, {false, true}} {
		p, err := resolve(t, files, Options{NoCache: tc.noCache, Pull: tc.pull})
		if err != nil {
			t.Fatal(err)
		}
		if j := p.Job("plain"); j.NoCache != tc.noCache || j.Pull != tc.pull {
			t.Errorf("%+v: plain no_cache %v pull %v", tc, j.NoCache, j.Pull)
		}
		if j := p.Job("keys"); !j.NoCache || !j.Pull {
			t.Errorf("%+v: a service's own no_cache/pull were dropped", tc)
		}
	}
}

// TestRedactedValues: a job knows the values of the build args the run
// redacts, to keep them out of what it shows; not others, nor empty ones.
func TestRedactedValues(t *testing.T) {
	files := map[string]string{
		"compose.yaml": "services:\n  app:\n    build:\n      context: ./a\n      args:\n        TOKEN: s3cret\n        EMPTY: ''\n        MODE: fast\n",
		"a/Dockerfile": "FROM scratch\n",
	}
	p, err := resolve(t, files, Options{Redact: inputs.NewRedaction([]string{"TOKEN", "EMPTY", "ABSENT"}, "")})
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Job("app").Redacted; len(got) != 1 || got[0] != "s3cret" {
		t.Errorf("Redacted = %q, want [s3cret]", got)
	}
}

// TestResolveErrors: every error a user can cause is found while
// planning, names its culprit, and reaches no registry.
func TestResolveErrors(t *testing.T) {
	reg := rt.Serve(t, true)
	svc := func(build string) map[string]string {
		return map[string]string{
			"compose.yaml": "services:\n  a:\n    image: " + reg.Host + "/p/a\n    build:\n      context: ./a\n" + build,
			"a/Dockerfile": "FROM scratch\n",
		}
	}
	noImage := map[string]string{"compose.yaml": "services:\n  a:\n    build: ./a\n  b:\n    build: ./a\n", "a/Dockerfile": "FROM scratch\n"}
	for _, tc := range []struct {
		name  string
		files map[string]string
		opt   Options
		want  []string
		is    error
	}{
		{"push without repository", noImage, Options{Push: true}, []string{`services a, b have no image:`}, nil},
		{"unknown service", svc(""), Options{Services: []string{"ghost"}}, []string{`"ghost"`, "a"}, nil},
		{"invalid image", map[string]string{"compose.yaml": "services:\n  a:\n    image: Reg.Local/UPPER/App\n    build: ./a\n", "a/Dockerfile": "FROM scratch\n"}, Options{}, []string{`service "a"`, "UPPER"}, nil},
		{"invalid repository prefix", svc(""), Options{Repository: "reg.local/bad repo"}, []string{`service "a"`, "bad repo"}, nil},
		{"invalid build.tags", svc("      tags: [\"reg.local/x:bad tag\"]\n"), Options{}, []string{`service "a"`, "bad tag"}, nil},
		{"cycle", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ./a, additional_contexts: {x: 'service:b'}}\n  b:\n    build: {context: ./a, additional_contexts: {x: 'service:a'}}\n", "a/Dockerfile": "FROM scratch\n"}, Options{}, []string{"a -> b -> a"}, nil},
		{"missing Dockerfile", svc("      dockerfile: Nope\n"), Options{}, []string{`service "a"`, "Nope"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := resolve(t, tc.files, tc.opt)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
	if reg.Requests() != 0 {
		t.Errorf("planning made %d registry requests, want none", reg.Requests())
	}
	var nr *NoRepositoryError
	if _, err := resolve(t, noImage, Options{Push: true}); !errors.As(err, &nr) || !slices.Equal(nr.Services, []string{"a", "b"}) {
		t.Errorf("push without repository: %v, want a NoRepositoryError naming a and b", err)
	}
}

// TestEngineNames: an image for a Docker engine is also named as docker
// compose names it, less names pinned by digest and R:H itself.
func TestEngineNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		svc  compose.Service
		want []string
	}{
		{"no image:", compose.Service{Name: "web"}, []string{"shop-web"}},
		{"image: and tags", compose.Service{Name: "web", Image: "ghcr.io/acme/web:dev", Tags: []string{"web:extra", "ghcr.io/acme/web:dev"}}, []string{"ghcr.io/acme/web:dev", "web:extra"}},
		{"image: by digest", compose.Service{Name: "web", Image: "ghcr.io/acme/web@sha256:" + strings.Repeat("a", 64)}, nil},
		{"image: equal to R:H", compose.Service{Name: "web", Image: "ghcr.io/acme/web:h"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := engineNames("shop", &tc.svc, "ghcr.io/acme/web:h"); !slices.Equal(got, tc.want) {
				t.Errorf("engineNames = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseFloating: a floating tag and its cache- twin are both tags;
// the error quotes the tag and says the limit; the zero Floating is the
// default.
func TestParseFloating(t *testing.T) {
	for tag, ok := range map[string]bool{
		"ci": true, "ci-main": true, "_x": true, "v1.2": true, strings.Repeat("f", 122): true,
		strings.Repeat("f", 123): false, "": false, ".x": false, "-x": false, "ci/main": false, "ci main": false,
	} {
		f, err := ParseFloating(tag)
		if (err == nil) != ok {
			t.Errorf("ParseFloating(%q) = %v, want ok=%v", tag, err, ok)
		}
		if ok && f.String() != tag {
			t.Errorf("ParseFloating(%q) is %q", tag, f)
		}
		if !ok && (!errors.Is(err, ErrFloatingTag) || !strings.Contains(err.Error(), strconv.Quote(tag)) || !strings.Contains(err.Error(), "122")) {
			t.Errorf("ParseFloating(%q): %v", tag, err)
		}
	}
	if (Floating{}).String() != DefaultFloating {
		t.Errorf("the zero Floating is %q", Floating{})
	}
}

func mustFloating(t *testing.T, s string) Floating {
	t.Helper()
	f, err := ParseFloating(s)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func names(jobs []*Job) string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Name())
	}
	return strings.Join(out, ",")
}

// TestSharedRepository: services with different builds pushing to one
// repository get floating tags of their own, decided over the whole
// project; identical builds keep sharing them.
func TestSharedRepository(t *testing.T) {
	files := map[string]string{
		"compose.yaml": "services:\n" +
			"  ad:\n    image: reg.io/demo:latest-ad\n    build: ./ad\n" +
			"  cart:\n    image: reg.io/demo:latest-cart\n    build: ./cart\n" +
			"  web1:\n    image: reg.io/same\n    build: ./ad\n" +
			"  web2:\n    image: reg.io/same\n    build: ./ad\n" +
			"  alone:\n    image: reg.io/alone\n    build: ./cart\n",
		"ad/Dockerfile":   "FROM scratch\nCOPY a /a\n",
		"ad/a":            "a",
		"cart/Dockerfile": "FROM scratch\n",
	}
	opt := Options{BaseImages: inputs.AsWritten, Fallbacks: []Floating{mustFloating(t, "ci-main")}}
	p, err := resolve(t, files, opt)
	if err != nil {
		t.Fatal(err)
	}
	for svc, want := range map[string]string{"ad": "ci-ad", "cart": "ci-cart", "web1": "ci", "web2": "ci", "alone": "ci"} {
		j := p.Job(svc)
		if j.Floating != want || j.Refs.Floating.TagStr() != want || j.Refs.CacheFloat.TagStr() != "cache-"+want {
			t.Errorf("%s: floating %s (refs %s, %s), want %s", svc, j.Floating, j.Refs.Floating, j.Refs.CacheFloat, want)
		}
	}
	if got := p.Job("ad").Refs.Fallbacks[0].TagStr(); got != "cache-ci-main-ad" {
		t.Errorf("ad's fallback %s, want cache-ci-main-ad", got)
	}
	// Asked for alone, a service keeps its own tag.
	opt.Services = []string{"cart"}
	only, err := resolve(t, files, opt)
	if err != nil {
		t.Fatal(err)
	}
	if got := only.Job("cart").Refs.Floating.TagStr(); got != "ci-cart" {
		t.Errorf("cart asked for alone: %s, want ci-cart", got)
	}
}

// TestSameImage: services that make the same image (same R:H, same build
// tags) are marked to take the first one's result; others are not.
func TestSameImage(t *testing.T) {
	p, err := resolve(t, map[string]string{
		"compose.yaml": "services:\n" +
			"  a:\n    image: reg.io/same\n    build: ./s\n" +
			"  b:\n    image: reg.io/same:other\n    build: ./s\n" +
			"  c:\n    image: reg.io/same\n    build:\n      context: ./s\n      tags: [reg.io/same:c]\n" +
			"  d:\n    image: reg.io/elsewhere\n    build: ./s\n" +
			"  e:\n    build: ./s\n  f:\n    build: ./s\n",
		"s/Dockerfile": "FROM scratch\n",
	}, Options{BaseImages: inputs.AsWritten})
	if err != nil {
		t.Fatal(err)
	}
	for svc, want := range map[string]string{"a": "", "b": "a", "c": "", "d": "", "e": "", "f": ""} {
		if got := p.Job(svc).SameAs; got != want {
			t.Errorf("%s: same as %q, want %q", svc, got, want)
		}
	}
}

// TestResolvePrefetches: with Prefetch, resolving asks the registry for
// each job's R:H (and, pushing, R:F) by itself, and the answers it got
// are what HeadPrefetched gives: an image pushed after the question is
// not seen by it, while Head sees it.
func TestResolvePrefetches(t *testing.T) {
	proxy, host := rt.Faulty(t)
	files := map[string]string{
		"compose.yaml": "services:\n  a:\n    image: " + proxy.Addr + "/p/a\n    build: ./a\n  b:\n    image: " + proxy.Addr + "/p/b\n    build: ./a\n",
		"a/Dockerfile": "FROM scratch\n",
	}
	reg := registry.New(registry.Options{})
	p, err := resolve(t, files, Options{Registry: reg, Prefetch: true, Push: true, BaseImages: inputs.AsWritten})
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range p.Jobs {
		for _, ref := range []string{j.Refs.Image.Identifier(), j.Refs.Floating.Identifier()} {
			want := "HEAD /v2/p/" + j.Name() + "/manifests/" + ref
			for i := 0; len(faultproxy.Match(proxy.Log(), want)) == 0; i++ {
				if i == 500 {
					t.Fatalf("%s was never asked for: %q", want, proxy.Log())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		rt.PushRandom(t, host+"/p/"+j.Name()+":"+j.Refs.Image.Identifier())
		if _, found, err := reg.HeadPrefetched(context.Background(), j.Refs.Image); found || err != nil {
			t.Errorf("%s: the prefetched answer is found=%v err=%v, want the miss it was asked before the push", j.Name(), found, err)
		}
		if _, found, err := reg.Head(context.Background(), j.Refs.Image); !found || err != nil {
			t.Errorf("%s: after the push, Head gives found=%v err=%v", j.Name(), found, err)
		}
	}
}

// TestJobTags: the compose build tags a skip converges are parsed once,
// as written, less names pinned by digest.
func TestJobTags(t *testing.T) {
	svc := &compose.Service{Name: "web", Image: "ghcr.io/acme/web", Tags: []string{"ghcr.io/acme/web:latest", "web:extra", "ghcr.io/acme/web@sha256:" + strings.Repeat("a", 64)}}
	j, err := newJob(svc, "ghcr.io/acme/web", false, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tag := range j.Tags {
		got = append(got, tag.String())
	}
	if want := []string{"ghcr.io/acme/web:latest", "web:extra"}; !slices.Equal(got, want) {
		t.Errorf("job tags %q, want %q", got, want)
	}
}
