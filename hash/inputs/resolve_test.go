package inputs

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// world is what the registry and the remote sources say at one moment,
// as the Resolver contract hands it to the hash: the digest each image
// ref names and what each remote URL resolves to. (How those are looked
// up is solver/plan's, tested against a registry and a git daemon.) It
// notes what was asked.
type world struct {
	images  map[string]digest.Digest
	remotes map[string]string
	mu      sync.Mutex
	asked   []string
}

func (w *world) Resolve(_ context.Context, refs []string) (map[string]digest.Digest, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.asked = append(w.asked, refs...)
	out := map[string]digest.Digest{}
	for _, r := range refs {
		out[r] = w.images[r]
	}
	return out, nil
}

func (w *world) ResolveRemotes(_ context.Context, rs []Remote) (map[string]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for _, r := range rs {
		w.asked = append(w.asked, r.URL)
		out[r.URL] = w.remotes[r.URL]
	}
	return out, nil
}

const pinned = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// resolveFixture reads, in resolve mode, a Git context, ADDs of URLs
// (one pinned), image contexts (one beside a FROM it must not shadow),
// an additional local context with its own ignore file beside a
// Dockerfile whose ignore file must not reach it, and a stage reached
// only through RUN --mount=type=cache,from=.
var resolveFixture = map[string]string{
	"compose.yaml": `
services:
  git:
    build:
      context: https://example.com/app.git#main
  add:
    build:
      context: ./add
  named:
    build:
      context: ./named
      additional_contexts:
        node: docker-image://node:20
        tools: docker-image://busybox:1.36
  extra:
    build:
      context: ./main
      additional_contexts:
        extra: ./extra
`,
	"add/Dockerfile": "FROM alpine:3.20\nADD https://example.com/tool.tgz /tool.tgz\nADD --checksum=" + pinned + " https://example.com/pinned.tgz /p\n",
	// FROM node:22 is not the context "node" (BuildKit matches the name
	// as written, tag and all); FROM node is.
	"named/Dockerfile":             "FROM node:22 AS deps\nRUN true\nFROM node\nCOPY --from=deps /a /a\nCOPY --from=tools /bin/sh /sh\n",
	"main/Dockerfile":              "FROM alpine:3.20 AS seed\nCOPY seed.txt /seed.txt\nFROM alpine:3.20\nCOPY --from=extra . /e\nRUN --mount=type=cache,target=/c,from=seed,source=/ true\n",
	"main/Dockerfile.dockerignore": "keep.txt\n",
	"main/seed.txt":                "seed\n",
	"main/keep.txt":                "not read\n",
	"extra/.dockerignore":          "*.log\n",
	"extra/keep.txt":               "read\n",
	"extra/a.log":                  "ignored\n",
}

func newWorld() *world {
	return &world{
		images: map[string]digest.Digest{
			"docker.io/library/alpine:3.20":   digest.FromString("alpine"),
			"docker.io/library/node:22":       digest.FromString("node22"),
			"docker.io/library/node:20":       digest.FromString("node20"),
			"docker.io/library/busybox:1.36":  digest.FromString("busybox"),
			"docker.io/library/unused:latest": digest.FromString("unused"),
		},
		remotes: map[string]string{
			"https://example.com/app.git#main": "commit-1",
			"https://example.com/tool.tgz":     `etag:"v1"`,
		},
	}
}

func computeResolved(t *testing.T, dir string, w *world) map[string]*Inputs {
	t.Helper()
	all, err := ComputeAll(context.Background(), loadServices(t, dir), Options{Resolver: w})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Inputs{}
	for _, in := range all {
		if in.BaseImages != Resolve {
			t.Errorf("%s: base images %q, want resolve", in.Service, in.BaseImages)
		}
		out[in.Service] = in
	}
	return out
}

