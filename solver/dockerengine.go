package solver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/bkcache/bkcache/solver/engine"
	"github.com/docker/cli/cli/config"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/grpcerrors"
	"github.com/moby/moby/api/types/registry"
	dockerclient "github.com/moby/moby/client"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/mod/semver"
	"google.golang.org/grpc/codes"
)

// MinEngineBuildkit is the oldest BuildKit inside a Docker engine that
// bkcache builds on (Docker Engine 26): the first with several exporters
// in one solve, which pushing and storing an image at once needs.
const MinEngineBuildkit = "v0.13.0"

// DockerEngine is a Docker engine a node builds on: its API, and what its
// BuildKit can do there, asked once when it was dialled.
type DockerEngine struct {
	Host string // as engine.Docker found it
	api  *dockerclient.Client
	// Containerd is whether the engine keeps images in containerd (the
	// containerd image store): only then does its BuildKit export
	// registry cache and push with the image exporter.
	Containerd bool
	// Platform is the engine's own, OS/ARCH as it reports it: the one
	// image of a service of several platforms that a classic store
	// takes.
	Platform string
}

// connectDocker dials the BuildKit inside the Docker engine d, as buildx's
// docker driver does: BuildKit's gRPC API over the engine's /grpc
// endpoint, sessions over /session, both hijacked HTTP connections.
func connectDocker(ctx context.Context, d engine.Docker) (*client.Client, *client.Info, *DockerEngine, error) {
	opts, err := d.ClientOpts()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("docker engine at %s (%s): %w", d.Host, d.Source, err)
	}
	api, err := dockerclient.New(opts...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("docker engine at %s (%s): %w", d.Host, d.Source, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	sys, err := api.Info(ictx, dockerclient.InfoOptions{})
	if err != nil {
		api.Close()
		return nil, nil, nil, fmt.Errorf("no Docker engine answers at %s (%s): %w", d.Host, d.Source, err)
	}
	eng := &DockerEngine{Host: d.Host, api: api, Containerd: containerdStore(sys.Info.DriverStatus), Platform: sys.Info.OSType + "/" + sys.Info.Architecture}
	c, err := client.New(ctx, "",
		client.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return api.DialHijack(ctx, "/grpc", "h2c", nil)
		}),
		client.WithSessionDialer(func(ctx context.Context, proto string, meta map[string][]string) (net.Conn, error) {
			return api.DialHijack(ctx, "/session", proto, meta)
		}))
	if err != nil {
		api.Close()
		return nil, nil, nil, fmt.Errorf("docker engine at %s: %w", d.Host, err)
	}
	info, err := c.Info(ictx)
	if err == nil && semver.Compare(info.BuildkitVersion.Version, MinEngineBuildkit) < 0 {
		err = fmt.Errorf("its BuildKit is %s", info.BuildkitVersion.Version)
	} else if grpcerrors.Code(err) == codes.Unimplemented {
		err = fmt.Errorf("its BuildKit is older than v0.11 (Docker Engine 20.10 or older, server %s)", sys.Info.ServerVersion)
	}
	if err != nil {
		c.Close()
		api.Close()
		return nil, nil, nil, fmt.Errorf("docker engine at %s (%s): %w; bkcache needs BuildKit %s or later (Docker Engine 26 or later): "+
			"upgrade Docker, or build on a buildx builder (`docker buildx create --use`, then bkcache finds it) or a buildkitd (BUILDKIT_HOST)",
			d.Host, d.Source, err, MinEngineBuildkit)
	}
	return c, info, eng, nil
}

// containerdStore reports whether an engine's `docker info` driver status
// says it keeps images in containerd's snapshotters.
func containerdStore(status [][2]string) bool {
	for _, kv := range status {
		if kv[0] == "driver-type" && kv[1] == "io.containerd.snapshotter.v1" {
			return true
		}
	}
	return false
}

// Close closes the engine's API connection.
func (e *DockerEngine) Close() {
	if e != nil {
		e.api.Close()
	}
}

// Store names the engine's image store, as `bkcache version` shows it.
func (e *DockerEngine) Store() string {
	if e.Containerd {
		return "containerd image store"
	}
	return "classic image store"
}

// has reports whether the engine holds image, and if so tags it also as
// each alias.
func (e *DockerEngine) has(ctx context.Context, image string, aliases []string) bool {
	if _, err := e.api.ImageInspect(ctx, image); err != nil {
		return false
	}
	return e.tag(ctx, image, aliases) == nil
}

// tag names image also as each alias.
func (e *DockerEngine) tag(ctx context.Context, image string, aliases []string) error {
	for _, a := range aliases {
		if _, err := e.api.ImageTag(ctx, dockerclient.ImageTagOptions{Source: image, Target: a}); err != nil {
			return err
		}
	}
	return nil
}

// pull pulls image into the engine, with the docker CLI's credentials
// for its registry host, if any.
func (e *DockerEngine) pull(ctx context.Context, image, host string) error {
	auth, err := registryAuth(host)
	if err != nil {
		return err
	}
	resp, err := e.api.ImagePull(ctx, image, dockerclient.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		return err
	}
	return resp.Wait(ctx)
}

// registryAuth is the X-Registry-Auth value for host: the docker CLI's
// credentials for it (helpers included), base64url JSON as the engine
// takes them; "" without any.
func registryAuth(host string) (string, error) {
	ac, err := config.LoadDefaultConfigFile(io.Discard).GetAuthConfig(host)
	if err != nil || (ac.Username == "" && ac.IdentityToken == "" && ac.RegistryToken == "") {
		return "", nil
	}
	b, err := json.Marshal(registry.AuthConfig{
		Username: ac.Username, Password: ac.Password, ServerAddress: ac.ServerAddress,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	})
	if err != nil {
		return "", err
	}
	return base64.URLEncoding.EncodeToString(b), nil
}

// push pushes image from the engine, as `docker push` does, and returns
// the digest the registry took: the classic image store's way to push,
// its BuildKit having no image exporter.
func (e *DockerEngine) push(ctx context.Context, image, host string) (digest.Digest, error) {
	auth, err := registryAuth(host)
	if err != nil {
		return "", err
	}
	resp, err := e.api.ImagePush(ctx, image, dockerclient.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		return "", err
	}
	defer resp.Close()
	var pushed digest.Digest
	for msg, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return "", err
		}
		if msg.Error != nil {
			return "", errors.New(msg.Error.Message)
		}
		var aux struct{ Digest digest.Digest }
		if msg.Aux != nil && json.Unmarshal(*msg.Aux, &aux) == nil && aux.Digest != "" {
			pushed = aux.Digest
		}
	}
	if pushed == "" {
		return "", errors.New("the engine reported no digest for the push")
	}
	return pushed, nil
}
