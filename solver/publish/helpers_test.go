package publish

import (
	"context"
	"testing"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	digest "github.com/opencontainers/go-digest"
)

// taggedLatest is the job of service s of repository, whose compose
// build tags name repository:latest, for testHash.
func taggedLatest(t *testing.T, repository string) *plan.Job {
	return plantest.TaggedLatest(t, repository, testHash)
}

// retag points repository:tag at d, directly in the registry, and
// returns d.
func retag(t *testing.T, repository string, d digest.Digest, tag string) digest.Digest {
	rt.Retag(t, repository, d.String(), tag)
	return d
}

// skip is what the builder does for a service whose R:H the check finds
// under --push: skipped, and promoted.
func skip(t *testing.T, p *Publisher, j *plan.Job, res *outcome.Result) {
	t.Helper()
	d, found, err := p.Check(context.Background(), j)
	switch {
	case err != nil:
		res.Fail(err)
	case !found:
		t.Fatalf("%s is not there to skip", j.Refs.Image)
	default:
		res.Status, res.Digest = outcome.Skipped, d
		if err := p.Promote(context.Background(), j, d, res); err != nil {
			res.Fail(err)
		}
	}
}

// publishBuilt is what the builder does after a solve under --push that
// reported the image built ("" for no digest): built, and published.
func publishBuilt(p *Publisher, j *plan.Job, built digest.Digest, cacheFailures []string, inRegistry digest.Digest, res *outcome.Result) {
	res.Status, res.Digest = outcome.Built, built
	p.Publish(context.Background(), j, res, CacheResult{Failures: cacheFailures}, inRegistry)
}
