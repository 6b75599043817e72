package solver

import (
	"maps"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/hash/manifest"
)

// Record returns the manifest record of a service's result. Args listed
// in redact are stored redacted; in itself is left untouched.
func Record(in *inputs.Inputs, res *Result, redact []string) *manifest.Service {
	cp := *in
	cp.Args = maps.Clone(in.Args)
	manifest.Redact(&cp, redact)
	s := &manifest.Service{
		Service: in.Service,
		Status:  "hashed",
		Hash:    in.Tag(),
		Scheme:  in.Scheme,
		Inputs:  &cp,
	}
	if res == nil {
		return s
	}
	s.Status = string(res.Status)
	s.Image = res.Image
	s.Digest = res.Digest.String()
	s.Error = res.Error
	s.Warnings = res.Warnings
	s.Node = res.Node
	if res.Status == Built || res.Status == Failed {
		s.Cache = &manifest.Cache{Imports: orEmpty(res.CacheImports), Exports: orEmpty(res.CacheExports)}
		s.Steps = &manifest.Steps{Cached: res.CachedSteps, Total: res.TotalSteps}
	}
	s.Timing = &manifest.Timing{
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
