package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// TestExplainAndManifests: after a pushed build, one input file and one
// arg change; explain names exactly those, against the manifest attached
// to app:ci; manifest files and cache refs can be audited.
func TestExplainAndManifests(t *testing.T) {
	requireSandbox(t)
	dir, r := project(t), repo(t)
	m1 := filepath.Join(t.TempDir(), "first.json")
	first, out := build(t, dir, nil, "--push", "--repository", r, "--manifest", m1)
	if out.code != 0 {
		t.Fatalf("build: %s", out.stderr)
	}

	// The manifest is attached to the image through the referrers API.
	app := first["app"]
	n, _ := name.NewDigest(r+"/app@"+app.Digest, name.Insecure)
	idx, err := remote.Referrers(n)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) == 0 || im.Manifests[0].ArtifactType != "application/vnd.bkcache.manifest.v1+json" {
		t.Fatalf("referrers of app: %+v", im.Manifests)
	}

	same := bkcache(t, dir, nil, "explain", "app", "--repository", r)
	if same.code != 0 || !strings.Contains(same.stdout, "nothing changed") {
		t.Fatalf("explain before any change (exit %d):\n%s%s", same.code, same.stdout, same.stderr)
	}

	writeFile(t, dir, "app/src/main.txt", "app source v2")
	env := []string{"MESSAGE=goodbye"}
	ex := bkcache(t, dir, env, "explain", "app", "--repository", r, "--format", "json")
	if ex.code != 0 {
		t.Fatalf("explain: %s", ex.stderr)
	}
	var rep struct {
		Same                                     bool
		Args                                     []struct{ Key, Old, New string }
		Files                                    []struct{ Source, Path, Kind string }
		DockerfileChanged                        bool
		Settings, Labels, Secrets, SSH, Contexts []any
	}
	if err := json.Unmarshal([]byte(ex.stdout), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Same || rep.DockerfileChanged || len(rep.Settings)+len(rep.Labels)+len(rep.Secrets)+len(rep.SSH)+len(rep.Contexts) != 0 {
		t.Errorf("explain names more than the file and the arg:\n%s", ex.stdout)
	}
	if len(rep.Args) != 1 || rep.Args[0].Key != "MESSAGE" || rep.Args[0].Old != "hello" || rep.Args[0].New != "goodbye" {
		t.Errorf("args: %+v", rep.Args)
	}
	if len(rep.Files) != 1 || rep.Files[0].Path != "src/main.txt" || rep.Files[0].Kind != "modified" {
		t.Errorf("files: %+v", rep.Files)
	}
	text := bkcache(t, dir, env, "explain", "app", "--repository", r)
	if !strings.Contains(text.stdout, "build arg MESSAGE: hello -> goodbye") || !strings.Contains(text.stdout, "file modified context:src/main.txt") {
		t.Errorf("explain text:\n%s", text.stdout)
	}

	// The second build writes a manifest that manifest diff compares.
	m2 := filepath.Join(t.TempDir(), "second.json")
	second, out := build(t, dir, env, "--push", "--repository", r, "--manifest", m2)
	if out.code != 0 {
		t.Fatalf("second build: %s", out.stderr)
	}
	diff := bkcache(t, dir, nil, "manifest", "diff", m1, m2)
	if diff.code != 0 || !strings.Contains(diff.stdout, "MESSAGE") || !strings.Contains(diff.stdout, "base: nothing changed") {
		t.Errorf("manifest diff (exit %d):\n%s%s", diff.code, diff.stdout, diff.stderr)
	}
	doc, err := os.ReadFile(m2)
	if err != nil || !strings.Contains(string(doc), `"version": "v0.33.1"`) || !strings.Contains(string(doc), `"status": "built"`) {
		t.Errorf("manifest file lacks the buildkitd version or status:\n%.600s", doc)
	}
	// What the builds reused and produced, as BuildKit reported it. The
	// rebuild's cache export may write no bytes: the image push before it
	// already uploaded its one new layer.
	type record struct {
		Service string
		Cache   struct{ Imports, Exports []string }
		Steps   struct{ Cached, Total int }
		Timing  struct{ TotalMs, PushMs, ExportMs, CacheExportMs, CacheExportBytes int64 }
	}
	records := func(file string) map[string]record {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Services []record }
		if err := json.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		m := map[string]record{}
		for _, s := range doc.Services {
			m[s.Service] = s
		}
		return m
	}
	var exported int64
	for _, s := range records(m1) {
		exported += s.Timing.CacheExportBytes
	}
	if exported == 0 {
		t.Errorf("the cold build's manifest records no cache export bytes: %+v", records(m1))
	}
	rebuilt := records(m2)["app"]
	hashCache := "registry:" + r + "/app:cache-" + second["app"].Hash
	if !slices.Contains(rebuilt.Cache.Imports, "registry:"+r+"/app:cache-ci") || !slices.Contains(rebuilt.Cache.Exports, hashCache) ||
		rebuilt.Steps.Cached == 0 || rebuilt.Steps.Cached >= rebuilt.Steps.Total || rebuilt.Timing.CacheExportMs <= 0 {
		t.Errorf("app's record of the rebuild: %+v", rebuilt)
	}
	// The duration's split: push and cache export together take at least
	// the longer of them and at most both (BuildKit v0.33.1 runs them at
	// once; each is truncated to the millisecond), within the total.
	if tm := rebuilt.Timing; tm.PushMs <= 0 || tm.ExportMs < max(tm.PushMs, tm.CacheExportMs) || tm.ExportMs > tm.PushMs+tm.CacheExportMs+2 || tm.ExportMs > tm.TotalMs {
		t.Errorf("app's rebuild timing does not split: %+v", tm)
	}

	// Cache refs can be inspected; cache-ci equals the latest cache-H.
	for _, ref := range []string{r + "/app:cache-" + second["app"].Hash, r + "/app:cache-ci"} {
		ci := bkcache(t, dir, nil, "cache", "inspect", ref, "--format", "json")
		var info struct {
			Form    string
			Records int
			Layers  []any
			Size    int64
		}
		if ci.code != 0 || json.Unmarshal([]byte(ci.stdout), &info) != nil || info.Records == 0 || len(info.Layers) == 0 || info.Size == 0 {
			t.Errorf("cache inspect %s (exit %d): %s %s", ref, ci.code, ci.stdout, ci.stderr)
		}
	}
	if head(t, r+"/app:cache-ci") != head(t, r+"/app:cache-"+second["app"].Hash) {
		t.Error("cache-ci does not point at the latest cache")
	}

	// Errors name the ref and say what to do.
	for _, args := range [][]string{
		{"cache", "inspect", r + "/app:cache-nope"},
		{"cache", "inspect", r + "/app:ci"},
		{"explain", "app", "--against", r + "/app:nope"},
	} {
		bad := bkcache(t, dir, nil, args...)
		if bad.code == 0 || !strings.Contains(bad.stderr, args[len(args)-1]) {
			t.Errorf("%v: exit %d, stderr %q", args, bad.code, bad.stderr)
		}
	}
}
