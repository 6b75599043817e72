package solver

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/docker/cli/cli/config"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	digest "github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"
)

// Refs are the registry names of one service's build.
type Refs struct {
	Repository string   // R
	Image      string   // R:H
	Floating   string   // R:F
	Cache      string   // R:cache-H
	CacheFloat string   // R:cache-F
	Fallbacks  []string // further cache refs to import, in order
}

// NewRefs names the tags of repository for hash tag h and floating tag f.
func NewRefs(repository, h, f string) Refs {
	return Refs{
		Repository: repository,
		Image:      repository + ":" + h,
		Floating:   repository + ":" + f,
		Cache:      repository + ":cache-" + h,
		CacheFloat: repository + ":cache-" + f,
	}
}

// depImage is how a service: context reaches a dependent's solve: the
// dependency's image in the registry, or (built without --push) an OCI
// layout on this machine.
type depImage struct {
	Ref    string        // R:H@digest, when in the registry
	Layout string        // OCI layout directory, when built locally
	Digest digest.Digest // the image's digest in Layout
}

// solveRequest is everything needed to turn a service into a SolveOpt.
type solveRequest struct {
	svc      *compose.Service
	project  string
	refs     Refs
	push     bool
	local    bool                // no registry repository: no registry cache refs
	deps     map[string]depImage // by service name
	registry *Registry
	// layout, when set, also exports the image to this OCI layout
	// directory, for dependents of a build that does not push.
	layout string
	output *Output // --output or --load
}

// insecureAttrs adds registry.insecure for a ref on a host that needs it
// and that BuildKit would not already reach over HTTP (loopback).
func (r *solveRequest) insecureAttrs(ref string, attrs map[string]string) map[string]string {
	host := registryHost(ref)
	if slices.Contains(r.registry.insecure, host) && !isLoopback(host) {
		attrs["registry.insecure"] = "true"
	}
	return attrs
}

