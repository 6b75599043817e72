package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
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

// nonroot is the image's user, as distroless names it.
const nonroot = 65532

// caBundle is where the CA certificates are read from, on Debian and
// Ubuntu, and put in the image.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// imageMeta are the image's OCI annotations.
type imageMeta struct {
	Version, Revision, Source string
	Created                   time.Time
}

func (m imageMeta) annotations() map[string]string {
	return map[string]string{
		"org.opencontainers.image.source":   m.Source,
		"org.opencontainers.image.revision": m.Revision,
		"org.opencontainers.image.version":  m.Version,
		"org.opencontainers.image.created":  m.Created.Format(time.RFC3339),
		"org.opencontainers.image.title":    "bkcache",
	}
}

// writeImage writes an OCI layout at dir holding one index of the
// linux binaries, platform by platform.
func writeImage(dir string, bins map[Platform]string, meta imageMeta) error {
	var adds []mutate.IndexAddendum
	for _, p := range Platforms {
		bin, ok := bins[p]
		if !ok || p.OS != "linux" {
			continue
		}
		img, err := image(bin, p, meta)
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
	return lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": meta.Version}))
}

// image is one platform's image.
func image(bin string, p Platform, meta imageMeta) (v1.Image, error) {
	data, err := fileLayer(bin, meta.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture, cfg.Created = p.OS, p.Arch, v1.Time{Time: meta.Created}
	cfg.Config.Entrypoint = []string{"/usr/local/bin/bkcache"}
	cfg.Config.User = fmt.Sprintf("%d:%d", nonroot, nonroot)
	cfg.Config.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + caBundle, "HOME=/home/nonroot"}
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

// fileLayer is the image's one layer: the binary, the CA certificates,
// and /etc/passwd and /etc/group with the non-root user and its home,
// every entry at the epoch and owned by root but the home.
func fileLayer(bin string, epoch time.Time) ([]byte, error) {
	binData, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("CA certificates for the image: %w (apt-get install ca-certificates)", err)
	}
	files := []struct {
		name string
		mode int64
		data []byte
		dir  bool
		uid  int
	}{
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
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.data)), ModTime: epoch, Typeflag: tar.TypeReg, Uid: f.uid, Gid: f.uid, Format: tar.FormatPAX}
		if f.dir {
			h.Typeflag = tar.TypeDir
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
