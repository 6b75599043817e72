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
	"github.com/google/go-containerregistry/pkg/v1/mutate"
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
			if fs["usr/local/bin/bkcache"] != "the binary" || cfg.Config.User != "65532:65532" {
				t.Errorf("the binary %q, user %q", fs["usr/local/bin/bkcache"], cfg.Config.User)
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
	m := debugMeta(meta, map[string]busybox{"arm64": *shell})
	if m.Tag != "v1.2.3-debug" || !strings.Contains(m.annotations()["org.opencontainers.image.description"], "arm64 1:1.35.0-4") {
		t.Errorf("the debug image's meta: %+v", m)
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
	root := filepath.Join(t.TempDir(), "pkg")
	for name, data := range map[string]string{
		"DEBIAN/control": "Package: busybox-static\nVersion: 1:9.9-1\nArchitecture: amd64\nMaintainer: t <t@t>\nDescription: t\n",
		"bin/busybox":    "the amd64 shell",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("dpkg-deb", "--root-owner-group", "--build", root, filepath.Join(dir, "busybox-static_9.9-1_amd64.deb")).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --build: %v\n%s", err, out)
	}
	got, err := busyboxes(dir, linux)
	if err != nil || len(got) != 1 || got["amd64"].Version != "1:9.9-1" || string(got["amd64"].Binary) != "the amd64 shell" {
		t.Errorf("busyboxes: %+v, %v", got, err)
	}
}
