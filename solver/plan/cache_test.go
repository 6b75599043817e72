package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/registry"
)

// TestCacheCredentials: gha and s3 entries get what buildx gives them
// from the environment, never over what the entry says, and their
// String never shows it.
func TestCacheCredentials(t *testing.T) {
	env := map[string]string{
		"ACTIONS_RUNTIME_TOKEN": "tok", "ACTIONS_CACHE_URL": "https://cache/", "ACTIONS_RESULTS_URL": "https://results/",
		"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "SECRET", "AWS_SESSION_TOKEN": "SESSION",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	for _, tc := range []struct {
		in   string
		want map[string]string
	}{
		{"type=gha", map[string]string{"token": "tok", "url": "https://cache/"}},
		{"type=gha,version=2", map[string]string{"token": "tok", "url": "https://cache/", "url_v2": "https://results/", "version": "2"}},
		{"type=gha,token=mine,url=https://mine/", map[string]string{"token": "mine", "url": "https://mine/"}},
		{"type=s3,bucket=b", map[string]string{"bucket": "b", "access_key_id": "AKID", "secret_access_key": "SECRET", "session_token": "SESSION"}},
		{"type=s3,bucket=b,access_key_id=K,secret_access_key=S", map[string]string{"bucket": "b", "access_key_id": "K", "secret_access_key": "S"}},
		{"type=registry,ref=r/a:c", map[string]string{"ref": "r/a:c"}},
	} {
		es, err := cacheEntries("cache_from", []compose.CacheEntry{mustCacheEntry(t, tc.in)}, registry.NewHosts(), lookup)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(es[0].Attrs, tc.want) {
			t.Errorf("%s: attrs %v, want %v", tc.in, es[0].Attrs, tc.want)
		}
		if s := es[0].String(); s != "registry:r/a:c" && s != es[0].Type {
			t.Errorf("%s prints as %q, want only its type (and ref)", tc.in, s)
		}
	}
	// GitHub's v2 cache service, asked for through the environment.
	env["ACTIONS_CACHE_SERVICE_V2"] = "true"
	es, _ := cacheEntries("cache_to", []compose.CacheEntry{mustCacheEntry(t, "type=gha")}, registry.NewHosts(), lookup)
	if es[0].Attrs["url_v2"] != "https://results/" {
		t.Errorf("ACTIONS_CACHE_SERVICE_V2: attrs %v", es[0].Attrs)
	}
}

// TestJobCaches: a job's caches are decided once, typed: R:cache-H,
// R:cache-F and the fallbacks first (marked insecure for a registry the
// hosts name so), then compose's cache_from, each registry one with its
// ref parsed, and only bkcache's own marked so; a pushed solve exports R:cache-H with every stage, then
// compose's cache_to, none of them failing the image unless it says so.
// A local service imports none of bkcache's own. A cache_from ref that
// is not a reference fails the plan, naming the service.
func TestJobCaches(t *testing.T) {
	build := "      cache_from: [\"reg.local/shared:cache\", \"type=local,src=/tmp/c\"]\n      cache_to: [\"type=local,dest=/tmp/c\", \"type=registry,ref=reg.local/shared:out,ignore-error=false\"]\n"
	files := map[string]string{
		"compose.yaml": "services:\n  a:\n    image: reg.local/p/a\n    build:\n      context: ./a\n" + build,
		"a/Dockerfile": "FROM scratch\n",
	}
	p, err := resolve(t, files, Options{Hosts: registry.NewHosts("reg.local"), Fallbacks: []Floating{mustFloating(t, "main")}, BaseImages: inputs.AsWritten})
	if err != nil {
		t.Fatal(err)
	}
	j := p.Jobs[0]
	h := j.Inputs.Tag()
	var imports, exports []string
	for _, e := range j.Imports {
		imports = append(imports, fmt.Sprintf("%s %v ref=%v own=%v", e.Type, e.Attrs, e.Ref, e.Own))
	}
	for _, e := range j.Exports {
		exports = append(exports, fmt.Sprintf("%s %v own=%v", e.Type, e.Attrs, e.Own))
	}
	wantImports := []string{
		"registry map[ref:reg.local/p/a:cache-" + h + " registry.insecure:true] ref=reg.local/p/a:cache-" + h + " own=true",
		"registry map[ref:reg.local/p/a:cache-ci registry.insecure:true] ref=reg.local/p/a:cache-ci own=true",
		"registry map[ref:reg.local/p/a:cache-main registry.insecure:true] ref=reg.local/p/a:cache-main own=true",
		"registry map[ref:reg.local/shared:cache] ref=reg.local/shared:cache own=false",
		"local map[src:/tmp/c] ref=<nil> own=false",
	}
	wantExports := []string{
		"registry map[compression:zstd ignore-error:true image-manifest:true mode:max oci-mediatypes:true ref:reg.local/p/a:cache-" + h + " registry.insecure:true] own=true",
		"local map[dest:/tmp/c ignore-error:true] own=false",
		"registry map[ignore-error:false ref:reg.local/shared:out] own=false",
	}
	if !slices.Equal(imports, wantImports) || !slices.Equal(exports, wantExports) {
		t.Errorf("imports\n%s\nexports\n%s", strings.Join(imports, "\n"), strings.Join(exports, "\n"))
	}
	if j.CacheTo[0].Attrs["ignore-error"] != "" {
		t.Errorf("the compose entry itself was changed: %v", j.CacheTo[0].Attrs)
	}
	// --cache-compression gzip: the own export only; compose's say theirs.
	gz, err := resolve(t, files, Options{Hosts: registry.NewHosts("reg.local"), BaseImages: inputs.AsWritten, CacheCompression: Gzip})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range gz.Jobs[0].Exports {
		if want := map[bool]string{true: "gzip", false: ""}[e.Own]; e.Attrs["compression"] != want {
			t.Errorf("with gzip asked, %s (own %v) says compression %q", e, e.Own, e.Attrs["compression"])
		}
	}

	files["compose.yaml"] = "services:\n  a:\n    build:\n      context: ./a\n" + build
	if p, err = resolve(t, files, Options{BaseImages: inputs.AsWritten}); err != nil {
		t.Fatal(err)
	}
	if got := p.Jobs[0].Imports; len(got) != 2 || got[0].Attrs["ref"] != "reg.local/shared:cache" {
		t.Errorf("a local service imports %v, want compose's cache_from only", got)
	}

	files["compose.yaml"] = "services:\n  a:\n    build:\n      context: ./a\n      cache_from: [\"type=registry,ref=Reg.Local/UPPER:x\"]\n"
	if _, err := resolve(t, files, Options{}); err == nil || !strings.Contains(err.Error(), `service "a"`) || !strings.Contains(err.Error(), "cache_from entry 1: ref") {
		t.Errorf("an invalid cache_from ref: %v", err)
	}
}

func mustCacheEntry(t *testing.T, s string) compose.CacheEntry {
	t.Helper()
	e, err := compose.ParseCacheEntry(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
