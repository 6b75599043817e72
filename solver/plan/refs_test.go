package plan

import (
	"strings"
	"testing"

	"github.com/bkcache/bkcache/solver/registry"
	"github.com/google/go-containerregistry/pkg/name"
)

// FuzzRefs: for any repository and hash tag NewRefs accepts, every ref
// prints as repository:tag, parses back (as go-containerregistry, and so
// BuildKit, reads it) to the same registry, repository and tag, and all
// of them are in one repository.
func FuzzRefs(f *testing.F) {
	for _, s := range [][2]string{
		{"reg.local/demo/app", "ci"}, {"localhost:5000/a", "ci-main"}, {"127.0.0.1:5000/x/y/z", "1.2"},
		{"app", "latest"}, {"library/app", "_x"}, {"[::1]:5000/a", "t"}, {"Reg/App", "ci"}, {"a:b:c", "d"},
		{"reg.local:/a", "x"}, {"r.io/a@sha256:00", "ci"}, {"0", "/0"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, repo, tag string) {
		refs, err := NewRefs(registry.NewHosts(), repo, tag, "ci", "ci-main")
		if err != nil {
			return
		}
		for _, r := range append([]registry.Tag{refs.Image, refs.Floating, refs.Cache, refs.CacheFloat}, refs.Fallbacks...) {
			n, err := name.NewTag(r.String())
			if err != nil {
				t.Fatalf("accepted %q, %q but %q does not parse: %v", repo, tag, r, err)
			}
			if n.Context() != refs.Repository || n.TagStr() != r.TagStr() || r.String() != repo+":"+r.TagStr() {
				t.Fatalf("%q parses to %s in %s, want tag %s in %s", r, n.TagStr(), n.Context(), r.TagStr(), refs.Repository)
			}
		}
		if refs.Image.TagStr() != tag || refs.Cache.TagStr() != "cache-"+tag {
			t.Fatalf("R:H %s, R:cache-H %s for tag %q", refs.Image, refs.Cache, tag)
		}
	})
}

// TestNewRefsRejects: what the tag grammar refuses (found by the fuzz
// target in its first form: "/0" would parse as repository path).
func TestNewRefsRejects(t *testing.T) {
	for _, tc := range []struct {
		repo, tag string
		ok        bool
	}{
		{"reg.local/demo/app", "ci", true},
		{"localhost:5000/a", "cache-" + strings.Repeat("a", 64), true},
		{"app", "v1.2_x-y", true},
		{"0", "/0", false},
		{"reg/app", ".hidden", false},
		{"reg/app", "-x", false},
		{"reg/app", strings.Repeat("t", 129), false},
		{"reg/App", "ci", false},
		{"reg/app ", "ci", false},
	} {
		if _, err := NewRefs(registry.NewHosts(), tc.repo, tc.tag, "ci"); (err == nil) != tc.ok {
			t.Errorf("NewRefs(%q, %q) = %v, want ok=%v", tc.repo, tc.tag, err, tc.ok)
		}
	}
}
