package main

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// flat is an image's file system: each path's link target, or its
// content.
func flat(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	out := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out[h.Name] = string(b)
		if h.Typeflag == tar.TypeSymlink {
			out[h.Name] = "-> " + h.Linkname
		}
	}
}

// TestDebugImage: the debug image is the plain image and busybox in
// /busybox, with sh linked to it and /busybox on PATH; the plain image
// has neither; both are the same bytes when made twice.
func TestDebugImage(t *testing.T) {
	if _, err := os.Stat(caBundle); err != nil {
		t.Skipf("no %s: apt-get install ca-certificates", caBundle)
	}
	bin := filepath.Join(t.TempDir(), "bkcache")
	if err := os.WriteFile(bin, []byte("the binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	meta := imageMeta{Version: "v1.2.3", Created: time.Unix(1764930000, 0).UTC(), Tag: "v1.2.3"}
	shell := &busybox{Version: "1:1.35.0-4", Binary: []byte("the shell")}
	p := Platform{"linux", "arm64"}
	for _, tc := range []struct {
		name  string
		shell *busybox
	}{{"plain", nil}, {"debug", shell}} {
		t.Run(tc.name, func(t *testing.T) {
			img, err := image(bin, p, meta, tc.shell)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := image(bin, p, meta, tc.shell)
			d1, _ := img.Digest()
			d2, _ := again.Digest()
			if d1 != d2 {
				t.Errorf("made twice: %s and %s", d1, d2)
			}
			fs := flat(t, img)
			cfg, _ := img.ConfigFile()
			path := strings.Join(cfg.Config.Env, " ")
			if fs["usr/local/bin/bkcache"] != "the binary" || cfg.Config.User != "65532:65532" || !slices.Equal(cfg.Config.Entrypoint, []string{"/usr/local/bin/bkcache"}) {
				t.Errorf("the binary %q, user %q, entrypoint %q", fs["usr/local/bin/bkcache"], cfg.Config.User, cfg.Config.Entrypoint)
			}
			if cfg.OS != "linux" || cfg.Architecture != "arm64" || cfg.Config.WorkingDir != "/home/nonroot" || cfg.Config.Labels["org.opencontainers.image.version"] != "v1.2.3" {
				t.Errorf("the config: %s/%s, working dir %q, labels %v", cfg.OS, cfg.Architecture, cfg.Config.WorkingDir, cfg.Config.Labels)
			}
			if !cfg.Created.Time.Equal(meta.Created) || len(cfg.History) != len(layers(t, img)) {
				t.Errorf("created %v, history %d entries for %d layers", cfg.Created, len(cfg.History), len(layers(t, img)))
			}
			for _, h := range cfg.History {
				if !h.Created.Time.Equal(meta.Created) {
					t.Errorf("a history entry at %v, not the epoch", h.Created)
				}
			}
			if m, _ := img.Manifest(); m.Annotations["org.opencontainers.image.version"] != "v1.2.3" {
				t.Errorf("the manifest's annotations: %v", m.Annotations)
			}
			if tc.shell == nil {
				if _, ok := fs["busybox/busybox"]; ok || strings.Contains(path, "/busybox") {
					t.Errorf("the plain image has busybox: %v", path)
				}
				return
			}
			if fs["busybox/busybox"] != "the shell" || fs["busybox/sh"] != "-> busybox" {
				t.Errorf("/busybox: busybox %q, sh %q", fs["busybox/busybox"], fs["busybox/sh"])
			}
			if !slices.Contains(cfg.Config.Env, "PATH=/usr/local/bin:/usr/bin:/bin:/busybox") {
				t.Errorf("the debug image's env %v: /busybox is not on PATH", cfg.Config.Env)
			}
		})
	}
	if _, ok := meta.annotations()["org.opencontainers.image.description"]; ok {
		t.Errorf("the plain image has a description: %v", meta.annotations())
	}
	m := debugMeta(meta, map[string]busybox{"arm64": *shell})
	if m.Tag != "v1.2.3-debug" || !strings.Contains(m.annotations()["org.opencontainers.image.description"], "arm64 1:1.35.0-4") {
		t.Errorf("the debug image's meta: %+v", m)
	}
}

func layers(t *testing.T, img v1.Image) []v1.Layer {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// TestWriteImage: the layout holds one index, named by the tag, of the
// linux binaries only, in the release's platform order, annotated;
// shells make it the debug image; no linux binary, no layout.
func TestWriteImage(t *testing.T) {
	if _, err := os.Stat(caBundle); err != nil {
		t.Skipf("no %s: apt-get install ca-certificates", caBundle)
	}
	bins := map[Platform]string{}
	for _, p := range []Platform{{"linux", "arm64"}, {"darwin", "arm64"}, {"linux", "amd64"}} {
		bins[p] = filepath.Join(t.TempDir(), "bkcache")
		if err := os.WriteFile(bins[p], []byte(p.OS+"/"+p.Arch), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	meta := imageMeta{Version: "v1.2.3", Source: "https://example.com/bkcache", Created: time.Unix(1764930000, 0).UTC(), Tag: "v1.2.3-debug"}
	dir := filepath.Join(t.TempDir(), "image")
	shells := map[string]busybox{"amd64": {Binary: []byte("amd64 shell")}, "arm64": {Binary: []byte("arm64 shell")}}
	if err := writeImage(dir, bins, meta, shells); err != nil {
		t.Fatal(err)
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	top, _ := lp.ImageIndex()
	tm, err := top.IndexManifest()
	if err != nil || len(tm.Manifests) != 1 || tm.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "v1.2.3-debug" {
		t.Fatalf("index.json: %+v %v", tm, err)
	}
	idx, _ := top.ImageIndex(tm.Manifests[0].Digest)
	im, err := idx.IndexManifest()
	if err != nil || im.MediaType != types.OCIImageIndex || im.Annotations["org.opencontainers.image.source"] != meta.Source {
		t.Fatalf("the image index: %+v %v", im, err)
	}
	var got []string
	for _, m := range im.Manifests {
		img, _ := idx.Image(m.Digest)
		fs := flat(t, img)
		got = append(got, m.Platform.OS+"/"+m.Platform.Architecture+": "+fs["usr/local/bin/bkcache"]+", "+fs["busybox/busybox"])
	}
	want := []string{"linux/amd64: linux/amd64, amd64 shell", "linux/arm64: linux/arm64, arm64 shell"}
	if !slices.Equal(got, want) {
		t.Errorf("the index holds %q, want %q", got, want)
	}
	none := filepath.Join(t.TempDir(), "none")
	if err := writeImage(none, map[Platform]string{{"darwin", "arm64"}: bins[Platform{"darwin", "arm64"}]}, meta, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Errorf("a release without linux binaries wrote a layout: %v", err)
	}
}

// TestBusyboxes: the busybox of each linux platform comes from its
// Debian package, through dpkg-deb; a missing package says how to get it.
func TestBusyboxes(t *testing.T) {
	dir := t.TempDir()
	linux := []Platform{{"linux", "amd64"}, {"darwin", "arm64"}}
	_, err := busyboxes(dir, linux)
	if err == nil || !strings.Contains(err.Error(), "apt-get download busybox-static:amd64") {
		t.Errorf("no package: %v", err)
	}
	if _, err := exec.LookPath("dpkg-deb"); err != nil {
		t.Skip("no dpkg-deb to build a package with: apt-get install dpkg")
	}
	deb(t, dir, "busybox-static_9.9-1_amd64.deb", map[string]string{"bin/busybox": "the amd64 shell"})
	got, err := busyboxes(dir, linux)
	if err != nil || len(got) != 1 || got["amd64"].Version != "1:9.9-1" || string(got["amd64"].Binary) != "the amd64 shell" {
		t.Errorf("busyboxes: %+v, %v", got, err)
	}
	deb(t, dir, "busybox-static_9.9-2_amd64.deb", map[string]string{"bin/busybox": "a newer one"})
	if _, err := busyboxes(dir, linux); err == nil || !strings.Contains(err.Error(), "found 2") {
		t.Errorf("two packages for one architecture: %v", err)
	}
	corrupt := t.TempDir()
	if err := os.WriteFile(filepath.Join(corrupt, "busybox-static_9.9-1_amd64.deb"), []byte("not a package"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := busyboxes(corrupt, linux); err == nil || !strings.Contains(err.Error(), "dpkg-deb") || !strings.Contains(err.Error(), "busybox-static_9.9-1_amd64.deb") {
		t.Errorf("a corrupt package: %v", err)
	}
	empty := t.TempDir()
	deb(t, empty, "busybox-static_9.9-1_amd64.deb", map[string]string{"bin/sh": "not busybox"})
	if _, err := busyboxes(empty, linux); err == nil || !strings.Contains(err.Error(), "no bin/busybox in the package") {
		t.Errorf("a package without bin/busybox: %v", err)
	}
}

// deb builds a busybox-static package of files in dir, as name.
func deb(t *testing.T, dir, name string, files map[string]string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "pkg")
	files["DEBIAN/control"] = "Package: busybox-static\nVersion: 1:9.9-1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n"
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, filepath.Join(dir, name)).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
}
