package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestComposeRegistryCache: compose's own registry caches, typed once by
// the plan, reach BuildKit: cache_to writes one, and another service's
// cache_from imports it on a fresh daemon (its steps come from cache); a
// cache_from whose ref does not exist yet is left out quietly, and the
// summary lists the caches imported.
func TestComposeRegistryCache(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	r := repo(t)
	dir := t.TempDir()
	writeFile(t, dir, "Dockerfile", "FROM busybox\nRUN echo slow > /slow\nRUN echo done > /done\n")
	shared, missing := r+"/shared:cache", r+"/never:cache"
	writeFile(t, dir, "compose.yaml", `services:
  writer:
    build:
      context: .
      cache_to: ["type=registry,ref=`+shared+`,mode=max"]
  reader:
    build:
      context: .
      args: {ONLY_TO_MOVE_THE_HASH: "1"}
      cache_from: ["`+shared+`", "type=registry,ref=`+missing+`"]
`)
	res, out := build(t, dir, d.env(), "--push", "--repository", r, "writer")
	if out.code != 0 || res["writer"].Status != "built" {
		t.Fatalf("writer: exit %d\n%s", out.code, out.stderr)
	}
	d.prune(t)
	res, out = build(t, dir, d.env(), "--push", "--repository", r, "reader")
	reader := res["reader"]
	if out.code != 0 || reader.Status != "built" || reader.CachedSteps < 2 {
		t.Fatalf("reader: exit %d, status %q, cached %d of %d\n%s", out.code, reader.Status, reader.CachedSteps, reader.TotalSteps, out.stderr)
	}
	if !slices.Contains(reader.CacheImports, "registry:"+shared) || slices.Contains(reader.CacheImports, "registry:"+missing) {
		t.Errorf("cache imports %q: want %s, not %s", reader.CacheImports, shared, missing)
	}
	if strings.Contains(out.stderr, "never:cache") {
		t.Errorf("a cache_from that does not exist yet was not left out quietly:\n%s", out.stderr)
	}
}
