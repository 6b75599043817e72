package inputs

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/hash/dockerfile"
	"github.com/bkcache/bkcache/hash/tree"
)

// Golden hashes change only on purpose, by one command:
//
//	go test ./hash/inputs -run '^TestGolden$' -args -regen-golden [-golden-intended]
//
// It rewrites testdata/golden-hashes.json and refuses to unless Scheme
// differs from the file's (a new encoding), or -golden-intended says that
// hashes move under the same scheme on purpose (the fixture changed, never
// the encoding). It compares nothing: the next plain run does.
var (
	regenGolden    = flag.Bool("regen-golden", false, "rewrite testdata/golden-hashes.json (see TestGolden)")
	goldenIntended = flag.Bool("golden-intended", false, "with -regen-golden: let hashes move under the same Scheme")
)

// fixture is a small but complete project: two services, a service:
// context, an additional local context, ignore files, a Dockerfile outside
// the context, an inline Dockerfile, symlinks and modes.
var fixture = map[string]string{
	"compose.yaml": `
name: fixture
services:
  api:
    image: reg.local/fixture/api
    build:
      context: ./api
      dockerfile: ../docker/api.Dockerfile
      args: {GO_VERSION: "1.26", APP: server}
      target: final
      platforms: [linux/amd64]
      labels: {org.opencontainers.image.source: fixture}
      secrets: [npmrc]
      network: none
      extra_hosts: [db=10.0.0.1, cache=10.0.0.2]
      shm_size: 64m
      ulimits: {nofile: {soft: 1024, hard: 2048}}
      additional_contexts:
        shared: ./shared
        base: service:base
  base:
    build:
      context: ./base
  inline:
    build:
      context: ./api
      dockerfile_inline: |
        FROM scratch
        COPY go.mod /
secrets:
  npmrc: {file: ./npmrc}
`,
	"npmrc":                              "secret-value-1",
	"docker/api.Dockerfile":              "FROM scratch AS docs\nCOPY docs /docs\nFROM scratch AS build\nARG APP\nCOPY go.mod cmd/$APP/ /src/\nCOPY --from=shared proto/ /proto/\nFROM scratch AS final\nCOPY --from=build /src /src\nCOPY --from=base /x /x\n",
	"docker/api.Dockerfile.dockerignore": "**/*_test.go\n",
	"api/.dockerignore":                  "cmd/server/tmp\n",
	"api/go.mod":                         "module x\n",
	"api/cmd/server/main.go":             "package main\n",
	"api/cmd/server/main_test.go":        "package main\n",
	"api/cmd/server/tmp":                 "scratch\n",
	"api/cmd/worker/main.go":             "package main\n",
	"api/docs/readme":                    "docs\n",
	"api/README":                         "not an input\n",
	"shared/proto/a.proto":               "syntax\n",
	"shared/other.txt":                   "not an input\n",
	"base/Dockerfile":                    "FROM scratch\nCOPY . /x\n",
	"base/.dockerignore":                 "*.log\n",
	"base/x.sh":                          "#!/bin/sh\n",
	"base/build.log":                     "ignored\n",
	"base/link":                          "->x.sh",
}

