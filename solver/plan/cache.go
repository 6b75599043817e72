package plan

import (
	"encoding/csv"
	"fmt"
	"os"
	"strings"
)

// CacheEntry is one cache import or export: a BuildKit cache backend
// type and its attributes.
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
// reference meaning type=registry,ref=REF.
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

func parseCacheEntries(key string, entries []string, lookup func(string) (string, bool)) ([]CacheEntry, error) {
	var out []CacheEntry
	for _, s := range entries {
		e, err := ParseCacheEntry(s)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		addCredentials(e, lookup)
		out = append(out, e)
	}
	return out, nil
}

func osLookupEnv(k string) (string, bool) { return os.LookupEnv(k) }

// addCredentials gives the gha and s3 backends what buildx gives them
// from the environment when the entry does not say: the GitHub Actions
// runtime token and cache URLs, and AWS keys. (buildx reads AWS
// credentials through the whole SDK chain; here only from the
// environment: elsewhere buildkitd's own chain applies.)
func addCredentials(e CacheEntry, lookup func(string) (string, bool)) {
	set := func(attr string, envs ...string) {
		if _, ok := e.Attrs[attr]; ok {
			return
		}
		for _, k := range envs {
			if v, ok := lookup(k); ok && v != "" {
				e.Attrs[attr] = v
				return
			}
		}
	}
	switch e.Type {
	case "gha":
		set("token", "ACTIONS_RUNTIME_TOKEN")
		set("url", "ACTIONS_CACHE_URL", "ACTIONS_RESULTS_URL")
		if v, _ := lookup("ACTIONS_CACHE_SERVICE_V2"); e.Attrs["version"] == "2" || (e.Attrs["version"] == "" && isTrue(v)) {
			set("url_v2", "ACTIONS_RESULTS_URL")
		}
	case "s3":
		_, id := e.Attrs["access_key_id"]
		_, secret := e.Attrs["secret_access_key"]
		if id && secret {
			return // the entry's own keys; not mixed with another session's token
		}
		set("access_key_id", "AWS_ACCESS_KEY_ID")
		set("secret_access_key", "AWS_SECRET_ACCESS_KEY")
		set("session_token", "AWS_SESSION_TOKEN")
	}
}

func isTrue(v string) bool {
	switch strings.ToLower(v) {
	case "1", "t", "true":
		return true
	}
	return false
}
