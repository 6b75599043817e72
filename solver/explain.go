package solver

import (
	"github.com/bkcache/bkcache/solver/manifest"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/moby/buildkit/solver/errdefs"
)

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
