package inputs

import (
	"context"

	"github.com/bkcache/bkcache/context/compose"
	digest "github.com/opencontainers/go-digest"
)

// ComputeProject computes the inputs of the named services (all when
// names is empty) and of the services they depend on, dependencies first.
func ComputeProject(ctx context.Context, p *compose.Project, names []string, opt Options) ([]*Inputs, error) {
	svcs, err := p.Select(names)
	if err != nil {
		return nil, err
	}
	hashes := map[string]digest.Digest{}
	out := make([]*Inputs, 0, len(svcs))
	for _, s := range svcs {
		in, err := Compute(ctx, s, hashes, opt)
		if err != nil {
			return nil, err
		}
		hashes[s.Name] = in.Hash
		out = append(out, in)
	}
	return out, nil
}
