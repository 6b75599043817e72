// Package compose loads a compose project the way docker compose does
// (compose-go, the same loader) and keeps, normalized, what bkcache needs
// of each service that builds: its build keys and image name.
package compose

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// Options select and load a project, like docker compose's global flags.
type Options struct {
	Files      []string // -f, in order; later files override earlier ones
	ProjectDir string   // --project-directory
	Name       string   // -p
	Profiles   []string // --profile
	EnvFiles   []string // --env-file
	// BuildArgs are --build-arg values, KEY=VALUE or KEY (its value from
	// the project's environment, the arg dropped when that has none).
	// They override every building service's args, as docker compose
	// build --build-arg does.
	BuildArgs []string
	// Platforms, when set, replace every building service's platforms,
	// as bake's --set *.platform= does.
	Platforms []string
	// Provenance and SBOM, when set, replace every building service's
	// build.provenance and build.sbom: canonical, from ParseProvenance
	// and ParseSBOM.
	Provenance, SBOM *string
}

// Project is a loaded compose project reduced to what builds.
type Project struct {
	Name     string
	Dir      string
	Files    []string
	Services map[string]*Service // only services with a build section
}

// Secret is a build secret: its id as the Dockerfile sees it and where
// its value comes from. Values are never read here.
type Secret struct {
	ID   string
	File string // absolute path, or ""
	Env  string // environment variable name, or ""
}

// SSH is a build ssh entry: its id and the agent socket or key paths.
type SSH struct {
	ID    string
	Paths []string
}

// Service is one service's build, normalized.
type Service struct {
	Name             string
	Image            string  // the compose image: value, may be empty
	Context          Context // a local directory or a remote URL
	Dockerfile       string  // absolute path; empty when DockerfileInline is set
	DockerfileInline string
	Args             map[string]string // args with a value (as compose drops nil ones)
	Target           string
	Platforms        []string
	Attestations     Attestations
	Labels           map[string]string
	Secrets          []Secret
	SSH              []SSH
	// Contexts are the additional contexts, by name.
	Contexts  map[string]Context
	CacheFrom []CacheEntry
	CacheTo   []CacheEntry
	// Run holds the keys BuildKit applies to every RUN step.
	Run     Run
	Tags    []string
	NoCache bool
	// NoCacheFilter names the stages whose steps run again (no_cache_filter).
	NoCacheFilter []string
	// Entitlements are what the build may do beyond a sandbox
	// (build.entitlements, and security.insecure for privileged), as
	// buildx's --allow takes them.
	Entitlements []string
	Pull         bool
}

// loadWith reads the project described by opt, as `docker compose`
// would with the same flags and environment, checking each compose file against the compose
// schema unless validate is false.
func loadWith(ctx context.Context, opt Options, validate bool) (*Project, error) {
	overrides, err := parseBuildArgs(opt.BuildArgs)
	if err != nil {
		return nil, err
	}
	po, err := cli.NewProjectOptions(opt.Files,
		cli.WithWorkingDirectory(opt.ProjectDir),
		cli.WithOsEnv,
		cli.WithEnvFiles(opt.EnvFiles...),
		cli.WithDotEnv,
		cli.WithConfigFileEnv,
		cli.WithDefaultConfigPath,
		// The project directory may only be known now: load its .env.
		cli.WithEnvFiles(opt.EnvFiles...),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(opt.Profiles...),
		cli.WithName(opt.Name),
		cli.WithLoadOptions(func(o *loader.Options) { o.SkipValidation = !validate }),
	)
	if err != nil {
		return nil, fmt.Errorf("loading compose project: %w", err)
	}
	if len(po.ConfigPaths) == 0 {
		return nil, fmt.Errorf("%w in %s or its parents", ErrNoComposeFile, dirOr(opt.ProjectDir))
	}
	p, err := po.LoadProject(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading compose project from %s: %w", strings.Join(po.ConfigPaths, ", "), err)
	}
	out := &Project{Name: p.Name, Dir: p.WorkingDir, Files: p.ComposeFiles, Services: map[string]*Service{}}
	for name, s := range p.Services {
		if s.Build == nil {
			continue
		}
		svc, err := normalize(p, s, opt)
		if err != nil {
			return nil, fmt.Errorf("service %q in %s: %w", name, strings.Join(p.ComposeFiles, ", "), err)
		}
		overrideArgs(svc, overrides, p.Environment)
		out.Services[name] = svc
	}
	return out, nil
}

// ErrBuildArg marks a malformed Options.BuildArgs value: how the
// command was called, not what the project holds.
var ErrBuildArg = errors.New("malformed build arg override")

// ErrNoComposeFile reports that no compose file was found.
var ErrNoComposeFile = errors.New("no compose file found")

// parseBuildArgs reads build arg overrides: KEY=VALUE, or KEY alone (nil).
func parseBuildArgs(args []string) (map[string]*string, error) {
	out := map[string]*string{}
	for _, a := range args {
		k, v, hasValue := strings.Cut(a, "=")
		if k == "" || strings.ContainsAny(k, " \t\n") {
			return nil, fmt.Errorf("%w %q: want NAME=VALUE, or NAME to take its value from the environment", ErrBuildArg, a)
		}
		if hasValue {
			out[k] = &v
		} else {
			out[k] = nil
		}
	}
	return out, nil
}

// overrideArgs applies --build-arg overrides to a service's args the way
// docker compose does: they replace what the compose file says, and a
// NAME without a value takes it from the project's environment (.env
// included) or, when unset there, removes the arg.
func overrideArgs(svc *Service, overrides map[string]*string, env map[string]string) {
	for k, v := range overrides {
		if v == nil {
			if ev, ok := env[k]; ok {
				v = &ev
			}
		}
		if v == nil {
			delete(svc.Args, k)
		} else {
			svc.Args[k] = *v
		}
	}
}