// writeFixture writes files with the given mtime; *.sh files executable.
func writeFixture(t testing.TB, dir string, files map[string]string, mtime time.Time) {
	t.Helper()
	sourcetest.Write(t, dir, files)
	for p, data := range files {
		if strings.HasPrefix(data, "->") {
			continue
		}
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, ".sh") {
			if err := os.Chmod(full, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chtimes(full, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
}

// loadProject loads the compose project in dir.
func loadProject(dir string) (*compose.Project, error) {
	return compose.LoadAnd(context.Background(), compose.Options{ProjectDir: dir}, func(*compose.Project) error { return nil })
}

// loadServices loads the compose project in dir and returns all its
// services, dependencies first.
func loadServices(t testing.TB, dir string) []*compose.Service {
	t.Helper()
	p, err := loadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	svcs, err := p.Select(nil)
	if err != nil {
		t.Fatal(err)
	}
	return svcs
}

// computeProject computes the inputs of the named services (all when
// none) and of those they depend on, dependencies first.
func computeProject(p *compose.Project, names []string) ([]*Inputs, error) {
	svcs, err := p.Select(names)
	if err != nil {
		return nil, err
	}
	return ComputeAll(context.Background(), svcs, Options{})
}

// computeDir computes the inputs of every service in dir, through the
// shared listing and parts whether or not the services share a source,
// and fails unless that gives exactly what each source's own walk (the
// reference implementation) gives: every test that computes through it
// checks the shared path.
func computeDir(t testing.TB, dir string) map[string]*Inputs {
	t.Helper()
	svcs := loadServices(t, dir)
	all, err := ComputeAll(context.Background(), svcs, Options{shared: newShared()})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := ComputeAll(context.Background(), svcs, Options{reference: true})
	if err != nil {
		t.Fatal(err)
	}
	sameInputs(t, all, ref)
	out := map[string]*Inputs{}
	for _, in := range all {
		out[in.Service] = in
	}
	return out
}

// sameInputs fails unless got and want encode to the same JSON: hashes,
// file lists, modes, digests and attributions.
func sameInputs(t testing.TB, got, want []*Inputs) {
	t.Helper()
	g, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(g, w) {
		for i := range min(len(got), len(want)) {
			gi, _ := json.MarshalIndent(got[i], "", " ")
			wi, _ := json.MarshalIndent(want[i], "", " ")
			if !bytes.Equal(gi, wi) {
				t.Fatalf("service %s: the shared path gives\n%s\nits own walk gives\n%s", want[i].Service, gi, wi)
			}
		}
		t.Fatalf("the shared path gives %d services, their own walks %d", len(got), len(want))
	}
}

func hashes(m map[string]*Inputs) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v.Hash.String()
	}
	return out
}

// goldenFile is testdata/golden-hashes.json: the fixture's hashes and
// the scheme they were computed under.
type goldenFile struct {
	Scheme string            `json:"scheme"`
	Hashes map[string]string `json:"hashes"`
	// Previous is what the scheme before gave the same fixture: a new
	// scheme must move every hash, so that old and new never share a tag.
	Previous *goldenFile `json:"previous,omitempty"`
}

const goldenPath = "testdata/golden-hashes.json"

// TestGolden pins the hashes of the fixture. A change here means every
// published tag changes: only acceptable together with a new Scheme.
func TestGolden(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, time.Unix(1700000000, 0))
	got := hashes(computeDir(t, dir))
	want, err := readGolden()
	if *regenGolden {
		writeGolden(t, want, err, got)
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if want.Scheme != Scheme {
		t.Fatalf("%s is for scheme %s, the code is %s: regenerate it (see TestGolden)", goldenPath, want.Scheme, Scheme)
	}
	if !maps.Equal(got, want.Hashes) {
		t.Fatalf("hashes moved under scheme %s:\n got %v\nwant %v\na change of encoding needs a new Scheme", Scheme, got, want.Hashes)
	}
	if want.Previous == nil || want.Previous.Scheme == Scheme {
		t.Fatalf("%s records no earlier scheme to compare with", goldenPath)
	}
	for svc, h := range got {
		if prev := want.Previous.Hashes[svc]; prev == h {
			t.Errorf("%s: %s gives the same hash as %s (%s): the two would share tags", svc, Scheme, want.Previous.Scheme, h)
		}
	}
}

func readGolden() (goldenFile, error) {
	var g goldenFile
	b, err := os.ReadFile(goldenPath)
	if err == nil {
		err = json.Unmarshal(b, &g)
	}
	return g, err
}

// writeGolden is -regen-golden: it writes got unless that would move
// hashes under the scheme they were recorded with.
func writeGolden(t *testing.T, old goldenFile, oldErr error, got map[string]string) {
	switch {
	case oldErr == nil && old.Scheme == Scheme && maps.Equal(old.Hashes, got):
		t.Logf("%s is up to date", goldenPath)
		return
	case oldErr == nil && old.Scheme == Scheme && !*goldenIntended:
		t.Fatalf("refusing to rewrite %s: the hashes moved but Scheme is still %s.\n"+
			"A change of encoding or of what the hash covers needs a new Scheme (every published tag changes);\n"+
			"a change of the fixture alone is -golden-intended.", goldenPath, Scheme)
	}
	prev := old.Previous
	if oldErr == nil && old.Scheme != Scheme {
		prev = &goldenFile{Scheme: old.Scheme, Hashes: old.Hashes}
	}
	b, _ := json.MarshalIndent(goldenFile{Scheme: Scheme, Hashes: got, Previous: prev}, "", "  ")
	if err := os.WriteFile(goldenPath, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s for scheme %s (was %s): review it with git diff", goldenPath, Scheme, old.Scheme)
}

func TestInputsListing(t *testing.T) {
	dir := t.TempDir()
	writeFixture(t, dir, fixture, time.Now())
	api := computeDir(t, dir)["api"]
	var files []string
	for _, s := range api.Sources {
		for _, f := range s.Files {
			if f.Type == "file" {
				files = append(files, s.Name+":"+f.Path)
			}
		}
	}
	want := "context:cmd/server/main.go,context:cmd/server/tmp,context:go.mod,shared:proto/a.proto"
	if got := strings.Join(files, ","); got != want {
		t.Fatalf("files = %s\nwant    %s", got, want)
	}
	if got := api.Sources[0].Files; !strings.Contains(got[len(got)-1].By, "COPY go.mod cmd/$APP/ /src/") {
		t.Fatalf("attribution: %+v", got[len(got)-1])
	}
	if strings.Join(api.Dockerfile.Stages, ",") != "build,final" {
		t.Fatalf("stages = %v", api.Dockerfile.Stages)
	}
	if b, _ := json.Marshal(api); strings.Contains(string(b), "secret-value-1") {
		t.Fatal("a secret value reached the inputs")
	}
}

func TestReproducible(t *testing.T) {
	d1 := t.TempDir()
	d2 := filepath.Join(t.TempDir(), "another", "checkout")
	writeFixture(t, d1, fixture, time.Unix(1, 0))
	writeFixture(t, d2, fixture, time.Now())
	h1, h2 := hashes(computeDir(t, d1)), hashes(computeDir(t, d2))
	for svc := range h1 {
		if h1[svc] != h2[svc] {
			t.Errorf("%s: %s at %s but %s at %s", svc, h1[svc], d1, h2[svc], d2)
		}
	}
}

func TestWhatMoves(t *testing.T) {
	refDir := t.TempDir()
	writeFixture(t, refDir, fixture, time.Now())
	ref := hashes(computeDir(t, refDir))
	for _, tc := range []struct {
		name  string
		edit  map[string]string // files to overwrite ("" deletes)
		moves []string          // services whose hash must move; the rest must not
	}{
		{"file outside the inputs", map[string]string{"api/README": "changed", "shared/other.txt": "x", "api/cmd/worker/main.go": "x"}, nil},
		{"file in an unreachable stage", map[string]string{"api/docs/readme": "changed"}, nil},
		{"ignored by the Dockerfile's ignore file", map[string]string{"api/cmd/server/main_test.go": "changed"}, nil},
		{"root .dockerignore is overridden by the Dockerfile's", map[string]string{"api/cmd/server/tmp": "changed"}, []string{"api"}},
		{"ignored in a dependency", map[string]string{"base/build.log": "changed"}, nil},
		{"input of api", map[string]string{"api/cmd/server/main.go": "changed"}, []string{"api"}},
		{"file added under a copied dir", map[string]string{"api/cmd/server/new.go": "x"}, []string{"api"}},
		{"input shared by api and inline", map[string]string{"api/go.mod": "module y\n"}, []string{"api", "inline"}},
		{"additional context", map[string]string{"shared/proto/a.proto": "x"}, []string{"api"}},
		{"dependency moves its dependents", map[string]string{"base/x.sh": "#!/bin/sh\necho\n"}, []string{"base", "api"}},
		{"Dockerfile outside the context", map[string]string{"docker/api.Dockerfile": fixture["docker/api.Dockerfile"] + "LABEL a=b\n"}, []string{"api"}},
		{"secret value", map[string]string{"npmrc": "another-secret"}, nil},
		{"build arg", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], `GO_VERSION: "1.26"`, `GO_VERSION: "1.27"`, 1)}, []string{"api"}},
		{"target", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "target: final", "target: build", 1)}, []string{"api"}},
		{"platforms", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "[linux/amd64]", "[linux/arm64]", 1)}, []string{"api"}},
		{"label", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "source: fixture", "source: other", 1)}, []string{"api"}},
		{"provenance mode", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "target: final", "target: final\n      provenance: mode=max", 1)}, []string{"api"}},
		{"provenance off", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "target: final", "target: final\n      provenance: false", 1)}, []string{"api"}},
		{"provenance spelt otherwise", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "target: final", "target: final\n      provenance: 'true'", 1)}, nil},
		{"sbom", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "target: final", "target: final\n      sbom: generator=reg.local/scan:1", 1)}, []string{"api"}},
		{"secret id", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "secrets: [npmrc]", "secrets: [{source: npmrc, target: npm}]", 1)}, []string{"api"}},
		{"extra host's address", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "db=10.0.0.1", "db=10.9.9.9", 1)}, nil},
		{"ulimit", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "hard: 2048", "hard: 4096", 1)}, []string{"api"}},
		{"inline Dockerfile", map[string]string{"compose.yaml": strings.Replace(fixture["compose.yaml"], "COPY go.mod /", "COPY go.mod /x", 1)}, []string{"inline"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFixture(t, dir, fixture, time.Now())
			for p, data := range tc.edit {
				if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got := hashes(computeDir(t, dir))
			for svc := range ref {
				want := strings.Contains(","+strings.Join(tc.moves, ",")+",", ","+svc+",")
				if moved := got[svc] != ref[svc]; moved != want {
					t.Errorf("%s: moved=%v, want %v", svc, moved, want)
				}
			}
		})
	}
}

