package prune

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

// checkECRDocumented fails unless p keeps the constraints ECR's
// documentation sets on a lifecycle policy ("Lifecycle policy
// properties", "Lifecycle policy evaluation rules", PutLifecyclePolicy).
func checkECRDocumented(t *testing.T, p ECRPolicy) {
	t.Helper()
	text, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(text) < 100 || len(text) > ECRPolicyMax {
		t.Errorf("policy text of %d characters; ECR takes 100 to %d", len(text), ECRPolicyMax)
	}
	if len(p.Rules) == 0 {
		t.Fatal("no rules")
	}
	priorities, patterns := map[int]bool{}, map[string]bool{}
	for i, r := range p.Rules {
		s := r.Selection
		if r.RulePriority < 1 || priorities[r.RulePriority] {
			t.Errorf("rule %d: priority %d is not unique and positive", i, r.RulePriority)
		}
		priorities[r.RulePriority] = true
		if s.TagStatus != "tagged" || len(s.TagPatternList) == 0 {
			t.Errorf("rule %d: tagStatus %q with patterns %v; bkcache's rules select tagged images by pattern", i, s.TagStatus, s.TagPatternList)
		}
		key := strings.Join(s.TagPatternList, "\x00")
		if patterns[key] {
			t.Errorf("rule %d: patterns %v repeat another rule's; ECR wants a unique set per rule", i, s.TagPatternList)
		}
		patterns[key] = true
		for _, pat := range s.TagPatternList {
			if pat == "" || strings.Count(pat, "*") > 4 {
				t.Errorf("rule %d: pattern %q: empty or over 4 wildcards", i, pat)
			}
		}
		switch {
		case s.CountType == "imageCountMoreThan" && s.CountUnit == "":
		case s.CountType == "sinceImagePushed" && s.CountUnit == "days":
		default:
			t.Errorf("rule %d: countType %q with countUnit %q", i, s.CountType, s.CountUnit)
		}
		if s.CountNumber < 1 {
			t.Errorf("rule %d: countNumber %d; ECR wants at least 1", i, s.CountNumber)
		}
		if r.Action.Type != "expire" {
			t.Errorf("rule %d: action %q", i, r.Action.Type)
		}
	}
}

// checkECRSafe fails unless p can expire only caches, keeps every cache
// prune keeps whatever its count and age (the pins), and holds no cache
// that prune would delete by the pins alone.
func checkECRSafe(t *testing.T, p ECRPolicy, ms map[digest.Digest]*manifest, rules Rules) {
	t.Helper()
	last := len(p.Rules) - 1
	for i, r := range p.Rules {
		for _, pat := range r.Selection.TagPatternList {
			if !strings.HasPrefix(pat, "cache-") {
				t.Errorf("rule %d selects %q, which reaches tags other than caches", i, pat)
			}
		}
		if i < last && (r.Selection.CountType != "imageCountMoreThan" || r.Selection.CountNumber < ecrHold) {
			t.Errorf("rule %d (%s) expires: only the last may", i, r.Description)
		}
	}
	held := func(tags []string) bool {
		for _, r := range p.Rules[:last] {
			for _, tag := range tags {
				if ok, _ := path.Match(r.Selection.TagPatternList[0], tag); ok {
					return true
				}
			}
		}
		return false
	}
	pins := rules
	pins.Keep, pins.KeepWithin = 0, 0
	d := decide(ms, pins)
	for dg, m := range ms {
		if !slices.ContainsFunc(m.tags, func(t string) bool { return strings.HasPrefix(t, "cache-") }) {
			continue
		}
		pinned := d.items[dg].Action == Keep
		if got := held(m.tags); got != pinned {
			t.Errorf("manifest %v: held by the policy %v, but prune keeps it by a pin: %v (%s)", m.tags, got, pinned, d.items[dg].Reason)
		}
	}
}

func holds(p ECRPolicy) []string {
	var out []string
	for _, r := range p.Rules[:len(p.Rules)-1] {
		out = append(out, r.Selection.TagPatternList...)
	}
	return out
}

var ecrRepo, _ = name.NewRepository("123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/app")

