package plan

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/context/imageref"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/google/go-containerregistry/pkg/name"
)

// Refs are the registry names of one service's build: repository R,
// hash H, floating tag F.
type Refs struct {
	Repository name.Repository
	Image      registry.Tag   // R:H
	Floating   registry.Tag   // R:F
	Cache      registry.Tag   // R:cache-H
	CacheFloat registry.Tag   // R:cache-F
	Fallbacks  []registry.Tag // R:cache-FALLBACK, imported after R:cache-F
}

// repositories is the repository of every service of the project, by
// name, as people write it.
func repositories(project *compose.Project, opt Options) (map[string]string, error) {
	out := map[string]string{}
	for name, svc := range project.Services {
		repo, err := repositoryOf(project.Name, svc, opt.Repository)
		if err != nil {
			return nil, fmt.Errorf("service %q: %w", name, err)
		}
		out[name] = repo
	}
	return out, nil
}

// Repositories returns the repository of every service of the project
// that builds, as the plan would push it: for checking what a record
// says against the project, without hashing it.
func Repositories(project *compose.Project, opt Options) (map[string]name.Repository, error) {
	repos, err := repositories(project, opt)
	if err != nil {
		return nil, err
	}
	out := map[string]name.Repository{}
	for svc, r := range repos {
		if out[svc], err = opt.Hosts.Repository(r); err != nil {
			return nil, fmt.Errorf("service %q: repository %q: %w", svc, r, err)
		}
	}
	return out, nil
}

// sharedRepositories returns the services that push to a repository
// other services of the project, with different builds, push to too (as
// opentelemetry-demo's sixteen share one, told apart by tag). Each of them
// gets floating tags of its own (ownTag): with one R:F for all, each
// build would move the others' R:F, import another service's cache and
// explain against another's manifest. Services with identical builds
// make the same image and keep sharing. It is decided over the whole
// project, not the services asked for, so that a service's tags do not
// change with what a run builds.
func sharedRepositories(project *compose.Project, repos map[string]string) map[string]bool {
	byRepo := map[string][]*compose.Service{}
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		byRepo[repos[name]] = append(byRepo[repos[name]], project.Services[name])
	}
	out := map[string]bool{}
	for _, svcs := range byRepo {
		for _, s := range svcs[1:] {
			if !sameBuild(svcs[0], s) {
				for _, s := range svcs {
					out[s.Name] = true
				}
				break
			}
		}
	}
	return out
}

// sameBuild reports whether two services build the same image: every
// build key alike but their names, image: and tags.
func sameBuild(a, b *compose.Service) bool {
	x, y := *a, *b
	x.Name, y.Name, x.Image, y.Image, x.Tags, y.Tags = "", "", "", "", nil, nil
	return reflect.DeepEqual(x, y)
}

// ownTag is a service's own floating tag: TAG-SERVICE.
func ownTag(tag, service string) string { return tag + "-" + service }

// NewRefs names the tags of repository (as written) for hash tag h,
// floating tag f and the fallback floating tags.
func NewRefs(hosts registry.Hosts, repository, h, f string, fallbacks ...string) (Refs, error) {
	r, err := hosts.Repository(repository)
	if err != nil {
		return Refs{}, fmt.Errorf("image repository %q is not valid (lowercase letters, digits and . _ - / only, with an optional registry host): %w", repository, err)
	}
	refs := Refs{Repository: r}
	for _, t := range []struct {
		dst *registry.Tag
		tag string
	}{{&refs.Image, h}, {&refs.Floating, f}, {&refs.Cache, "cache-" + h}, {&refs.CacheFloat, "cache-" + f}} {
		if *t.dst, err = tagOf(hosts, repository, t.tag); err != nil {
			return Refs{}, err
		}
	}
	for _, fb := range fallbacks {
		t, err := tagOf(hosts, repository, "cache-"+fb)
		if err != nil {
			return Refs{}, err
		}
		refs.Fallbacks = append(refs.Fallbacks, t)
	}
	return refs, nil
}

// repositoryOf is the repository a service is pushed to, as people write
// it: prefix/NAME when a prefix is given, else its image: without tag or
// digest, else compose's default PROJECT-NAME (which docker compose never
// pushes: see Job.Local).
func repositoryOf(project string, svc *compose.Service, prefix string) (string, error) {
	switch {
	case prefix != "":
		return strings.TrimSuffix(prefix, "/") + "/" + svc.Name, nil
	case svc.Image != "":
		ref, err := imageref.Parse(svc.Image)
		if err != nil {
			return "", fmt.Errorf("image %q is not a valid image reference (lowercase letters, digits and . _ - / only, with an optional registry host and tag): %w", svc.Image, err)
		}
		return ref.FamiliarName(), nil
	}
	return project + "-" + svc.Name, nil
}

func tagOf(h registry.Hosts, repo, tag string) (registry.Tag, error) {
	// Checked on its own: appended to the repository, a "tag" such as
	// "/x" would parse as more repository path instead.
	if !tagRE().MatchString(tag) {
		return registry.Tag{}, fmt.Errorf("tag %q for %s is not valid (letters, digits, . _ -, at most 128 characters, not starting with . or -)", tag, repo)
	}
	t, err := h.Tag(repo + ":" + tag)
	if err != nil {
		return registry.Tag{}, fmt.Errorf("tag %q for %s: %w", tag, repo, err)
	}
	return t, nil
}

// tagRE is the OCI distribution spec's tag grammar, compiled on first
// use rather than at every start of every command (its {0,127} alone is
// over a thousand allocations).
var tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) })

// ErrFloatingTag reports a floating tag that is not a valid tag, or
// whose cache- twin is not.
var ErrFloatingTag = errors.New("not a valid floating tag")

// Floating is a floating tag, checked once, where it is given
// (ParseFloating): it and its cache- twin are both tags. The zero
// Floating is DefaultFloating.
type Floating struct{ tag string }

// ParseFloating checks that s can be a floating tag: s and cache-s must
// both be valid tags.
func ParseFloating(s string) (Floating, error) {
	if !tagRE().MatchString(s) || !tagRE().MatchString("cache-"+s) {
		return Floating{}, fmt.Errorf("%q is %w: use letters, digits, . _ - (at most 122 characters, not starting with . or -), for example ci-main", s, ErrFloatingTag)
	}
	return Floating{s}, nil
}

// String is the tag.
func (f Floating) String() string { return cmp.Or(f.tag, DefaultFloating) }

// NoRepositoryError reports services that name no registry repository
// (no image:, no repository prefix) in a run that needs one: for Push,
// when Push is set.
type NoRepositoryError struct {
	Services []string
	Push     bool
}

func (e *NoRepositoryError) Error() string {
	if len(e.Services) == 1 {
		return fmt.Sprintf("service %q has no image: and no repository prefix, so it has no registry repository", e.Services[0])
	}
	return fmt.Sprintf("services %s have no image: and no repository prefix, so they have no registry repository", strings.Join(e.Services, ", "))
}
