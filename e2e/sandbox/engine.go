package sandbox

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// The engine tests build on a current Docker engine: moby v2's dockerd
// at the version e2e/engines/dockerd/go.mod pins (a module of its own, so
// that its dependencies stay out of bkcache's), run with Debian's
// containerd and runc.

// dockerdTags leave out the storage drivers that need cgo or kernel
// headers this build does not have.
const dockerdTags = "exclude_graphdriver_btrfs exclude_graphdriver_devicemapper exclude_disk_quota"

// BuildDockerd builds that dockerd, once per sandbox; the Go build cache
// makes it quick after the first time.
func (s *Sandbox) BuildDockerd(ctx context.Context) (string, error) {
	out := filepath.Join(s.Bin, "dockerd-v2")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-tags", dockerdTags, "-o", out, "github.com/moby/moby/v2/cmd/dockerd")
	cmd.Dir = filepath.Join(s.moduleRoot, "e2e", "engines", "dockerd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build dockerd (moby v2, e2e/engines/dockerd): %v\n%s", err, b)
	}
	return out, nil
}

// EngineOptions configure StartEngine.
type EngineOptions struct {
	Name    string // for Stop and the log file
	Bin     string // the dockerd binary
	Group   string // owns the API socket, as the docker group does
	Classic bool   // the classic image store instead of containerd's
}

// StartEngine starts a Docker engine with its own data root, exec root
// and socket, Docker Hub mirrored by the sandbox registry, and BuildKit
// inside it. Unlike StartDocker's, it has a bridge (without iptables
// rules): its BuildKit runs RUN steps on the bridge network.
func (s *Sandbox) StartEngine(ctx context.Context, opt EngineOptions) (*Docker, error) {
	dir := filepath.Join(s.Dir, opt.Name)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	d := &Docker{Host: "unix://" + filepath.Join(dir, "docker.sock"), sb: s}
	args := []string{"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "--host", d.Host,
		"--iptables=false", "--ip6tables=false", "--registry-mirror", "http://" + s.RegistryAddr,
		"--feature", fmt.Sprintf("containerd-snapshotter=%v", !opt.Classic)}
	if opt.Group != "" {
		args = append(args, "--group", opt.Group)
	}
	if err := s.start(opt.Name, opt.Bin, args...); err != nil {
		return nil, err
	}
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(s.Dir, opt.Name+".log"))
		return string(b)
	}
	if err := waitFor(ctx, time.Minute, opt.Name, func() error { _, err := d.Run(ctx, nil, "info"); return err }, logs); err != nil {
		return nil, err
	}
	return d, nil
}

// BuildBuildx builds buildx at the version e2e/engines/buildx/go.mod
// pins, once per sandbox.
func (s *Sandbox) BuildBuildx(ctx context.Context) (string, error) {
	out := filepath.Join(s.Bin, "buildx")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-ldflags", "-X github.com/docker/buildx/version.Version="+BuildxVersion,
		"-o", out, "github.com/docker/buildx/cmd/buildx")
	cmd.Dir = filepath.Join(s.moduleRoot, "e2e", "engines", "buildx")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build buildx (e2e/engines/buildx): %v\n%s", err, b)
	}
	return out, nil
}

// BuildxVersion is the buildx e2e/engines/buildx/go.mod pins.
const BuildxVersion = "v0.38.2"