// TestECRPolicy: what the policy holds, and how it expires the rest.
func TestECRPolicy(t *testing.T) {
	now := t0.Add(7 * time.Hour)
	floating := []string{"cache-ci", "cache-ci-*"}
	for _, tc := range []struct {
		name   string
		edit   func(map[digest.Digest]*manifest)
		rules  Rules
		holds  []string
		expire ECRSelection
		desc   string // what the expiring rule's description says
	}{
		{"the floating tags' caches", nil, Rules{Keep: 2, Now: now}, floating,
			ECRSelection{CountType: "imageCountMoreThan", CountNumber: 2}, "keep the newest 2 caches (--keep 2)"},
		{"a ci-feature image holds its cache", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(1))].tags = append(ms[dg("image"+hash(1))].tags, "ci-feature")
		}, Rules{Keep: 2, Now: now}, append(floating, "cache-"+hash(1)), ECRSelection{CountType: "imageCountMoreThan", CountNumber: 2}, "keep the newest 2 caches (--keep 2)"},
		{"--keep-ref by tag and by digest", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(2))].tags = append(ms[dg("image"+hash(2))].tags, "release-1")
		}, Rules{Keep: 2, KeepRefs: []string{"release-1", dg("cache" + hash(3)).String()}, Now: now},
			append(floating, "cache-"+hash(2), "cache-"+hash(3)), ECRSelection{CountType: "imageCountMoreThan", CountNumber: 2}, "keep the newest 2 caches (--keep 2)"},
		{"cache- tags and tags on caches bkcache did not make", func(ms map[digest.Digest]*manifest) {
			ms[dg("user")] = &manifest{digest: dg("user"), tags: []string{"cache-warm"}}
			ms[dg("cache"+hash(4))].tags = append(ms[dg("cache"+hash(4))].tags, "warm")
		}, Rules{Keep: 2, Now: now}, append(floating, "cache-"+hash(4), "cache-warm"), ECRSelection{CountType: "imageCountMoreThan", CountNumber: 2}, "keep the newest 2 caches (--keep 2)"},
		{"an image with no bkcache manifest holds its cache", func(ms map[digest.Digest]*manifest) {
			ms[dg("image"+hash(5))].attached = false
		}, Rules{Keep: 2, Now: now}, append(floating, "cache-"+hash(5)), ECRSelection{CountType: "imageCountMoreThan", CountNumber: 2}, "keep the newest 2 caches (--keep 2)"},
		{"--ci-tag values, once, and ci-* inside cache-ci-*", nil, Rules{Keep: 3, Floating: []string{"nightly", "ci-app", "nightly", "ci"}, Now: now},
			append(floating, "cache-nightly"), ECRSelection{CountType: "imageCountMoreThan", CountNumber: 3}, "keep the newest 3 caches"},
		{"--keep-within in whole days, rounded up", nil, Rules{KeepWithin: 36 * time.Hour, Now: now}, floating,
			ECRSelection{CountType: "sinceImagePushed", CountUnit: "days", CountNumber: 2}, "pushed more than 2 days ago (--keep-within 36h0m0s)"},
		{"--keep-within under a day", nil, Rules{KeepWithin: time.Hour, Now: now}, floating,
			ECRSelection{CountType: "sinceImagePushed", CountUnit: "days", CountNumber: 1}, "pushed more than 1 day ago"},
		{"keep nothing: ECR's least", nil, Rules{Now: now}, floating,
			ECRSelection{CountType: "imageCountMoreThan", CountNumber: 1}, "ECR keeps at least one"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms := repoOf(6)
			if tc.edit != nil {
				tc.edit(ms)
			}
			l, err := lifecycle(Target{Repository: ecrRepo, Services: []string{"app"}, Floating: []string{"ci"}}, ms, tc.rules)
			if err != nil {
				t.Fatal(err)
			}
			p := l.Policy
			checkECRDocumented(t, p)
			checkECRSafe(t, p, ms, Rules{KeepRefs: tc.rules.KeepRefs, Floating: append(tc.rules.Floating, "ci")})
			if got := holds(p); !slices.Equal(got, tc.holds) {
				t.Errorf("holds %v, want %v", got, tc.holds)
			}
			exp := p.Rules[len(p.Rules)-1].Selection
			tc.expire.TagStatus, tc.expire.TagPatternList = "tagged", []string{"cache-*"}
			if !slices.Equal(exp.TagPatternList, tc.expire.TagPatternList) || exp.CountType != tc.expire.CountType || exp.CountUnit != tc.expire.CountUnit || exp.CountNumber != tc.expire.CountNumber {
				t.Errorf("the expiring rule selects %+v, want %+v", exp, tc.expire)
			}
			if d := p.Rules[len(p.Rules)-1].Description; !strings.Contains(d, tc.desc) {
				t.Errorf("the expiring rule says %q, want it to say %q", d, tc.desc)
			}
			if l.RepositoryName != "shop/app" {
				t.Errorf("repositoryName %q", l.RepositoryName)
			}
		})
	}
}

