package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bkcache/bkcache/solver"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/bkcache/bkcache/solver/report"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

type buildOptions struct {
	engine    engineFlags
	verbose   bool
	reg       *registryFlags // the project-wide flags
	push      bool
	force     bool
	noCache   bool
	pull      bool
	ciTag     plan.Floating
	parallel  int
	keepGoing bool
	progress  string
	format    string
	manifest  manifestFlags
	reports   reportFlags
	noAttach  bool
	fallback  []plan.Floating
	output    string
	out       solver.Output // --output, parsed by check
	load      bool

	registryTimeout  time.Duration
	attempts         int
	requireCache     bool
	cacheCompression string // plan.Zstd or plan.Gzip
	prune            bool   // --prune: after a successful --push
}

func newBuildCmd(pf *projectFlags) *cobra.Command {
	o := &buildOptions{reg: &pf.reg}
	cmd := &cobra.Command{
		Use:   "build [SERVICE...]",
		Short: "Build services whose image for their input hash is not in the registry yet",
		Long: `For each service that builds (and the services its service: contexts need),
bkcache computes the input hash H of its image, skips it when REPOSITORY:H is
already in the registry, and otherwise solves its Dockerfile on buildkitd with
cache from REPOSITORY:cache-H and REPOSITORY:cache-ci.

With --push (what CI uses) it exports the cache to REPOSITORY:cache-H, pushes
REPOSITORY:H and the compose tags, and only then points REPOSITORY:ci (and
cache-ci) at them, registry-side. Without --push nothing is written to the
registry: the result stays in buildkitd's cache.`,
		Example: `  # CI: build what changed, push it, move :ci
  BUILDKIT_HOST=tcp://buildkitd:1234 bkcache build --push

  # two services, at most 2 at once, others finish when one fails
  bkcache build api worker --parallel 2 --keep-going

  # machine-readable summary
  bkcache build --push --format json > build.json

  # override a compose build arg in every service (it is part of the hash)
  bkcache build --push --build-arg NODE_VERSION=22`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), pf, o, args)
		},
	}
	f := cmd.Flags()
	o.engine.bind(f)
	f.BoolVar(&o.push, "push", false, "export cache, push images and move the floating tag")
	f.BoolVar(&o.force, "force", false, "build even when the image for the hash exists")
	f.BoolVar(&o.noCache, "no-cache", false, "build every step again, reusing no cache (implies --force; as docker compose build --no-cache)")
	f.BoolVar(&o.pull, "pull", false, "resolve base images in the registry even when buildkitd has them (as docker compose build --pull)")
	bindFloating(cmd, &o.ciTag, "floating tag moved to the last successful build")
	f.IntVar(&o.parallel, "parallel", 0, fmt.Sprintf("services built at once per node (default: %d per worker the node reports)", solver.SolvesPerWorker))
	f.BoolVar(&o.keepGoing, "keep-going", false, "let other services finish when one fails")
	bindChoice(cmd, &o.progress, "progress", "progress output on stderr", "auto", "tty", "plain", "rawjson", "quiet")
	bindFormat(cmd, &o.format, "text", "json")
	o.manifest.bind(cmd, "write the run's cache manifest to FILE (also when a service fails)")
	o.reports.bind(cmd)
	f.BoolVar(&o.noAttach, "no-attach-manifest", false, "with --push, do not attach the cache manifest to pushed images")
	bindFallbacks(cmd, &o.fallback)
	f.StringVar(&o.output, "output", "", "also write the images here: type=oci|docker|tar|local,dest=PATH (a directory per service when several build)")
	f.BoolVar(&o.load, "load", false, "load the images into the local Docker engine (implied when building on a Docker engine)")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "say which engine the build runs on, and why")
	f.DurationVar(&o.registryTimeout, "registry-timeout", registry.DefaultTimeout, "how long to wait for the registry to answer one request before retrying it")
	f.IntVar(&o.attempts, "attempts", solver.DefaultAttempts, "tries per service when a push or pull fails on a transient registry error (5xx, 429, reset)")
	f.BoolVar(&o.prune, "prune", false, "after a successful --push, prune the repositories of the services built, with prune's default rules (see bkcache prune)")
	f.BoolVar(&o.requireCache, "require-cache-export", false, "fail a service whose cache export failed (default: warn, the image is pushed anyway)")
	bindChoice(cmd, &o.cacheCompression, "cache-compression", "compression of the cache's own layers (gzip for a registry that refuses zstd)", plan.Zstd, plan.Gzip)
	return cmd
}

