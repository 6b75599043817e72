package publish

import (
	"context"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/record"
)

// Explain starts looking up why j rebuilds, with Options.Explain: the
// record attached to the image R:F names now (before this build moves
// it), compared with j's inputs as records hold them (redacted args
// redacted, so that no report shows them). The returned func waits for the answer
// and stores it in res.Changes; a floating tag with no record (the
// first build, or an image bkcache did not push) leaves it nil.
func (p *Publisher) Explain(ctx context.Context, j *plan.Job, res *outcome.Result) (wait func()) {
	if !p.opt.Explain || j.Local {
		return func() {}
	}
	done := make(chan *record.Report, 1)
	go func() {
		var r *record.Report
		if m, err := ReadRecord(ctx, p.reg, j.Refs.Floating); err == nil {
			if old := m.Find(j.Inputs.Service); old != nil && old.Inputs != nil {
				r = record.Compare(old.Inputs, j.Inputs, p.opt.Recorder.Redact)
			}
		}
		done <- r
	}()
	return func() { res.Changes = <-done }
}
