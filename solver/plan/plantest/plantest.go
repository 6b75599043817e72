// Package plantest makes planned jobs for tests, without a compose
// project or a hash.
package plantest

import (
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/registry"
	digest "github.com/opencontainers/go-digest"
)

// Job is a job for svc, pushed to repository (as written) under hash h
// and the floating tag ci. It imports and exports no cache.
func Job(t testing.TB, repository string, h digest.Digest, svc *compose.Service) *plan.Job {
	t.Helper()
	refs, err := plan.NewRefs(registry.NewHosts(), repository, h.Encoded(), "ci")
	if err != nil {
		t.Fatal(err)
	}
	return &plan.Job{Service: svc, Inputs: &inputs.Inputs{Service: svc.Name, Hash: h}, Refs: refs}
}

// TaggedLatest is Job for service s of repository, whose compose build
// tags name repository:latest.
func TaggedLatest(t testing.TB, repository string, h digest.Digest) *plan.Job {
	t.Helper()
	j := Job(t, repository, h, &compose.Service{Name: "s", Image: repository})
	tag, err := registry.NewHosts().Tag(repository + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	j.Tags = append(j.Tags, tag)
	return j
}
