package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/registry"
)

func TestParseCacheEntry(t *testing.T) {
	for _, tc := range []struct {
		in    string
		typ   string
		attrs map[string]string
		err   bool
	}{
		{"reg/app:cache", "registry", map[string]string{"ref": "reg/app:cache"}, false},
		{"type=registry,ref=reg/app:c,mode=max", "registry", map[string]string{"ref": "reg/app:c", "mode": "max"}, false},
		{"ref=reg/app:c", "registry", map[string]string{"ref": "reg/app:c"}, false},
		{"type=local,src=/tmp/c", "local", map[string]string{"src": "/tmp/c"}, false},
		{`type=gha,"scope=a,b"`, "gha", map[string]string{"scope": "a,b"}, false},
		{"type=inline", "inline", map[string]string{}, false},
		{"", "", nil, true},
		{"mode=max", "", nil, true},
		{"type=registry,junk", "", nil, true},
		{`type="unterminated`, "", nil, true},
	} {
		e, err := ParseCacheEntry(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("%q: err = %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if !tc.err && (e.Type != tc.typ || !maps.Equal(e.Attrs, tc.attrs)) {
			t.Errorf("%q: got %s %v", tc.in, e.Type, e.Attrs)
		}
	}
}

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
		es, err := parseCacheEntries("cache_from", []string{tc.in}, registry.NewHosts(), lookup)
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
	es, _ := parseCacheEntries("cache_to", []string{"type=gha"}, registry.NewHosts(), lookup)
	if es[0].Attrs["url_v2"] != "https://results/" {
		t.Errorf("ACTIONS_CACHE_SERVICE_V2: attrs %v", es[0].Attrs)
	}
}

// FuzzParseCacheEntry: whatever parses has a type, and prints as its
// type, with its ref when it has one.
func FuzzParseCacheEntry(f *testing.F) {
	f.Add("type=registry,ref=a/b:c,mode=max")
	f.Add("a/b")
	f.Add(`"x`)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseCacheEntry(s)
		if err != nil {
			return
		}
		if e.Type == "" {
			t.Fatalf("%q parsed without a type", s)
		}
		want := e.Type
		if ref := e.Attrs["ref"]; ref != "" {
			want += ":" + ref
		}
		if e.String() != want {
			t.Fatalf("%q prints as %q, want %q", s, e.String(), want)
		}
	})
}

// TestCacheEntryErrorsHideSecrets: a malformed entry is named by its
// type and ref, never echoed: its other attributes may be credentials.
func TestCacheEntryErrorsHideSecrets(t *testing.T) {
	for _, s := range []string{
		"type=s3,region=eu,secret_access_key=SUPERSECRET123,bucket",
		"type=s3,secret_access_key=SUPERSECRET123,\"bucket",
		"secret_access_key=SUPERSECRET123,bucket=b",
		"type=registry,ref=r.io/a:cache,SUPERSECRET123",
		"SUPERSECRET123=,type=gha,token",
	} {
		_, err := parseCacheEntries("cache_from", []string{"r.io/ok:cache", s}, registry.NewHosts(), func(string) (string, bool) { return "", false })
		if err == nil {
			t.Errorf("%q: no error", s)
			continue
		}
		if strings.Contains(err.Error(), "SUPERSECRET123") || !strings.Contains(err.Error(), "cache_from entry 2") {
			t.Errorf("%q: error %q echoes a secret or does not say which entry", s, err)
		}
	}
}

// TestJobCaches: a job's caches are decided once, typed: R:cache-H,
// R:cache-F and the fallbacks first (marked insecure for a registry the
// hosts name so), then compose's cache_from, each registry one with its
// ref parsed; a pushed solve exports R:cache-H with every stage, then
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
		imports = append(imports, fmt.Sprintf("%s %v ref=%v", e.Type, e.Attrs, e.Ref))
	}
	for _, e := range j.Exports {
		exports = append(exports, fmt.Sprintf("%s %v", e.Type, e.Attrs))
	}
	wantImports := []string{
		"registry map[ref:reg.local/p/a:cache-" + h + " registry.insecure:true] ref=reg.local/p/a:cache-" + h,
		"registry map[ref:reg.local/p/a:cache-ci registry.insecure:true] ref=reg.local/p/a:cache-ci",
		"registry map[ref:reg.local/p/a:cache-main registry.insecure:true] ref=reg.local/p/a:cache-main",
		"registry map[ref:reg.local/shared:cache] ref=reg.local/shared:cache",
		"local map[src:/tmp/c] ref=<nil>",
	}
	wantExports := []string{
		"registry map[ignore-error:true mode:max ref:reg.local/p/a:cache-" + h + " registry.insecure:true]",
		"local map[dest:/tmp/c ignore-error:true]",
		"registry map[ignore-error:false ref:reg.local/shared:out]",
	}
	if !slices.Equal(imports, wantImports) || !slices.Equal(exports, wantExports) {
		t.Errorf("imports\n%s\nexports\n%s", strings.Join(imports, "\n"), strings.Join(exports, "\n"))
	}
	if j.CacheTo[0].Attrs["ignore-error"] != "" {
		t.Errorf("the compose entry itself was changed: %v", j.CacheTo[0].Attrs)
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
