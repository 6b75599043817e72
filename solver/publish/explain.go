package publish

import (
	"context"
	"sync"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/record"
)

// Explain starts looking up why j rebuilds, with Options.Explain: the
// record attached to the image R:F names now (before this build moves
// it), compared with j's inputs as records hold them (redacted args
// redacted, so that no report shows them), and which of its steps must
// run then (see record.PlanSteps). The returned func waits for the
// answer and stores it in res.Changes and res.StepPlan (once, however
// often it is called); a floating tag
// with no record (the first build, or an image bkcache did not push)
// leaves them nil.
func (p *Publisher) Explain(ctx context.Context, j *plan.Job, res *outcome.Result) (wait func()) {
	if !p.opt.Explain || j.Local {
		return func() {}
	}
	done := make(chan explained, 1)
	go func() {
		var e explained
		if m, err := ReadRecord(ctx, p.reg, j.Refs.Floating); err == nil {
			if old := m.Find(j.Inputs.Service); old != nil && old.Inputs != nil {
				e.changes = record.Compare(old.Inputs, j.Inputs, p.opt.Recorder.Redact)
				var earlier []record.Step
				if old.Steps != nil {
					earlier = old.Steps.List
				}
				e.plan = record.PlanSteps(old.Inputs, j.Inputs, e.changes, earlier)
				e.plan.OtherPlatform = record.PlatformMoved(j.Inputs, m.Buildkit, p.opt.Recorder.Buildkit)
			}
		}
		done <- e
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			e := <-done
			res.Changes, res.StepPlan = e.changes, e.plan
		})
	}
}

// explained is why a service rebuilds: its inputs, and its steps.
type explained struct {
	changes *record.Report
	plan    *record.StepPlan
}
