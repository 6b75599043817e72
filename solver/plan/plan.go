// Package plan settles one run's facts before anything is built: which
// services build and in what order, each one's inputs and hash, the
// registry tags it reads and writes, its cache entries, and every error
// a user can cause in the project or the options, all found before any
// daemon or registry is contacted. Every command starts from a Plan; the
// solver executes its jobs.
package plan

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/hash/statcache"
	"github.com/bkcache/bkcache/solver/registry"
)

// DefaultFloating is the floating tag moved to the last successful build.
const DefaultFloating = "ci"

// Options are a run's settings, beside the project.
type Options struct {
	// Services are those asked for; all that build when empty. The
	// services their service: contexts need are planned too.
	Services []string
	// Repository, when set, is the prefix every service is pushed under
	// (PREFIX/SERVICE) instead of its image: name.
	Repository string
	Floating   Floating   // the floating tag
	Fallbacks  []Floating // further floating tags whose caches are imported
	// Push: the run writes to the registry, so every service needs a
	// repository of its own.
	Push bool
	// NoCache and Pull apply compose's no_cache and pull to every
	// service; NoCache also builds what the registry has.
	NoCache, Pull bool
	Hosts         registry.Hosts   // how each ref is reached
	StatCache     *statcache.Store // digests of unchanged files; may be nil
	// BaseImages is how the images builds read enter the hash: looked
	// up (inputs.Resolve, the default when empty) through Registry and
	// Mirrors, or as written.
	BaseImages inputs.BaseImages
	// Redact names the build args hashed and recorded redacted.
	Redact   inputs.Redaction
	Registry *registry.Registry
	Mirrors  registry.Mirrors
	// Prefetch starts asking Registry for each job's R:H (and, with
	// Push, R:F) as soon as its hash is known, while other services
	// still hash, for the skip decision's and the promotion's
	// HeadPrefetched.
	Prefetch bool
	// LookupEnv reads the environment for cache backend credentials;
	// os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// CacheCompression compresses the layers of R:cache-H that are not
	// already compressed: zstd (the default when empty) or gzip.
	CacheCompression string
}

// Plan is one run, resolved.
type Plan struct {
	Project string
	Jobs    []*Job // dependencies before dependents
}

// Job is one service to build (or skip), with everything the build
// needs settled.
type Job struct {
	Service *compose.Service // the build section as loaded; read only
	Inputs  *inputs.Inputs
	Refs    Refs
	// Local: the service names no registry repository (no image:, no
	// prefix), so Refs name compose's local image, which no registry is
	// asked about.
	Local bool
	Asked bool     // named in Options.Services, or all were asked for
	Deps  []string // the services its service: contexts name, sorted
	// CacheFrom and CacheTo are the compose cache entries, parsed, with
	// the credentials their backends take from the environment.
	CacheFrom, CacheTo []CacheEntry
	// Imports and Exports are every cache a solve imports and, pushed,
	// exports: bkcache's own and compose's (see settleCaches).
	Imports, Exports []CacheEntry
	NoCache, Pull    bool
	// EngineNames are the names a Docker engine gives the image besides
	// Refs.Image: docker compose's own and the build tags.
	EngineNames []string
	// Tags are the compose build tags a push gives the image besides
	// Refs.Image (a name pinned by digest cannot be one, and is left
	// out); a skip with --push points them at R:H too.
	Tags []registry.Tag
	// Floating and Fallbacks are the job's floating tags: the run's, or,
	// when services with different builds push to one repository, its
	// own (see sharedRepositories).
	Floating  string
	Fallbacks []string
	// CacheCompression is Options.CacheCompression, decided.
	CacheCompression string
	// SameAs names the earlier job that builds exactly this image (the
	// same R:H, the same build tags): this one is not built again but
	// reports that one's result.
	SameAs string
	// Redacted are the values of its build args Options.Redact names:
	// what no message shows, even where BuildKit's own data holds them.
	Redacted []string

	repository string // R as written
	plainHTTP  bool   // R's registry is one --insecure-registry names
}

// Name is the job's service name.
func (j *Job) Name() string { return j.Service.Name }

// New plans a run of project. Everything it reports is the user's to
// fix: in the compose files, the Dockerfiles, the build contexts or opt.
// It reads local files, and (unless opt.BaseImages is as-written) asks
// the registries what the images the builds read are now; every other
// error is found before that.
func New(ctx context.Context, project *compose.Project, opt Options) (*Plan, error) {
	svcs, err := project.Select(opt.Services)
	if err != nil {
		return nil, err
	}
	repos, err := repositories(project, opt)
	if err != nil {
		return nil, err
	}
	shared := sharedRepositories(project, repos)
	p := &Plan{Project: project.Name}
	var local []string
	for _, svc := range svcs {
		j, err := newJob(svc, repos[svc.Name], shared[svc.Name], opt)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", svc.Name, err)
		}
		if j.Local {
			local = append(local, j.Name())
		}
		p.Jobs = append(p.Jobs, j)
	}
	if opt.Push && len(local) > 0 {
		return nil, &NoRepositoryError{Services: local, Push: true}
	}
	if err := p.checkDeps(); err != nil {
		return nil, err
	}
	return p, p.hash(ctx, project.Name, svcs, opt)
}

