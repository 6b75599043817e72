package solver

import (
	"strings"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/remote"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
)

// sourcePolicy pins the solve to the images the hash names: each image
// looked up by tag is converted to the same ref at the digest that was
// hashed, so that a tag moved since cannot reach the image. Nil when
// there is nothing to pin (images hashed as written, or all pinned).
func sourcePolicy(images []inputs.Image, remotes []inputs.Remote) *spb.Policy {
	rules := gitRules(remotes)
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

// gitRules pin each Git source to the commit hashed: the source op's
// identifier (as BuildKit's llb.Git forms it: host/path#ref:subdir)
// converted to the same at the commit. Git contexts are also rewritten
// to the commit in the frontend's options; ADD of a Git URL only this
// way.
func gitRules(remotes []inputs.Remote) []*spb.Rule {
	var rules []*spb.Rule
	for _, r := range remotes {
		if r.Kind != "git" || r.Resolved == "" {
			continue
		}
		from, to, ok := remote.GitSourceIDs(r.URL, r.Resolved)
		if !ok {
			continue
		}
		rules = append(rules, &spb.Rule{
			Action:   spb.PolicyAction_CONVERT,
			Selector: &spb.Selector{Identifier: from, MatchType: spb.MatchType_EXACT},
			Updates:  &spb.Update{Identifier: to},
		})
	}
	return rules
}
