package main

import (
	"bytes"
	"context"
	"time"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/hash/manifest"
	"github.com/bkcache/bkcache/solver"
	"github.com/moby/buildkit/client"
)

// recorder builds the manifests of a run: one per service for the
// registry, and the whole run's for --manifest.
type recorder struct {
	project  string
	buildkit *manifest.Buildkit
	redact   []string
	start    time.Time
}

func (r *recorder) document(records ...*manifest.Service) *manifest.Manifest {
	m := manifest.New(r.project, version, r.start)
	m.Buildkit = r.buildkit
	m.Services = append(m.Services, records...)
	return m
}

// attach is solver.Options.Record: the single-service manifest attached
// to a pushed image.
func (r *recorder) attach(j solver.Job, res *solver.Result) ([]byte, error) {
	var buf bytes.Buffer
	err := r.document(solver.Record(j.Inputs, res, r.redact)).Write(&buf)
	return buf.Bytes(), err
}

func (r *recorder) run(all []*inputs.Inputs, results []*solver.Result) *manifest.Manifest {
	var records []*manifest.Service
	for i, in := range all {
		var res *solver.Result
		if i < len(results) {
			res = results[i]
		}
		records = append(records, solver.Record(in, res, r.redact))
	}
	return r.document(records...)
}

func buildkitInfo(ctx context.Context, c *client.Client, addr string, info *client.Info) *manifest.Buildkit {
	bk := &manifest.Buildkit{Address: addr, Version: info.BuildkitVersion.Version}
	if ws, err := c.ListWorkers(ctx); err == nil && len(ws) > 0 {
		bk.Worker = ws[0].Labels["org.mobyproject.buildkit.worker.executor"]
	}
	return bk
}
