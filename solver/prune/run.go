package prune

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/solver/record"
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
// deletes it. Just before deleting it lists the tags again and keeps
// whatever a tag made or moved since the first listing points at, with
// everything that manifest reaches, so that a build tagging an image
// during the prune loses nothing. The report says how far it got when it
// fails.
func Run(ctx context.Context, reg *registry.Registry, t Target, rules Rules, dryRun bool) (*Report, error) {
	rules.Floating = append(slices.Clone(rules.Floating), t.Floating...)
	rep := &Report{Repository: t.Repository.String(), Services: t.Services, DryRun: dryRun}
	l := &lister{reg: reg, repo: t.Repository, ds: reg.NewDescriber()}
	ms, err := l.list(ctx)
	if err != nil {
		return fail(rep, err)
	}
	d := decide(ms, rules)
	if !dryRun && len(d.order) > 0 {
		changed, err := l.recheck(ctx, ms)
		if err != nil {
			return fail(rep, err)
		}
		if changed {
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

// lister reads one repository for a prune, describing each manifest
// once across the listing and the recheck.
type lister struct {
	reg  *registry.Registry
	repo name.Repository
	ds   *registry.Describer
}

// list reads every tagged manifest of repo, what refers to its hash
// images, and when each hash image was built.
func list(ctx context.Context, reg *registry.Registry, repo name.Repository) (map[digest.Digest]*manifest, error) {
	return (&lister{reg: reg, repo: repo, ds: reg.NewDescriber()}).list(ctx)
}

func (l *lister) list(ctx context.Context) (map[digest.Digest]*manifest, error) {
	reg, repo := l.reg, l.repo
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
			m, err := l.describe(gctx, repo.Tag(tag))
			if err != nil {
				return err
			}
			if sub := fallbackTag.FindStringSubmatch(tag); sub != nil {
				m.subject = digest.Digest("sha256:" + sub[1])
			}
			m = add(m, tag)
			if hashTag.MatchString(tag) {
				created, attached, err := l.dateAndReferrers(gctx, m, add)
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
	return ms, l.markGone(ctx, ms)
}

func (l *lister) describe(ctx context.Context, ref name.Reference) (*manifest, error) {
	desc, err := l.ds.Describe(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &manifest{digest: desc.Digest, blobs: desc.Blobs, config: desc.Config, children: desc.Children}, nil
}

// dateAndReferrers records what refers to the hash image m and returns
// when it was built (the newest attached bkcache manifest's time, else
// the image config's created) and whether a bkcache manifest is
// attached.
func (l *lister) dateAndReferrers(ctx context.Context, m *manifest, add func(*manifest, string) *manifest) (time.Time, bool, error) {
	reg, repo := l.reg, l.repo
	refs, err := reg.Referrers(ctx, repo.Digest(m.digest.String()))
	if err != nil {
		return time.Time{}, false, err
	}
	var created time.Time
	attached := false
	for _, r := range refs {
		rm, err := l.describe(ctx, repo.Digest(r.Digest.String()))
		if err != nil {
			return time.Time{}, false, err
		}
		rm.subject = m.digest
		add(rm, "")
		if r.ArtifactType == record.ArtifactType {
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
func (l *lister) markGone(ctx context.Context, ms map[digest.Digest]*manifest) error {
	reg, repo := l.reg, l.repo
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
			cm, err := l.describe(ctx, repo.Digest(c.String()))
			if err != nil {
				return err
			}
			cm.subject = goneSubject
			ms[c] = cm
		}
	}
	return nil
}

// recheck lists the tags again, just before the deletions, and reads
// each: a tag that is new since the listing, or now names another
// manifest, marks that manifest late (a build or a person tagged it
// during the prune: it stays, with everything it reaches). A manifest
// the listing did not see is described and added to ms. It reports
// whether anything changed. What is tagged between this read and the
// deletions is not seen: the registry API has no conditional delete.
func (l *lister) recheck(ctx context.Context, ms map[digest.Digest]*manifest) (bool, error) {
	before := map[string]digest.Digest{}
	for _, m := range ms {
		for _, t := range m.tags {
			before[t] = m.digest
		}
	}
	tags, err := l.reg.Tags(ctx, l.repo)
	if err != nil {
		return false, err
	}
	now := make([]digest.Digest, len(tags))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(8)
	for i, tag := range tags {
		g.Go(func() error {
			d, found, err := l.reg.Head(gctx, l.repo.Tag(tag))
			if found {
				now[i] = d
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return false, err
	}
	changed := false
	for i, tag := range tags {
		d := now[i]
		if d == "" || before[tag] == d {
			continue
		}
		m := ms[d]
		if m == nil {
			if m, err = l.describe(ctx, l.repo.Digest(d.String())); err != nil {
				return false, err
			}
			ms[d] = m
		}
		// Not among m's tags already: before holds each of them at m.
		m.tags = append(m.tags, tag)
		m.late = "tagged " + tag + " during the prune"
		changed = true
	}
	return changed, nil
}