// check finds what is wrong in how the command was called.
func (o *buildOptions) check() error {
	if o.prune && !o.push {
		return usageError{fmt.Errorf("--prune deletes old images of what --push pushed: add --push, or run bkcache prune")}
	}
	if o.parallel < 0 {
		return usageError{fmt.Errorf("--parallel must be at least 1 (or 0: as many as each node's workers take)")}
	}
	if o.attempts < 1 {
		return usageError{fmt.Errorf("--attempts must be at least 1")}
	}
	if o.registryTimeout <= 0 {
		return usageError{fmt.Errorf("--registry-timeout must be positive, for example 30s")}
	}
	if o.output != "" && o.load {
		return usageError{fmt.Errorf("--output and --load go one at a time")}
	}
	if o.output != "" {
		var err error
		if o.out, err = solver.ParseOutput(o.output); err != nil {
			return usageError{fmt.Errorf("--output %w", err)}
		}
	}
	return nil
}

// forced: build even what the registry has (--no-cache reuses nothing,
// so it builds everything).
func (o *buildOptions) forced() bool { return o.force || o.noCache }

func (o *buildOptions) planOptions(names []string) plan.Options {
	return plan.Options{
		Services: names, Floating: o.ciTag, Fallbacks: o.fallback, Push: o.push,
		NoCache: o.noCache, Pull: o.pull, CacheCompression: o.cacheCompression,
		// The skip decision asks for R:H; ask while the others hash.
		Prefetch: !o.forced() && o.output == "" && !o.load,
	}
}

func runBuild(ctx context.Context, stdout, stderr io.Writer, pf *projectFlags, o *buildOptions, names []string) error {
	if err := o.check(); err != nil {
		return err
	}
	flags, err := pf.parse()
	if err != nil {
		return err
	}
	po := o.planOptions(names)
	reg := o.reg.registry(o.registryTimeout) // lookups wait as long as the build's
	po.Registry = reg
	ahead := o.engine.ahead(ctx)
	p, err := loadPlan(ctx, pf, po)
	if err != nil || len(p.Jobs) == 0 {
		ahead.drop()
	}
	if err != nil {
		return err
	}
	if len(p.Jobs) == 0 {
		// Nothing to build, as docker compose build: no daemon needed.
		return writeInputsManifest(o.manifest, p, pf.redact())
	}
	eng, pool, closePool, err := ahead.take(ctx, stderr, flags.mirrors)
	if err != nil {
		return err
	}
	defer closePool()
	start := time.Now()
	if o.verbose {
		fmt.Fprintf(stderr, "bkcache: building on %s\n", describe(eng, pool))
	}
	if err := o.classicLimits(stderr, pool.Engine(), p); err != nil {
		return err
	}
	outputs, err := o.outputs(ctx, p, pool.Engine())
	if err != nil {
		return err
	}
	for _, err := range pool.Down() {
		fmt.Fprintf(stderr, "bkcache: warning: %v; building on the other nodes\n", err)
	}
	rec := publish.Recorder{Project: p.Project, Tool: version, Buildkit: pool.Buildkit(ctx), Redact: pf.redact(), Start: start}
	pub := publish.New(reg, publish.Options{
		Attach: !o.noAttach, Recorder: rec, RequireCacheExport: o.requireCache,
		// Every solve: its steps' reasons come from the comparison. One
		// record read per solved service, while it solves.
		Explain: true,
	})
	opt := solver.Options{
		Push: o.push, Force: o.forced(), Parallel: o.parallel, KeepGoing: o.keepGoing,
		Outputs: outputs, Attempts: o.attempts,
	}
	waitProgress := func() {}
	if githubActions() && o.progress == "plain" {
		g := newGroupedProgress(stderr)
		opt.ProgressOf, opt.Done = g.of, g.done
	} else {
		opt.Progress, waitProgress = startProgress(stderr, o.progress)
	}
	results, buildErr := solver.NewBuilder(pool, pub, opt).Build(ctx, p)
	waitProgress()
	wd, _ := os.Getwd()
	run := report.Run{Manifest: rec.Run(p, results), Logs: logs(results), Dir: wd}
	if o.manifest.file != "" {
		if err := run.Manifest.WriteFile(o.manifest.file); err != nil {
			return err
		}
	}
	if err := o.reports.write(stderr, run); err != nil {
		return err
	}
	if err := printResults(stdout, stderr, o.format, results, len(pool.Nodes()) > 1); err != nil {
		return err
	}
	if buildErr == nil && o.push && o.prune {
		pruneBuilt(ctx, stderr, o.reg.registry(o.registryTimeout), p, results, o.ciTag.String())
	}
	return buildErr
}

// printResults writes the summary on stdout, and each service's warnings and
// failure on stderr.
func printResults(stdout, stderr io.Writer, format string, results []*outcome.Result, nodes bool) error {
	if format == "json" {
		if err := writeJSON(stdout, map[string]any{"services": results}); err != nil {
			return err
		}
	} else {
		writeBuildTable(stdout, results, nodes, isTerminal(stdout))
		writeSteps(stdout, results)
	}
	for _, r := range results {
		for _, w := range r.Warnings {
			fmt.Fprintf(stderr, "bkcache: warning: service %q: %s\n", r.Service, w)
		}
	}
	for _, r := range results {
		if r.Status == outcome.Failed {
			fmt.Fprintf(stderr, "bkcache: service %q failed: %v\n", r.Service, advise(r.Err()))
		}
	}
	return nil
}

