// Package record owns bkcache's record of a run: the versioned JSON
// document of what it hashed, reused and produced, per service, and the
// comparison of two of them that answers "why did this rebuild?". Users
// know the file as the cache manifest (--manifest, docs/manifest.md);
// the code says record, so that "manifest" only ever means an OCI
// manifest. It knows nothing of registries; package publish attaches
// records to images.
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	"github.com/bkcache/bkcache/hash/inputs"
	digest "github.com/opencontainers/go-digest"
)

// SchemaVersion is the version of the document this package writes and
// reads. docs/manifest.schema.json specifies it.
const SchemaVersion = 1

// ArtifactType is the OCI artifact type of a record attached to an
// image (its "manifest" predates the record's name, and stays).
const ArtifactType = "application/vnd.bkcache.manifest.v1+json"

// Run is one run's record.
type Run struct {
	SchemaVersion int        `json:"schemaVersion"`
	Tool          Tool       `json:"tool"`
	Buildkit      *Buildkit  `json:"buildkit,omitempty"` // absent when no daemon was used
	Project       string     `json:"project"`
	Created       time.Time  `json:"created"`
	Services      []*Service `json:"services"`
}

// Tool identifies the bkcache that wrote the record.
type Tool struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Buildkit identifies the daemon that built.
type Buildkit struct {
	Address string `json:"address"`
	Version string `json:"version"`
	Worker  string `json:"worker,omitempty"`
	// Platform is the worker's own platform: what a service without
	// platforms builds for.
	Platform string `json:"platform,omitempty"`
}

// Service is one service's record.
type Service struct {
	Service string         `json:"service"`
	Status  string         `json:"status"` // built, skipped, failed, cancelled, or hashed (no build)
	Hash    string         `json:"hash"`
	Scheme  string         `json:"scheme"`
	Inputs  *inputs.Inputs `json:"inputs"`
	Image   string         `json:"image,omitempty"`
	Digest  digest.Digest  `json:"digest,omitempty"`
	Cache   *Cache         `json:"cache,omitempty"`
	Steps   *Steps         `json:"steps,omitempty"`
	Timing  *Timing        `json:"timing,omitempty"`
	Error   string         `json:"error,omitempty"`
	// Node is the buildkitd address that solved the service.
	Node string `json:"node,omitempty"`
	// Warnings are what went wrong without failing the service: a cache
	// that could not be imported or exported, a retried attempt.
	Warnings []string `json:"warnings,omitempty"`
	// ErrorAt is where in its Dockerfile a failed build failed, when
	// BuildKit said.
	ErrorAt *Location `json:"errorAt,omitempty"`
	// Changes is what changed since the record of the image the
	// floating tag named before this run, for a service that was solved:
	// why it rebuilt. Absent when there was no such record.
	Changes *Report `json:"changes,omitempty"`
}

// Location is a line of a file.
type Location struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// Cache lists the cache refs a build imported from and exported to.
type Cache struct {
	Imports []string `json:"imports"`
	Exports []string `json:"exports"`
}

// Steps counts the build steps that ran and those that came from cache,
// and lists the Dockerfile's steps as the build ran them.
type Steps struct {
	Cached int    `json:"cached"`
	Total  int    `json:"total"`
	List   []Step `json:"list,omitempty"`
}

// Step is one Dockerfile instruction as a build ran it, placed by
// BuildKit's own source map: once per line, for every platform.
type Step struct {
	Stage       string `json:"stage"`
	Line        int    `json:"line"`
	Instruction string `json:"instruction"`
	Status      string `json:"status"` // StepCached or StepRan
	// DurationMs is the time its vertices took, summed over platforms.
	DurationMs int64 `json:"durationMs"`
	// Reason says why it ran, or why it was cached although a change
	// reached it, when an earlier record was there to compare with.
	Reason string `json:"reason,omitempty"`
	// Unexpected marks a step that ran although nothing it depends on
	// changed: a cache miss.
	Unexpected bool `json:"unexpected,omitempty"`
	// EarlierMs is, for a step from cache, how long it took when it
	// last ran, as the records of earlier builds say: the time the
	// cache saved.
	EarlierMs int64 `json:"earlierMs,omitempty"`
}

// The status of a step: BuildKit took it from cache, or ran it (for a
// FROM: resolved and pulled its image).
const (
	StepCached = "cached"
	StepRan    = "ran"
)

// Timing is where a service's time went, as far as BuildKit reports it.
type Timing struct {
	// StartMs is when the service's build started, after the run did
	// (the record's created).
	StartMs       int64 `json:"startMs"`
	TotalMs       int64 `json:"totalMs"`
	CacheImportMs int64 `json:"cacheImportMs,omitempty"`
	// PushMs is the image's export and push.
	PushMs int64 `json:"pushMs,omitempty"`
	// ExportMs is the image's export and push and the cache export
	// together (BuildKit v0.33 runs them partly at once); TotalMs less
	// it is the build.
	ExportMs      int64 `json:"exportMs,omitempty"`
	CacheExportMs int64 `json:"cacheExportMs,omitempty"`
	// CacheImportBytes is the size of the cache layers BuildKit pulled
	// for steps it loaded from cache.
	CacheImportBytes int64 `json:"cacheImportBytes,omitempty"`
	// CacheExportBytes is the size of the cache the export wrote, as the
	// registry lists it (BuildKit reports no bytes for it).
	CacheExportBytes int64 `json:"cacheExportBytes,omitempty"`
}

// ErrSchema reports a document of another schema version.
var ErrSchema = errors.New("unsupported manifest schema version")

// New returns a record for project, written by version of bkcache.
func New(project, version string, now time.Time) *Run {
	return &Run{
		SchemaVersion: SchemaVersion,
		Tool:          Tool{Name: "bkcache", Version: version},
		Project:       project,
		Created:       now.UTC(),
		Services:      []*Service{},
	}
}

// Find returns the record of service, or nil.
func (m *Run) Find(service string) *Service {
	i := slices.IndexFunc(m.Services, func(s *Service) bool { return s.Service == service })
	if i < 0 {
		return nil
	}
	return m.Services[i]
}

// Write writes m as indented JSON.
func (m *Run) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}

// WriteFile writes m to path, replacing it atomically.
func (m *Run) WriteFile(path string) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	if err := m.Write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing manifest %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing manifest %s: %w", path, err)
	}
	return os.Rename(tmp, path)
}

// Parse reads a record, refusing other schema versions.
func Parse(b []byte) (*Run, error) {
	var probe struct {
		SchemaVersion *int `json:"schemaVersion"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("not a bkcache manifest: %w", err)
	}
	if probe.SchemaVersion == nil {
		return nil, errors.New("not a bkcache manifest: no schemaVersion")
	}
	if *probe.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%w %d (this bkcache reads version %d): use the bkcache release that wrote it", ErrSchema, *probe.SchemaVersion, SchemaVersion)
	}
	var m Run
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("malformed bkcache manifest: %w", err)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("malformed bkcache manifest: %w", err)
	}
	return &m, nil
}

// ReadFile reads and parses a record file.
func ReadFile(path string) (*Run, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	m, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}
