package sandbox

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// SSH is an OpenSSH server on loopback through which buildkitd is
// reached the way BuildKit's ssh:// connection helper does it: `ssh HOST
// buildctl --addr unix://SOCKET dial-stdio`.
type SSH struct {
	// Addr is the ssh:// address of the sandbox's buildkitd through the
	// server: ssh://root@127.0.0.1:PORT/path/to/buildkitd.sock.
	Addr string
	// PathDir holds an `ssh` that runs the real client with this
	// server's key and host-key settings, as a user's ~/.ssh/config
	// would. Put it first in PATH.
	PathDir string
}

// CheckSSH reports whether OpenSSH's server and client are installed.
func CheckSSH() error {
	var missing []string
	for _, bin := range []string{"/usr/sbin/sshd", "ssh", "ssh-keygen"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s (sudo apt-get install -y openssh-server openssh-client)", ErrMissing, strings.Join(missing, ", "))
	}
	return nil
}

// StartSSH starts sshd on a free loopback port, with its own host key,
// an authorized client key, and buildctl on the sessions' PATH. Close
// stops it.
func (s *Sandbox) StartSSH(ctx context.Context) (*SSH, error) {
	if err := CheckSSH(); err != nil {
		return nil, err
	}
	dir := filepath.Join(s.Dir, "ssh")
	pathDir := filepath.Join(dir, "path")
	for _, d := range []string{pathDir, "/run/sshd"} { // sshd refuses to start without its privilege separation dir
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	build := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(s.Bin, "buildctl"), "github.com/moby/buildkit/cmd/buildctl")
	build.Dir = s.moduleRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build buildctl: %v\n%s", err, out)
	}
	hostKey, clientKey := filepath.Join(dir, "host_key"), filepath.Join(dir, "client_key")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.CommandContext(ctx, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", k).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub, err := os.ReadFile(clientKey + ".pub")
	if err != nil {
		return nil, err
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, pub, 0o600); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`ListenAddress 127.0.0.1:%d
HostKey %s
AuthorizedKeysFile %s
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile %s
SetEnv PATH=%s:/usr/bin:/bin
`, port, hostKey, authorized, filepath.Join(dir, "sshd.pid"), s.Bin)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	// The client side: what a user's ~/.ssh/config would say for this host.
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		return nil, err
	}
	client := fmt.Sprintf("#!/bin/sh\nexec %s -F none -i %s -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \"$@\"\n",
		sshBin, clientKey)
	if err := os.WriteFile(filepath.Join(pathDir, "ssh"), []byte(client), 0o755); err != nil {
		return nil, err
	}
	name := fmt.Sprintf("sshd-%d", port)
	if err := s.start(name, "/usr/sbin/sshd", "-D", "-e", "-f", cfgPath); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	err = waitFor(ctx, 30*time.Second, name, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}, s.Logs)
	if err != nil {
		return nil, err
	}
	return &SSH{Addr: "ssh://root@" + addr + strings.TrimPrefix(s.BuildkitAddr, "unix://"), PathDir: pathDir}, nil
}