func TestErrorsNameTheCulprit(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit map[string]string
		want []string
	}{
		{"missing Dockerfile", map[string]string{"base/Dockerfile": ""}, []string{`service "base"`, "base/Dockerfile", "does not exist"}},
		{"Dockerfile syntax", map[string]string{"base/Dockerfile": "FROM scratch\nCOPY --bogus x /\n"}, []string{`service "base"`, "line 2", "bogus"}},
		{"missing context", map[string]string{"shared": ""}, []string{`service "api"`, `additional context "shared"`, "does not exist"}},
		{"bad ignore file", map[string]string{"base/.dockerignore": "[\n"}, []string{`service "base"`, ".dockerignore"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFixture(t, dir, fixture, time.Now())
			for p, data := range tc.edit {
				if data == "" { // delete the file or directory
					if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
						t.Fatal(err)
					}
					continue
				}
				os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644)
			}
			p, err := loadProject(dir)
			if err != nil {
				t.Fatal(err)
			}
			_, err = computeProject(p, nil)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestSharedContext: services with a context in common share what the
// run reads (sharesSource), and get exactly the hashes they get alone.
func TestSharedContext(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": `
services:
  a: {build: {context: ., dockerfile: a.Dockerfile}}
  b: {build: {context: ., dockerfile: b.Dockerfile}}
  c: {build: {context: ./c, additional_contexts: {root: .}}}
  d: {build: ./d}
`,
		"a.Dockerfile": "FROM scratch\nCOPY . /\n",
		"b.Dockerfile": "FROM scratch\nCOPY src /src\n",
		"src/main.go":  "package main\n",
		"c/Dockerfile": "FROM scratch\nCOPY --from=root src /src\n",
		"d/Dockerfile": "FROM scratch\nCOPY . /\n",
	})
	p, err := loadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		names []string
		want  bool
	}{
		{[]string{"a", "b"}, true},
		{[]string{"a", "c"}, true}, // c's additional context is a's context
		{[]string{"c", "d"}, false},
		{[]string{"d"}, false},
	} {
		svcs, err := p.Select(tc.names)
		if err != nil {
			t.Fatal(err)
		}
		if got := sharesSource(svcs); got != tc.want {
			t.Errorf("sharesSource(%v) = %v, want %v", tc.names, got, tc.want)
		}
	}
	together := hashes(computeDir(t, dir))
	for name, h := range together {
		alone, err := computeProject(p, []string{name})
		if err != nil {
			t.Fatal(err)
		}
		if alone[0].Hash.String() != h {
			t.Errorf("%s: %s alone, %s with the others", name, alone[0].Hash, h)
		}
	}
}

func TestOctal4(t *testing.T) {
	for _, p := range []uint32{0, 0o7, 0o644, 0o755, 0o1777, 0o4755, 0o7777} {
		if got, want := octal4(p), fmt.Sprintf("%04o", p); got != want {
			t.Errorf("octal4(%o) = %s, want %s", p, got, want)
		}
	}
}

// TestFillFiles checks that describing a large tree in parallel parts
// gives what one pass would, attribution included.
func TestFillFiles(t *testing.T) {
	use := &dockerfile.Use{Patterns: []dockerfile.Pattern{
		{Path: "src/*.go", Origin: dockerfile.Origin{Line: 3, Instruction: "COPY src/*.go ./"}},
		{Path: "assets", Origin: dockerfile.Origin{Line: 4, Instruction: "COPY assets ./assets"}},
	}}
	var entries []*tree.Entry
	for i := range 3*4096 + 17 {
		p := fmt.Sprintf("src/f%05d.go", i)
		switch i % 3 {
		case 1:
			p = fmt.Sprintf("assets/a%05d.png", i)
		case 2:
			p = fmt.Sprintf("src/sub/x%05d", i) // a parent's selection or a symlink target
		}
		entries = append(entries, &tree.Entry{Path: p, Type: tree.TypeFile, Perm: uint32(i % 0o1000), Size: int64(i)})
	}
	got := describeFiles(entries, use)
	attr := newAttributor(use)
	for i, e := range entries {
		want := File{Path: e.Path, Type: "file", Mode: fmt.Sprintf("%04o", e.Perm), Size: e.Size, By: attr.by(e.Path)}
		if *got[i] != want {
			t.Fatalf("file %d: got %+v, want %+v", i, got[i], want)
		}
	}
}

// computeFiles computes the inputs of a project made of files.
func computeFiles(t *testing.T, files map[string]string) map[string]*Inputs {
	t.Helper()
	dir := t.TempDir()
	writeFixture(t, dir, files, time.Now())
	return computeDir(t, dir)
}

// byOf returns what each regular file of svc's main context was
// attributed to.
func byOf(in *Inputs) map[string]string {
	out := map[string]string{}
	for _, s := range in.Sources {
		for _, f := range s.Files {
			if f.Type == "file" && s.Name == "context" {
				out[f.Path] = f.By
			}
		}
	}
	return out
}

// TestAttribution: each file is credited to the instruction that read
// it, and a file read only because the whole source counts to the reason.
func TestAttribution(t *testing.T) {
	got := byOf(computeFiles(t, map[string]string{
		"compose.yaml": "services:\n  s:\n    build: .\n",
		"Dockerfile":   "FROM scratch\nCOPY a /a\nCOPY b /b\n",
		"a":            "a", "b": "b", "c": "c",
	})["s"])
	if want := map[string]string{"a": "line 2: COPY a /a", "b": "line 3: COPY b /b"}; !maps.Equal(got, want) {
		t.Errorf("by = %v, want %v", got, want)
	}
	got = byOf(computeFiles(t, map[string]string{
		"compose.yaml": "services:\n  s:\n    build: .\n",
		"Dockerfile":   "FROM scratch\nCOPY . /all\n",
		"c":            "c",
	})["s"])
	if got["c"] != "line 2: COPY . /all" {
		t.Errorf("c: by %q", got["c"])
	}
	got = byOf(computeFiles(t, map[string]string{
		"compose.yaml": "services:\n  s:\n    build: .\n",
		"Dockerfile":   "FROM golang:1.26\nCOPY $GOPATH/x /x\n",
		"a":            "a",
	})["s"])
	if !strings.Contains(got["a"], "$GOPATH") {
		t.Errorf("a file read because the whole context counts is credited to %q, not the reason", got["a"])
	}
}

// TestInlineDockerfile: an inline Dockerfile is recorded as such, and
// errors in it name it as compose's key does.
func TestInlineDockerfile(t *testing.T) {
	all := computeFiles(t, map[string]string{
		"compose.yaml": "services:\n  file:\n    build: .\n  inline:\n    build:\n      context: .\n      dockerfile_inline: \"FROM scratch\\n\"\n",
		"Dockerfile":   "FROM scratch\n",
	})
	if !all["inline"].Dockerfile.Inline || all["file"].Dockerfile.Inline {
		t.Errorf("inline: %v, file: %v", all["inline"].Dockerfile.Inline, all["file"].Dockerfile.Inline)
	}
	dir := t.TempDir()
	writeFixture(t, dir, map[string]string{
		"compose.yaml": "services:\n  inline:\n    build:\n      context: .\n      dockerfile_inline: \"FROM scratch\\nCOPY --nope a /a\\n\"\n",
	}, time.Now())
	p, err := loadProject(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = computeProject(p, nil)
	if err == nil || !strings.Contains(err.Error(), "(dockerfile_inline)") {
		t.Fatalf("error %v does not name the inline Dockerfile", err)
	}
}
