package e2e

import (
	"slices"
	"strings"
	"testing"
)

// TestRunKeysAgreeWithBuildKit: the keys BuildKit applies to every RUN
// step (network, extra_hosts, shm_size, ulimits) move the hash exactly
// when BuildKit itself runs the step again. Each build is forced, so
// that BuildKit's own cache decides the step whatever the hash says: an
// extra host moved to another address is a cache hit in BuildKit and the
// same hash here; every other change runs the step and moves the hash.
// The last image shows the settings reached the step.
func TestRunKeysAgreeWithBuildKit(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := t.TempDir()
	writeFile(t, dir, "Dockerfile", `FROM busybox
RUN ulimit -n > /nofile && df -k /dev/shm | tail -1 > /shm && grep -c : /proc/net/dev > /net && echo ran > /ran
`)
	keys := []string{"extra_hosts: [db=10.0.0.1]"}
	var prev string
	for i, step := range []struct {
		name  string
		edit  func([]string) []string
		moves bool
	}{
		{"first build", nil, true},
		{"nothing changed", nil, false},
		{"an extra host's address", replace("db=10.0.0.1", "db=10.0.0.2"), false},
		{"an extra host added", replace("[db=10.0.0.2]", "[db=10.0.0.2, cache=10.0.0.3, api=10.0.0.4]"), true},
		// BuildKit keys a step on the hosts' order; compose-go keeps them
		// in a map. The same hosts must come in the same order.
		{"nothing changed, three hosts", nil, false},
		{"nothing changed, three hosts again", nil, false},
		{"shm_size", add("shm_size: 64m"), true},
		{"ulimits", add("ulimits: {nofile: {soft: 1024, hard: 2048}}"), true},
		{"network", add("network: none"), true},
	} {
		if step.edit != nil {
			keys = step.edit(keys)
		}
		writeFile(t, dir, "compose.yaml", "services:\n  app:\n    build:\n      context: .\n      "+strings.Join(keys, "\n      ")+"\n")
		res, out := build(t, dir, nil, "--push", "--repository", r, "--force")
		app := res["app"]
		if out.code != 0 || app.Status != "built" {
			t.Fatalf("%s: exit %d, status %q\n%s", step.name, out.code, app.Status, out.stderr)
		}
		ran := !slices.ContainsFunc(cachedSteps(out.stderr), func(s string) bool { return strings.Contains(s, "RUN ulimit") })
		if i > 0 {
			if moved := app.Hash != prev; moved != step.moves || ran != step.moves {
				t.Errorf("%s: hash moved %v, BuildKit ran the step %v; want both %v\n%s", step.name, moved, ran, step.moves, out.stderr)
			}
		}
		prev = app.Hash
		if step.name == "network" {
			got := imageFiles(t, app.Image, "nofile", "shm", "net")
			if got["nofile"] != "1024" || !strings.Contains(got["shm"], "65536") || got["net"] != "1" {
				t.Errorf("the last step saw nofile %q, /dev/shm %q, %s interfaces (want 1024, 65536 KiB, only lo)", got["nofile"], got["shm"], got["net"])
			}
		}
	}
}

func replace(old, new string) func([]string) []string {
	return func(keys []string) []string {
		for i := range keys {
			keys[i] = strings.Replace(keys[i], old, new, 1)
		}
		return keys
	}
}

func add(key string) func([]string) []string {
	return func(keys []string) []string { return append(keys, key) }
}

// TestNoCacheFilterAndEntitlements: no_cache_filter runs the named
// stage's steps again and takes the others from cache, as docker compose
// passes it; the build's entitlements reach BuildKit, which refuses
// privileged (security.insecure) on a daemon not started to allow it,
// naming the service and the entitlement.
func TestNoCacheFilterAndEntitlements(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := t.TempDir()
	writeFile(t, dir, "Dockerfile", `FROM busybox AS deps
RUN echo deps > /deps
FROM deps AS final
RUN echo final > /final
`)
	compose := func(extra string) {
		writeFile(t, dir, "compose.yaml", "services:\n  app:\n    build:\n      context: .\n"+extra)
	}
	compose("")
	if _, out := build(t, dir, nil, "--repository", r); out.code != 0 {
		t.Fatalf("first build: %s", out.stderr)
	}
	compose("      no_cache_filter: [final]\n")
	_, out := build(t, dir, nil, "--repository", r, "--force")
	cached := strings.Join(cachedSteps(out.stderr), "\n")
	if out.code != 0 || !strings.Contains(cached, "echo deps") || strings.Contains(cached, "echo final") {
		t.Errorf("no_cache_filter [final]: exit %d, cached steps:\n%s", out.code, cached)
	}
	compose("      privileged: true\n")
	_, out = build(t, dir, nil, "--repository", r, "--force")
	if out.code == 0 || !strings.Contains(out.stderr, "security.insecure") || !strings.Contains(out.stderr, "app") || !strings.Contains(out.stderr, "--allow-insecure-entitlement") {
		t.Errorf("privileged on a daemon that does not allow it: exit %d\n%s", out.code, out.stderr)
	}
}
