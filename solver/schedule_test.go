package solver

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	digest "github.com/opencontainers/go-digest"
)

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// chain is a plan of base and app, which reads base through a service:
// context, both pushed to Docker Hub (whose name BuildKit spells
// docker.io/..., as written here too, and go-containerregistry
// index.docker.io/...).
func chain(t *testing.T) (*plan.Plan, *plan.Job) {
	base := plantest.Job(t, "docker.io/p/base", testHash, &compose.Service{Name: "base"})
	app := plantest.Job(t, "docker.io/p/app", testHash, &compose.Service{Name: "app"})
	app.Deps = []string{"base"}
	return &plan.Plan{Jobs: []*plan.Job{base, app}}, base
}

// TestReadiedByPush: a service's dependents start from its image as soon
// as its solve has pushed R:H (not another of its names, nor a service
// nobody reads), from the first push only; a later, different final
// image is a warning on it.
func TestReadiedByPush(t *testing.T) {
	p, base := chain(t)
	s := newSchedule(p, 2)
	d1, d2 := digest.FromString("first push"), digest.FromString("retry")
	hub := "docker.io/p/base:" + testHash.Encoded()

	s.pushed("base", "docker.io/p/base:latest@"+d1.String(), d1) // a build tag, not R:H
	s.pushed("app", "docker.io/p/app:"+testHash.Encoded(), d1)   // nobody reads app
	if isClosed(s.ready["base"]) || isClosed(s.ready["app"]) {
		t.Fatal("readied by a push of another name, or of a service nobody reads")
	}
	s.pushed("base", hub, d1)
	s.pushed("base", hub, d2) // the first push stays
	if !isClosed(s.ready["base"]) || isClosed(s.done["base"]) {
		t.Fatal("R:H's push did not ready base's dependents, or marked it done")
	}
	deps, err := s.acquire(context.Background(), p.Jobs[1])
	if want := base.Refs.Image.String() + "@" + d1.String(); err != nil || deps["base"].Ref != want {
		t.Fatalf("app starts from %+v (%v), want %s", deps["base"], err, want)
	}
	s.release()

	res := s.byName["base"]
	for _, d := range []digest.Digest{"", d1} { // failed after the push; ended at that push
		res.Digest = d
		if s.repushed(res); len(res.Warnings) != 0 {
			t.Fatalf("ended at %q: warned %q", d, res.Warnings)
		}
	}
	res.Status, res.Digest = outcome.Built, d2
	s.repushed(res)
	s.finished("base")
	if len(res.Warnings) != 1 || !strings.Contains(res.Warnings[0], d1.String()) || !strings.Contains(res.Warnings[0], d2.String()) {
		t.Errorf("a retry's second image is not told: %q", res.Warnings)
	}
	if !isClosed(s.done["base"]) {
		t.Error("finished did not mark base done")
	}
}

// TestReadiedWhenDone: without a push (a build kept local, a classic
// engine that pushes after the solve) the dependents wait for the end,
// and a dependency that failed stops them.
func TestReadiedWhenDone(t *testing.T) {
	p, _ := chain(t)
	s := newSchedule(p, 2)
	res := s.byName["base"]
	res.Digest = digest.FromString("one image")
	res.Status = outcome.Built
	s.repushed(res)
	s.finished("base")
	if len(res.Warnings) != 0 {
		t.Errorf("warned without an early push: %q", res.Warnings)
	}
	deps, err := s.acquire(context.Background(), p.Jobs[1])
	if want := res.Image + "@" + res.Digest.String(); err != nil || deps["base"].Ref != want {
		t.Fatalf("app starts from %+v (%v), want %s", deps["base"], err, want)
	}
	s.release()

	p, _ = chain(t)
	s = newSchedule(p, 2)
	s.byName["base"].Fail(errors.New("RUN make: exit code 2"))
	s.finished("base")
	s.pushed("base", "docker.io/p/base:"+testHash.Encoded(), res.Digest) // too late: ignored
	if _, err := s.acquire(context.Background(), p.Jobs[1]); !errors.Is(err, ErrDependency) {
		t.Errorf("a failed dependency: %v, want ErrDependency", err)
	}
}

// TestAcquireWaits: a dependency built without a push reaches its
// dependent as its OCI layout; a dependent whose wait is cancelled gets
// the context's error; err names the services that did not build.
func TestAcquireWaits(t *testing.T) {
	p, _ := chain(t)
	s := newSchedule(p, 1)
	base := s.byName["base"]
	base.Status, base.Layout, base.Digest = outcome.Built, "/tmp/layouts/base", digest.FromString("local image")
	s.finished("base")
	deps, err := s.acquire(context.Background(), p.Jobs[1])
	if err != nil || deps["base"] != (depImage{Layout: base.Layout, Digest: base.Digest}) {
		t.Fatalf("app reads base as %+v (%v), want its layout", deps["base"], err)
	}
	// The one slot is taken: a second acquire waits, until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.acquire(ctx, p.Jobs[1]); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire past a cancelled wait for a slot: %v", err)
	}
	s.release()

	p, _ = chain(t)
	s = newSchedule(p, 1)
	if _, err := s.acquire(ctx, p.Jobs[1]); !errors.Is(err, context.Canceled) {
		t.Errorf("acquire past a cancelled wait for base: %v", err)
	}
	s.byName["base"].Status = outcome.Skipped
	s.byName["app"].Fail(errors.New("RUN make: exit code 2"))
	if err := s.err(); err == nil || !strings.Contains(err.Error(), "1 of 2 services did not build: [app]") {
		t.Errorf("err() = %v", err)
	}
}
