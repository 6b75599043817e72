package prune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bkcache/bkcache/solver/registry"
	"github.com/bkcache/bkcache/solver/report"
	digest "github.com/opencontainers/go-digest"
)

// An ECR lifecycle policy lets ECR expire images itself, where bkcache
// may not delete them. Its rules select images by tag patterns whose one
// wildcard is *, and each rule keeps either the newest N images it
// selects or those pushed within D days. So a policy can apply prune's
// rules to caches only, and with one of --keep and --keep-within:
//
//   - cache tags share the prefix cache-, which a pattern selects; hash
//     tags are 64 hex digits, which no pattern tells from a team's own
//     tags (a git commit, a build number), so hash images are left to
//     prune --yes;
//   - "the newest N, or younger than D" is not one rule, and two rules on
//     the same tags do not combine: the first to select an image decides
//     it.
//
// What prune keeps by a pin (a floating tag's cache, the cache of an image
// a floating tag, --keep-ref or another tag keeps, a cache- tag bkcache
// did not make) comes first in rules that expire nothing, since ECR never
// lets a later rule expire an image an earlier rule selects.

// ECRPolicy is the text of an ECR lifecycle policy
// (aws ecr put-lifecycle-policy --lifecycle-policy-text).
type ECRPolicy struct {
	Rules []ECRRule `json:"rules"`
}

// ECRRule is one rule of an ECRPolicy, as ECR's documentation names its
// fields.
type ECRRule struct {
	RulePriority int          `json:"rulePriority"`
	Description  string       `json:"description"`
	Selection    ECRSelection `json:"selection"`
	Action       ECRAction    `json:"action"`
}

// ECRSelection says which images a rule selects and which of them it
// expires.
type ECRSelection struct {
	TagStatus      string   `json:"tagStatus"`
	TagPatternList []string `json:"tagPatternList"`
	CountType      string   `json:"countType"`
	CountUnit      string   `json:"countUnit,omitempty"`
	CountNumber    int      `json:"countNumber"`
}

// ECRAction is what a rule does to the images it expires.
type ECRAction struct {
	Type string `json:"type"`
}

// Lifecycle is the policy for one repository.
type Lifecycle struct {
	Repository     string    `json:"repository"`
	RepositoryName string    `json:"repositoryName"` // ECR's --repository-name: the path without the registry
	Services       []string  `json:"services"`
	Policy         ECRPolicy `json:"policy"`
}

// The limits ECR sets that the policy must respect.
const (
	// ECRPolicyMax is the longest lifecycle policy text ECR takes
	// (PutLifecyclePolicy's lifecyclePolicyText).
	ECRPolicyMax = 30720
	// ecrHold is the count of a rule that keeps what it selects: the
	// usual "never expire" count in ECR policies (a repository holds fewer
	// images matching one floating pattern than this in practice).
	ecrHold = 9999
)

// ErrECRRules is returned when the rules cannot be one ECR rule.
var ErrECRRules = errors.New("an ECR lifecycle rule keeps either the newest N images or those pushed in the last D days, not both as prune does")

// CheckECR returns an error, saying what to give instead, unless r's
// --keep and --keep-within fit one ECR rule: one of them is 0.
func (r Rules) CheckECR() error {
	if r.Keep > 0 && r.KeepWithin > 0 {
		return fmt.Errorf("%w (--keep %d, --keep-within %s): add --keep-within 0s to keep the newest %d caches, or --keep 0 to keep the caches pushed in the last %s",
			ErrECRRules, r.Keep, r.KeepWithin, r.Keep, dayCount(r.KeepWithin))
	}
	return nil
}

// ECRLifecycle lists t's repository and returns the lifecycle policy that
// expires its caches by rules.
func ECRLifecycle(ctx context.Context, reg *registry.Registry, t Target, rules Rules) (*Lifecycle, error) {
	if err := rules.CheckECR(); err != nil {
		return nil, err
	}
	ms, err := list(ctx, reg, t.Repository)
	if err != nil {
		return nil, err
	}
	return lifecycle(t, ms, rules)
}

// lifecycle is the policy of t's repository, listed as ms.
func lifecycle(t Target, ms map[digest.Digest]*manifest, rules Rules) (*Lifecycle, error) {
	rules.Floating = append(slices.Clone(rules.Floating), t.Floating...)
	l := &Lifecycle{Repository: t.Repository.String(), RepositoryName: t.Repository.RepositoryStr(), Services: t.Services, Policy: ecrPolicy(ms, rules)}
	text, err := json.Marshal(l.Policy)
	if err != nil {
		return nil, err
	}
	if len(text) > ECRPolicyMax {
		return nil, fmt.Errorf("its lifecycle policy would be %d characters, more than ECR's %d: it keeps %d cache- tags one by one (caches that --keep-ref or tags bkcache did not make keep, and cache- tags bkcache did not make); remove those tags, or delete with bkcache prune --yes",
			len(text), ECRPolicyMax, len(l.Policy.Rules)-len(floatingPatterns(rules))-1)
	}
	return l, nil
}

