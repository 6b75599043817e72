package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/report"
)

// writeSteps prints, under the summary table, the steps that ran of
// each built service compared with an earlier build, and why, then where
// the run's step time went.
func writeSteps(w io.Writer, results []*outcome.Result) {
	var all [][]record.Step
	for _, r := range results {
		if r.Status != outcome.Built || len(r.Steps) == 0 {
			continue
		}
		all = append(all, r.Steps)
		lines := report.StepLines(r.Steps, quoted, plain)
		if len(lines) == 0 {
			continue // a first build: every step ran
		}
		fmt.Fprintf(w, "\n%s:\n", r.Service)
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	for _, l := range report.StepTimes(all...).Lines() {
		fmt.Fprintln(w, l)
	}
}

func quoted(s string) string { return "`" + s + "`" }
func plain(s string) string  { return s }

// writeRecordSteps prints the steps of the build rec records (found
// at where): a line each, or the list as JSON.
func writeRecordSteps(w io.Writer, format string, rec *record.Service, where string) error {
	var steps []record.Step
	if rec.Steps != nil {
		steps = rec.Steps.List
	}
	if format == "json" {
		return writeJSON(w, map[string]any{"service": rec.Service, "hash": rec.Hash, "steps": steps})
	}
	if len(steps) == 0 {
		return fmt.Errorf("the manifest of %s records no steps for service %q: it was written before bkcache recorded steps, or the build's daemon kept no build history; rebuild the service to record them", where, rec.Service)
	}
	fmt.Fprintf(w, "%s: the steps of the build of %s (hash %s)\n", rec.Service, where, report.Short(rec.Hash))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LINE\tSTAGE\tSTATUS\tTIME\tINSTRUCTION\tWHY")
	for _, s := range steps {
		status, took := s.Status, fmt.Sprintf("%.1fs", float64(s.DurationMs)/1000)
		if s.Unexpected {
			status += " (miss)"
		}
		if s.Status == record.StepCached {
			took = "-"
			if s.EarlierMs > 0 {
				took = fmt.Sprintf("(%.1fs)", float64(s.EarlierMs)/1000)
			}
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", s.Line, s.Stage, status, took, s.Instruction, orDash(s.Reason))
	}
	return tw.Flush()
}
