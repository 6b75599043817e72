package solver

import (
	"maps"
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

func FuzzParseCacheEntry(f *testing.F) {
	f.Add("type=registry,ref=a/b:c,mode=max")
	f.Add("a/b")
	f.Add(`"x`)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseCacheEntry(s)
		if err == nil && e.Type == "" {
			t.Fatalf("%q parsed without a type", s)
		}
	})
}
