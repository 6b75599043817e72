package solver

import (
	"strings"
	"testing"

	"github.com/bkcache/bkcache/hash/inputs"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
	digest "github.com/opencontainers/go-digest"
)

// TestSourcePolicy: every image looked up by tag is pinned to the digest
// hashed; refs hashed as written or already pinned are left alone.
func TestSourcePolicy(t *testing.T) {
	d := digest.Digest("sha256:" + strings.Repeat("a", 64))
	p := sourcePolicy([]inputs.Image{
		{Ref: "docker.io/library/alpine:3.20", Digest: d},
		{Ref: "reg.io/base@" + d.String(), Digest: d},
		{Ref: "docker.io/library/node:20"}, // as written
	}, nil)
	if p == nil || len(p.Rules) != 1 {
		t.Fatalf("policy %v, want one rule", p)
	}
	r := p.Rules[0]
	if r.Action != spb.PolicyAction_CONVERT || r.Selector.MatchType != spb.MatchType_EXACT ||
		r.Selector.Identifier != "docker-image://docker.io/library/alpine:3.20" ||
		r.Updates.Identifier != "docker-image://docker.io/library/alpine:3.20@"+d.String() {
		t.Errorf("rule %v", r)
	}
	if sourcePolicy([]inputs.Image{{Ref: "docker.io/library/node:20"}}, nil) != nil {
		t.Error("a policy with nothing to pin")
	}
}

// TestGitRules: Git sources are pinned to the commit hashed, under the
// identifier BuildKit's llb.Git gives them.
func TestGitRules(t *testing.T) {
	c := strings.Repeat("c", 40)
	for _, tc := range []struct{ url, from, to string }{
		{"https://github.com/acme/lib.git#main", "git://github.com/acme/lib.git#main", "git://github.com/acme/lib.git#" + c},
		{"git://127.0.0.1:9418/lib.git#v1:sub", "git://127.0.0.1:9418/lib.git#v1:sub", "git://127.0.0.1:9418/lib.git#" + c + ":sub"},
		{"git@github.com:acme/lib.git", "git://github.com/acme/lib.git", "git://github.com/acme/lib.git#" + c},
	} {
		rules := gitRules([]inputs.Remote{{URL: tc.url, Kind: "git", Resolved: c}})
		if len(rules) != 1 || rules[0].Selector.Identifier != tc.from || rules[0].Updates.Identifier != tc.to {
			t.Errorf("%s: rules %v, want %s -> %s", tc.url, rules, tc.from, tc.to)
		}
	}
	if r := gitRules([]inputs.Remote{{URL: "https://x/y.git#main", Kind: "git"}, {URL: "https://x/f", Kind: "http", Resolved: "etag"}}); len(r) != 0 {
		t.Errorf("rules for sources hashed as written or over HTTP: %v", r)
	}
}
