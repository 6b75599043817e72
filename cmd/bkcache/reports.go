package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/report"
	"github.com/moby/buildkit/client"
	"github.com/spf13/cobra"
)

// reportFlags say where build writes its reports for CI.
type reportFlags struct {
	summary string // Markdown, appended: $GITHUB_STEP_SUMMARY
	junit   string // JUnit XML: $BKCACHE_JUNIT
}

func (f *reportFlags) bind(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.summary, "summary", os.Getenv("GITHUB_STEP_SUMMARY"), "append a Markdown summary of the run to FILE (default $GITHUB_STEP_SUMMARY, GitHub's job summary)")
	cmd.Flags().StringVar(&f.junit, "junit", os.Getenv("BKCACHE_JUNIT"), "write a JUnit XML report to FILE, a test case per service, for GitLab and CircleCI (default $BKCACHE_JUNIT)")
}

// wanted says whether any report needs why each service rebuilt.
func (f *reportFlags) wanted() bool { return f.summary != "" || f.junit != "" }

// githubActions reports whether bkcache runs as a GitHub Actions step.
func githubActions() bool { return os.Getenv("GITHUB_ACTIONS") == "true" }

// writeReports writes the summary and the JUnit report, and, under
// GitHub Actions, the workflow commands (on stderr, which the runner
// reads as it reads stdout, so that --format json stays clean).
func (f *reportFlags) write(stderr io.Writer, run report.Run) error {
	if f.summary != "" {
		if err := appendFile(f.summary, func(w io.Writer) error { return report.Summary(w, run) }); err != nil {
			return fmt.Errorf("writing the summary to %s: %w", f.summary, err)
		}
	}
	if f.junit != "" {
		if err := writeFileWith(f.junit, func(w io.Writer) error { return report.JUnit(w, run) }); err != nil {
			return fmt.Errorf("writing the JUnit report to %s: %w", f.junit, err)
		}
	}
	if githubActions() {
		return report.Commands(stderr, run)
	}
	return nil
}

func appendFile(path string, write func(io.Writer) error) error {
	file, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := write(file); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

func writeFileWith(path string, write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// logs are the end of each failed service's output, for the JUnit report.
func logs(results []*outcome.Result) map[string][]string {
	out := map[string][]string{}
	for _, r := range results {
		if r.Status == outcome.Failed && len(r.Log) > 0 {
			out[r.Service] = r.Log
		}
	}
	return out
}

// groupedProgress shows each service's plain progress as one folded
// group of a GitHub log, printed when the service ends, rather than
// interleaved with the others' lines. Each service's updates feed a
// plain display of their own, into a buffer.
type groupedProgress struct {
	w  io.Writer
	mu sync.Mutex
	by map[string]*serviceProgress
}

type serviceProgress struct {
	ch   chan *client.SolveStatus
	buf  bytes.Buffer
	done chan struct{}
}

func newGroupedProgress(w io.Writer) *groupedProgress {
	return &groupedProgress{w: w, by: map[string]*serviceProgress{}}
}

// of is solver.Options.ProgressOf.
func (g *groupedProgress) of(service string) chan<- *client.SolveStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p, ok := g.by[service]; ok {
		return p.ch
	}
	p := &serviceProgress{ch: make(chan *client.SolveStatus), done: make(chan struct{})}
	g.by[service] = p
	go func() {
		defer close(p.done)
		if err := renderProgress(&p.buf, "plain", p.ch); err != nil {
			fmt.Fprintln(&p.buf, "bkcache: progress display:", err)
		}
	}()
	return p.ch
}

// done is solver.Options.Done: the service's group is printed whole,
// with a line saying how it ended (a skipped service has no other).
func (g *groupedProgress) done(res *outcome.Result) {
	g.mu.Lock()
	p, ok := g.by[res.Service]
	delete(g.by, res.Service)
	g.mu.Unlock()
	var body string
	if ok {
		close(p.ch)
		<-p.done
		body = p.buf.String()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	fmt.Fprintf(g.w, "%s%sbkcache: %s %s %s in %s\n%s", report.Group(res.Service+": "+string(res.Status)), body,
		res.Service, res.Status, orDash(res.Image), res.Duration, report.EndGroup)
}

// newReportCmd is `bkcache report`: a run's manifest as one HTML page.
func newReportCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "report MANIFEST",
		Short: "Turn a run's cache manifest into one self-contained HTML page",
		Long: `Reads the manifest a run wrote (build --manifest FILE) and writes one HTML
file that needs nothing else (no network, no script, no font): the timeline
of the services, the table of their outcomes, and for each rebuilt service
what changed since the image its floating tag named.`,
		Example: `  bkcache build --push --manifest run.json
  bkcache report run.json -o report.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := record.ReadFile(args[0])
			if err != nil {
				return err
			}
			write := func(w io.Writer) error { return report.HTML(w, report.Run{Manifest: m}) }
			if out == "-" {
				return write(cmd.OutOrStdout())
			}
			if err := writeFileWith(out, write); err != nil {
				return fmt.Errorf("writing the report to %s: %w", out, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "report.html", "the HTML file to write, or - for stdout")
	return cmd
}
