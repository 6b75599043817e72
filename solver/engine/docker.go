package engine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/cli/cli/config"
	clicontext "github.com/docker/cli/cli/context"
	dockercontext "github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
	"github.com/moby/moby/client"
)

// Docker is a Docker engine's API endpoint, found as the docker CLI finds
// it: DOCKER_HOST (with DOCKER_TLS_VERIFY and DOCKER_CERT_PATH), else
// DOCKER_CONTEXT or the config's current context, else the platform's
// default socket or pipe.
type Docker struct {
	Host   string // unix:///var/run/docker.sock, tcp://HOST:2376, ssh://USER@HOST, npipe:////./pipe/docker_engine
	Source string // where Host came from, in words
	// Context is the docker context Host came from; "" for DOCKER_HOST
	// and the default. buildx keys its current builder on it.
	Context string
	ep      dockercontext.Endpoint
}

// ClientOpts are the Docker API client's options for d: its host, its
// TLS material, or the connection helper of an ssh:// host.
func (d Docker) ClientOpts() ([]client.Opt, error) { return d.ep.ClientOpts() }

// DefaultDockerHost is where the Docker engine listens on goos when
// nothing says otherwise, as the docker CLI has it.
func DefaultDockerHost(goos string) string {
	if goos == "windows" {
		return "npipe:////./pipe/docker_engine"
	}
	return "unix:///var/run/docker.sock"
}

// ConfigDir is the docker CLI's configuration directory: DOCKER_CONFIG,
// else ~/.docker.
func (e Env) ConfigDir() string {
	if d := e.Getenv("DOCKER_CONFIG"); d != "" {
		return d
	}
	return filepath.Join(e.Home, ".docker")
}

// DockerEndpoint finds the Docker engine the docker CLI would talk to.
// It does not dial it.
func DockerEndpoint(e Env) (Docker, error) {
	if host := e.Getenv("DOCKER_HOST"); host != "" {
		ep, err := e.envTLS(host)
		return Docker{Host: host, Source: "DOCKER_HOST", ep: ep}, err
	}
	name, source := e.Getenv("DOCKER_CONTEXT"), "DOCKER_CONTEXT"
	if name == "" {
		cfg, err := config.Load(e.ConfigDir())
		if err != nil {
			return Docker{}, fmt.Errorf("reading the docker CLI's config in %s: %w", e.ConfigDir(), err)
		}
		name, source = cfg.CurrentContext, "the docker CLI's current context"
	}
	if name == "" || name == "default" {
		host := DefaultDockerHost(e.GOOS)
		return Docker{Host: host, Source: "the default socket", ep: hostEndpoint(host)}, nil
	}
	ep, err := e.dockerContext(name)
	if err != nil {
		return Docker{}, fmt.Errorf("docker context %q (%s): %w; `docker context ls` lists them", name, source, err)
	}
	return Docker{Host: ep.Host, Source: fmt.Sprintf("docker context %s (%s)", name, source), Context: name, ep: ep}, nil
}

// hostEndpoint is an endpoint of host alone, with no TLS material.
func hostEndpoint(host string) dockercontext.Endpoint {
	return dockercontext.Endpoint{EndpointMeta: dockercontext.EndpointMeta{Host: host}}
}

// envTLS is host's endpoint with the TLS the environment asks for:
// DOCKER_TLS_VERIFY verifies the engine with DOCKER_CERT_PATH's ca.pem;
// DOCKER_TLS alone encrypts without verifying. The client certificate
// and key in that directory are used when present.
func (e Env) envTLS(host string) (dockercontext.Endpoint, error) {
	ep := hostEndpoint(host)
	verify := e.Getenv("DOCKER_TLS_VERIFY") != ""
	if !verify && e.Getenv("DOCKER_TLS") == "" {
		return ep, nil
	}
	dir := e.Getenv("DOCKER_CERT_PATH")
	if dir == "" {
		dir = e.ConfigDir()
	}
	ep.SkipTLSVerify = !verify
	ep.TLSData = &clicontext.TLSData{}
	for _, f := range []struct {
		name string
		dst  *[]byte
		need bool
	}{{"ca.pem", &ep.TLSData.CA, verify}, {"cert.pem", &ep.TLSData.Cert, false}, {"key.pem", &ep.TLSData.Key, false}} {
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if errors.Is(err, os.ErrNotExist) && !f.need {
			continue
		}
		if err != nil {
			return ep, fmt.Errorf("DOCKER_TLS_VERIFY is set: %w (DOCKER_CERT_PATH names the directory of ca.pem, cert.pem and key.pem)", err)
		}
		*f.dst = b
	}
	if (ep.TLSData.Cert == nil) != (ep.TLSData.Key == nil) {
		return ep, fmt.Errorf("%s holds one of cert.pem and key.pem without the other", dir)
	}
	return ep, nil
}

// dockerContext loads a context from the docker CLI's store, with its
// TLS material.
func (e Env) dockerContext(name string) (dockercontext.Endpoint, error) {
	s := store.New(filepath.Join(e.ConfigDir(), "contexts"), store.NewConfig(
		func() any { return &map[string]any{} },
		store.EndpointTypeGetter(dockercontext.DockerEndpoint, func() any { return &dockercontext.EndpointMeta{} }),
	))
	md, err := s.GetMetadata(name)
	if err != nil {
		return dockercontext.Endpoint{}, err
	}
	meta, err := dockercontext.EndpointFromContext(md)
	if err != nil {
		return dockercontext.Endpoint{}, err
	}
	return dockercontext.WithTLSData(s, name, meta)
}

// PingDocker says whether the Docker engine at d answers, within five
// seconds.
func PingDocker(ctx context.Context, d Docker) error {
	opts, err := d.ClientOpts()
	if err != nil {
		return err
	}
	api, err := client.New(opts...)
	if err != nil {
		return err
	}
	defer api.Close()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err = api.Ping(ctx, client.PingOptions{})
	return err
}
