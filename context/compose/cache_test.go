package compose

import (
	"maps"
	"strings"
	"testing"
)

func TestParseCacheEntry(t *testing.T) {
	for _, tc := range []struct {
		in    string
		typ   string
		attrs map[string]string
		err   bool
	}{
		{"reg/app:cache", "registry", map[string]string{"ref": "reg/app:cache"}, false},
		{" reg/app:cache\n", "registry", map[string]string{"ref": "reg/app:cache"}, false},
		{" TYPE =gha,Scope=x", "gha", map[string]string{"scope": "x"}, false},
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
	for _, tc := range []struct{ entry, names string }{
		{"type=s3,region=eu,secret_access_key=SUPERSECRET123,bucket", `cache entry "s3": field 4 is not key=value`},
		{"type=s3,secret_access_key=SUPERSECRET123,\"bucket", `cache entry "s3": parse error on line 1, column`},
		{"secret_access_key=SUPERSECRET123,bucket=b", `cache entry "(no type)"`},
		{"type=registry,ref=r.io/a:cache,SUPERSECRET123", `cache entry "registry:r.io/a:cache"`},
		{"SUPERSECRET123=,type=gha,token", `cache entry "gha"`},
	} {
		_, err := parseCacheEntries("cache_from", []string{"r.io/ok:cache", tc.entry})
		if err == nil {
			t.Errorf("%q: no error", tc.entry)
			continue
		}
		if strings.Contains(err.Error(), "SUPERSECRET123") || !strings.Contains(err.Error(), "build.cache_from entry 2: "+tc.names) {
			t.Errorf("%q: error %q echoes a secret, or does not name the entry by %s", tc.entry, err, tc.names)
		}
	}
}
