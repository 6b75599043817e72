package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Docker is a private Docker engine of the sandbox: its own data root,
// exec root and socket, no bridge and no iptables rules, stopped by Close.
type Docker struct {
	Host string // DOCKER_HOST value: unix:///...
	sb   *Sandbox
}

// CheckDocker reports whether a Docker engine and CLI are installed.
func CheckDocker() error {
	var missing []string
	for _, bin := range []string{"dockerd", "docker", "containerd"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s (sudo apt-get install -y docker.io)", ErrMissing, strings.Join(missing, ", "))
	}
	return nil
}

// StartDocker starts Debian's dockerd (20.10), with the containerd it
// starts itself, and waits until it answers; tests share it, started
// once.
func (s *Sandbox) StartDocker(ctx context.Context) (*Docker, error) {
	if err := CheckDocker(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	_, running := s.procs["dockerd"]
	s.mu.Unlock()
	if running {
		return &Docker{Host: dockerHost(s, "dockerd"), sb: s}, nil
	}
	return s.startDockerd(ctx, "dockerd", "dockerd", "--bridge", "none")
}

// Run runs the docker CLI against this engine, stdin from in when set.
func (d *Docker) Run(ctx context.Context, in []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host)
	if in != nil {
		cmd.Stdin = bytes.NewReader(in)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// BuildctlContainer runs a container named name holding busybox and
// buildctl, with the sandbox's buildkitd socket mounted and BUILDKIT_HOST
// pointing at it: what `docker exec -i NAME buildctl dial-stdio`, BuildKit's
// docker-container:// connection helper, needs. The caller removes it.
func (d *Docker) BuildctlContainer(ctx context.Context, name string) error {
	s := d.sb
	buildctl, err := s.buildOnce(ctx, "buildctl-static", ".", []string{"CGO_ENABLED=0"}, "github.com/moby/buildkit/cmd/buildctl")
	if err != nil {
		return err
	}
	rootfs, err := tarFiles(map[string]string{"bin/busybox": "/bin/busybox", "usr/bin/buildctl": buildctl})
	if err != nil {
		return err
	}
	image := "bkcache-e2e/buildctl:latest"
	if _, err := d.Run(ctx, rootfs, "import", "-", image); err != nil {
		return err
	}
	sock := strings.TrimPrefix(s.BuildkitAddr, "unix://")
	_, err = d.Run(ctx, nil, "run", "-d", "--name", name, "--network", "none",
		"-v", filepath.Dir(sock)+":"+filepath.Dir(sock), "-e", "BUILDKIT_HOST="+s.BuildkitAddr,
		image, "/bin/busybox", "sleep", "3600")
	return err
}

// tarFiles makes a tar of files, keyed by their path in the archive.
func tarFiles(files map[string]string) ([]byte, error) {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, src := range files {
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data))}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