// TestResolveWhatMoves: in resolve mode, each thing looked up moves the
// services that read it and no other, and so does each file of an
// additional context under its own ignore file.
func TestResolveWhatMoves(t *testing.T) {
	refDir := t.TempDir()
	writeFixture(t, refDir, resolveFixture, time.Now())
	ref := hashes(computeResolved(t, refDir, newWorld()))
	for _, tc := range []struct {
		name   string
		images map[string]string // ref -> what it names now
		remote map[string]string // URL -> what it resolves to now
		edit   map[string]string
		moves  []string
	}{
		{"a Git context's commit", nil, map[string]string{"https://example.com/app.git#main": "commit-2"}, nil, []string{"git"}},
		{"an ADD's validator", nil, map[string]string{"https://example.com/tool.tgz": `etag:"v2"`}, nil, []string{"add"}},
		{"an image context's digest", map[string]string{"docker.io/library/node:20": "node20-b"}, nil, nil, []string{"named"}},
		{"a FROM beside a context of its name, not its ref", map[string]string{"docker.io/library/node:22": "node22-b"}, nil, nil, []string{"named"}},
		{"an image context read by COPY --from", map[string]string{"docker.io/library/busybox:1.36": "busybox-b"}, nil, nil, []string{"named"}},
		{"a base image", map[string]string{"docker.io/library/alpine:3.20": "alpine-b"}, nil, nil, []string{"add", "extra"}},
		{"an image nobody reads", map[string]string{"docker.io/library/unused:latest": "unused-b"}, nil, nil, nil},
		{"ignored by the additional context's own file", nil, nil, map[string]string{"extra/a.log": "x"}, nil},
		{"ignored by the main Dockerfile's, read by the additional context", nil, nil, map[string]string{"extra/keep.txt": "x"}, []string{"extra"}},
		{"ignored by the main Dockerfile's, in the main context", nil, nil, map[string]string{"main/keep.txt": "x"}, nil},
		{"a stage read only by RUN --mount=type=cache,from=", nil, nil, map[string]string{"main/seed.txt": "x"}, []string{"extra"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			for r, v := range tc.images {
				w.images[r] = digest.FromString(v)
			}
			maps.Copy(w.remotes, tc.remote)
			dir := t.TempDir()
			writeFixture(t, dir, resolveFixture, time.Now())
			for p, data := range tc.edit {
				if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := hashes(computeResolved(t, dir, w))
			for svc := range ref {
				if moved, want := got[svc] != ref[svc], slices.Contains(tc.moves, svc); moved != want {
					t.Errorf("%s: moved=%v, want %v", svc, moved, want)
				}
			}
		})
	}
}

// TestResolveRecords: the inputs say what each lookup found, where it
// was read, and ask for nothing pinned and nothing twice.
func TestResolveRecords(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, resolveFixture, time.Now())
	w := newWorld()
	got := computeResolved(t, dir, w)
	slices.Sort(w.asked)
	want := []string{
		"docker.io/library/alpine:3.20", "docker.io/library/busybox:1.36",
		"docker.io/library/node:20", "docker.io/library/node:22",
		"https://example.com/app.git#main", "https://example.com/tool.tgz",
	}
	if !slices.Equal(w.asked, want) {
		t.Errorf("looked up %q, want each of %q once (a pinned ADD never)", w.asked, want)
	}
	remotes := func(svc string) string {
		var s []string
		for _, r := range got[svc].Remotes {
			s = append(s, r.Kind+" "+r.URL+" resolved="+r.Resolved+" checksum="+r.Checksum+" by="+strings.Join(r.By, ";"))
		}
		return strings.Join(s, "\n")
	}
	if r, want := remotes("git"), "git https://example.com/app.git#main resolved=commit-1 checksum= by=build context"; r != want {
		t.Errorf("git remotes:\n%s\nwant\n%s", r, want)
	}
	if r, want := remotes("add"), "http https://example.com/pinned.tgz resolved= checksum="+pinned+" by=line 3: ADD --checksum="+pinned+" https://example.com/pinned.tgz /p\n"+
		`http https://example.com/tool.tgz resolved=etag:"v1" checksum= by=line 2: ADD https://example.com/tool.tgz /tool.tgz`; r != want {
		t.Errorf("add remotes:\n%s\nwant\n%s", r, want)
	}
	var images []string
	for _, im := range got["named"].Images {
		images = append(images, im.Ref+"@"+string(im.Digest)+" by "+strings.Join(im.By, ";"))
	}
	wantImages := []string{
		"docker.io/library/busybox:1.36@" + string(digest.FromString("busybox")) + ` by additional context "tools"`,
		"docker.io/library/node:20@" + string(digest.FromString("node20")) + ` by additional context "node"`,
		"docker.io/library/node:22@" + string(digest.FromString("node22")) + " by line 1: FROM node:22",
	}
	if !slices.Equal(images, wantImages) {
		t.Errorf("named's images:\n%s\nwant\n%s", strings.Join(images, "\n"), strings.Join(wantImages, "\n"))
	}
	var extra []string
	for _, s := range got["extra"].Sources {
		var files []string
		for _, f := range s.Files {
			files = append(files, f.Path)
		}
		extra = append(extra, s.Name+" "+s.IgnoreFile+" "+strings.Join(files, ","))
	}
	if want := []string{"context " + filepath.Join(dir, "main", "Dockerfile.dockerignore") + " seed.txt", "extra " + filepath.Join(dir, "extra", ".dockerignore") + " .dockerignore,keep.txt"}; !slices.Equal(extra, want) {
		t.Errorf("extra's sources:\n%q\nwant\n%q", extra, want)
	}
}