// solveOpt maps the service's compose build keys onto a SolveOpt for the
// builtin dockerfile frontend, as docker compose and buildx do. The
// returned cleanup removes temporary files (an inline Dockerfile).
func (r *solveRequest) solveOpt() (*client.SolveOpt, func(), error) {
	svc := r.svc
	cleanup := func() {}
	so := &client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: map[string]string{},
		LocalMounts:   map[string]fsutil.FS{},
	}
	attrs := so.FrontendAttrs

	// Context and Dockerfile.
	if compose.IsRemote(svc.Context) {
		attrs["context"] = svc.Context
		attrs["filename"] = svc.Dockerfile
	} else {
		ctxFS, err := fsutil.NewFS(svc.Context)
		if err != nil {
			return nil, cleanup, fmt.Errorf("build context %s: %w", svc.Context, err)
		}
		so.LocalMounts["context"] = ctxFS
		dfDir, dfName := filepath.Split(svc.Dockerfile)
		if svc.DockerfileInline != "" {
			tmp, err := os.MkdirTemp("", "bkcache-dockerfile-")
			if err != nil {
				return nil, cleanup, err
			}
			cleanup = func() { os.RemoveAll(tmp) }
			if err := os.WriteFile(filepath.Join(tmp, "Dockerfile"), []byte(svc.DockerfileInline), 0o600); err != nil {
				cleanup()
				return nil, func() {}, err
			}
			dfDir, dfName = tmp, "Dockerfile"
		}
		dfFS, err := fsutil.NewFS(dfDir)
		if err != nil {
			cleanup()
			return nil, func() {}, fmt.Errorf("Dockerfile directory %s: %w", dfDir, err)
		}
		so.LocalMounts["dockerfile"] = dfFS
		attrs["filename"] = dfName
	}

	// Build settings.
	if svc.Target != "" {
		attrs["target"] = svc.Target
	}
	for k, v := range svc.Args {
		attrs["build-arg:"+k] = v
	}
	for k, v := range svc.Labels {
		attrs["label:"+k] = v
	}
	if len(svc.Platforms) > 0 {
		attrs["platform"] = strings.Join(svc.Platforms, ",")
	}
	if len(svc.ExtraHosts) > 0 {
		attrs["add-hosts"] = strings.Join(svc.ExtraHosts, ",")
	}
	if svc.ShmSize > 0 {
		attrs["shm-size"] = strconv.FormatInt(svc.ShmSize, 10)
	}
	mode, err := networkMode(svc.Network)
	if err != nil {
		return nil, cleanup, err
	}
	if mode != "" {
		attrs["force-network-mode"] = mode
	}
	if mode == "host" {
		so.AllowedEntitlements = append(so.AllowedEntitlements, "network.host")
	}
	if svc.NoCache {
		attrs["no-cache"] = ""
	}
	if svc.Pull {
		attrs["image-resolve-mode"] = "pull"
	}

	// Additional contexts.
	for _, name := range slices.Sorted(maps.Keys(svc.Contexts)) {
		v := svc.Contexts[name]
		switch {
		case strings.HasPrefix(v, "service:"):
			dep := strings.TrimPrefix(v, "service:")
			img, ok := r.deps[dep]
			switch {
			case ok && img.Layout != "":
				store, err := local.NewStore(img.Layout)
				if err != nil {
					return nil, cleanup, fmt.Errorf("additional context %q: OCI layout of service %q: %w", name, dep, err)
				}
				if so.OCIStores == nil {
					so.OCIStores = map[string]content.Store{}
				}
				id := "service-" + sanitizeStoreID(dep)
				so.OCIStores[id] = store
				attrs["context:"+name] = "oci-layout://" + id + "@" + img.Digest.String()
			case ok && img.Ref != "":
				attrs["context:"+name] = "docker-image://" + img.Ref
			default:
				return nil, cleanup, fmt.Errorf("additional context %q: service %q has no image to use", name, dep)
			}
		case strings.Contains(v, "://") || compose.IsRemote(v):
			attrs["context:"+name] = v
		default:
			fs, err := fsutil.NewFS(v)
			if err != nil {
				return nil, cleanup, fmt.Errorf("additional context %q at %s: %w", name, v, err)
			}
			so.LocalMounts[name] = fs
			attrs["context:"+name] = "local:" + name
		}
	}

	// Cache: import by hash and by the floating tag, plus compose's own;
	// export (with --push) to the hash's cache ref plus compose's own.
	// The floating cache ref is moved registry-side after success.
	if !r.local {
		so.CacheImports = []client.CacheOptionsEntry{
			{Type: "registry", Attrs: r.insecureAttrs(r.refs.Cache, map[string]string{"ref": r.refs.Cache})},
			{Type: "registry", Attrs: r.insecureAttrs(r.refs.CacheFloat, map[string]string{"ref": r.refs.CacheFloat})},
		}
		for _, ref := range r.refs.Fallbacks {
			so.CacheImports = append(so.CacheImports, client.CacheOptionsEntry{Type: "registry", Attrs: r.insecureAttrs(ref, map[string]string{"ref": ref})})
		}
	}
	for _, s := range svc.CacheFrom {
		e, err := ParseCacheEntry(s)
		if err != nil {
			return nil, cleanup, fmt.Errorf("cache_from: %w", err)
		}
		so.CacheImports = append(so.CacheImports, e)
	}
	if r.push {
		// A failed cache export must not cost the image: BuildKit pushes
		// it anyway and reports the export's error on its step, which
		// Builder turns into a warning (or, with --require-cache-export,
		// a failure).
		so.CacheExports = []client.CacheOptionsEntry{
			{Type: "registry", Attrs: r.insecureAttrs(r.refs.Cache, map[string]string{"ref": r.refs.Cache, "mode": "max", "ignore-error": "true"})},
		}
		for _, s := range svc.CacheTo {
			e, err := ParseCacheEntry(s)
			if err != nil {
				return nil, cleanup, fmt.Errorf("cache_to: %w", err)
			}
			if _, set := e.Attrs["ignore-error"]; !set {
				e.Attrs["ignore-error"] = "true"
			}
			so.CacheExports = append(so.CacheExports, e)
		}
		names := append([]string{r.refs.Image}, svc.Tags...)
		so.Exports = []client.ExportEntry{{
			Type:  client.ExporterImage,
			Attrs: r.insecureAttrs(r.refs.Image, map[string]string{"name": strings.Join(names, ","), "push": "true"}),
		}}
	}

	if r.output != nil {
		e, err := r.output.exportEntry(r.refs.Image, engineAliases(svc, r.project, r.refs.Image)...)
		if err != nil {
			return nil, cleanup, err
		}
		so.Exports = append(so.Exports, e)
	}
	if r.layout != "" {
		so.Exports = append(so.Exports, client.ExportEntry{
			Type: client.ExporterOCI, OutputDir: r.layout,
			Attrs: map[string]string{"tar": "false", "name": r.refs.Image},
		})
	}

	// Session: registry auth from the docker config, secrets, ssh.
	cfg := config.LoadDefaultConfigFile(io.Discard)
	so.Session = []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(cfg),
	})}
	if len(svc.Secrets) > 0 {
		var srcs []secretsprovider.Source
		for _, s := range svc.Secrets {
			srcs = append(srcs, secretsprovider.Source{ID: s.ID, FilePath: s.File, Env: s.Env})
		}
		store, err := secretsprovider.NewStore(srcs)
		if err != nil {
			return nil, cleanup, fmt.Errorf("build secrets: %w", err)
		}
		so.Session = append(so.Session, secretsprovider.NewSecretProvider(store))
	}
	if len(svc.SSH) > 0 {
		var confs []sshprovider.AgentConfig
		for _, s := range svc.SSH {
			confs = append(confs, sshprovider.AgentConfig{ID: s.ID, Paths: s.Paths})
		}
		sp, err := sshprovider.NewSSHAgentProvider(confs)
		if err != nil {
			return nil, cleanup, fmt.Errorf("build ssh: %w", err)
		}
		so.Session = append(so.Session, sp)
	}
	return so, cleanup, nil
}

// networkMode maps compose's build.network onto BuildKit's
// force-network-mode ("" for the default).
func networkMode(network string) (string, error) {
	switch network {
	case "", "default":
		return "", nil
	case "host", "none":
		return network, nil
	}
	return "", fmt.Errorf("build.network %q is not supported by BuildKit (use default, host or none)", network)
}

// sanitizeStoreID keeps an OCI store id a valid reference name.
func sanitizeStoreID(s string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(s) {
		if (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	return b.String()
}

// engineAliases are the names, besides R:H, that an image loaded into a
// Docker engine also gets: the one docker compose looks for before
// building the service in `up` (its image:, else PROJECT-NAME) and its
// compose build tags, so that `docker compose up` runs what bkcache
// built. A name pinned by digest cannot be a tag and is left out.
func engineAliases(svc *compose.Service, project, image string) []string {
	var out []string
	for _, n := range append([]string{svc.LocalImage(project)}, svc.Tags...) {
		if !strings.Contains(n, "@") && n != image && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
