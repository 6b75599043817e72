package compose

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/tonistiigi/go-csvvalue"
)

// CacheEntry is one cache_from or cache_to entry: a BuildKit cache
// backend type and its attributes.
type CacheEntry struct {
	Type  string
	Attrs map[string]string
}

// String names the entry for people and manifests: its type and, for
// the backends that have one, its ref. Never its other attributes,
// which may hold credentials.
func (e CacheEntry) String() string {
	if ref := e.Attrs["ref"]; ref != "" {
		return e.Type + ":" + ref
	}
	return e.Type
}

// ParseCacheEntry reads one compose cache_from or cache_to entry, in the
// buildx syntax: a CSV of key=value with a type, or a bare image
// reference meaning type=registry,ref=REF. Its errors never quote the
// entry, whose attributes may hold credentials (an s3 entry's
// secret_access_key): they name it by type and ref, as String does.
func ParseCacheEntry(s string) (CacheEntry, error) {
	e := CacheEntry{Attrs: map[string]string{}}
	s = strings.TrimSpace(s)
	if s == "" {
		return e, fmt.Errorf("empty cache entry")
	}
	if !strings.Contains(s, "=") {
		e.Type = "registry"
		e.Attrs["ref"] = s
		return e, nil
	}
	fields, err := csvvalue.Fields(s, nil)
	if err != nil {
		// csv's errors give a line and column, never the text.
		return e, fmt.Errorf("cache entry %s: %w", nameOf(strings.Split(s, ",")), err)
	}
	for i, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return e, fmt.Errorf("cache entry %s: field %d is not key=value (values are not shown: they may be credentials)", nameOf(fields), i+1)
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
			return e, fmt.Errorf("cache entry %s has no type= (for example type=registry,ref=REPO:TAG)", nameOf(fields))
		}
		e.Type = "registry"
	}
	return e, nil
}

// nameOf names a cache entry from its fields for an error: its type and
// ref where they can be read, quoted, and never another attribute.
func nameOf(fields []string) string {
	var e CacheEntry
	e.Attrs = map[string]string{}
	for _, f := range fields {
		switch k, v, _ := strings.Cut(f, "="); strings.ToLower(strings.TrimSpace(k)) {
		case "type":
			e.Type = v
		case "ref":
			e.Attrs["ref"] = v
		}
	}
	if e.Type == "" {
		e.Type = "(no type)"
	}
	return strconv.Quote(e.String())
}

// parseCacheEntries reads the entries of build.KEY.
func parseCacheEntries(key string, entries []string) ([]CacheEntry, error) {
	var out []CacheEntry
	for i, s := range entries {
		e, err := ParseCacheEntry(s)
		if err != nil {
			return nil, fmt.Errorf("build.%s entry %d: %w", key, i+1, err)
		}
		out = append(out, e)
	}
	return out, nil
}
