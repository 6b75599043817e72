package solver

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/moby/buildkit/client"
	// Connection helpers for docker-container://, kube-pod:// and ssh://.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"
	_ "github.com/moby/buildkit/client/connhelper/ssh"
)

// DefaultAddr is buildkitd's default socket for a root daemon.
const DefaultAddr = "unix:///run/buildkit/buildkitd.sock"

// Daemon says how to reach buildkitd.
type Daemon struct {
	Addr       string // unix://, tcp://, docker-container://, kube-pod://, ssh://
	CACert     string // tcp with TLS: CA to verify the daemon
	Cert, Key  string // tcp with TLS: client certificate
	ServerName string // tcp with TLS: name expected in the daemon's certificate
}

// Addr returns the daemon address to use: flag, then $BUILDKIT_HOST,
// then buildkitd's default socket.
func Addr(flag string) string {
	if flag != "" {
		return flag
	}
	if v := os.Getenv("BUILDKIT_HOST"); v != "" {
		return v
	}
	return DefaultAddr
}

// Connect dials buildkitd and checks that it answers, since client.New
// itself does not connect.
func Connect(ctx context.Context, d Daemon) (*client.Client, *client.Info, error) {
	var opts []client.ClientOpt
	if d.CACert != "" || d.ServerName != "" {
		opts = append(opts, client.WithServerConfig(d.ServerName, d.CACert))
	}
	if d.Cert != "" || d.Key != "" {
		if d.Cert == "" || d.Key == "" {
			return nil, nil, fmt.Errorf("--tlscert and --tlskey go together")
		}
		opts = append(opts, client.WithCredentials(d.Cert, d.Key))
	}
	c, err := client.New(ctx, d.Addr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("buildkitd at %s: %w", d.Addr, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	info, err := c.Info(ictx)
	if err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("cannot reach buildkitd at %s: %v\n"+
			"start one (for example `sudo buildkitd` or `go tool buildkitd` in this repository), "+
			"or point bkcache at a running daemon with --addr or BUILDKIT_HOST", d.Addr, err)
	}
	return c, info, nil
}
