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
	})
	if p == nil || len(p.Rules) != 1 {
		t.Fatalf("policy %v, want one rule", p)
	}
	r := p.Rules[0]
	if r.Action != spb.PolicyAction_CONVERT || r.Selector.MatchType != spb.MatchType_EXACT ||
		r.Selector.Identifier != "docker-image://docker.io/library/alpine:3.20" ||
		r.Updates.Identifier != "docker-image://docker.io/library/alpine:3.20@"+d.String() {
		t.Errorf("rule %v", r)
	}
	if sourcePolicy([]inputs.Image{{Ref: "docker.io/library/node:20"}}) != nil {
		t.Error("a policy with nothing to pin")
	}
}
