package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The bkcache image is assembled as ko assembles Go images: an empty
// base, one layer with the static binary, CA certificates and a
// non-root user, and a config naming them. No Dockerfile and no daemon.
// The debug image adds a second layer, busybox, for CI systems that run
// a shell script in the job's image (GitLab's script:).

// nonroot is the image's user, as distroless names it.
const nonroot = 65532

// caBundle is where the CA certificates are read from, on Debian and
// Ubuntu, and put in the image.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// imageMeta are the image's OCI annotations, and the tag its layout
// names it by.
type imageMeta struct {
	Version, Revision, Source string
	Created                   time.Time
	Tag, Description          string
}

func (m imageMeta) annotations() map[string]string {
	a := map[string]string{
		"org.opencontainers.image.source":   m.Source,
		"org.opencontainers.image.revision": m.Revision,
		"org.opencontainers.image.version":  m.Version,
		"org.opencontainers.image.created":  m.Created.Format(time.RFC3339),
		"org.opencontainers.image.title":    "bkcache",
	}
	if m.Description != "" {
		a["org.opencontainers.image.description"] = m.Description
	}
	return a
}

// debugMeta is the debug image's: tagged VERSION-debug, and saying which
// busybox it carries.
func debugMeta(m imageMeta, shells map[string]busybox) imageMeta {
	var versions []string
	for _, arch := range []string{"amd64", "arm64"} {
		if bb, ok := shells[arch]; ok {
			versions = append(versions, arch+" "+bb.Version)
		}
	}
	m.Tag = m.Version + "-debug"
	m.Description = "bkcache with Debian's busybox-static (" + strings.Join(versions, ", ") + ") in /busybox, for CI jobs that run a script: in it"
	return m
}

// writeImage writes an OCI layout at dir holding one index of the
// linux binaries, platform by platform; with shells, each image also
// holds that architecture's busybox.
func writeImage(dir string, bins map[Platform]string, meta imageMeta, shells map[string]busybox) error {
	var adds []mutate.IndexAddendum
	for _, p := range Platforms {
		bin, ok := bins[p]
		if !ok || p.OS != "linux" {
			continue
		}
		var shell *busybox
		if bb, ok := shells[p.Arch]; ok {
			shell = &bb
		}
		img, err := image(bin, p, meta, shell)
		if err != nil {
			return fmt.Errorf("image for %s/%s: %w", p.OS, p.Arch, err)
		}
		adds = append(adds, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: p.OS, Architecture: p.Arch}}})
	}
	if len(adds) == 0 {
		return nil
	}
	idx := mutate.IndexMediaType(mutate.AppendManifests(empty.Index, adds...), types.OCIImageIndex)
	idx = mutate.Annotations(idx, meta.annotations()).(v1.ImageIndex)
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": meta.Tag}))
}

// image is one platform's image; with a shell, the debug image.
func image(bin string, p Platform, meta imageMeta, shell *busybox) (v1.Image, error) {
	files, err := baseFiles(bin)
	if err != nil {
		return nil, err
	}
	layers := [][]tarFile{files}
	path := "/usr/local/bin:/usr/bin:/bin"
	if shell != nil {
		layers = append(layers, busyboxFiles(*shell))
		path += ":/busybox"
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	for _, files := range layers {
		data, err := tarLayer(files, meta.Created)
		if err != nil {
			return nil, err
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return nil, err
		}
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = p.OS, p.Arch, v1.Time{Time: meta.Created}
	cfg.Config.Entrypoint = []string{"/usr/local/bin/bkcache"}
	cfg.Config.User = fmt.Sprintf("%d:%d", nonroot, nonroot)
	cfg.Config.Env = []string{"PATH=" + path, "SSL_CERT_FILE=" + caBundle, "HOME=/home/nonroot"}
	cfg.Config.WorkingDir = "/home/nonroot"
	cfg.Config.Labels = meta.annotations()
	for i := range cfg.History {
		cfg.History[i].Created = v1.Time{Time: meta.Created}
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return nil, err
	}
	return mutate.Annotations(img, meta.annotations()).(v1.Image), nil
}

// tarFile is one entry of a layer: a file, a directory or a symlink.
type tarFile struct {
	name string
	mode int64
	data []byte
	dir  bool
	link string
	uid  int
}

// baseFiles are the image's first layer: the binary, the CA
// certificates, and /etc/passwd and /etc/group with the non-root user
// and its home, all owned by root but the home.
func baseFiles(bin string) ([]tarFile, error) {
	binData, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("CA certificates for the image: %w (apt-get install ca-certificates)", err)
	}
	return []tarFile{
		{name: "etc/", mode: 0o755, dir: true},
		{name: "etc/group", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", nonroot))},
		{name: "etc/passwd", mode: 0o644, data: []byte(fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", nonroot, nonroot))},
		{name: "etc/ssl/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/", mode: 0o755, dir: true},
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "home/", mode: 0o755, dir: true},
		{name: "home/nonroot/", mode: 0o700, dir: true, uid: nonroot},
		{name: "tmp/", mode: 0o1777, dir: true},
		{name: "usr/", mode: 0o755, dir: true},
		{name: "usr/local/", mode: 0o755, dir: true},
		{name: "usr/local/bin/", mode: 0o755, dir: true},
		{name: "usr/local/bin/bkcache", mode: 0o755, data: binData},
	}, nil
}

// busyboxFiles are the debug image's second layer: busybox in /busybox,
// where GitLab Runner's shell detection looks (as in kaniko's debug
// image), with sh beside it. Debian's static busybox runs its own applets
// before PATH, so the shell has mkdir, tar, wget and the rest without a
// link for each.
func busyboxFiles(bb busybox) []tarFile {
	return []tarFile{
		{name: "busybox/", mode: 0o755, dir: true},
		{name: "busybox/busybox", mode: 0o755, data: bb.Binary},
		{name: "busybox/sh", mode: 0o777, link: "busybox"},
	}
}

// tarLayer writes files, in their order, at the epoch.
func tarLayer(files []tarFile, epoch time.Time) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch, Typeflag: tar.TypeReg, Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		switch {
		case f.dir:
			h.Typeflag = tar.TypeDir
		case f.link != "":
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.link
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
