package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/bkcache/bkcache/solver/report"
	"github.com/spf13/cobra"
)

type explainOptions struct {
	against string
	ciTag   plan.Floating
	format  string
	steps   bool
	reg     *registryFlags
}

func newExplainCmd(pf *projectFlags) *cobra.Command {
	o := &explainOptions{reg: &pf.reg}
	cmd := &cobra.Command{
		Use:   "explain SERVICE",
		Short: "Say why a service would rebuild: what changed since the image under the ci tag",
		Long: `Compares the service's current inputs with the cache manifest attached to
REPOSITORY:ci (or to --against IMAGE, or in --against FILE) and prints what
changed: files added, removed or modified, Dockerfile lines, args, target,
platforms, labels, secret and ssh ids, contexts, and service: dependencies
whose hash moved. When nothing changed, it says so: the image would be skipped.
With --steps it shows instead how that build ran the Dockerfile's steps.`,
		Example: `  bkcache explain api
  bkcache explain api --steps
  bkcache explain api --against registry.example.com/shop/api:ci-main
  bkcache explain api --against last-build.json --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			p, err := loadPlan(ctx, pf, plan.Options{Services: args, Floating: o.ciTag})
			if err != nil {
				return err
			}
			j := p.Job(args[0])
			cur := j.Inputs
			against := o.against
			if against == "" {
				if j.Local {
					return fmt.Errorf("%w; or compare with a manifest file: --against FILE", noRepositoryAdvice(&plan.NoRepositoryError{Services: []string{j.Name()}}))
				}
				against = j.Refs.Floating.String()
			}
			old, where, err := loadManifest(ctx, against, o.reg)
			if err != nil {
				return err
			}
			rec := old.Find(cur.Service)
			if rec == nil || rec.Inputs == nil {
				return fmt.Errorf("the manifest of %s has no inputs for service %q", where, cur.Service)
			}
			if o.steps {
				return writeRecordSteps(cmd.OutOrStdout(), o.format, rec, where)
			}
			red := pf.redact()
			r := record.Compare(rec.Inputs, cur, red)
			if missing := notRedacted(rec.Inputs, red); !r.Same && len(missing) > 0 {
				fmt.Fprintf(cmd.ErrOrStderr(), "bkcache: note: %s records %s redacted, which this run does not redact: with a key, the hash covers the arg's MAC, so pass --redact-arg %s (or set BKCACHE_REDACT_ARGS) and $%s as the build had them, or the hashes differ on that alone\n",
					where, strings.Join(missing, ", "), strings.Join(missing, " --redact-arg "), inputs.RedactKeyEnv)
			}
			if o.format == "json" {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			writeReport(cmd.OutOrStdout(), r, where)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.against, "against", "", "image ref or manifest file to compare with (default REPOSITORY:ci)")
	cmd.Flags().BoolVar(&o.steps, "steps", false, "show the Dockerfile steps of the build that made the image, from its manifest: cached or ran, how long, and why")
	bindFloating(cmd, &o.ciTag, "floating tag to compare with when --against is not given")
	bindFormat(cmd, &o.format, "text", "json")
	return cmd
}

// notRedacted lists the args the record stores redacted that red does not
// name: a build that hashed them under a key hashed their MACs.
func notRedacted(rec *inputs.Inputs, red inputs.Redaction) []string {
	var out []string
	for _, a := range record.RedactedArgs(rec) {
		if !slices.Contains(red.Args, a) {
			out = append(out, a)
		}
	}
	return out
}

// loadManifest reads a manifest from a file, or else from the image ref.
func loadManifest(ctx context.Context, against string, reg *registryFlags) (*record.Run, string, error) {
	if _, err := os.Stat(against); err == nil {
		m, err := record.ReadFile(against)
		return m, against, err
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, "", err
	}
	ref, err := reg.hosts().Reference(against)
	if err != nil {
		return nil, "", fmt.Errorf("--against %q is neither a file nor a valid image reference: %w", against, err)
	}
	m, err := publish.ReadRecord(ctx, reg.registry(0), ref)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return nil, "", fmt.Errorf("%s does not exist (no file, and no such image): build and push once, or pass --against", against)
	case errors.Is(err, publish.ErrNoRecord):
		return nil, "", fmt.Errorf("%w: it was not pushed by bkcache build --push, or with --no-attach-manifest", err)
	}
	return m, against, err
}

func newManifestCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "manifest", Short: "Work with cache manifest files",
		Example: "  bkcache build --push --manifest today.json\n  bkcache manifest diff yesterday.json today.json"}
	var format string
	diff := &cobra.Command{
		Use:     "diff A B",
		Short:   "Say what changed, per service, between two cache manifests",
		Example: "  bkcache manifest diff yesterday.json today.json",
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := record.ReadFile(args[0])
			if err != nil {
				return err
			}
			b, err := record.ReadFile(args[1])
			if err != nil {
				return err
			}
			// The key, to compare a record's redacted arg with
			// another's plain value; which args is what each records.
			red := inputs.NewRedaction(nil, os.Getenv(inputs.RedactKeyEnv))
			var reports []*record.Report
			var only []string
			names := map[string]bool{}
			for _, s := range append(slices.Clone(a.Services), b.Services...) {
				names[s.Service] = true
			}
			for _, n := range slices.Sorted(maps.Keys(names)) {
				sa, sb := a.Find(n), b.Find(n)
				switch {
				case sa == nil:
					only = append(only, n+" is only in "+args[1])
				case sb == nil:
					only = append(only, n+" is only in "+args[0])
				default:
					reports = append(reports, record.Compare(sa.Inputs, sb.Inputs, red))
				}
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"services": reports, "unmatched": only})
			}
			for _, r := range reports {
				writeReport(cmd.OutOrStdout(), r, args[0])
				fmt.Fprintln(cmd.OutOrStdout())
			}
			for _, o := range only {
				fmt.Fprintln(cmd.OutOrStdout(), o)
			}
			return nil
		},
	}
	bindFormat(diff, &format, "text", "json")
	cmd.AddCommand(diff)
	return cmd
}

// writeReport renders a comparison for people.
func writeReport(w io.Writer, r *record.Report, where string) {
	if r.Same {
		fmt.Fprintf(w, "%s: nothing changed since %s (hash %s).\n", r.Service, where, report.Short(r.NewHash))
		fmt.Fprintf(w, "The image for this hash exists, so `bkcache build` skips %s.\n", r.Service)
		return
	}
	fmt.Fprintf(w, "%s: hash %s -> %s: rebuilds because, since %s:\n", r.Service, report.Short(r.OldHash), report.Short(r.NewHash), where)
	for _, l := range r.Reasons() {
		fmt.Fprintf(w, "  %s\n", l)
	}
	if r.Empty() {
		fmt.Fprintln(w, "  no recorded input differs: an input that older manifests do not record changed")
	}
}
