package solver

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/google/go-containerregistry/pkg/name"
)

// CheckService reports what in a service's build section bkcache or
// BuildKit would refuse, so that a run fails on it before it connects
// to anything or builds any other service.
func CheckService(svc *compose.Service) error {
	for _, s := range svc.CacheFrom {
		if _, err := ParseCacheEntry(s); err != nil {
			return fmt.Errorf("service %q: cache_from: %w", svc.Name, err)
		}
	}
	for _, s := range svc.CacheTo {
		if _, err := ParseCacheEntry(s); err != nil {
			return fmt.Errorf("service %q: cache_to: %w", svc.Name, err)
		}
	}
	if _, err := networkMode(svc.Network); err != nil {
		return fmt.Errorf("service %q: %w", svc.Name, err)
	}
	for _, t := range svc.Tags {
		if _, err := name.NewTag(t); err != nil {
			return fmt.Errorf("service %q: build.tags: %q is not a valid image reference: %w", svc.Name, t, err)
		}
	}
	return nil
}

// CheckRefs reports an image repository, or a tag bkcache would write
// in it, that is not a valid reference.
func CheckRefs(repository string, tags ...string) error {
	if _, err := name.NewRepository(repository); err != nil {
		return fmt.Errorf("image repository %q is not valid (lowercase letters, digits and . _ - / only, with an optional registry host): %w", repository, err)
	}
	for _, t := range tags {
		// Checked on its own: appended to the repository, a "tag" such
		// as "/x" would parse as more repository path instead.
		if !tagRE().MatchString(t) {
			return fmt.Errorf("tag %q for %s is not valid (letters, digits, . _ -, at most 128 characters, not starting with . or -)", t, repository)
		}
		if _, err := name.NewTag(repository + ":" + t); err != nil {
			return fmt.Errorf("tag %q for %s: %w", t, repository, err)
		}
	}
	return nil
}

// tagRE is the OCI distribution spec's tag grammar. Like the other
// regular expressions here, it is compiled on first use, not at every
// start of every command (its {0,127} alone is over a thousand
// allocations).
var tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) })
