package solver

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/engine"
	"github.com/moby/buildkit/client"
	// Connection helpers for docker-container://, kube-pod:// and ssh://.
	_ "github.com/moby/buildkit/client/connhelper/dockercontainer"
	_ "github.com/moby/buildkit/client/connhelper/kubepod"
	_ "github.com/moby/buildkit/client/connhelper/ssh"
)

// DefaultAddr is buildkitd's default socket for a root daemon.
const DefaultAddr = "unix:///run/buildkit/buildkitd.sock"

// Connect dials the buildkitd at addr (unix://, tcp://,
// docker-container://, kube-pod://, ssh://) and checks that it answers,
// since client.New itself does not connect.
// Its errors show addr without credentials (see ShownAddr).
func Connect(ctx context.Context, addr string, tls engine.TLS) (*client.Client, *client.Info, error) {
	c, info, err := connect(ctx, addr, tls)
	return c, info, scrubErr(err, addr)
}

func connect(ctx context.Context, addr string, tls engine.TLS) (*client.Client, *client.Info, error) {
	var opts []client.ClientOpt
	if tls.CACert != "" || tls.ServerName != "" {
		opts = append(opts, client.WithServerConfig(tls.ServerName, tls.CACert))
	}
	if tls.Cert != "" || tls.Key != "" {
		if tls.Cert == "" || tls.Key == "" {
			return nil, nil, engine.ErrCertWithoutKey
		}
		opts = append(opts, client.WithCredentials(tls.Cert, tls.Key))
	}
	c, err := client.New(ctx, addr, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("buildkitd at %s: %w", addr, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	info, err := c.Info(ictx)
	if err != nil {
		c.Close()
		return nil, nil, dialError(addr, err)
	}
	return c, info, nil
}

// helperFailure matches what BuildKit's connection helpers report when
// their command (ssh, docker exec, kubectl exec) exits: docker's
// commandconn error, quoted inside gRPC's.
var helperFailure = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`command \[([^\]]*)\] has exited with ([^,]*), .*stderr=(.*)$`)
})

// dialError says why buildkitd at addr did not answer and what to do. For
// the connection helpers it reports the helper command's own stderr (why
// ssh or docker refused) instead of the generic text around it.
func dialError(addr string, err error) error {
	scheme, _, _ := strings.Cut(addr, "://")
	hint := map[string]string{
		"ssh": "check that `ssh HOST buildctl --version` works non-interactively (keys, known_hosts, user) " +
			"and that buildctl is on the remote PATH",
		"docker-container": "`docker ps` must list the container, running buildkitd with buildctl inside " +
			"(the moby/buildkit image), and reachable with the docker CLI's current context or DOCKER_HOST",
		"kube-pod": "`kubectl exec POD -- buildctl --version` must work with kubectl's current context",
	}[scheme]
	m := helperFailure().FindStringSubmatch(err.Error())
	if hint == "" || m == nil {
		return fmt.Errorf("cannot reach buildkitd at %s: %v\n"+
			"start one (for example `sudo buildkitd` or `go tool buildkitd` in this repository), "+
			"or point bkcache at a running daemon through BUILDKIT_HOST", addr, err)
	}
	stderr := strings.TrimRight(m[3], `"`)
	stderr = strings.NewReplacer(`\r`, "", `\n`, "\n", `\"`, `"`, `\t`, "\t").Replace(stderr)
	stderr = strings.TrimSpace(stderr)
	if stderr == "" {
		stderr = "(no output)"
	}
	return fmt.Errorf("cannot reach buildkitd at %s: `%s` exited with %s: %s\n%s", addr, m[1], m[2], stderr, hint)
}