// ecrPolicy is the policy for the repository ms: the rules that keep what
// prune pins, then the one that expires the caches beyond rules' count
// or age.
func ecrPolicy(ms map[digest.Digest]*manifest, rules Rules) ECRPolicy {
	var p ECRPolicy
	add := func(desc, pattern string, sel ECRSelection) {
		sel.TagStatus, sel.TagPatternList = "tagged", []string{pattern}
		p.Rules = append(p.Rules, ECRRule{RulePriority: len(p.Rules) + 1, Description: desc, Selection: sel, Action: ECRAction{Type: "expire"}})
	}
	hold := ECRSelection{CountType: "imageCountMoreThan", CountNumber: ecrHold}
	for _, f := range floatingPatterns(rules) {
		add("bkcache: keep "+f+", a floating tag's cache", f, hold)
	}
	for _, k := range pinnedCaches(ms, rules) {
		add("bkcache: keep "+k.tag+": "+k.why, k.tag, hold)
	}
	desc, sel := expiry(rules)
	add(desc, "cache-*", sel)
	return p
}

// floatingPatterns are the patterns of the floating tags' caches: ci and
// ci-*, the floating tags of every repository, then the values of
// rules.Floating they do not already cover.
func floatingPatterns(rules Rules) []string {
	out := []string{"cache-ci", "cache-ci-*"}
	for _, f := range rules.Floating {
		if !(Rules{}).floating(f) {
			out = append(out, "cache-"+f)
		}
	}
	slices.Sort(out[2:])
	return slices.Compact(out)
}

type pinnedCache struct{ tag, why string }

// pinnedCaches are the manifests the cache rule selects (a cache- tag)
// that prune keeps whatever their age and count, and no floating pattern
// already keeps: each with the cache- tag that selects it and why.
func pinnedCaches(ms map[digest.Digest]*manifest, rules Rules) []pinnedCache {
	pins := rules
	pins.Keep, pins.KeepWithin = 0, 0
	d := decide(ms, pins)
	var out []pinnedCache
	for dg, m := range ms {
		tags := slices.Sorted(slices.Values(m.tags))
		i := slices.IndexFunc(tags, func(t string) bool { return strings.HasPrefix(t, "cache-") })
		if i < 0 || d.items[dg] == nil || d.items[dg].Action != Keep || slices.ContainsFunc(tags, floatingCache(rules)) {
			continue
		}
		out = append(out, pinnedCache{tags[i], pinReason(ms, d, dg, tags[i])})
	}
	slices.SortFunc(out, func(a, b pinnedCache) int { return strings.Compare(a.tag, b.tag) })
	return out
}

// pinReason says why d keeps the cache dg, selected by tag: for the
// cache of a kept image, why the image is kept.
func pinReason(ms map[digest.Digest]*manifest, d *decision, dg digest.Digest, tag string) string {
	if sub := cacheTag.FindStringSubmatch(tag); sub != nil {
		if img := imageTagged(ms, sub[1]); img != nil && d.items[img.digest].Action == Keep {
			return "the cache of image " + report.Short(sub[1]) + " (" + d.items[img.digest].Reason + ")"
		}
	}
	return d.items[dg].Reason
}

// floatingCache reports whether a tag is one floatingPatterns select.
func floatingCache(rules Rules) func(string) bool {
	return func(t string) bool { return strings.HasPrefix(t, "cache-") && rules.floating(t) }
}

// expiry is the rule that expires caches: by count when --keep-within is
// 0, else by age, in whole days rounded up (ECR's unit), so it keeps at
// least what prune keeps.
func expiry(r Rules) (string, ECRSelection) {
	switch {
	case r.KeepWithin > 0:
		days := dayCount(r.KeepWithin)
		desc := fmt.Sprintf("bkcache: expire the caches pushed more than %s ago (--keep-within %s)", days, r.KeepWithin)
		return desc, ECRSelection{CountType: "sinceImagePushed", CountUnit: "days", CountNumber: days.n}
	case r.Keep > 0:
		return fmt.Sprintf("bkcache: keep the newest %d caches (--keep %d)", r.Keep, r.Keep), ECRSelection{CountType: "imageCountMoreThan", CountNumber: r.Keep}
	}
	return "bkcache: keep the newest cache (--keep 0 --keep-within 0s; ECR keeps at least one)", ECRSelection{CountType: "imageCountMoreThan", CountNumber: 1}
}

// days is a whole number of days, at least one.
type days struct{ n int }

func dayCount(d time.Duration) days {
	n := int((d + 24*time.Hour - 1) / (24 * time.Hour))
	return days{max(n, 1)}
}

func (d days) String() string {
	if d.n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", d.n)
}
