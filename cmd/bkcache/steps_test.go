package main

import (
	"bytes"
	"testing"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/record"
)

func TestWriteSteps(t *testing.T) {
	results := []*outcome.Result{
		{Service: "app", Status: outcome.Built, Steps: []record.Step{
			{Line: 2, Instruction: "COPY a /a", Status: record.StepCached, EarlierMs: 2000},
			{Line: 3, Instruction: "RUN make", Status: record.StepRan, DurationMs: 1500, Reason: "after line 2 `COPY a /a`, which read a changed file: a"},
			{Line: 4, Instruction: "RUN test", Status: record.StepRan, DurationMs: 500, Reason: "unexpected: nothing it depends on changed; no cache was imported", Unexpected: true},
		}},
		{Service: "web", Status: outcome.Skipped},
		{Service: "first", Status: outcome.Built, Steps: []record.Step{{Line: 2, Instruction: "RUN x", Status: record.StepRan, DurationMs: 100}}},
	}
	var b bytes.Buffer
	writeSteps(&b, results)
	want := "\napp:\n" +
		"  line 4 `RUN test` ran in 0.5 s: unexpected: nothing it depends on changed; no cache was imported\n" +
		"  line 3 `RUN make` ran in 1.5 s: after line 2 `COPY a /a`, which read a changed file: a\n" +
		"  1 step cached\n" +

		"Step time: 2.1 s ran, 2.0 s came from cache (as long as those steps took when they last ran).\n" +
		"Unexpected cache misses (1 step that ran though nothing it reads changed) cost 0.5 s.\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
