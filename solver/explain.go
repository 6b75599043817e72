package solver

import (
	"context"

	"github.com/bkcache/bkcache/solver/manifest"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/moby/buildkit/solver/errdefs"
)

// explain starts looking up why j rebuilds, with Options.Explain: the
// manifest attached to the image R:F names now (before this build moves
// it), compared with j's inputs as manifests record them (redacted args
// redacted, so that no report shows them). The returned func waits for the answer
// and stores it in res.Changes; a floating tag with no manifest (the
// first build, or an image bkcache did not push) leaves it nil.
func (b *Builder) explain(ctx context.Context, j *plan.Job, res *Result) (wait func()) {
	if !b.opt.Explain || j.Local {
		return func() {}
	}
	done := make(chan *manifest.Report, 1)
	go func() {
		var r *manifest.Report
		if m, err := b.registry.FetchManifest(ctx, j.Refs.Floating); err == nil {
			if old := m.Find(j.Inputs.Service); old != nil && old.Inputs != nil {
				r = manifest.Compare(old.Inputs, j.Inputs, b.opt.Recorder.Redact)
			}
		}
		done <- r
	}()
	return func() { res.Changes = <-done }
}

// errorAt is where in the service's Dockerfile a solve failed, from the
// source BuildKit attached to its error: the innermost one, which names
// the instruction that failed.
func errorAt(j *plan.Job, err error) *manifest.Location {
	for _, s := range errdefs.Sources(err) {
		if s.Info == nil || len(s.Ranges) == 0 || s.Ranges[0].Start == nil {
			continue
		}
		file := j.Service.Dockerfile
		if file == "" || j.Service.DockerfileInline != "" {
			file = s.Info.Filename
		}
		return &manifest.Location{File: file, Line: int(s.Ranges[0].Start.Line)}
	}
	return nil
}
