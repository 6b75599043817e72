package publish

import (
	"bytes"
	"time"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/record"
)

// Recorder writes the cache manifests of a run: one per pushed service,
// attached to its image, and the whole run's.
type Recorder struct {
	Project  string
	Tool     string // bkcache's version
	Buildkit *record.Buildkit
	// Redact stores the build args it names redacted.
	Redact inputs.Redaction
	Start  time.Time
}

// Run is the record of a whole run: every job's inputs, with its
// result when there is one (results are in job order; nil for a run
// that only hashed).
func (r *Recorder) Run(p *plan.Plan, results []*outcome.Result) *record.Run {
	var records []*record.Service
	for i, j := range p.Jobs {
		var res *outcome.Result
		if i < len(results) {
			res = results[i]
		}
		records = append(records, serviceRecord(j.Inputs, res, r.Redact, r.Start))
	}
	return r.manifest(records...)
}

// document is the single-service record attached to a pushed image.
func (r *Recorder) document(j *plan.Job, res *outcome.Result) ([]byte, error) {
	var buf bytes.Buffer
	err := r.manifest(serviceRecord(j.Inputs, res, r.Redact, r.Start)).Write(&buf)
	return buf.Bytes(), err
}

func (r *Recorder) manifest(records ...*record.Service) *record.Run {
	m := record.New(r.Project, r.Tool, r.Start)
	m.Buildkit = r.Buildkit
	m.Services = append(m.Services, records...)
	return m
}

// serviceRecord returns the record of a service's result in a run
// that started at start. The args redact names are stored redacted; in
// itself is left untouched.
func serviceRecord(in *inputs.Inputs, res *outcome.Result, redact inputs.Redaction, start time.Time) *record.Service {
	s := &record.Service{
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
		s.Cache = &record.Cache{Imports: orEmpty(res.CacheImports), Exports: orEmpty(res.CacheExports)}
		s.Steps = &record.Steps{Cached: res.CachedSteps, Total: res.TotalSteps, List: res.Steps}
	}
	s.Timing = &record.Timing{
		StartMs:       max(0, res.Start.Sub(start).Milliseconds()),
		TotalMs:       res.Duration.Milliseconds(),
		CacheImportMs: res.CacheImportMs, PushMs: res.PushMs, ExportMs: res.ExportMs, CacheExportMs: res.CacheExportMs,
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
