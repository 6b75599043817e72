package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/prune"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/bkcache/bkcache/solver/report"
	"github.com/spf13/cobra"
)

type pruneOptions struct {
	keep       int
	keepWithin time.Duration
	keepRefs   []string
	ciTags     []string
	yes        bool
	format     string
}

func newPruneCmd(pf *projectFlags) *cobra.Command {
	o := &pruneOptions{}
	cmd := &cobra.Command{
		Use:   "prune [SERVICE...]",
		Short: "Delete the old hash images and caches bkcache pushed (a dry run unless --yes)",
		Long: `Prune lists the tags of each service's repository and deletes the ones
bkcache made that no rule keeps: hash images (REPOSITORY:HASH), their caches
(REPOSITORY:cache-HASH) and what refers to them (the attached cache manifest,
the referrers fallback tag). It never touches another tag, nor anything a kept
tag points at. Kept are: every floating tag (ci, ci-*, the --ci-tag values)
and what it points at, with its cache; the newest --keep hash images; those
younger than --keep-within; and what --keep-ref names.

Without --yes it only prints what it would do. Blobs are freed by the
registry's own garbage collection (distribution: registry garbage-collect).

--format ecr-lifecycle prints, per repository, an ECR lifecycle policy that
lets ECR expire the caches itself by the same rules, for where bkcache may not
delete: with one of --keep and --keep-within (ECR keeps by count or by age, not
both). It leaves hash images to prune --yes: no ECR tag pattern tells a hash
tag from a team's own tags.`,
		Example: `  bkcache prune                          # what a prune would delete, and why
  bkcache prune --yes                    # nightly, in CI
  bkcache prune --keep 3 --keep-within 72h --keep-ref release-1 --yes api
  bkcache prune --format ecr-lifecycle --keep-within 0s   # ECR expires caches beyond the newest 10`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			p, err := loadPlan(cmd.Context(), pf, plan.Options{Services: args})
			if err != nil {
				return err
			}
			targets, err := pruneTargets(askedJobs(p))
			if err != nil {
				return err
			}
			rules := prune.Rules{Keep: o.keep, KeepWithin: o.keepWithin, KeepRefs: o.keepRefs, Floating: o.ciTags, Now: time.Now()}
			if o.format == formatECR {
				return writeLifecycles(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), pf.reg.registry(0), targets, rules)
			}
			reports, err := pruneAll(cmd.Context(), pf.reg.registry(0), targets, rules, !o.yes)
			if werr := o.write(cmd.OutOrStdout(), reports); werr != nil && err == nil {
				err = werr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.keep, "keep", defaultKeep, "keep the newest N hash images per repository (by build time)")
	f.DurationVar(&o.keepWithin, "keep-within", defaultKeepWithin, "keep every hash image younger than this (0s: none for its age)")
	f.StringArrayVar(&o.keepRefs, "keep-ref", nil, "also keep this tag or digest (sha256:...) and what it holds (repeatable)")
	f.StringArrayVar(&o.ciTags, "ci-tag", nil, "also keep this floating tag and its cache- twin, besides ci and ci-* (repeatable)")
	f.BoolVar(&o.yes, "yes", false, "delete; without it prune only says what it would delete")
	bindFormat(cmd, &o.format, "text", "json", formatECR)
	return cmd
}

// formatECR prints ECR lifecycle policies instead of pruning.
const formatECR = "ecr-lifecycle"

func (o *pruneOptions) check() error {
	if o.keep < 0 {
		return usageError{fmt.Errorf("--keep must be 0 or more")}
	}
	if o.keepWithin < 0 {
		return usageError{fmt.Errorf("--keep-within must be 0s or more")}
	}
	if o.format != formatECR {
		return nil
	}
	if o.yes {
		return usageError{fmt.Errorf("--format %s prints policies for ECR to apply and deletes nothing: drop --yes, or --format", formatECR)}
	}
	if err := (prune.Rules{Keep: o.keep, KeepWithin: o.keepWithin}).CheckECR(); err != nil {
		return usageError{fmt.Errorf("--format %s: %w", formatECR, err)}
	}
	return nil
}

// pruneTargets groups the jobs' services by repository: services that
// share one are pruned together, by the floating tags of all of them.
func pruneTargets(jobs []*plan.Job) ([]prune.Target, error) {
	var local []string
	var out []prune.Target
	at := map[string]int{}
	for _, j := range jobs {
		if j.Local {
			local = append(local, j.Name())
			continue
		}
		key := j.Refs.Repository.String()
		i, ok := at[key]
		if !ok {
			i = len(out)
			at[key] = i
			out = append(out, prune.Target{Repository: j.Refs.Repository})
		}
		out[i].Services = append(out[i].Services, j.Name())
		out[i].Floating = append(out[i].Floating, j.Floating)
	}
	if len(local) > 0 {
		return nil, noRepositoryAdvice(&plan.NoRepositoryError{Services: local})
	}
	return out, nil
}