// outputs maps --output and --load onto the services asked for (all of
// them when none were named): one dest for a single service, a directory
// of one entry per service otherwise.
func (o *buildOptions) outputs(ctx context.Context, p *plan.Plan, eng *solver.DockerEngine) (map[string]solver.Output, error) {
	if o.output == "" && !o.load && eng == nil {
		return nil, nil
	}
	out := o.out
	if eng != nil && o.output == "" {
		// On a Docker engine, images land in its store as they are built.
		out = solver.Output{Type: "engine", Platform: eng.Platform}
	} else if o.load {
		if err := solver.CheckDocker(ctx); err != nil {
			return nil, err
		}
		out = solver.Output{Type: "load"}
		// Asked once, and only when a service builds for several
		// platforms: the engine takes one of them.
		if slices.ContainsFunc(p.Jobs, func(j *plan.Job) bool { return len(j.Service.Platforms) > 1 }) {
			var err error
			if out.Platform, err = solver.EnginePlatform(ctx); err != nil {
				return nil, err
			}
		}
	}
	var targets []string
	for _, j := range p.Jobs {
		if j.Asked {
			targets = append(targets, j.Name())
		}
	}
	m := map[string]solver.Output{}
	for _, t := range targets {
		if len(targets) == 1 || out.Type == "load" || out.Type == "engine" {
			m[t] = out
		} else {
			m[t] = out.ForService(t)
		}
	}
	return m, nil
}

// startProgress shows BuildKit's own progress display on w, fed by the
// returned channel, until wait, which closes it; in quiet mode there is
// no channel (and nothing to wait for).
func startProgress(w io.Writer, mode string) (chan<- *client.SolveStatus, func()) {
	if mode == "quiet" {
		return nil, func() {}
	}
	ch := make(chan *client.SolveStatus)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := renderProgress(w, mode, ch); err != nil {
			fmt.Fprintln(w, "bkcache: progress display:", err)
		}
	}()
	return ch, func() { close(ch); <-done }
}

// renderProgress shows BuildKit's own progress display on w until ch is
// closed.
func renderProgress(w io.Writer, mode string, ch chan *client.SolveStatus) error {
	var out io.Writer = w
	if f, ok := w.(*os.File); ok {
		out = f // progressui detects a terminal on an *os.File
	}
	d, err := progressui.NewDisplay(out, progressui.DisplayMode(mode))
	if err != nil {
		for range ch {
		}
		return err
	}
	_, err = d.UpdateFrom(context.Background(), ch)
	return err
}

// writeBuildTable prints the summary, a line per service, with the node
// that built each when there are several. On a terminal
// (compact) the image's tag, which is the hash, and the digest are cut to
// 12 characters as docker cuts IDs, so that a line fits a window;
// elsewhere (CI logs, pipes) every ref is whole, to be copied. --format
// json always has them whole.
func writeBuildTable(w io.Writer, results []*outcome.Result, nodes, compact bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	header := "SERVICE\tSTATUS\tHASH\tIMAGE\tDIGEST\tCACHED\tDURATION"
	if compact {
		header = "SERVICE\tSTATUS\tIMAGE\tDIGEST\tCACHED\tDURATION"
	}
	if nodes {
		header += "\tNODE"
	}
	fmt.Fprintln(tw, header)
	for _, r := range results {
		image, d := orDash(r.Image), "-"
		if r.Digest != "" {
			d = r.Digest.String()
		}
		cached := "-"
		if r.TotalSteps > 0 {
			cached = strconv.Itoa(r.CachedSteps) + "/" + strconv.Itoa(r.TotalSteps)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", r.Service, r.Status, report.Short(r.Hash), image, d, cached, durationCell(r))
		if compact {
			if r.Digest != "" {
				d = report.Short(r.Digest.String())
			}
			image = shortRef(image)
			line = fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s", r.Service, r.Status, image, d, cached, durationCell(r))
		}
		if nodes {
			line += "\t" + orDash(r.Node)
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

// durationCell is a service's time and where it went (see
// report.DurationCell): the whole to the millisecond, each share to 10 ms.
func durationCell(r *outcome.Result) string {
	ms := func(n int64) time.Duration { return time.Duration(n) * time.Millisecond }
	total := func(n int64) string { return ms(n).String() }
	part := func(n int64) string { return ms(n).Round(10 * time.Millisecond).String() }
	return report.DurationCell(r.Duration.Milliseconds(), r.ExportMs, r.PushMs, r.CacheExportMs, total, part)
}

// shortRef cuts an image ref's tag, the hash, to 12 characters, as short
// cuts a hash, marking the cut.
func shortRef(ref string) string {
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash && len(ref)-colon-1 > 12 {
		return ref[:colon+1] + report.Short(ref[colon+1:]) + "…"
	}
	return ref
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	if t, ok := w.(terminalSafe); ok {
		w = t.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
