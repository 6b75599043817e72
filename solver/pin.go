package solver

import (
	"strings"

	"github.com/bkcache/bkcache/hash/inputs"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
)

// sourcePolicy pins the solve to the images the hash names: each image
// looked up by tag is converted to the same ref at the digest that was
// hashed, so that a tag moved since cannot reach the image. Nil when
// there is nothing to pin (images hashed as written, or all pinned).
func sourcePolicy(images []inputs.Image) *spb.Policy {
	var rules []*spb.Rule
	for _, im := range images {
		if im.Digest == "" || strings.Contains(im.Ref, "@") {
			continue
		}
		rules = append(rules, &spb.Rule{
			Action:   spb.PolicyAction_CONVERT,
			Selector: &spb.Selector{Identifier: "docker-image://" + im.Ref, MatchType: spb.MatchType_EXACT},
			Updates:  &spb.Update{Identifier: "docker-image://" + im.Ref + "@" + im.Digest.String()},
		})
	}
	if len(rules) == 0 {
		return nil
	}
	return &spb.Policy{Rules: rules}
}
