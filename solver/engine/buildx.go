package engine

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// buildx keeps its builders under $DOCKER_CONFIG/buildx: instances/NAME
// holds one builder as JSON, current names the current one for a docker
// endpoint (or for all, when Global), and defaults/HASH the one per
// endpoint set with `buildx use --default`. bkcache reads that store;
// it never writes it.

// builder is a builder as buildx stores it.
type builder struct {
	Name   string
	Driver string
	Nodes  []node
}

type node struct {
	Name       string
	Endpoint   string
	DriverOpts map[string]string
}

// isDockerContext reports whether name is a docker context: "default",
// or one in the docker CLI's store.
func (e Env) isDockerContext(name string) bool {
	if name == "default" {
		return true
	}
	_, err := e.dockerContext(name)
	return err == nil
}

// builderName is buildx's rule for builder names; it stores them in
// lower case.
var builderName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9.\-_+]*$`)

// Builder maps the buildx builder name onto bkcache's nodes: a remote
// driver's endpoints, a docker-container driver's containers, a
// kubernetes driver's pods, or the Docker engine of a docker driver.
// why says where the name came from.
func (e Env) Builder(name, why string) (Engine, error) {
	b, err := e.readBuilder(name)
	var unknown *UnknownBuilderError
	if errors.As(err, &unknown) && e.isDockerContext(name) {
		// buildx lists each docker context as a builder of the docker
		// driver, named after it ("default", "desktop-linux").
		b = builder{Name: name, Driver: "docker", Nodes: []node{{Name: name, Endpoint: name}}}
		err = nil
	}
	if err != nil {
		return Engine{}, err
	}
	desc := fmt.Sprintf("buildx builder %s (%s, %s driver)", b.Name, why, b.Driver)
	if b.Driver == "docker" {
		d, err := e.dockerOfContext(b.Nodes[0].Endpoint)
		if err != nil {
			return Engine{}, fmt.Errorf("%s: %w", desc, err)
		}
		return Engine{Kind: DockerEngine, Targets: []Target{{Docker: &d}}, Why: desc + ": docker engine at " + d.Host, Builder: b.Name}, nil
	}
	out := Engine{Kind: Buildkitd, Why: desc, Builder: b.Name}
	current, _ := DockerEndpoint(e) // the engine the docker CLI, and so BuildKit's docker-container helper, talks to
	for _, n := range b.Nodes {
		t, err := nodeTargets(b.Driver, n.Name, n.Endpoint, n.DriverOpts, current.Host)
		if err != nil {
			return Engine{}, fmt.Errorf("%s, node %s: %w", desc, n.Name, err)
		}
		out.Targets = append(out.Targets, t...)
	}
	return out, nil
}

// readBuilder reads one builder from the store, with an error that says
// what there is instead.
func (e Env) readBuilder(name string) (builder, error) {
	dir := filepath.Join(e.ConfigDir(), "buildx", "instances")
	var b builder
	if !builderName.MatchString(name) {
		return b, fmt.Errorf("buildx builder %q: not a builder name (a letter, then letters, digits and . - _ +)", name)
	}
	data, err := os.ReadFile(filepath.Join(dir, strings.ToLower(name)))
	if errors.Is(err, os.ErrNotExist) {
		return b, &UnknownBuilderError{Name: name, Known: fmt.Sprintf("%s; %s", dir, e.knownBuilders(dir))}
	}
	if err != nil {
		return b, fmt.Errorf("buildx builder %q: %w", name, err)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("buildx builder %q: %s is not a builder buildx wrote: %w", name, filepath.Join(dir, strings.ToLower(name)), err)
	}
	if len(b.Nodes) == 0 {
		return b, fmt.Errorf("buildx builder %q has no nodes: `docker buildx create --append --name %s ...` adds one", name, b.Name)
	}
	return b, nil
}

// UnknownBuilderError is a builder name buildx's store does not have.
type UnknownBuilderError struct {
	Name  string
	Known string // where bkcache looked, and what is there
}

func (e *UnknownBuilderError) Error() string {
	return fmt.Sprintf("no buildx builder %q in %s", e.Name, e.Known)
}

// knownBuilders says which builders the store has, as `docker buildx ls`
// would list them.
func (e Env) knownBuilders(dir string) string {
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, en := range entries {
		if !en.IsDir() && !strings.HasPrefix(en.Name(), ".") {
			names = append(names, en.Name())
		}
	}
	if len(names) == 0 {
		return "buildx has no builders of its own here (`docker buildx ls` lists only the Docker engine's); create one with `docker buildx create --name NAME`"
	}
	return "`docker buildx ls` lists " + strings.Join(names, ", ")
}

// nodeTargets are one builder node as bkcache targets: one, but for a
// kubernetes node, whose replicas are each a buildkitd. dockerHost is
// the engine the docker CLI talks to now.
func nodeTargets(driver, node, endpoint string, opts map[string]string, dockerHost string) ([]Target, error) {
	switch driver {
	case "remote":
		return []Target{{Addr: endpoint, TLS: TLS{CACert: opts["cacert"], Cert: opts["cert"], Key: opts["key"], ServerName: opts["servername"]}}}, nil
	case "docker-container":
		// buildx names the node's container buildx_buildkit_NODE, in the
		// engine of the docker context (or host) the node was created
		// on. BuildKit reaches it with `docker exec`, which takes a
		// context, not a host.
		addr := "docker-container://buildx_buildkit_" + node
		switch {
		case endpoint != "" && endpoint != "default" && !strings.Contains(endpoint, "://"):
			addr += "?context=" + url.QueryEscape(endpoint)
		case strings.Contains(endpoint, "://") && endpoint != dockerHost:
			return nil, fmt.Errorf("its container runs in the Docker engine at %s, and the docker CLI talks to %s: set DOCKER_HOST=%s", endpoint, dockerHost, endpoint)
		}
		return []Target{{Addr: addr}}, nil
	case "kubernetes":
		return kubeTargets(node, opts["namespace"])
	}
	return nil, fmt.Errorf("the %s driver is not one bkcache can build on (it takes remote, docker-container, kubernetes and docker)", driver)
}

// currentBuilder is the builder `docker buildx use` made current for the
// Docker endpoint d (or for all of them), when it is one of buildx's own
// and not the Docker engine itself; "" otherwise.
func (e Env) currentBuilder(d Docker) (string, error) {
	root := filepath.Join(e.ConfigDir(), "buildx")
	// buildx's key is the context's name, or the host of the default.
	key := cmp.Or(d.Context, d.Host)
	var cur struct {
		Key, Name string
		Global    bool
	}
	data, err := os.ReadFile(filepath.Join(root, "current"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if err == nil {
		if err := json.Unmarshal(data, &cur); err != nil {
			return "", fmt.Errorf("buildx's current builder (%s): %w", filepath.Join(root, "current"), err)
		}
	}
	name := ""
	if cur.Name != "" && (cur.Global || cur.Key == key) {
		name = cur.Name
	} else if def, err := os.ReadFile(filepath.Join(root, "defaults", endpointHash(key))); err == nil {
		name = strings.TrimSpace(string(def))
	}
	if name == "" {
		return "", nil
	}
	b, err := e.readBuilder(name)
	if err != nil || b.Driver == "docker" {
		// A name with no instance is a docker context: the engine's own.
		return "", nil
	}
	return name, nil
}

// endpointHash is the name buildx gives an endpoint's file in defaults/.
func endpointHash(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:])[:20]
}

// dockerOfContext is the Docker engine of a docker driver's node, whose
// endpoint is a docker context name (or a host).
func (e Env) dockerOfContext(endpoint string) (Docker, error) {
	if strings.Contains(endpoint, "://") {
		return Docker{Host: endpoint, Source: "the builder's endpoint", ep: hostEndpoint(endpoint)}, nil
	}
	env := e
	env.Getenv = func(k string) string {
		switch k {
		case "DOCKER_CONTEXT":
			return endpoint
		case "DOCKER_HOST":
			if endpoint != "default" {
				return ""
			}
		}
		return e.Getenv(k)
	}
	return DockerEndpoint(env)
}