func dirOr(d string) string {
	if d == "" {
		return "the current directory"
	}
	return d
}

func normalize(p *types.Project, s types.ServiceConfig, opt Options) (*Service, error) {
	b := s.Build
	svc := &Service{
		Name:             s.Name,
		Image:            s.Image,
		Context:          mainContext(cmp.Or(b.Context, p.WorkingDir)),
		DockerfileInline: b.DockerfileInline,
		Args:             map[string]string{},
		Target:           b.Target,
		Platforms:        slices.Clone(b.Platforms),
		Labels:           maps.Clone(map[string]string(b.Labels)),
		Contexts:         map[string]Context{},
		Tags:             slices.Clone(b.Tags),
		NoCache:          b.NoCache,
		NoCacheFilter:    slices.Clone(b.NoCacheFilter),
		Pull:             b.Pull,
	}
	for name, v := range b.AdditionalContexts {
		svc.Contexts[name] = additionalContext(v)
	}
	if len(svc.Platforms) == 0 && s.Platform != "" {
		svc.Platforms = []string{s.Platform}
	}
	if len(opt.Platforms) > 0 {
		svc.Platforms = slices.Clone(opt.Platforms)
	}
	var err error
	if svc.Attestations, err = attestations(opt, b); err != nil {
		return nil, err
	}
	if svc.Run, err = runOf(b); err != nil {
		return nil, err
	}
	if svc.Entitlements, err = entitlementsOf(b); err != nil {
		return nil, err
	}
	if svc.CacheFrom, err = parseCacheEntries("cache_from", b.CacheFrom); err != nil {
		return nil, err
	}
	if svc.CacheTo, err = parseCacheEntries("cache_to", b.CacheTo); err != nil {
		return nil, err
	}
	for k, v := range b.Args {
		if v != nil {
			svc.Args[k] = *v
		}
	}
	svc.Dockerfile = dockerfilePath(svc, b.Dockerfile)
	if svc.Secrets, err = secrets(p, b); err != nil {
		return nil, err
	}
	svc.SSH = sshEntries(b)
	if err := checkServiceContexts(p, svc); err != nil {
		return nil, err
	}
	return svc, nil
}

// dockerfilePath is where the service's Dockerfile is: "" when it is
// inline, its name inside a remote context, else an absolute path.
func dockerfilePath(svc *Service, df string) string {
	if svc.DockerfileInline != "" {
		return ""
	}
	df = cmp.Or(df, "Dockerfile")
	if svc.Context.Kind == RemoteContext {
		return df // the Dockerfile lives in the remote context
	}
	if !filepath.IsAbs(df) {
		df = filepath.Join(svc.Context.Source, df)
	}
	return filepath.Clean(df)
}

// secrets are the build's secrets, each found in the top-level section.
func secrets(p *types.Project, b *types.BuildConfig) ([]Secret, error) {
	var out []Secret
	for _, sec := range b.Secrets {
		def, ok := p.Secrets[sec.Source]
		if !ok {
			return nil, fmt.Errorf("build secret %q is not defined in the top-level secrets section", sec.Source)
		}
		out = append(out, Secret{ID: cmp.Or(sec.Target, sec.Source), File: def.File, Env: def.Environment})
	}
	return out, nil
}

// sshEntries are the build's ssh entries, sorted by id: compose-go may
// hand them over in either order.
func sshEntries(b *types.BuildConfig) []SSH {
	var out []SSH
	for _, k := range b.SSH {
		entry := SSH{ID: k.ID}
		if k.Path != "" {
			entry.Paths = []string{k.Path}
		}
		out = append(out, entry)
	}
	slices.SortFunc(out, func(a, b SSH) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// checkServiceContexts makes sure each service: context names a service
// of the project.
func checkServiceContexts(p *types.Project, svc *Service) error {
	for name, c := range svc.Contexts {
		if c.Kind == ServiceContext {
			if _, exists := p.Services[c.Source]; !exists {
				return fmt.Errorf("additional context %q refers to service %q, which is not in the project", name, c.Source)
			}
		}
	}
	return nil
}

// ServiceDeps returns the services this one's `service:` contexts name.
func (s *Service) ServiceDeps() []string {
	var out []string
	for _, c := range s.Contexts {
		if c.Kind == ServiceContext {
			out = append(out, c.Source)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// LocalImage is the name docker compose gives the service's image on a
// Docker engine, and looks for before building it in `up`: its image: as
// written, else PROJECT-NAME.
func (s *Service) LocalImage(project string) string {
	if s.Image != "" {
		return s.Image
	}
	return project + "-" + s.Name
}

// Select returns the named services (all of them when names is empty) and
// every service they depend on through `service:` contexts, ordered so
// that dependencies come first; ties are broken by name.
func (p *Project) Select(names []string) ([]*Service, error) {
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(p.Services))
	}
	var order []*Service
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 2:
			return nil
		case 1:
			return fmt.Errorf("services depend on each other in a cycle through additional_contexts: %s", strings.Join(append(path, name), " -> "))
		}
		s, ok := p.Services[name]
		if !ok {
			return fmt.Errorf("service %q is needed as a build context but has no build section", name)
		}
		state[name] = 1
		for _, d := range s.ServiceDeps() {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		order = append(order, s)
		return nil
	}
	for _, n := range names {
		if _, ok := p.Services[n]; !ok {
			return nil, fmt.Errorf("no such service with a build section: %q (services that build: %s)", n, strings.Join(slices.Sorted(maps.Keys(p.Services)), ", "))
		}
		if err := visit(n, nil); err != nil {
			return nil, err
		}
	}
	return order, nil
}