// pruneBuilt prunes, with the default rules, the repositories of the
// services a successful build --push built, and says what it did on
// stderr. A prune that fails is a warning: the images are pushed.
func pruneBuilt(ctx context.Context, stderr io.Writer, reg *registry.Registry, p *plan.Plan, results []*outcome.Result, ciTag string) {
	built := map[string]bool{}
	for _, r := range results {
		if r.Status == outcome.Built {
			built[r.Service] = true
		}
	}
	var jobs []*plan.Job
	for _, j := range p.Jobs {
		if built[j.Name()] && !j.Local {
			jobs = append(jobs, j)
		}
	}
	targets, err := pruneTargets(jobs)
	if err != nil || len(targets) == 0 {
		return
	}
	rules := prune.Rules{Keep: defaultKeep, KeepWithin: defaultKeepWithin, Floating: []string{ciTag}, Now: time.Now()}
	reports, err := pruneAll(ctx, reg, targets, rules, false)
	for _, r := range reports {
		fmt.Fprintf(stderr, "bkcache: --prune: %s: deleted %d manifests, freeing %s once the registry collects garbage\n", r.Repository, r.Deleted, sizeOf(r.Freed))
	}
	if err != nil {
		fmt.Fprintf(stderr, "bkcache: warning: --prune: %v (the images are pushed)\n", err)
	}
}

// Prune's default rules, for prune and build --prune alike.
const (
	defaultKeep       = 10
	defaultKeepWithin = 24 * time.Hour
)

// pruneAll prunes each target in turn. A registry that refuses to delete
// is reported once, with what to do instead, and not asked again.
func pruneAll(ctx context.Context, reg *registry.Registry, targets []prune.Target, rules prune.Rules, dryRun bool) ([]*prune.Report, error) {
	var reports []*prune.Report
	var errs []error
	refused := map[string]bool{}
	for _, t := range targets {
		host := t.Repository.RegistryStr()
		if refused[host] {
			continue
		}
		rep, err := prune.Run(ctx, reg, t, rules, dryRun)
		reports = append(reports, rep)
		switch {
		case errors.Is(err, registry.ErrNoDelete):
			refused[host] = true
			errs = append(errs, fmt.Errorf("%w: enable deletion (distribution: storage.delete.enabled: true), or let the registry expire them itself (ECR: the lifecycle policy bkcache prune --format ecr-lifecycle prints; GHCR, Docker Hub: their retention settings); nothing of %s was deleted after the refusal", err, t.Repository))
		case err != nil:
			errs = append(errs, fmt.Errorf("pruning %s (services %s): %w; what was deleted stays deleted and everything kept is whole: run prune again", t.Repository, strings.Join(t.Services, ", "), err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return reports, errors.Join(errs...)
}

// writeLifecycles prints the ECR lifecycle policy of each target's
// repository, as a JSON array, and says on stderr what the policies leave
// out. A repository that cannot be listed fails the command and prints
// nothing, so a script never applies a partial set.
func writeLifecycles(ctx context.Context, stdout, stderr io.Writer, reg *registry.Registry, targets []prune.Target, rules prune.Rules) error {
	out := []*prune.Lifecycle{}
	for _, t := range targets {
		l, err := prune.ECRLifecycle(ctx, reg, t, rules)
		if err != nil {
			return fmt.Errorf("writing the lifecycle policy of %s (services %s): %w", t.Repository, strings.Join(t.Services, ", "), err)
		}
		out = append(out, l)
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return err
	}
	fmt.Fprintln(stderr, "bkcache: these policies expire caches (cache-*) only: no ECR tag pattern tells a hash tag from your own tags, so delete old hash images with bkcache prune --yes where ecr:BatchDeleteImage is allowed. Make them again after you change --keep-ref or tag a cache by hand.")
	return nil
}

func (o *pruneOptions) write(w io.Writer, reports []*prune.Report) error {
	if o.format == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if reports == nil {
			reports = []*prune.Report{}
		}
		return enc.Encode(reports)
	}
	for _, r := range reports {
		writePruneText(w, r)
	}
	return nil
}

func writePruneText(w io.Writer, r *prune.Report) {
	fmt.Fprintf(w, "%s (%s)\n", r.Repository, strings.Join(r.Services, ", "))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ACTION\tKIND\tTAGS\tBYTES\tWHY")
	var del, kept, tags int
	for _, it := range r.Items {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", it.Action, it.Kind, shortTags(it), sizeOf(it.Bytes), it.Reason)
		if it.Action == prune.Delete {
			del, tags = del+1, tags+len(it.Tags)
		} else {
			kept++
		}
	}
	tw.Flush()
	verb := "deleted"
	if r.DryRun {
		verb = "would delete"
	}
	n := del
	if !r.DryRun {
		n = r.Deleted
	}
	fmt.Fprintf(w, "  %s %d manifests (%d tags), freeing %s once the registry collects garbage; keeping %d", verb, n, tags, sizeOf(r.Freed), kept)
	if r.DryRun && del > 0 {
		fmt.Fprint(w, "; run with --yes to delete")
	}
	fmt.Fprintln(w)
}

// shortTags shows a manifest's tags with hashes cut to 12 digits.
func shortTags(it prune.Item) string {
	if len(it.Tags) == 0 {
		return "(untagged " + report.Short(it.Digest.String()) + ")"
	}
	out := slices.Clone(it.Tags)
	for i, t := range out {
		if loc := hexTail.FindStringIndex(t); loc != nil {
			out[i] = t[:loc[0]+12]
		}
	}
	return strings.Join(out, ",")
}

var hexTail = regexp.MustCompile(`[0-9a-f]{64}$`)

func sizeOf(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
