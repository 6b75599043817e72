package compose

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

func load(t *testing.T, dir string, opt Options) *Project {
	t.Helper()
	opt.ProjectDir = dir
	p, err := loadWith(context.Background(), opt, true)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func names(p *Project) string {
	var out []string
	for n := range p.Services {
		out = append(out, n)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func TestLoadBuildKeys(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": `
name: shop
services:
  api:
    image: registry.local:5000/shop/api:1.2
    build:
      context: ./api
      dockerfile: ../docker/api.Dockerfile
      args:
        VERSION: ${VERSION:-dev}
        FROM_ENV:
        UNSET:
      target: prod
      platforms: [linux/amd64, linux/arm64]
      labels: {team: core}
      secrets: [npmrc, {source: tok, target: token}]
      ssh: [default]
      additional_contexts:
        shared: ./shared
        base: service:base
        img: docker-image://busybox:1
      cache_from: ["type=registry,ref=x/cache"]
      cache_to: [type=inline]
      network: host
      extra_hosts: ["db=10.0.0.1", "Cache=::1", "api=10.0.0.9", "db=10.0.0.2"]
      shm_size: 64m
      ulimits: {nproc: 65535, nofile: {soft: 1024, hard: 2048}}
      tags: [x/api:extra]
      no_cache: true
      no_cache_filter: [deps]
      entitlements: [security.insecure, network.host]
      privileged: true
      pull: true
  base:
    build: ./base
  inline:
    build:
      dockerfile_inline: "FROM scratch\n"
  db:
    image: postgres
secrets:
  npmrc: {file: ./npmrc}
  tok: {environment: TOKEN}
`,
	})
	t.Setenv("FROM_ENV", "from-env")
	p := load(t, dir, Options{})
	if p.Name != "shop" || names(p) != "api,base,inline" {
		t.Fatalf("project %q services %s", p.Name, names(p))
	}
	api := p.Services["api"]
	checks := []struct{ what, got, want string }{
		{"context", api.Context.String(), filepath.Join(dir, "api")},
		{"dockerfile", api.Dockerfile, filepath.Join(dir, "docker", "api.Dockerfile")},
		{"args", strings.Join(sortedKV(api.Args), " "), "FROM_ENV=from-env VERSION=dev"},
		{"target", api.Target, "prod"},
		{"platforms", strings.Join(api.Platforms, ","), "linux/amd64,linux/arm64"},
		{"labels", strings.Join(sortedKV(api.Labels), " "), "team=core"},
		{"secrets", api.Secrets[0].ID + "=" + api.Secrets[0].File + " " + api.Secrets[1].ID + "=$" + api.Secrets[1].Env, "npmrc=" + filepath.Join(dir, "npmrc") + " token=$TOKEN"},
		{"ssh", api.SSH[0].ID, "default"},
		{"contexts", strings.Join(sortedKV(contextStrings(api.Contexts)), " "), "base=service:base img=docker-image://busybox:1 shared=" + filepath.Join(dir, "shared")},
		{"deps", strings.Join(api.ServiceDeps(), ","), "base"},
		{"cache", fmt.Sprint(api.CacheFrom, api.CacheTo), "[registry:x/cache] [inline]"},
		{"network", string(api.Run.Network), "host"},
		{"extra hosts", fmt.Sprint(api.Run.ExtraHosts), "[api=10.0.0.9 cache=::1 db=10.0.0.1 db=10.0.0.2]"},
		{"ulimits", fmt.Sprint(api.Run.Ulimits), "[nofile=1024:2048 nproc=65535:65535]"},
		{"tags", strings.Join(api.Tags, ","), "x/api:extra"},
		{"no_cache_filter", strings.Join(api.NoCacheFilter, ","), "deps"},
		{"entitlements", strings.Join(api.Entitlements, ","), "network.host,security.insecure"},
		{"no entitlements", strings.Join(p.Services["base"].Entitlements, ","), ""},
		{"string build", p.Services["base"].Dockerfile, filepath.Join(dir, "base", "Dockerfile")},
		{"inline", p.Services["inline"].DockerfileInline + "|" + p.Services["inline"].Dockerfile, "FROM scratch\n|"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.what, c.got, c.want)
		}
	}
	if api.Run.ShmSize != 64<<20 || !api.NoCache || !api.Pull {
		t.Errorf("shm %d no_cache %v pull %v", api.Run.ShmSize, api.NoCache, api.Pull)
	}
}

func contextStrings(m map[string]Context) map[string]string {
	out := map[string]string{}
	for k, c := range m {
		out[k] = c.String()
	}
	return out
}

func sortedKV(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}

func TestLoadFlags(t *testing.T) {
	files := map[string]string{
		"compose.yaml": `
services:
  a:
    build: {context: ., args: {TAG: "${TAG:-default}"}}
    image: ${REGISTRY}/a
  b:
    build: .
    profiles: [extra]
  c:
    build: .
    profiles: [other]
`,
		"compose.override.yaml": "services:\n  a:\n    build:\n      target: from-override\n",
		"ci.yaml":               "services:\n  a:\n    build:\n      target: from-ci\n",
		".env":                  "REGISTRY=reg.local\nCOMPOSE_PROFILES=extra\n",
		"alt.env":               "REGISTRY=alt.local\nTAG=alt\n",
		"ext/base.yaml":         "services:\n  common:\n    build:\n      context: .\n      target: base\n",
		"with-extends.yaml":     "services:\n  e:\n    extends: {file: ext/base.yaml, service: common}\n",
		"inc/compose.yaml":      "services:\n  included:\n    build: .\n",
		"with-include.yaml":     "include: [inc/compose.yaml]\nservices:\n  top:\n    build: .\n",
	}
	for _, tc := range []struct {
		name  string
		opt   Options
		check func(t *testing.T, p *Project)
	}{
		{"defaults: override file, .env and COMPOSE_PROFILES", Options{}, func(t *testing.T, p *Project) {
			if names(p) != "a,b" || p.Services["a"].Target != "from-override" || p.Services["a"].Image != "reg.local/a" {
				t.Fatalf("services %s target %q image %q", names(p), p.Services["a"].Target, p.Services["a"].Image)
			}
			if p.Services["a"].Args["TAG"] != "default" {
				t.Fatalf("TAG = %q", p.Services["a"].Args["TAG"])
			}
		}},
		{"-f merges in order", Options{Files: []string{"compose.yaml", "ci.yaml"}}, func(t *testing.T, p *Project) {
			if p.Services["a"].Target != "from-ci" {
				t.Fatalf("target %q", p.Services["a"].Target)
			}
		}},
		{"--profile replaces COMPOSE_PROFILES", Options{Profiles: []string{"other"}}, func(t *testing.T, p *Project) {
			if names(p) != "a,c" {
				t.Fatalf("services %s", names(p))
			}
		}},
		{"--env-file", Options{EnvFiles: []string{"alt.env"}}, func(t *testing.T, p *Project) {
			if p.Services["a"].Image != "alt.local/a" || p.Services["a"].Args["TAG"] != "alt" || names(p) != "a" {
				t.Fatalf("image %q TAG %q services %s", p.Services["a"].Image, p.Services["a"].Args["TAG"], names(p))
			}
		}},
		{"-p", Options{Name: "custom"}, func(t *testing.T, p *Project) {
			if p.Name != "custom" {
				t.Fatalf("name %q", p.Name)
			}
		}},
		{"extends", Options{Files: []string{"with-extends.yaml"}}, func(t *testing.T, p *Project) {
			if e := p.Services["e"]; e == nil || e.Target != "base" {
				t.Fatalf("extends not applied: %+v", e)
			}
		}},
		{"include", Options{Files: []string{"with-include.yaml"}}, func(t *testing.T, p *Project) {
			if names(p) != "included,top" {
				t.Fatalf("services %s", names(p))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sourcetest.Tree(t, files)
			for i, f := range tc.opt.Files {
				tc.opt.Files[i] = filepath.Join(dir, f)
			}
			for i, f := range tc.opt.EnvFiles {
				tc.opt.EnvFiles[i] = filepath.Join(dir, f)
			}
			tc.check(t, load(t, dir, tc.opt))
		})
	}
}

// TestBuildArgs: --build-arg overrides every building service's args as
// docker compose build --build-arg does.
func TestBuildArgs(t *testing.T) {
	files := map[string]string{
		"compose.yaml": `
services:
  a:
    build: {context: ., args: {TAG: yaml, KEEP: kept}}
  b:
    build: .
  db:
    image: postgres
`,
		".env": "FROM_DOTENV=dot\n",
	}
	t.Setenv("FROM_OS", "os")
	for _, tc := range []struct {
		name  string
		args  []string
		wantA map[string]string
		wantB map[string]string
	}{
		{"none", nil, map[string]string{"TAG": "yaml", "KEEP": "kept"}, map[string]string{}},
		{"NAME=VALUE overrides and adds, in every service", []string{"TAG=cli"},
			map[string]string{"TAG": "cli", "KEEP": "kept"}, map[string]string{"TAG": "cli"}},
		{"empty value", []string{"TAG="}, map[string]string{"TAG": "", "KEEP": "kept"}, map[string]string{"TAG": ""}},
		{"value with =", []string{"URL=a=b"}, map[string]string{"TAG": "yaml", "KEEP": "kept", "URL": "a=b"}, map[string]string{"URL": "a=b"}},
		{"the last of a name wins", []string{"TAG=1", "TAG=2"}, map[string]string{"TAG": "2", "KEEP": "kept"}, map[string]string{"TAG": "2"}},
		{"NAME from the process environment", []string{"FROM_OS"},
			map[string]string{"TAG": "yaml", "KEEP": "kept", "FROM_OS": "os"}, map[string]string{"FROM_OS": "os"}},
		{"NAME from .env", []string{"FROM_DOTENV"},
			map[string]string{"TAG": "yaml", "KEEP": "kept", "FROM_DOTENV": "dot"}, map[string]string{"FROM_DOTENV": "dot"}},
		{"NAME=VALUE wins over the environment", []string{"FROM_OS=cli"},
			map[string]string{"TAG": "yaml", "KEEP": "kept", "FROM_OS": "cli"}, map[string]string{"FROM_OS": "cli"}},
		{"NAME unset anywhere removes the arg", []string{"KEEP"}, map[string]string{"TAG": "yaml"}, map[string]string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, sourcetest.Tree(t, files), Options{BuildArgs: tc.args})
			if got := p.Services["a"].Args; !maps.Equal(got, tc.wantA) {
				t.Errorf("a args = %v, want %v", got, tc.wantA)
			}
			if got := p.Services["b"].Args; !maps.Equal(got, tc.wantB) {
				t.Errorf("b args = %v, want %v", got, tc.wantB)
			}
		})
	}
	for _, bad := range []string{"", "=x", "A B=1"} {
		_, err := loadWith(context.Background(), Options{ProjectDir: sourcetest.Tree(t, files), BuildArgs: []string{bad}}, true)
		if !errors.Is(err, ErrBuildArg) || !strings.Contains(err.Error(), strconv.Quote(bad)) {
			t.Errorf("build arg override %q: error %v, want ErrBuildArg quoting it", bad, err)
		}
	}
}

func TestSelect(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"compose.yaml": `
services:
  app: {build: {context: ., additional_contexts: {b: "service:base"}}}
  base: {build: {context: ., additional_contexts: {r: "service:root"}}}
  root: {build: .}
  other: {build: .}
`})
	p := load(t, dir, Options{})
	order := func(names ...string) string {
		svcs, err := p.Select(names)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range svcs {
			out = append(out, s.Name)
		}
		return strings.Join(out, ",")
	}
	if got := order("app"); got != "root,base,app" {
		t.Fatalf("order(app) = %s", got)
	}
	if got := order(); got != "root,base,app,other" {
		t.Fatalf("order() = %s", got)
	}
	if _, err := p.Select([]string{"nope"}); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Fatalf("unknown service: %v", err)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no compose file", map[string]string{"README": "x"}, "no compose file found"},
		{"malformed yaml", map[string]string{"compose.yaml": "services: [\n"}, "compose.yaml"},
		{"schema violation", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., nope: 1}\n"}, "nope"},
		{"undefined secret", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., secrets: [s]}\n"}, "undefined build secret s"},
		{"cycle", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., additional_contexts: {x: 'service:b'}}\n  b:\n    build: {context: ., additional_contexts: {x: 'service:a'}}\n"}, "cycle"},
		{"malformed build.provenance", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., provenance: max}\n"}, `service "a" in `},
		{"malformed build.sbom", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., sbom: 'mode=max'}\n"}, `build.sbom: malformed attestation setting "mode=max": unknown key "mode"`},
		{"a malformed .env", map[string]string{"compose.yaml": "services:\n  a:\n    build: .\n", ".env": "A B=1\n"}, "loading compose project: failed to read"},
		{"malformed cache_from", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., cache_from: ['type=registry,ref']}\n"}, `service "a" in `},
		{"malformed cache_to", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., cache_to: ['type=']}\n"}, `build.cache_to entry 1`},
		{"negative shm_size", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., shm_size: -5}\n"}, `build.shm_size -5 is negative`},
		{"unknown entitlement", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., entitlements: [root.please]}\n"}, `build.entitlements: unknown entitlement root.please`},
		{"unsupported network", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., network: bridge2}\n"}, `service "a" in `},
		{"extra host by name", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., extra_hosts: ['db=host-gateway']}\n"}, `build.extra_hosts: db=host-gateway: not an IP address`},
		{"unknown ulimit", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., ulimits: {nofiles: 10}}\n"}, `service "a" in `},
		{"ulimit soft above hard", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., ulimits: {nofile: {soft: 20, hard: 10}}}\n"}, `build.ulimits: nofile: `},
		{"service context to missing service", map[string]string{"compose.yaml": "services:\n  a:\n    build: {context: ., additional_contexts: {x: 'service:ghost'}}\n"}, "ghost"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sourcetest.Tree(t, tc.files)
			p, err := loadWith(context.Background(), Options{ProjectDir: dir}, true)
			if err == nil {
				_, err = p.Select(nil)
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestContextKinds: each additional_contexts form is classified once,
// and prints back as written.
func TestContextKinds(t *testing.T) {
	for _, tc := range []struct {
		value  string
		kind   ContextKind
		source string
	}{
		{"/abs/dir", LocalContext, "/abs/dir"},
		{"service:base", ServiceContext, "base"},
		{"docker-image://busybox:1", ImageContext, "busybox:1"},
		{"docker-image://reg:5000/a/b@sha256:" + strings.Repeat("a", 64), ImageContext, "reg:5000/a/b@sha256:" + strings.Repeat("a", 64)},
		{"https://github.com/acme/lib.git#main", RemoteContext, "https://github.com/acme/lib.git#main"},
		{"git@github.com:acme/lib.git", RemoteContext, "git@github.com:acme/lib.git"},
		{"github.com/acme/lib", RemoteContext, "github.com/acme/lib"},
		{"oci-layout:///tmp/layout@sha256:" + strings.Repeat("b", 64), RemoteContext, "oci-layout:///tmp/layout@sha256:" + strings.Repeat("b", 64)},
	} {
		c := additionalContext(tc.value)
		if c.Kind != tc.kind || c.Source != tc.source {
			t.Errorf("additionalContext(%q) = %+v, want kind %d source %q", tc.value, c, tc.kind, tc.source)
		}
		if c.String() != tc.value {
			t.Errorf("%q prints back as %q", tc.value, c.String())
		}
	}
	for v, kind := range map[string]ContextKind{"/src": LocalContext, "https://example.com/ctx.tar": RemoteContext, "git@github.com:a/b.git": RemoteContext, "ssh://git@host/repo": RemoteContext} {
		if c := mainContext(v); c.Kind != kind || c.String() != v {
			t.Errorf("mainContext(%q) = %+v, want kind %d", v, c, kind)
		}
	}
}

// TestServiceKeys pins compose keys a single example does not: the
// service-level platform (used when build.platforms is empty), ssh
// entries with a key path.
func TestServiceKeys(t *testing.T) {
	for _, tc := range []struct {
		name, compose string
		got           func(*Service) string
		want          string
	}{
		{"service platform", "services:\n  s:\n    platform: linux/arm64\n    build: .\n",
			func(s *Service) string { return strings.Join(s.Platforms, ",") }, "linux/arm64"},
		{"build platforms win", "services:\n  s:\n    platform: linux/arm64\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n",
			func(s *Service) string { return strings.Join(s.Platforms, ",") }, "linux/amd64,linux/arm64"},
		{"no platform", "services:\n  s:\n    build: .\n",
			func(s *Service) string { return fmt.Sprintf("%q", s.Platforms) }, "[]"},
		{"an arg without a value, unset in the environment", "services:\n  s:\n    build: {context: ., args: [BKCACHE_TEST_UNSET_ARG]}\n",
			func(s *Service) string { return fmt.Sprintf("%q", s.Args) }, "map[]"},
		{"ssh key path", "services:\n  s:\n    build:\n      context: .\n      ssh: [\"deploy=/keys/id\", default]\n",
			func(s *Service) string {
				var out []string
				for _, e := range s.SSH {
					out = append(out, fmt.Sprintf("%s=%q", e.ID, e.Paths))
				}
				return strings.Join(out, " ")
			}, `default=[] deploy=["/keys/id"]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sourcetest.Tree(t, map[string]string{"compose.yaml": tc.compose, "Dockerfile": "FROM scratch\n"})
			if got := tc.got(load(t, dir, Options{}).Services["s"]); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestNoComposeFile names where it looked.
func TestNoComposeFile(t *testing.T) {
	dir := t.TempDir()
	_, err := LoadAnd(context.Background(), Options{ProjectDir: dir}, func(*Project) error { return nil })
	if !errors.Is(err, ErrNoComposeFile) || !strings.Contains(err.Error(), dir) {
		t.Errorf("with a project directory: %v", err)
	}
	t.Chdir(dir)
	_, err = LoadAnd(context.Background(), Options{}, func(*Project) error { return nil })
	if !errors.Is(err, ErrNoComposeFile) || !strings.Contains(err.Error(), "the current directory") {
		t.Errorf("in the current directory: %v", err)
	}
}
