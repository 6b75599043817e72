package publish

import (
	"bytes"
	"time"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/manifest"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
)

// Recorder writes the cache manifests of a run: one per pushed service,
// attached to its image, and the whole run's.
type Recorder struct {
	Project  string
	Tool     string // bkcache's version
	Buildkit *manifest.Buildkit
	// Redact stores the build args it names redacted.
	Redact inputs.Redaction
	Start  time.Time
}

// Run is the manifest of a whole run: every job's inputs, with its
// result when there is one (results are in job order; nil for a run
// that only hashed).
func (r *Recorder) Run(p *plan.Plan, results []*outcome.Result) *manifest.Manifest {
	var records []*manifest.Service
	for i, j := range p.Jobs {
		var res *outcome.Result
		if i < len(results) {
			res = results[i]
		}
		records = append(records, record(j.Inputs, res, r.Redact, r.Start))
	}
	return r.manifest(records...)
}

// document is the single-service manifest attached to a pushed image.
func (r *Recorder) document(j *plan.Job, res *outcome.Result) ([]byte, error) {
	var buf bytes.Buffer
	err := r.manifest(record(j.Inputs, res, r.Redact, r.Start)).Write(&buf)
	return buf.Bytes(), err
}

func (r *Recorder) manifest(records ...*manifest.Service) *manifest.Manifest {
	m := manifest.New(r.Project, r.Tool, r.Start)
	m.Buildkit = r.Buildkit
	m.Services = append(m.Services, records...)
	return m
}

// record returns the manifest record of a service's result in a run
// that started at start. The args redact names are stored redacted; in
// itself is left untouched.
func record(in *inputs.Inputs, res *outcome.Result, redact inputs.Redaction, start time.Time) *manifest.Service {
	s := &manifest.Service{
		Service: in.Service,
		Status:  "hashed",
		Hash:    in.Tag(),
		Scheme:  in.Scheme,
		Inputs:  redact.Inputs(in),
	}
	if res == nil {
		return s
	}
	s.Status = string(res.Status)
	s.Image = res.Image
	s.Digest = res.Digest
	s.Error = res.Error
	s.Warnings = res.Warnings
	s.Node = res.Node
	s.ErrorAt = res.ErrorAt
	s.Changes = res.Changes
	if res.Status == outcome.Built || res.Status == outcome.Failed {
		s.Cache = &manifest.Cache{Imports: orEmpty(res.CacheImports), Exports: orEmpty(res.CacheExports)}
		s.Steps = &manifest.Steps{Cached: res.CachedSteps, Total: res.TotalSteps}
	}
	s.Timing = &manifest.Timing{
		StartMs:       max(0, res.Start.Sub(start).Milliseconds()),
		TotalMs:       res.Duration.Milliseconds(),
		CacheImportMs: res.CacheImportMs, CacheExportMs: res.CacheExportMs,
		CacheImportBytes: res.CacheImportBytes, CacheExportBytes: res.CacheExportBytes,
	}
	return s
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
