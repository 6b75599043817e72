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
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/bkcache/bkcache/solver/remote"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/docker/cli/cli/config"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/session/sshforward/sshprovider"
	"github.com/moby/buildkit/util/entitlements"
	digest "github.com/opencontainers/go-digest"
	"github.com/tonistiigi/fsutil"
)

// depImage is how a service: context reaches a dependent's solve: the
// dependency's image in the registry, or (built without --push) an OCI
// layout on this machine.
type depImage struct {
	Ref    string        // R:H@digest, when in the registry
	Layout string        // OCI layout directory, when built locally
	Digest digest.Digest // the image's digest (in Layout, when built locally)
}

// solveOpt maps a job onto a SolveOpt for the builtin dockerfile
// frontend, as docker compose and buildx map compose's build keys. The
// returned cleanup removes temporary files (an inline Dockerfile).
// layout, when set, also exports the image to this OCI layout
// directory, for dependents of a build that does not push. The caches
// are left to the caller (Builder.caches): the imports publish finds,
// the exports in the form the registry takes.
func (b *Builder) solveOpt(j *plan.Job, deps map[string]depImage, layout string, push bool) (*client.SolveOpt, func(), error) {
	so := &client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: map[string]string{},
		LocalMounts:   map[string]fsutil.FS{},
	}
	cleanup, err := mainContext(so, j)
	if err != nil {
		return nil, cleanup, err
	}
	settings(so, j)
	if err := additionalContexts(so, j, deps); err != nil {
		return nil, cleanup, err
	}
	if err := b.exports(so, j, layout, push); err != nil {
		return nil, cleanup, err
	}
	if so.Session, err = sessionAttachables(j.Service); err != nil {
		return nil, cleanup, err
	}
	so.SourcePolicy = sourcePolicy(j.Inputs.Images, j.Inputs.Remotes)
	return so, cleanup, nil
}

// mainContext adds the build context and the Dockerfile.
func mainContext(so *client.SolveOpt, j *plan.Job) (cleanup func(), err error) {
	cleanup = func() {}
	svc, attrs := j.Service, so.FrontendAttrs
	if svc.Context.Kind == compose.RemoteContext {
		if attrs["context"], err = pinnedRemote(j, svc.Context.Source); err != nil {
			return cleanup, err
		}
		attrs["filename"] = svc.Dockerfile
		return cleanup, nil
	}
	ctxFS, err := fsutil.NewFS(svc.Context.Source)
	if err != nil {
		return cleanup, fmt.Errorf("build context %s: %w", svc.Context.Source, err)
	}
	so.LocalMounts["context"] = ctxFS
	dfDir, dfName := filepath.Split(svc.Dockerfile)
	if svc.DockerfileInline != "" {
		tmp, err := os.MkdirTemp("", "bkcache-dockerfile-")
		if err != nil {
			return cleanup, err
		}
		cleanup = func() { os.RemoveAll(tmp) }
		if err := os.WriteFile(filepath.Join(tmp, "Dockerfile"), []byte(svc.DockerfileInline), 0o600); err != nil {
			return cleanup, err
		}
		dfDir, dfName = tmp, "Dockerfile"
	}
	dfFS, err := fsutil.NewFS(dfDir)
	if err != nil {
		return cleanup, fmt.Errorf("Dockerfile directory %s: %w", dfDir, err)
	}
	so.LocalMounts["dockerfile"] = dfFS
	attrs["filename"] = dfName
	return cleanup, nil
}

// settings adds the build settings: target, args, labels, platforms,
// the keys of RUN steps, no_cache (or no_cache_filter), entitlements and
// pull.
func settings(so *client.SolveOpt, j *plan.Job) {
	svc, attrs := j.Service, so.FrontendAttrs
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
	attest(attrs, svc.Attestations)
	runSettings(so, svc.Run)
	if j.NoCache {
		attrs["no-cache"] = ""
	} else if len(svc.NoCacheFilter) > 0 {
		attrs["no-cache"] = strings.Join(svc.NoCacheFilter, ",")
	}
	so.AllowedEntitlements = append(so.AllowedEntitlements, svc.Entitlements...)
	slices.Sort(so.AllowedEntitlements)
	so.AllowedEntitlements = slices.Compact(so.AllowedEntitlements)
	if j.Pull {
		attrs["image-resolve-mode"] = "pull"
	}
}

