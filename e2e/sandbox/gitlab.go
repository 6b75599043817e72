package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// GitLabCILocal installs gitlab-ci-local, which runs a .gitlab-ci.yml
// pipeline with a Docker engine, at the version and dependencies
// e2e/engines/gitlab-ci-local's package-lock.json pins (npm ci), once
// per sandbox, and returns its command.
func (s *Sandbox) GitLabCILocal(ctx context.Context) (string, error) {
	var missing []string
	for _, bin := range []string{"node", "npm", "rsync", "git"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("%w: %s (apt-get install -y nodejs npm rsync git)", ErrMissing, strings.Join(missing, ", "))
	}
	dir := filepath.Join(s.Dir, "gitlab-ci-local")
	bin := filepath.Join(dir, "node_modules", ".bin", "gitlab-ci-local")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(s.moduleRoot, "e2e", "engines", "gitlab-ci-local", f))
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return "", err
		}
	}
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--silent")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci gitlab-ci-local (through the npm registry): %v\n%s", err, out)
	}
	return bin, nil
}

// GitLabHelperImage pushes, once, the helper image gitlab-ci-local runs
// beside a job's container to copy the project in and the artifacts
// out, and returns its ref. Its own, firecow/gitlab-ci-local-util, is
// on Docker Hub, out of reach here: this one is the sandbox's busybox
// with this machine's bash and rsync, and the libraries they link.
func (s *Sandbox) GitLabHelperImage(ctx context.Context) (string, error) {
	ref := s.RegistryAddr + "/gitlab-ci-local-helper:1"
	s.helperMu.Lock()
	defer s.helperMu.Unlock()
	if s.helperPushed {
		return ref, nil
	}
	layer, err := hostFiles(ctx, "/usr/bin/bash", "/usr/bin/rsync")
	if err != nil {
		return "", err
	}
	bref, err := name.ParseReference(s.RegistryAddr+"/library/busybox:latest", name.Insecure)
	if err != nil {
		return "", err
	}
	base, err := remote.Image(bref, remote.WithContext(ctx))
	if err != nil {
		return "", err
	}
	img, err := mutate.AppendLayers(base, layer)
	if err != nil {
		return "", err
	}
	if err := s.push(ctx, "gitlab-ci-local-helper:1", img); err != nil {
		return "", err
	}
	s.helperPushed = true
	return ref, nil
}

// ldPath is a library path in ldd's output.
var ldPath = regexp.MustCompile(`(?m)(/\S+\.so[.\d]*)\s+\(0x`)

// hostFiles is a layer of this machine's binaries, at their paths, and
// every library ldd says they load.
func hostFiles(ctx context.Context, bins ...string) (v1.Layer, error) {
	paths := slices.Clone(bins)
	for _, b := range bins {
		out, err := exec.CommandContext(ctx, "ldd", b).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", b, err)
		}
		for _, m := range ldPath.FindAllStringSubmatch(string(out), -1) {
			paths = append(paths, m[1])
		}
	}
	var dirs []string
	for _, p := range paths {
		for d := filepath.Dir(p); d != "/"; d = filepath.Dir(d) {
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	slices.Sort(paths)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range slices.Compact(dirs) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: strings.TrimPrefix(d, "/") + "/", Mode: 0o755})
	}
	for _, p := range slices.Compact(paths) {
		data, err := os.ReadFile(p) // through symlinks: the file itself
		if err != nil {
			return nil, err
		}
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(p, "/"), Mode: 0o755, Size: int64(len(data))})
		tw.Write(data)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
}
