// Package history reads what BuildKit's build history keeps of a solve:
// the provenance it records for every build (mode=max, whatever the
// build asked for), whose build config maps each vertex of the solve to
// a step of the LLB definition, and whose source map places each step in
// the Dockerfile. With the vertices of the solve's progress, that says
// which Dockerfile line each vertex ran for, from BuildKit's own mapping
// rather than from the names it displays.
package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/content/proxy"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/client"
	provenancetypes "github.com/moby/buildkit/solver/llbsolver/provenance/types"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// predicateType is how BuildKit annotates a SLSA v1 provenance blob.
const predicateType = "https://slsa.dev/provenance/v1"

// Provenance is what bkcache reads of one provenance predicate.
type Provenance = provenancetypes.ProvenancePredicateSLSA1

// SourceInfo is one source file a provenance maps steps into.
type SourceInfo = provenancetypes.SourceInfo

// Read returns the provenance BuildKit's history recorded for the solve
// ref (SolveOpt.Ref): one per platform of a multi-platform build.
func Read(ctx context.Context, c *client.Client, ref string) ([]*Provenance, error) {
	rec, err := historyRecord(ctx, c, ref)
	if err != nil {
		return nil, err
	}
	var descs []*controlapi.Descriptor
	if rec.Result != nil {
		descs = append(descs, rec.Result.Attestations...)
	}
	for _, r := range rec.Results {
		descs = append(descs, r.Attestations...)
	}
	store := proxy.NewContentStore(c.ContentClient())
	var out []*Provenance
	for _, d := range descs {
		if d.Annotations["in-toto.io/predicate-type"] != predicateType {
			continue
		}
		dt, err := content.ReadBlob(ctx, store, ocispecs.Descriptor{Digest: digest.Digest(d.Digest), Size: d.Size, MediaType: d.MediaType})
		if err != nil {
			return nil, fmt.Errorf("reading the provenance of build %s from buildkitd's history: %w", ref, err)
		}
		var p Provenance
		if err := json.Unmarshal(dt, &p); err != nil {
			return nil, fmt.Errorf("the provenance of build %s in buildkitd's history: %w", ref, err)
		}
		out = append(out, &p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("buildkitd's history of build %s holds no provenance", ref)
	}
	return out, nil
}

// historyRecord returns the history record of the build ref.
func historyRecord(ctx context.Context, c *client.Client, ref string) (*controlapi.BuildHistoryRecord, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.ControlClient().ListenBuildHistory(ctx, &controlapi.BuildHistoryRequest{Ref: ref, EarlyExit: true})
	if err != nil {
		return nil, fmt.Errorf("reading buildkitd's build history: %w", err)
	}
	var rec *controlapi.BuildHistoryRecord
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading buildkitd's build history: %w", err)
		}
		if ev.Record != nil && ev.Record.Ref == ref {
			rec = ev.Record
		}
	}
	if rec == nil {
		return nil, fmt.Errorf("buildkitd's build history has no build %s (is its history turned off?)", ref)
	}
	return rec, nil
}