// hash computes every job's inputs and names its tags after the hash,
// each job as soon as its own hash is known: with Prefetch, the registry
// is asked for its tags then, while other services still hash.
func (p *Plan) hash(ctx context.Context, project string, svcs []*compose.Service, opt Options) error {
	io := inputs.Options{StatCache: opt.StatCache, Redact: opt.Redact}
	if opt.BaseImages != inputs.AsWritten {
		io.Resolver = &resolver{reg: opt.Registry, hosts: opt.Hosts, mirrors: opt.Mirrors}
	}
	errs := make([]error, len(p.Jobs))
	io.Done = func(i int, in *inputs.Inputs) {
		j := p.Jobs[i]
		if errs[i] = j.settle(project, in, opt.Hosts); errs[i] != nil || j.Local || !opt.Prefetch || opt.Registry == nil {
			return
		}
		opt.Registry.Prefetch(ctx, j.Refs.Image)
		if opt.Push {
			opt.Registry.Prefetch(ctx, j.Refs.Floating)
		}
	}
	if _, err := inputs.ComputeAll(ctx, svcs, io); err != nil {
		return err
	}
	for i, j := range p.Jobs {
		if errs[i] != nil {
			return fmt.Errorf("service %q: %w", j.Name(), errs[i])
		}
	}
	p.markSame()
	return nil
}

// settle records the job's inputs and the tags and names they give it.
func (j *Job) settle(project string, in *inputs.Inputs, hosts registry.Hosts) error {
	j.Inputs = in
	var err error
	if j.Refs, err = NewRefs(hosts, j.repository, in.Tag(), j.Floating, j.Fallbacks...); err != nil {
		return err
	}
	j.EngineNames = engineNames(project, j.Service, j.Refs.Image.String())
	j.plainHTTP = hosts.Named(j.Refs.Image.RegistryStr())
	j.settleCaches()
	return nil
}

// markSame points each job at the first earlier one that makes the same
// image: one solve and one push for the set.
func (p *Plan) markSame() {
	first := map[string]*Job{}
	for _, j := range p.Jobs {
		key := j.Refs.Image.String() + "\x00" + strings.Join(j.Service.Tags, "\x00")
		if f, ok := first[key]; ok && !j.Local {
			j.SameAs = f.Name()
			continue
		}
		first[key] = j
	}
}

// newJob checks what opt and the service's build section ask for, before
// anything is hashed or looked up. repo is the service's repository;
// ownTags, that it needs floating tags of its own (sharedRepositories).
func newJob(svc *compose.Service, repo string, ownTags bool, opt Options) (*Job, error) {
	j := &Job{
		Service: svc, repository: repo, Floating: opt.Floating.String(),
		Local:   opt.Repository == "" && svc.Image == "",
		Asked:   len(opt.Services) == 0 || slices.Contains(opt.Services, svc.Name),
		Deps:    svc.ServiceDeps(),
		NoCache: svc.NoCache || opt.NoCache, Pull: svc.Pull || opt.Pull,
		CacheCompression: cmp.Or(opt.CacheCompression, Zstd),
	}
	for _, a := range opt.Redact.Args {
		if v := svc.Args[a]; v != "" {
			j.Redacted = append(j.Redacted, v)
		}
	}
	lookup := opt.LookupEnv
	if lookup == nil {
		lookup = osLookupEnv
	}
	for _, f := range opt.Fallbacks {
		j.Fallbacks = append(j.Fallbacks, f.String())
	}
	if ownTags {
		j.Floating, j.Fallbacks = ownTag(j.Floating, svc.Name), nil
		for _, f := range opt.Fallbacks {
			j.Fallbacks = append(j.Fallbacks, ownTag(f.String(), svc.Name))
		}
	}
	if _, err := NewRefs(opt.Hosts, repo, "0", j.Floating, j.Fallbacks...); err != nil {
		return nil, err
	}
	var err error
	if j.CacheFrom, err = cacheEntries("cache_from", svc.CacheFrom, opt.Hosts, lookup); err != nil {
		return nil, err
	}
	if j.CacheTo, err = cacheEntries("cache_to", svc.CacheTo, opt.Hosts, lookup); err != nil {
		return nil, err
	}
	for _, t := range svc.Tags {
		if _, err := opt.Hosts.Reference(t); err != nil {
			return nil, fmt.Errorf("build.tags: %q is not a valid image reference: %w", t, err)
		}
		if tag, err := opt.Hosts.Tag(t); err == nil && !strings.Contains(t, "@") {
			j.Tags = append(j.Tags, tag)
		}
	}
	return j, nil
}

// checkDeps makes sure every job's dependencies are planned before it.
func (p *Plan) checkDeps() error {
	seen := map[string]bool{}
	for _, j := range p.Jobs {
		for _, d := range j.Deps {
			if !seen[d] {
				return fmt.Errorf("service %q needs service %q for a service: context, which is not planned before it", j.Name(), d)
			}
		}
		seen[j.Name()] = true
	}
	return nil
}

// Job returns the job of the named service, or nil.
func (p *Plan) Job(service string) *Job {
	for _, j := range p.Jobs {
		if j.Name() == service {
			return j
		}
	}
	return nil
}

// engineNames are the names, besides R:H, that an image loaded into a
// Docker engine also gets: the one docker compose looks for before
// building the service in `up` (its image:, else PROJECT-NAME) and its
// compose build tags, so that `docker compose up` runs what bkcache
// built. A name pinned by digest cannot be a tag and is left out.
func engineNames(project string, svc *compose.Service, image string) []string {
	var out []string
	for _, n := range append([]string{svc.LocalImage(project)}, svc.Tags...) {
		if !strings.Contains(n, "@") && n != image && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}
