package prune

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	bkmanifest "github.com/bkcache/bkcache/solver/manifest"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Target is one repository and the services of the project that push to
// it.
type Target struct {
	Repository name.Repository
	Services   []string
	Floating   []string // their floating tags as the plan decided them (ci, or ci-<service>)
}

// Report is what prune decided, and did, in one repository.
type Report struct {
	Repository string   `json:"repository"`
	Services   []string `json:"services"`
	DryRun     bool     `json:"dryRun"`
	Items      []Item   `json:"items"`      // deletions first, then by kind and tag
	Freed      int64    `json:"bytesFreed"` // by the deletions (done, or to do in a dry run)
	Deleted    int      `json:"deleted"`    // manifests deleted
	Error      string   `json:"error,omitempty"`
}

// Run decides what of t's repository the rules let go and, unless dryRun,
// deletes it. Just before deleting it reads the floating tags again and
// keeps whatever they point at now, with its cache and referrers, so
// that a build moving ci during the prune loses nothing. The report says
// how far it got when it fails.
func Run(ctx context.Context, reg *registry.Registry, t Target, rules Rules, dryRun bool) (*Report, error) {
	rules.Floating = append(slices.Clone(rules.Floating), t.Floating...)
	rep := &Report{Repository: t.Repository.String(), Services: t.Services, DryRun: dryRun}
	ms, err := list(ctx, reg, t.Repository)
	if err != nil {
		return fail(rep, err)
	}
	d := decide(ms, rules)
	if !dryRun {
		moved, err := recheck(ctx, reg, t.Repository, ms, rules, d)
		if err != nil {
			return fail(rep, err)
		}
		if len(moved) > 0 {
			rules.KeepRefs = append(rules.KeepRefs, moved...)
			d = decide(ms, rules)
		}
	}
	d.report(rep)
	if dryRun {
		return rep, nil
	}
	for _, dg := range d.order {
		if err := reg.Delete(ctx, t.Repository, dg); err != nil {
			return fail(rep, err)
		}
		rep.Deleted++
	}
	return rep, nil
}

func fail(rep *Report, err error) (*Report, error) {
	rep.Error = err.Error()
	return rep, err
}

// report fills rep with d's items: deletions first, then by kind and tag.
func (d *decision) report(rep *Report) {
	for _, it := range d.items {
		rep.Items = append(rep.Items, *it)
		if it.Action == Delete {
			rep.Freed += it.Bytes
		}
	}
	slices.SortFunc(rep.Items, func(a, b Item) int {
		if a.Action != b.Action {
			return strings.Compare(a.Action, b.Action) // delete before keep
		}
		if a.Kind != b.Kind {
			return strings.Compare(a.Kind, b.Kind)
		}
		if c := strings.Compare(strings.Join(a.Tags, ","), strings.Join(b.Tags, ",")); c != 0 {
			return c
		}
		return strings.Compare(string(a.Digest), string(b.Digest))
	})
}

// list reads every tagged manifest of repo, what refers to its hash
// images, and when each hash image was built.
func list(ctx context.Context, reg *registry.Registry, repo name.Repository) (map[digest.Digest]*manifest, error) {
	tags, err := reg.Tags(ctx, repo)
	if err != nil {
		return nil, err
	}
	ms := map[digest.Digest]*manifest{}
	var mu sync.Mutex
	// add records m under tag and returns the one record of its digest:
	// tags on one manifest are read at once, and the first in keeps it.
	add := func(m *manifest, tag string) *manifest {
		mu.Lock()
		defer mu.Unlock()
		if have := ms[m.digest]; have != nil {
			m = have
		} else {
			ms[m.digest] = m
		}
		if tag != "" {
			m.tags = append(m.tags, tag)
		}
		return m
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for _, tag := range tags {
		g.Go(func() error {
			m, err := describe(gctx, reg, repo.Tag(tag))
			if err != nil {
				return err
			}
			if sub := fallbackTag.FindStringSubmatch(tag); sub != nil {
				m.subject = digest.Digest("sha256:" + sub[1])
			}
			m = add(m, tag)
			if hashTag.MatchString(tag) {
				created, attached, err := dateAndReferrers(gctx, reg, repo, m, add)
				mu.Lock()
				m.created, m.attached = created, attached
				mu.Unlock()
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return ms, markGone(ctx, reg, repo, ms)
}

func describe(ctx context.Context, reg *registry.Registry, ref name.Reference) (*manifest, error) {
	desc, err := reg.Describe(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &manifest{digest: desc.Digest, blobs: desc.Blobs, config: desc.Config, children: desc.Children}, nil
}

// dateAndReferrers records what refers to the hash image m and returns
// when it was built (the newest attached bkcache manifest's time, else
// the image config's created) and whether a bkcache manifest is
// attached.
func dateAndReferrers(ctx context.Context, reg *registry.Registry, repo name.Repository, m *manifest, add func(*manifest, string) *manifest) (time.Time, bool, error) {
	refs, err := reg.Referrers(ctx, repo.Digest(m.digest.String()))
	if err != nil {
		return time.Time{}, false, err
	}
	var created time.Time
	attached := false
	for _, r := range refs {
		rm, err := describe(ctx, reg, repo.Digest(r.Digest.String()))
		if err != nil {
			return time.Time{}, false, err
		}
		rm.subject = m.digest
		add(rm, "")
		if r.ArtifactType == bkmanifest.ArtifactType {
			attached = true
			if r.Created.After(created) {
				created = r.Created
			}
		}
	}
	if created.IsZero() && m.config != "" {
		created, err = reg.Created(ctx, repo, m.config)
	}
	return created, attached, err
}

// markGone marks the referrers fallback indexes whose subject no longer
// exists (a prune interrupted after deleting an image), and the
// manifests they list, which nothing else reaches any more.
func markGone(ctx context.Context, reg *registry.Registry, repo name.Repository, ms map[digest.Digest]*manifest) error {
	var gone []*manifest
	for _, m := range ms {
		if m.subject == "" || ms[m.subject] != nil || m.subject == goneSubject {
			continue
		}
		_, found, err := reg.Head(ctx, repo.Digest(m.subject.String()))
		if err != nil {
			return err
		}
		if !found {
			m.subject = goneSubject
			gone = append(gone, m)
		}
	}
	for _, idx := range gone {
		for _, c := range idx.children {
			if ms[c] != nil {
				continue
			}
			cm, err := describe(ctx, reg, repo.Digest(c.String()))
			if err != nil {
				return err
			}
			cm.subject = goneSubject
			ms[c] = cm
		}
	}
	return nil
}

// recheck reads the floating tags again and returns the digests they now
// point at that d would delete.
func recheck(ctx context.Context, reg *registry.Registry, repo name.Repository, ms map[digest.Digest]*manifest, rules Rules, d *decision) ([]string, error) {
	var moved []string
	for _, m := range ms {
		for _, t := range m.tags {
			if !rules.floating(t) {
				continue
			}
			now, found, err := reg.Head(ctx, repo.Tag(t))
			if err != nil {
				return nil, err
			}
			if it := d.items[now]; found && it != nil && it.Action == Delete {
				moved = append(moved, now.String())
			}
		}
	}
	return moved, nil
}
