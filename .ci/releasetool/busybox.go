package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
)

// busybox is Debian's static busybox for one architecture: the shell
// and tools of the debug image, which a CI job's script: runs in.
type busybox struct {
	Version string // the Debian package's, such as 1:1.35.0-4+deb12u1+b1
	Binary  []byte
}

// busyboxes reads busybox-static_*_ARCH.deb from dir for each linux
// architecture of platforms; a missing one is an error that says how
// to fetch it.
func busyboxes(dir string, platforms []Platform) (map[string]busybox, error) {
	out := map[string]busybox{}
	for _, p := range platforms {
		if p.OS != "linux" {
			continue
		}
		debs, _ := filepath.Glob(filepath.Join(dir, "busybox-static_*_"+p.Arch+".deb"))
		if len(debs) != 1 {
			return nil, fmt.Errorf("the debug image needs one busybox-static_*_%s.deb in %s, found %d: apt-get download busybox-static:%s there (for a foreign architecture, dpkg --add-architecture %s && apt-get update first)", p.Arch, dir, len(debs), p.Arch, p.Arch)
		}
		bb, err := readDeb(debs[0])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", debs[0], err)
		}
		out[p.Arch] = bb
	}
	return out, nil
}

// readDeb takes the package's version and /bin/busybox out of a .deb,
// through dpkg-deb: its data is xz, which Go's library does not read.
func readDeb(deb string) (busybox, error) {
	v, err := exec.Command("dpkg-deb", "-f", deb, "Version").Output()
	if err != nil {
		return busybox{}, fmt.Errorf("dpkg-deb -f: %w", err)
	}
	data, err := exec.Command("dpkg-deb", "--fsys-tarfile", deb).Output()
	if err != nil {
		return busybox{}, fmt.Errorf("dpkg-deb --fsys-tarfile: %w", err)
	}
	bin, err := fileInTar(data, "bin/busybox")
	if err != nil {
		return busybox{}, err
	}
	return busybox{Version: strings.TrimSpace(string(v)), Binary: bin}, nil
}

// fileInTar is the regular file name (with or without a leading ./) in
// the tar data.
func fileInTar(data []byte, name string) ([]byte, error) {
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("no %s in the package", name)
		}
		if err != nil {
			return nil, err
		}
		if strings.TrimPrefix(h.Name, "./") == name && h.Typeflag == tar.TypeReg {
			return io.ReadAll(tr)
		}
	}
}