// TestCheckECR: --keep and --keep-within together are refused, saying
// what to give instead; either alone fits.
func TestCheckECR(t *testing.T) {
	err := Rules{Keep: 10, KeepWithin: 24 * time.Hour}.CheckECR()
	if !errors.Is(err, ErrECRRules) || !strings.Contains(err.Error(), "--keep-within 0s to keep the newest 10") || !strings.HasSuffix(err.Error(), "--keep 0 to keep the caches pushed in the last 1 day") {
		t.Errorf("both: %v", err)
	}
	for _, r := range []Rules{{Keep: 10}, {KeepWithin: time.Hour}, {}} {
		if err := r.CheckECR(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
}

// TestECRPolicyTooLong: a policy over ECR's limit is an error naming why.
func TestECRPolicyTooLong(t *testing.T) {
	ms := repoOf(2)
	for i := range 400 {
		m := &manifest{digest: dg("user" + hash(i)), tags: []string{"cache-user-" + hash(i)}}
		ms[m.digest] = m
	}
	_, err := lifecycle(Target{Repository: ecrRepo}, ms, Rules{Keep: 1})
	if err == nil || !strings.Contains(err.Error(), "more than ECR's 30720") || !strings.Contains(err.Error(), "keeps 400 cache- tags one by one") {
		t.Errorf("err = %v", err)
	}
}

// TestECRGolden: the policy's JSON stays as the README shows it.
// Regenerate on purpose: go test ./solver/prune -regen-golden.
func TestECRGolden(t *testing.T) {
	ms := repoOf(3)
	ms[dg("image"+hash(1))].tags = append(ms[dg("image"+hash(1))].tags, "ci-feature")
	l, err := lifecycle(Target{Repository: ecrRepo, Services: []string{"app"}, Floating: []string{"ci"}}, ms, Rules{Keep: 2, Floating: []string{"nightly"}})
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "ecr-lifecycle.json", []*Lifecycle{l})
}

// golden compares v's indented JSON with testdata/file, or rewrites the
// file under -regen-golden.
func golden(t *testing.T, file string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	p := filepath.Join("testdata", file)
	if *regen {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (regenerate with -regen-golden)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed; if on purpose, run go test ./solver/prune -regen-golden and update the README\ngot:\n%s", file, got)
	}
}

// TestECRLifecycle lists a real (in-process) registry without the
// referrers API: the fallback tags, images and user tags stay out of
// every pattern; the cache release-1's image holds is held.
func TestECRLifecycle(t *testing.T) {
	s := rt.Serve(t, false)
	reg := registry.New(registry.Options{})
	ctx := context.Background()
	repo, _ := name.NewRepository(s.Host + "/p/app")
	imgs, caches := pushBuilds(t, reg, repo, 3)
	tagAt(t, repo, "ci", imgs[2])
	tagAt(t, repo, "cache-ci", caches[2])
	tagAt(t, repo, "release-1", imgs[0])
	target := Target{Repository: repo, Services: []string{"app"}, Floating: []string{"ci"}}
	if _, err := ECRLifecycle(ctx, reg, target, Rules{Keep: 1, KeepWithin: time.Hour}); !errors.Is(err, ErrECRRules) {
		t.Errorf("--keep 1 --keep-within 1h: %v", err)
	}
	l, err := ECRLifecycle(ctx, reg, target, Rules{Keep: 1, KeepRefs: []string{"release-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := holds(l.Policy), []string{"cache-ci", "cache-ci-*", "cache-" + hash(1)}; !slices.Equal(got, want) {
		t.Errorf("holds %v, want %v", got, want)
	}
	ms, err := list(ctx, reg, repo)
	if err != nil {
		t.Fatal(err)
	}
	checkECRSafe(t, l.Policy, ms, Rules{KeepRefs: []string{"release-1"}, Floating: []string{"ci"}})
	if l.Repository != repo.String() || l.RepositoryName != "p/app" {
		t.Errorf("repository %q, name %q", l.Repository, l.RepositoryName)
	}
}

// ecrVocabulary is the tags FuzzECRPolicy builds repositories from:
// bkcache's own, floating ones, and a team's own (some cache- and hash-like).
var ecrVocabulary = []string{
	"ci", "ci-x", "nightly", "cache-ci", "cache-ci-x", "cache-nightly", "cache-ci-", "cache-",
	"cache-warm", "warm", "release-1", "latest", "abc123", "cache-abc123", "sha256-" + hash(1),
}

// fuzzRepo makes a repository from spec, three bytes a manifest: its
// tag, a second tag, and its build time (the low bit: no bkcache
// manifest attached). Each tag lands on one manifest at most.
func fuzzRepo(spec []byte) map[digest.Digest]*manifest {
	ms := map[digest.Digest]*manifest{}
	used := map[string]bool{}
	tag := func(b byte) string {
		if n := int(b) % (len(ecrVocabulary) + 16); n < len(ecrVocabulary) {
			return ecrVocabulary[n]
		} else if n-len(ecrVocabulary) < 8 {
			return hash(n - len(ecrVocabulary))
		} else {
			return "cache-" + hash(n-len(ecrVocabulary)-8)
		}
	}
	for i := 0; i+2 < len(spec) && i < 3*40; i += 3 {
		m := &manifest{digest: dg(string(spec[:i+3])), created: t0.Add(time.Duration(spec[i+2]>>1) * time.Hour), attached: spec[i+2]&1 == 0}
		for _, b := range spec[i : i+2] {
			if t := tag(b); !used[t] {
				used[t] = true
				m.tags = append(m.tags, t)
			}
		}
		if len(m.tags) > 0 {
			ms[m.digest] = m
		}
	}
	return ms
}

// FuzzECRPolicy: for any repository and rules the policy keeps ECR's
// documented constraints, can expire nothing but caches, holds every
// cache prune keeps by a pin and no other, and expires by --keep or
// --keep-within, whichever is given.
func FuzzECRPolicy(f *testing.F) {
	f.Add([]byte("\x00\x10\x04\x03\x18\x06\x05\x19\x08"), uint8(2), uint16(0), uint8(1))
	f.Add([]byte("\x11\x1a\x00\x08\x22\x03\x0b\x0b\x0b\x09\x0a\x02"), uint8(0), uint16(36), uint8(6))
	f.Fuzz(func(t *testing.T, spec []byte, keep uint8, withinHours uint16, refs uint8) {
		ms := fuzzRepo(spec)
		rules := Rules{Keep: int(keep % 16), KeepWithin: time.Duration(withinHours%500) * time.Hour, Now: t0.Add(200 * time.Hour)}
		if refs&1 != 0 {
			rules.Floating = append(rules.Floating, "nightly")
		}
		if refs&2 != 0 {
			rules.KeepRefs = append(rules.KeepRefs, "release-1")
		}
		if refs&4 != 0 && len(ms) > 0 {
			rules.KeepRefs = append(rules.KeepRefs, slices.Sorted(maps.Keys(ms))[0].String())
		}
		if err := rules.CheckECR(); (err != nil) != (rules.Keep > 0 && rules.KeepWithin > 0) {
			t.Fatalf("CheckECR(%+v) = %v", rules, err)
		} else if err != nil {
			return
		}
		target := Target{Repository: ecrRepo, Floating: []string{"ci"}}
		l, err := lifecycle(target, ms, rules)
		if err != nil {
			t.Fatal(err)
		}
		checkECRDocumented(t, l.Policy)
		rules.Floating = append(rules.Floating, target.Floating...)
		checkECRSafe(t, l.Policy, ms, rules)
		exp := l.Policy.Rules[len(l.Policy.Rules)-1].Selection
		switch {
		case rules.KeepWithin > 0:
			if exp.CountType != "sinceImagePushed" || time.Duration(exp.CountNumber)*24*time.Hour < rules.KeepWithin || time.Duration(exp.CountNumber-1)*24*time.Hour >= rules.KeepWithin {
				t.Errorf("--keep-within %s: expires %+v", rules.KeepWithin, exp)
			}
		case exp.CountType != "imageCountMoreThan" || exp.CountNumber != max(rules.Keep, 1):
			t.Errorf("--keep %d: expires %+v", rules.Keep, exp)
		}
	})
}

// TestECRLifecycleTargetFloating: the floating tags the plan gave the
// target (services sharing a repository each get TAG-SERVICE, here
// main-api from --ci-tag main) are held like --ci-tag values; and a
// registry that fails while prune lists the repository is an error, not
// a policy made from nothing.
func TestECRLifecycleTargetFloating(t *testing.T) {
	p, reg, direct, repo := faultyRepo(t)
	ctx := context.Background()
	imgs, caches := pushBuilds(t, reg, direct, 2)
	tagAt(t, direct, "main-api", imgs[0])
	tagAt(t, direct, "cache-main-api", caches[0])
	target := Target{Repository: repo, Services: []string{"api"}, Floating: []string{"main-api"}}
	l, err := ECRLifecycle(ctx, reg, target, Rules{Keep: 1})
	if err != nil {
		t.Fatal(err)
	}
	if got := holds(l.Policy); !slices.Contains(got, "cache-main-api") {
		t.Errorf("holds %v: not the target's floating cache-main-api", got)
	}
	p.Inject(faultproxy.Fault{Method: "GET", Path: "/tags/list$", Status: 401, Code: "UNAUTHORIZED"})
	if l, err := ECRLifecycle(ctx, reg, target, Rules{Keep: 1}); err == nil {
		t.Errorf("a registry refusing the listing gave a policy: %+v", l)
	}
}

// TestFloatingPatternsOrder: the policy lists ci's patterns first, then
// the custom floating tags sorted, each once, so that the same rules
// always write the same policy.
func TestFloatingPatternsOrder(t *testing.T) {
	got := floatingPatterns(Rules{Floating: []string{"zz", "aa", "ci-x", "zz"}})
	if want := []string{"cache-ci", "cache-ci-*", "cache-aa", "cache-zz"}; !slices.Equal(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

// TestPinnedCacheReasons: a cache kept for its kept image gives the
// image's reason; one kept for itself (--keep-ref), whose image is gone
// or not kept, gives its own.
func TestPinnedCacheReasons(t *testing.T) {
	ms := repoOf(3)
	ms[dg("image"+hash(1))].tags = append(ms[dg("image"+hash(1))].tags, "release-1")
	ms[dg("orphan")] = &manifest{digest: dg("orphan"), tags: []string{"cache-" + hash(99)}}
	rules := Rules{KeepRefs: []string{"cache-" + hash(99), "cache-" + hash(2)}, Now: t0.Add(7 * time.Hour)}
	got := map[string]string{}
	for _, p := range pinnedCaches(ms, rules) {
		got[p.tag] = p.why
	}
	for tag, want := range map[string]string{
		"cache-" + hash(1):  "the cache of image " + hash(1)[:12] + " (tagged release-1, which bkcache does not make)",
		"cache-" + hash(2):  "named by --keep-ref cache-" + hash(2),
		"cache-" + hash(99): "named by --keep-ref cache-" + hash(99),
	} {
		if got[tag] != want {
			t.Errorf("%s: %q, want %q", tag, got[tag], want)
		}
	}
}
