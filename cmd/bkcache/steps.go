package main

import (
	"fmt"
	"io"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/report"
)

// writeSteps prints, under the summary table, the steps that ran of
// each built service and why, then where the run's step time went.
func writeSteps(w io.Writer, results []*outcome.Result) {
	var all [][]record.Step
	for _, r := range results {
		if r.Status != outcome.Built || len(r.Steps) == 0 {
			continue
		}
		all = append(all, r.Steps)
		fmt.Fprintf(w, "\n%s:\n", r.Service)
		for _, l := range report.StepLines(r.Steps, quoted, plain) {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	for _, l := range report.StepTimes(all...).Lines() {
		fmt.Fprintln(w, l)
	}
}

func quoted(s string) string { return "`" + s + "`" }
func plain(s string) string  { return s }