// runSettings adds the keys BuildKit applies to every RUN step, in the
// order the service holds them (BuildKit keys each step on that order).
func runSettings(so *client.SolveOpt, r compose.Run) {
	attrs := so.FrontendAttrs
	if len(r.ExtraHosts) > 0 {
		attrs["add-hosts"] = r.HostsAttr()
	}
	if r.ShmSize > 0 {
		attrs["shm-size"] = strconv.FormatInt(r.ShmSize, 10)
	}
	if len(r.Ulimits) > 0 {
		attrs["ulimit"] = r.UlimitsAttr()
	}
	if r.Network != compose.NetworkDefault {
		attrs["force-network-mode"] = string(r.Network)
	}
	if r.Network == compose.NetworkHost {
		so.AllowedEntitlements = append(so.AllowedEntitlements, string(entitlements.EntitlementNetworkHost))
	}
}

// attest asks the frontend for the attestations, as buildx does: the
// default provenance goes into the image only, not beside a local or
// tar output.
func attest(attrs map[string]string, a compose.Attestations) {
	if a.Provenance != "" {
		attrs["attest:provenance"] = a.Provenance
		if a.ProvenanceDefault {
			attrs["attest:provenance"] += ",inline-only=true"
		}
	}
	if a.SBOM != "" {
		attrs["attest:sbom"] = a.SBOM
	}
}

// additionalContexts adds the named contexts: local directories as
// mounts, service: contexts as their image (in the registry, or in an
// OCI layout here), the others as written.
func additionalContexts(so *client.SolveOpt, j *plan.Job, deps map[string]depImage) error {
	svc := j.Service
	for _, name := range slices.Sorted(maps.Keys(svc.Contexts)) {
		c := svc.Contexts[name]
		switch c.Kind {
		case compose.ServiceContext:
			v, err := serviceContext(so, name, c.Source, deps)
			if err != nil {
				return err
			}
			so.FrontendAttrs["context:"+name] = v
		case compose.LocalContext:
			fs, err := fsutil.NewFS(c.Source)
			if err != nil {
				return fmt.Errorf("additional context %q at %s: %w", name, c.Source, err)
			}
			so.LocalMounts[name] = fs
			so.FrontendAttrs["context:"+name] = "local:" + name
		default:
			v, err := pinnedRemote(j, c.String())
			if err != nil {
				return err
			}
			so.FrontendAttrs["context:"+name] = v
		}
	}
	return nil
}

// pinnedRemote is a remote context as the solve fetches it: a Git
// context at the commit its hash names, anything else as written.
func pinnedRemote(j *plan.Job, url string) (string, error) {
	for _, r := range j.Inputs.Remotes {
		if r.URL == url && r.Kind == "git" && r.Resolved != "" {
			return remote.PinGit(url, r.Resolved)
		}
	}
	return url, nil
}

// serviceContext is the frontend's value for a service: context on dep.
func serviceContext(so *client.SolveOpt, name, dep string, deps map[string]depImage) (string, error) {
	img, ok := deps[dep]
	switch {
	case ok && img.Layout != "":
		store, err := local.NewStore(img.Layout)
		if err != nil {
			return "", fmt.Errorf("additional context %q: OCI layout of service %q: %w", name, dep, err)
		}
		if so.OCIStores == nil {
			so.OCIStores = map[string]content.Store{}
		}
		id := "service-" + sanitizeStoreID(dep)
		so.OCIStores[id] = store
		return "oci-layout://" + id + "@" + img.Digest.String(), nil
	case ok && img.Ref != "":
		return "docker-image://" + img.Ref, nil
	}
	return "", fmt.Errorf("additional context %q: service %q has no image to use", name, dep)
}

