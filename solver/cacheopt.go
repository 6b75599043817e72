package solver

import (
	"encoding/csv"
	"fmt"
	"strings"

	"github.com/moby/buildkit/client"
)

// ParseCacheEntry reads one compose cache_from or cache_to entry, in the
// buildx syntax: a CSV of key=value with a type, or a bare image
// reference meaning type=registry,ref=REF.
func ParseCacheEntry(s string) (client.CacheOptionsEntry, error) {
	e := client.CacheOptionsEntry{Attrs: map[string]string{}}
	s = strings.TrimSpace(s)
	if s == "" {
		return e, fmt.Errorf("empty cache entry")
	}
	if !strings.Contains(s, "=") {
		e.Type = "registry"
		e.Attrs["ref"] = s
		return e, nil
	}
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return e, fmt.Errorf("cache entry %q: %w", s, err)
	}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return e, fmt.Errorf("cache entry %q: %q is not key=value", s, f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "type" {
			e.Type = v
			continue
		}
		e.Attrs[k] = v
	}
	if e.Type == "" {
		if _, ok := e.Attrs["ref"]; !ok {
			return e, fmt.Errorf("cache entry %q has no type= (for example type=registry,ref=REPO:TAG)", s)
		}
		e.Type = "registry"
	}
	return e, nil
}
