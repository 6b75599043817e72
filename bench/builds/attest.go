package main

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// attestations counts what a run with nothing changed pushes, with
// mode=max provenance: bkcache build --push against docker buildx bake
// --push, each run twice on one repository prefix, the second on a
// pruned daemon (bake then takes every step from its registry cache).
func (b *bench) attestations(ctx context.Context, proj string) error {
	buildx, env, err := b.buildx(ctx)
	if err != nil {
		return err
	}
	r := b.repo()
	bkRun := func() error {
		_, err := b.bkcache(proj, "build", "--push", "--repository", r, "--provenance", "mode=max")
		return err
	}
	bk, err := b.noOpPushes(r, bkRun)
	if err != nil {
		return err
	}
	rx := b.repo()
	args := bakeArgs(rx, "--provenance", "mode=max")
	bxRun := func() error {
		if out, err := b.runTool(ctx, proj, env, buildx, args...); err != nil {
			return fmt.Errorf("buildx bake: %v\n%s", err, out)
		}
		return nil
	}
	bx, err := b.noOpPushes(rx, bxRun)
	if err != nil {
		return err
	}
	b.rows = append(b.rows,
		fmt.Sprintf("| manifests a no-op run pushes, 10 services, mode=max provenance | bkcache build --push | %d | buildx bake --push (%s) | %d | - | the registry's stored manifests before and after; tags moved: bkcache %d, bake %d |",
			bk.manifests, buildxVersion, bx.manifests, bk.moved, bx.moved))
	return nil
}

// pushed is what the second of two runs changed in the registry.
type pushed struct {
	manifests int // manifests added to the registry's store
	moved     int // tags now naming another digest
}

func (b *bench) noOpPushes(prefix string, run func() error) (pushed, error) {
	if err := run(); err != nil {
		return pushed{}, err
	}
	tags, n, err := b.registryState(prefix)
	if err != nil {
		return pushed{}, err
	}
	b.prune()
	if err := run(); err != nil {
		return pushed{}, err
	}
	after, m, err := b.registryState(prefix)
	if err != nil {
		return pushed{}, err
	}
	p := pushed{manifests: m - n}
	for t, d := range after {
		if tags[t] != d {
			p.moved++
		}
	}
	return p, nil
}

// registryState is each tag's digest under prefix and the number of
// manifests the registry stores for its repositories.
func (b *bench) registryState(prefix string) (map[string]string, int, error) {
	tags, n := map[string]string{}, 0
	for i := range services {
		repo, err := name.NewRepository(prefix+"/"+svcName(i), name.Insecure)
		if err != nil {
			return nil, 0, err
		}
		list, err := remote.List(repo)
		if err != nil {
			return nil, 0, err
		}
		for _, t := range list {
			d, err := remote.Head(repo.Tag(t))
			if err != nil {
				return nil, 0, err
			}
			tags[repo.Tag(t).String()] = d.Digest.String()
		}
		stored, err := b.sb.StoredManifests(repo.String())
		if err != nil {
			return nil, 0, err
		}
		n += stored
	}
	return tags, n, nil
}
