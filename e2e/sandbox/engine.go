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
	return s.buildOnce(ctx, "dockerd-v2", filepath.Join("e2e", "engines", "dockerd"), []string{"CGO_ENABLED=0"},
		"-tags", dockerdTags, "github.com/moby/moby/v2/cmd/dockerd")
}

// buildOnce builds pkg, from the module in dir (relative to bkcache's),
// into the sandbox's binaries as name, unless it is there already.
func (s *Sandbox) buildOnce(ctx context.Context, name, dir string, env []string, args ...string) (string, error) {
	out := filepath.Join(s.Bin, name)
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", out}, args...)...)
	cmd.Dir = filepath.Join(s.moduleRoot, dir)
	cmd.Env = append(os.Environ(), env...)
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s (in %s): %v\n%s", args[len(args)-1], cmd.Dir, err, b)
	}
	return out, nil
}

// BuildCrane builds go-containerregistry's crane at the version go.mod
// pins: the README's command for publishing the image.
func (s *Sandbox) BuildCrane(ctx context.Context) (string, error) {
	return s.buildOnce(ctx, "crane", ".", nil, "github.com/google/go-containerregistry/cmd/crane")
}

// ModuleRoot is the directory of bkcache's module.
func (s *Sandbox) ModuleRoot() string { return s.moduleRoot }

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
	args := []string{"--registry-mirror", "http://" + s.RegistryAddr, "--feature", fmt.Sprintf("containerd-snapshotter=%v", !opt.Classic)}
	if opt.Group != "" {
		args = append(args, "--group", opt.Group)
	}
	return s.startDockerd(ctx, opt.Name, opt.Bin, args...)
}

// dockerHost is the API socket of the dockerd named name.
func dockerHost(s *Sandbox, name string) string {
	return "unix://" + filepath.Join(s.Dir, name, "docker.sock")
}

// startDockerd starts the dockerd at bin, named name (for Stop and its
// log), with its own data root, exec root and socket under the sandbox
// and no iptables rules, and waits until it answers.
func (s *Sandbox) startDockerd(ctx context.Context, name, bin string, extra ...string) (*Docker, error) {
	dir := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, err
	}
	d := &Docker{Host: dockerHost(s, name), sb: s}
	args := append([]string{"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "docker.pid"), "--host", d.Host, "--iptables=false", "--ip6tables=false"}, extra...)
	if err := s.start(name, bin, args...); err != nil {
		return nil, err
	}
	logs := func() string {
		b, _ := os.ReadFile(filepath.Join(s.Dir, name+".log"))
		return string(b)
	}
	if err := waitFor(ctx, time.Minute, name, func() error { _, err := d.Run(ctx, nil, "info"); return err }, logs); err != nil {
		return nil, err
	}
	return d, nil
}

// BuildBuildx builds buildx at the version e2e/engines/buildx/go.mod
// pins, once per sandbox.
func (s *Sandbox) BuildBuildx(ctx context.Context) (string, error) {
	return s.buildOnce(ctx, "buildx", filepath.Join("e2e", "engines", "buildx"), nil,
		"-ldflags", "-X github.com/docker/buildx/version.Version="+BuildxVersion, "github.com/docker/buildx/cmd/buildx")
}

// BuildxVersion is the buildx e2e/engines/buildx/go.mod pins.
const BuildxVersion = "v0.38.2"
