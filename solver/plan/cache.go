package plan

import (
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"

	"github.com/bkcache/bkcache/solver/registry"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/tonistiigi/go-csvvalue"
)

// CacheEntry is one cache import or export: a BuildKit cache backend
// type and its attributes.
type CacheEntry struct {
	Type  string
	Attrs map[string]string
	// Ref is a registry cache's ref, parsed once; nil for the other
	// backends.
	Ref name.Reference
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

func parseCacheEntries(key string, entries []string, hosts registry.Hosts, lookup func(string) (string, bool)) ([]CacheEntry, error) {
	var out []CacheEntry
	for i, s := range entries {
		e, err := ParseCacheEntry(s)
		if err != nil {
			return nil, fmt.Errorf("%s entry %d: %w", key, i+1, err)
		}
		if ref, ok := e.Attrs["ref"]; ok && e.Type == "registry" {
			if e.Ref, err = hosts.Reference(ref); err != nil {
				return nil, fmt.Errorf("%s entry %d: ref %q is not a valid image reference: %w", key, i+1, ref, err)
			}
		}
		addCredentials(e, lookup)
		out = append(out, e)
	}
	return out, nil
}

// ownCache is the registry cache entry of one of bkcache's own cache
// tags, marked insecure for BuildKit where hosts name its registry so.
func ownCache(t registry.Tag, hosts registry.Hosts, attrs map[string]string) CacheEntry {
	attrs["ref"] = t.String()
	if hosts.Named(t.RegistryStr()) {
		attrs["registry.insecure"] = "true"
	}
	return CacheEntry{Type: "registry", Attrs: attrs, Ref: t.Tag}
}

// settleCaches lists the caches a solve of j imports, in order (R:cache-H,
// R:cache-F and the fallbacks, none for a local service, then compose's
// cache_from), and those a pushed one exports: R:cache-H with every
// stage, then compose's cache_to. A failed cache export must not cost
// the image: BuildKit pushes it anyway and reports the export's error on
// its step, which becomes a warning (or, when required, a failure).
func (j *Job) settleCaches(hosts registry.Hosts) {
	j.Imports, j.Exports = nil, nil
	if !j.Local {
		for _, t := range append([]registry.Tag{j.Refs.Cache, j.Refs.CacheFloat}, j.Refs.Fallbacks...) {
			j.Imports = append(j.Imports, ownCache(t, hosts, map[string]string{}))
		}
	}
	j.Imports = append(j.Imports, j.CacheFrom...)
	j.Exports = []CacheEntry{ownCache(j.Refs.Cache, hosts, map[string]string{"mode": "max", "ignore-error": "true"})}
	for _, e := range j.CacheTo {
		e.Attrs = maps.Clone(e.Attrs)
		if _, set := e.Attrs["ignore-error"]; !set {
			e.Attrs["ignore-error"] = "true"
		}
		j.Exports = append(j.Exports, e)
	}
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
