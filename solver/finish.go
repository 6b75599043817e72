package solver

import (
	"context"
	"fmt"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	digest "github.com/opencontainers/go-digest"
)

// finish takes a service from a successful solve to its end state:
// cache is what became of the solve's caches; inRegistry, what R:H held
// at the check of a --push run that solved for an output only. With
// --push the image is then published.
func (b *Builder) finish(ctx context.Context, j *plan.Job, resp *client.SolveResponse, cache publish.CacheResult, layout string, inRegistry digest.Digest, res *outcome.Result) {
	res.Status, res.Layout = outcome.Built, layout
	if d := resp.ExporterResponse[exptypes.ExporterImageDigestKey]; d != "" {
		res.Digest = digest.Digest(d)
	}
	if out, ok := b.opt.Outputs[j.Name()]; ok && out.Type == "engine" && b.opt.Push && inRegistry == "" {
		if err := b.fromEngine(ctx, j, res); err != nil {
			res.Fail(err)
			return
		}
	}
	if b.opt.Push {
		b.pub.Publish(ctx, j, res, cache, inRegistry)
	}
}

// fromEngine completes a push of an image built into a Docker engine:
// with the containerd store BuildKit pushed it, and compose's names are
// tagged here; with the classic store the engine pushes R:H, then the
// compose tags, and R:H's digest is what the registry took.
func (b *Builder) fromEngine(ctx context.Context, j *plan.Job, res *outcome.Result) error {
	e := b.pool.Engine()
	if !b.classic() {
		if err := e.tag(ctx, j.Refs.Image.String(), j.EngineNames); err != nil {
			return fmt.Errorf("naming %s in the Docker engine: %w", j.Refs.Image, err)
		}
		return nil
	}
	d, err := e.push(ctx, j.Refs.Image.String(), j.Refs.Image.Context().RegistryStr())
	if err != nil {
		return fmt.Errorf("pushing %s from the Docker engine: %w; %s not moved", j.Refs.Image, err, j.Refs.Floating)
	}
	res.Digest = d
	for _, tag := range j.Service.Tags {
		ref, err := name.ParseReference(tag)
		if err == nil {
			_, err = e.push(ctx, tag, ref.Context().RegistryStr())
		}
		if err != nil {
			return fmt.Errorf("pushing %s from the Docker engine: %w; %s not moved", tag, err, j.Refs.Floating)
		}
	}
	return nil
}
