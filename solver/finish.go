package solver

import (
	"context"
	"fmt"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	digest "github.com/opencontainers/go-digest"
)

// finish takes a service from a successful solve to its end state:
// cacheFailures are the solve's failed cache exports; inRegistry, what
// R:H held at the check of a --push run that solved for an output only.
// With --push the image is then published.
func (b *Builder) finish(ctx context.Context, j *plan.Job, resp *client.SolveResponse, cacheFailures []string, layout string, inRegistry digest.Digest, res *outcome.Result) {
	res.Status, res.Layout = outcome.Built, layout
	if d := resp.ExporterResponse[exptypes.ExporterImageDigestKey]; d != "" {
		res.Digest = digest.Digest(d)
	}
	if out, ok := b.opt.Outputs[j.Name()]; ok && out.Type == "engine" && b.opt.Push && inRegistry == "" {
		if err := b.pool.Engine().tag(ctx, j.Refs.Image.String(), j.EngineNames); err != nil {
			res.Fail(fmt.Errorf("naming %s in the Docker engine: %w", j.Refs.Image, err))
			return
		}
	}
	if b.opt.Push {
		b.pub.Publish(ctx, j, res, cacheFailures, inRegistry)
	}
}
