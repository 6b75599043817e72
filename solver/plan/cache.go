package plan

import (
	"fmt"
	"maps"
	"os"
	"strings"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/google/go-containerregistry/pkg/name"
)

// CacheEntry is one cache import or export: a BuildKit cache backend
// type and its attributes, as compose's entries are, with what the
// environment gives the backend and, for a registry cache, its ref.
type CacheEntry struct {
	compose.CacheEntry
	// Ref is a registry cache's ref, parsed once; nil for the other
	// backends.
	Ref name.Reference
	// Own marks bkcache's own caches (R:cache-H, R:cache-F and the
	// fallbacks), as against compose's cache_from and cache_to.
	Own bool
}

// cacheEntries are the compose entries of build.KEY with the
// credentials their backends take from the environment (lookup) and, for
// a registry cache, its ref parsed.
func cacheEntries(key string, entries []compose.CacheEntry, hosts registry.Hosts, lookup func(string) (string, bool)) ([]CacheEntry, error) {
	var out []CacheEntry
	for i, ce := range entries {
		e := CacheEntry{CacheEntry: compose.CacheEntry{Type: ce.Type, Attrs: maps.Clone(ce.Attrs)}}
		if ref, ok := e.Attrs["ref"]; ok && e.Type == "registry" {
			var err error
			if e.Ref, err = hosts.Reference(ref); err != nil {
				return nil, fmt.Errorf("build.%s entry %d: ref %q is not a valid image reference: %w", key, i+1, ref, err)
			}
		}
		addCredentials(e, lookup)
		out = append(out, e)
	}
	return out, nil
}

// RegistryAttrs adds to the attributes of a BuildKit export or cache
// entry in the job's repository what BuildKit must be told to reach its
// registry: registry.insecure for one --insecure-registry names (BuildKit
// reaches loopback over HTTP by itself).
func (j *Job) RegistryAttrs(attrs map[string]string) map[string]string {
	if j.plainHTTP {
		attrs["registry.insecure"] = "true"
	}
	return attrs
}

// ownCache is the registry cache entry of one of bkcache's own cache
// tags, all in the job's repository.
func (j *Job) ownCache(t registry.Tag, attrs map[string]string) CacheEntry {
	attrs["ref"] = t.String()
	return CacheEntry{CacheEntry: compose.CacheEntry{Type: "registry", Attrs: j.RegistryAttrs(attrs)}, Ref: t.Tag, Own: true}
}

// The compressions of the layers of bkcache's own cache exports.
const (
	// Zstd compresses the 300 MB dependency stage of bench/builds' heavy
	// project 6.5 times faster than gzip here (a mode=max export of 1.5 s
	// against 10.0 s "preparing"), and BuildKit reads it back faster.
	Zstd = "zstd"
	// Gzip is BuildKit's default, for a registry that refuses zstd layers.
	Gzip = "gzip"
)

// settleCaches lists the caches a solve of j imports, in order (R:cache-H,
// R:cache-F and the fallbacks, none for a local service, then compose's
// cache_from), and those a pushed one exports: R:cache-H with every
// stage, then compose's cache_to. A failed cache export must not cost
// the image: BuildKit pushes it anyway and reports the export's error on
// its step, which becomes a warning (or, when required, a failure).
func (j *Job) settleCaches() {
	j.Imports, j.Exports = nil, nil
	if !j.Local {
		for _, t := range append([]registry.Tag{j.Refs.Cache, j.Refs.CacheFloat}, j.Refs.Fallbacks...) {
			j.Imports = append(j.Imports, j.ownCache(t, map[string]string{}))
		}
	}
	j.Imports = append(j.Imports, j.CacheFrom...)
	// The image-manifest form, as BuildKit v0.21 and later write it by
	// default; said here for the engines whose BuildKit is older (Docker
	// Engine before 28.1), which would write the index Harbor refuses.
	// The solver turns it to the index where the registry refuses it.
	// zstd for the layers only the cache holds (those the image export
	// compressed keep their gzip): only BuildKit reads them back.
	j.Exports = []CacheEntry{j.ownCache(j.Refs.Cache, map[string]string{"mode": "max", "ignore-error": "true", "image-manifest": "true", "oci-mediatypes": "true",
		"compression": j.CacheCompression})}
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
