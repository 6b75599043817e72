package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Container is one run of an image under runc, as a CI runner's docker
// executor runs a job in it: the image's file system, environment, user
// and working directory; the command given (the image's entrypoint
// only if the caller puts it in Args); the host's network, so loopback
// servers answer; and bind mounts.
type Container struct {
	Args  []string
	Env   []string          // after the image's own
	Cwd   string            // else the image's working directory
	Binds map[string]string // host path -> path in the container
	Stdin io.Reader
}

// RunImage runs c in img's file system and returns what it wrote and
// its exit code; err is for a container that could not run at all.
func (s *Sandbox) RunImage(ctx context.Context, img v1.Image, c Container) (stdout, stderr string, code int, err error) {
	bundle, err := os.MkdirTemp(s.Dir, "container-")
	if err != nil {
		return "", "", 0, err
	}
	defer os.RemoveAll(bundle)
	if err := unpack(ctx, img, filepath.Join(bundle, "rootfs")); err != nil {
		return "", "", 0, err
	}
	if err := writeSpec(ctx, bundle, img, c); err != nil {
		return "", "", 0, err
	}
	state, id := filepath.Join(bundle, "state"), filepath.Base(bundle)
	cmd := exec.CommandContext(ctx, "runc", "--root", state, "run", "--bundle", bundle, id)
	cmd.Cancel = func() error {
		return exec.Command("runc", "--root", state, "kill", id, "KILL").Run()
	}
	cmd.WaitDelay = 10 * time.Second
	defer exec.Command("runc", "--root", state, "delete", "--force", id).Run()
	var out, errb bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.Stdin, &out, &errb
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode(), nil
	}
	return out.String(), errb.String(), 0, err
}

// unpack writes img's flattened file system into dir with GNU tar,
// which keeps owners and modes as root does.
func unpack(ctx context.Context, img v1.Image, dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	cmd := exec.CommandContext(ctx, "tar", "-x", "--same-owner", "--same-permissions", "-C", dir, "-f", "-")
	cmd.Stdin = rc
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("unpacking the image: %v\n%s", err, out)
	}
	return nil
}

// writeSpec writes the bundle's config.json: runc's default, made into
// the job's process, on the host's network.
func writeSpec(ctx context.Context, bundle string, img v1.Image, c Container) error {
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	if out, err := exec.CommandContext(ctx, "runc", "spec", "--bundle", bundle).CombinedOutput(); err != nil {
		return fmt.Errorf("runc spec: %v\n%s", err, out)
	}
	path := filepath.Join(bundle, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return err
	}
	uid, gid, err := userOf(cfg.Config.User)
	if err != nil {
		return err
	}
	spec.Process.Terminal = false
	spec.Process.User = specs.User{UID: uid, GID: gid}
	spec.Process.Args = c.Args
	spec.Process.Env = append(append([]string{}, cfg.Config.Env...), c.Env...)
	spec.Process.Cwd = c.Cwd
	if spec.Process.Cwd == "" {
		spec.Process.Cwd = cfg.Config.WorkingDir
	}
	spec.Root.Readonly = false
	var ns []specs.LinuxNamespace
	for _, n := range spec.Linux.Namespaces {
		if n.Type != specs.NetworkNamespace {
			ns = append(ns, n)
		}
	}
	spec.Linux.Namespaces = ns
	for host, in := range c.Binds {
		spec.Mounts = append(spec.Mounts, specs.Mount{Destination: in, Type: "bind", Source: host, Options: []string{"rbind", "rw"}})
	}
	if b, err = json.Marshal(spec); err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

// userOf reads an image config's numeric USER, UID[:GID].
func userOf(user string) (uint32, uint32, error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, ok := strings.Cut(user, ":")
	if !ok {
		g = u
	}
	uid, err1 := strconv.ParseUint(u, 10, 32)
	gid, err2 := strconv.ParseUint(g, 10, 32)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("the image's user %q is not numeric UID:GID", user)
	}
	return uint32(uid), uint32(gid), nil
}
