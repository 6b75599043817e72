// Package outcome is what happened to each service of a run: the result
// the solve on buildkitd and the publishing in the registry each fill in
// their part of, and that the reports, the summary and the record show.
package outcome

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/bkcache/bkcache/solver/record"
	digest "github.com/opencontainers/go-digest"
)

// Status is the outcome of one service.
type Status string

// Outcomes of a service's build.
const (
	Built     Status = "built"
	Skipped   Status = "skipped"
	Failed    Status = "failed"
	Cancelled Status = "cancelled"
)

// Result is what happened to one service.
type Result struct {
	Service     string        `json:"service"`
	Status      Status        `json:"status"`
	Hash        string        `json:"hash"`
	Image       string        `json:"image"`
	Digest      digest.Digest `json:"digest,omitempty"`
	Floating    string        `json:"floating,omitempty"` // R:F, when moved or already there
	CachedSteps int           `json:"cachedSteps"`
	TotalSteps  int           `json:"totalSteps"`
	// Steps are the Dockerfile's steps as a solve ran them.
	Steps    []record.Step `json:"steps,omitempty"`
	Duration time.Duration `json:"-"` // as durationMs in JSON
	Error    string        `json:"error,omitempty"`
	Node     string        `json:"node,omitempty"` // the buildkitd that solved it
	// SameAs names the service whose build made this same image: this
	// one was not built again, and reports that one's outcome.
	SameAs string `json:"sameAs,omitempty"`
	// CacheImports and CacheExports are the cache refs the solve used.
	CacheImports []string `json:"cacheImports,omitempty"`
	CacheExports []string `json:"cacheExports,omitempty"`
	// PushMs is how long the image's export and push took.
	PushMs int64 `json:"pushMs,omitempty"`
	// ExportMs is how long the image's export and push and the cache
	// export took together, which BuildKit v0.33 runs partly at once:
	// at most PushMs plus CacheExportMs.
	ExportMs         int64 `json:"exportMs,omitempty"`
	CacheImportMs    int64 `json:"cacheImportMs,omitempty"`
	CacheExportMs    int64 `json:"cacheExportMs,omitempty"`
	CacheImportBytes int64 `json:"cacheImportBytes,omitempty"`
	CacheExportBytes int64 `json:"cacheExportBytes,omitempty"`
	// CacheReused names the cache R:cache-H was pointed at instead of
	// an export, every step having come from it (REPO:cache-ci@DIGEST),
	// or R:cache-H itself when it was there already; nothing was
	// exported then, and CacheExportBytes is 0.
	CacheReused string `json:"cacheReused,omitempty"`
	// CacheForm is the form R:cache-H was exported in, image-manifest or
	// index; CacheFormWhy says what decided it.
	CacheForm    string `json:"cacheForm,omitempty"`
	CacheFormWhy string `json:"cacheFormWhy,omitempty"`
	// Warnings are what went wrong without failing the service: a cache
	// that could not be imported or exported, a retried attempt.
	Warnings []string `json:"warnings,omitempty"`
	// ImportFailures are the cache imports that failed (each also a
	// warning): the registry could not serve one, or buildkitd could
	// not import it.
	ImportFailures []string `json:"-"`
	// Start is when the service's turn came: its skip check.
	Start time.Time `json:"-"`
	// Log is the end of the service's build output (its steps, their
	// output and errors), at most LogLines lines.
	Log []string `json:"-"`
	// ErrorAt is where in the Dockerfile a failed build failed.
	ErrorAt *record.Location `json:"errorAt,omitempty"`
	// Changes is why a solved service rebuilt (with Options.Explain).
	Changes *record.Report `json:"-"`
	// StepPlan is which steps had to run, from Changes.
	StepPlan *record.StepPlan `json:"-"`
	// Layout is the OCI layout of a local (unpushed) build, for the
	// services that read it through service: contexts.
	Layout string `json:"-"`
	err    error
}

// MarshalJSON writes the duration in milliseconds, the unit of every
// duration bkcache writes.
func (r *Result) MarshalJSON() ([]byte, error) {
	type plain Result
	return json.Marshal(struct {
		*plain
		DurationMs int64 `json:"durationMs"`
	}{(*plain)(r), r.Duration.Milliseconds()})
}

// Err returns the service's error, if it failed or was cancelled.
func (r *Result) Err() error { return r.err }

// Fail ends the service failed with err.
func (r *Result) Fail(err error) {
	r.Status, r.err, r.Error = Failed, err, err.Error()
}

// Warn records what went wrong without failing the service.
func (r *Result) Warn(w ...string) {
	r.Warnings = append(r.Warnings, w...)
}

// ImportFailed records cache imports that failed, as warnings too.
func (r *Result) ImportFailed(w ...string) {
	r.Warn(w...)
	r.ImportFailures = append(r.ImportFailures, w...)
}

// Cancel ends the service cancelled with the run.
func (r *Result) Cancel(err error) {
	r.Status, r.err, r.Error = Cancelled, err, "cancelled: "+err.Error()
}

// Stop ends a result that never started: cancelled with the run, or
// failed for want of a dependency.
func (r *Result) Stop(ctx context.Context, err error) {
	if ctx.Err() != nil {
		r.Cancel(ctx.Err())
	} else {
		r.Fail(err)
	}
}

// Follow makes r report leader's outcome: r's service makes the same
// image as leader's, and was not built again.
func (r *Result) Follow(leader *Result) {
	r.SameAs = leader.Service
	r.Status, r.Digest, r.Floating, r.Node, r.Layout = leader.Status, leader.Digest, leader.Floating, leader.Node, leader.Layout
	if leader.err != nil {
		r.err = fmt.Errorf("the same image as service %q, which did not build: %w", leader.Service, leader.err)
		r.Error = "the same image as service " + strconv.Quote(leader.Service) + ": " + leader.Error
	}
}