// cacheEntries are the cache entries as BuildKit takes them.
func cacheEntries(entries []plan.CacheEntry) []client.CacheOptionsEntry {
	var out []client.CacheOptionsEntry
	for _, e := range entries {
		out = append(out, client.CacheOptionsEntry{Type: e.Type, Attrs: maps.Clone(e.Attrs)})
	}
	return out
}

// withForm sets the form of the job's own cache export among entries;
// compose's cache_to entries say their own.
func withForm(entries []plan.CacheEntry, form registry.CacheForm) []plan.CacheEntry {
	out := slices.Clone(entries)
	for i, e := range out {
		if e.Own {
			e.Attrs = maps.Clone(e.Attrs)
			e.Attrs["image-manifest"] = strconv.FormatBool(form == registry.ImageManifest)
			out[i] = e
		}
	}
	return out
}

// exports adds the image exports: the push of R:H and the build tags
// (when push), an output on this machine (but a one-platform one of a
// service of several: see loadPlatform), the OCI layout for dependents.
func (b *Builder) exports(so *client.SolveOpt, j *plan.Job, layout string, push bool) error {
	image := j.Refs.Image
	out, hasOutput := b.opt.Outputs[j.Name()]
	// Into a Docker engine and pushed: one export, the engine's own, so
	// that the engine's image and R:H are one manifest; compose's names
	// are tagged in the engine after (see finish).
	pushFromEngine := push && hasOutput && out.Type == "engine"
	switch {
	case pushFromEngine && b.classic():
		// The classic store's BuildKit cannot push: the engine does,
		// after the solve (see finish).
		names := append(append([]string{image.String()}, j.Service.Tags...), j.EngineNames...)
		so.Exports = []client.ExportEntry{{Type: "moby", Attrs: map[string]string{"name": strings.Join(names, ",")}}}
	case push:
		names := append([]string{image.String()}, j.Service.Tags...)
		exp := client.ExporterImage
		if pushFromEngine {
			exp = "moby"
		}
		so.Exports = []client.ExportEntry{{
			Type:  exp,
			Attrs: j.RegistryAttrs(map[string]string{"name": strings.Join(names, ","), "push": "true"}),
		}}
	}
	if hasOutput && !b.oneImage(out, j) && !pushFromEngine {
		e, err := out.exportEntry(image.String(), j.EngineNames...)
		if err != nil {
			return err
		}
		so.Exports = append(so.Exports, e)
	}
	if layout != "" {
		so.Exports = append(so.Exports, client.ExportEntry{
			Type: client.ExporterOCI, OutputDir: layout,
			Attrs: map[string]string{"tar": "false", "name": image.String()},
		})
	}
	return nil
}

// sessionAttachables are the solve's session: registry auth from the
// docker config, secrets, ssh.
func sessionAttachables(svc *compose.Service) ([]session.Attachable, error) {
	cfg := config.LoadDefaultConfigFile(io.Discard)
	out := []session.Attachable{authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
		AuthConfigProvider: authprovider.LoadAuthConfig(cfg),
	})}
	if len(svc.Secrets) > 0 {
		var srcs []secretsprovider.Source
		for _, s := range svc.Secrets {
			srcs = append(srcs, secretsprovider.Source{ID: s.ID, FilePath: s.File, Env: s.Env})
		}
		store, err := secretsprovider.NewStore(srcs)
		if err != nil {
			return nil, fmt.Errorf("build secrets: %w", err)
		}
		out = append(out, secretsprovider.NewSecretProvider(store))
	}
	if len(svc.SSH) > 0 {
		var confs []sshprovider.AgentConfig
		for _, s := range svc.SSH {
			confs = append(confs, sshprovider.AgentConfig{ID: s.ID, Paths: s.Paths})
		}
		sp, err := sshprovider.NewSSHAgentProvider(confs)
		if err != nil {
			return nil, fmt.Errorf("build ssh: %w", err)
		}
		out = append(out, sp)
	}
	return out, nil
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
