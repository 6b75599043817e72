package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"
	yaml "go.yaml.in/yaml/v4"
	"golang.org/x/sync/errgroup"
)

// The commands a pipeline's test job uses after the build job: which
// image each service is, as variables or as a compose override, and
// whether they all exist.

func newEnvCmd(pf *projectFlags) *cobra.Command {
	var format, fromManifest string
	cmd := &cobra.Command{
		Use:   "env [SERVICE...]",
		Short: "Print each service's exact image ref as variables for a CI system",
		Long: `Prints BKCACHE_<SERVICE>_IMAGE (and _HASH) for every service that builds.
<SERVICE> is the name upper-cased, with characters other than letters, digits
and _ replaced by _. Formats:
  dotenv    KEY=VALUE lines
  github    KEY=VALUE lines, to append to $GITHUB_ENV
  gitlab    KEY=VALUE lines, for an artifacts:reports:dotenv file
  circleci  export KEY='VALUE' lines, to append to $BASH_ENV`,
		Example: `  bkcache env --format github >> "$GITHUB_ENV"
  bkcache env --format gitlab > build.env
  bkcache env --format circleci >> "$BASH_ENV"

  # a test job: exactly what the build job built, even if a base moved since
  bkcache env --from-manifest build-manifest.json --format github >> "$GITHUB_ENV"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := imageRows(cmd.Context(), pf, args, fromManifest)
			if err != nil {
				return err
			}
			return writeEnv(cmd.OutOrStdout(), format, rows)
		},
	}
	bindFormat(cmd, &format, "dotenv", "github", "gitlab", "circleci")
	bindFromManifest(cmd, &fromManifest)
	return cmd
}

// writeEnv writes the variables. dotenv, GitHub's and GitLab's files have
// no quoting that every reader honours, so a value that is not one plain
// word (an image ref and a hash always are) is refused, never written:
// a newline would add a variable of its own to a file CI sources.
func writeEnv(w io.Writer, format string, rows []hashRow) error {
	for _, r := range rows {
		k := EnvKey(r.Service)
		for _, kv := range [][2]string{{"BKCACHE_" + k + "_IMAGE", r.Image}, {"BKCACHE_" + k + "_HASH", r.Hash}} {
			if i := strings.IndexFunc(kv[1], notPlain); i >= 0 {
				return fmt.Errorf("service %q: %s would hold %q, whose character %q has no safe spelling in a %s file: refused", r.Service, kv[0], kv[1], kv[1][i:i+1], format)
			}
			var err error
			if format == "circleci" {
				_, err = fmt.Fprintf(w, "export %s='%s'\n", kv[0], strings.ReplaceAll(kv[1], "'", `'\''`))
			} else {
				_, err = fmt.Fprintf(w, "%s=%s\n", kv[0], kv[1])
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// notPlain reports a character that ends a word or a line in a variables
// file: white space, a control character, or a quote.
func notPlain(r rune) bool {
	return unicode.IsSpace(r) || unicode.IsControl(r) || r == '"' || r == '\'' || r == '`' || r == '$' || r == '\\' || r > unicode.MaxASCII
}

func newComposeOverrideCmd(pf *projectFlags) *cobra.Command {
	var out, fromManifest string
	cmd := &cobra.Command{
		Use:   "compose-override [SERVICE...]",
		Short: "Write a compose override file pinning each service's image to REPOSITORY:HASH",
		Long: `Writes a compose file that sets image: REPOSITORY:HASH for every service that
builds, so that a test job runs exactly the images the build job pushed:
  docker compose -f compose.yaml -f FILE pull
  docker compose -f compose.yaml -f FILE up --no-build`,
		Example: `  bkcache compose-override -o compose.ci.yaml
  docker compose -f compose.yaml -f compose.ci.yaml up --no-build -d`,
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := imageRows(cmd.Context(), pf, args, fromManifest)
			if err != nil {
				return err
			}
			services := map[string]map[string]string{}
			for _, r := range rows {
				services[r.Service] = map[string]string{"image": r.Image}
			}
			b, err := yaml.Marshal(map[string]any{"services": services})
			if err != nil {
				return err
			}
			doc := append([]byte("# Written by bkcache compose-override: each service pinned to the image of its input hash.\n"), b...)
			if out == "" || out == "-" {
				_, err = cmd.OutOrStdout().Write(doc)
				return err
			}
			if err := os.WriteFile(out, doc, 0o644); err != nil {
				return fmt.Errorf("writing compose override: %w", err)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default: stdout)")
	bindFromManifest(cmd, &fromManifest)
	return cmd
}

func newCheckCmd(pf *projectFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "check [SERVICE...]",
		Short: "Exit non-zero, listing them, when any service's REPOSITORY:HASH is missing",
		Example: `  bkcache check               # in a test job, before docker compose pull
  bkcache check api worker`,
		RunE: func(cmd *cobra.Command, args []string) error {
			r := pf.reg.registry(0)
			p, err := loadPlan(cmd.Context(), pf, plan.Options{Services: args, Registry: r, Prefetch: true})
			if err != nil {
				return err
			}
			jobs := askedJobs(p)
			var local []string
			for _, j := range jobs {
				if j.Local {
					local = append(local, j.Name())
				}
			}
			if len(local) > 0 {
				return noRepositoryAdvice(&plan.NoRepositoryError{Services: local})
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVICE\tIMAGE\tSTATUS")
			var missing []string
			found, errs := headAll(cmd.Context(), r, jobs)
			for i, j := range jobs {
				if err := errs[i]; err != nil {
					tw.Flush()
					return fmt.Errorf("service %q: %w", j.Name(), err)
				}
				status := "present"
				if !found[i] {
					status = "missing"
					missing = append(missing, j.Name())
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", j.Name(), j.Refs.Image, status)
			}
			tw.Flush()
			for _, j := range jobs {
				if slices.Contains(missing, j.Name()) {
					explainMissing(cmd.Context(), cmd.ErrOrStderr(), r, j)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%d image(s) missing for services %s: run bkcache build --push for them", len(missing), strings.Join(missing, ", "))
			}
			return nil
		},
	}
	return cmd
}

// headAll asks the registry for every job's R:H, 16 at once (the
// registry's connections and ping are shared), taking the answers
// prefetched while hashing; it returns, per job, whether it is there and
// what failed.
func headAll(ctx context.Context, r *registry.Registry, jobs []*plan.Job) ([]bool, []error) {
	found, errs := make([]bool, len(jobs)), make([]error, len(jobs))
	var g errgroup.Group
	g.SetLimit(16)
	for i, j := range jobs {
		g.Go(func() error {
			_, found[i], errs[i] = r.HeadPrefetched(ctx, j.Refs.Image)
			return nil
		})
	}
	g.Wait()
	return found, errs
}

// bindFromManifest defines --from-manifest.
func bindFromManifest(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(p, "from-manifest", "", "print the images the cache manifest FILE (a build job's --manifest) records, without hashing or looking anything up again; each is checked against the project (give the build's --repository)")
}

// imageRows are the images of the services asked for: as the project
// hashes now, or as a build job's manifest recorded them.
func imageRows(ctx context.Context, pf *projectFlags, names []string, fromManifest string) ([]hashRow, error) {
	if fromManifest == "" {
		p, err := loadPlan(ctx, pf, plan.Options{Services: names})
		if err != nil {
			return nil, err
		}
		return hashRows(p), nil
	}
	m, err := record.ReadFile(fromManifest)
	if err != nil {
		return nil, err
	}
	repos, err := projectRepositories(ctx, pf)
	if err != nil {
		return nil, err
	}
	var rows []hashRow
	for _, s := range m.Services {
		if len(names) > 0 && !slices.Contains(names, s.Service) {
			continue
		}
		row, err := recordedRow(s, repos, pf.reg.hosts())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fromManifest, err)
		}
		rows = append(rows, row)
	}
	for _, n := range names {
		if !slices.ContainsFunc(rows, func(r hashRow) bool { return r.Service == n }) {
			return nil, fmt.Errorf("%s has no service %q", fromManifest, n)
		}
	}
	return rows, nil
}

// projectRepositories loads the project, without hashing it, for the
// repository of each service that builds.
func projectRepositories(ctx context.Context, pf *projectFlags) (map[string]name.Repository, error) {
	flags, err := pf.parse()
	if err != nil {
		return nil, err
	}
	var repos map[string]name.Repository
	_, err = compose.LoadAnd(ctx, flags.compose, func(project *compose.Project) (err error) {
		repos, err = plan.Repositories(project, plan.Options{Repository: pf.repository, Hosts: pf.reg.hosts()})
		return err
	})
	return repos, err
}

// recordedRow is a record's service checked against the project (its
// hash's form record.Parse has checked): a
// record is a file a job downloads, and what it names ends up in
// variables a CI system sources, so a service the project does not
// build, or an image outside its repository or not at its hash, is
// refused rather than passed on.
func recordedRow(s *record.Service, repos map[string]name.Repository, hosts registry.Hosts) (hashRow, error) {
	repo, ok := repos[s.Service]
	if !ok {
		return hashRow{}, fmt.Errorf("records service %q, which this project does not build: is it this project's record?", s.Service)
	}
	if s.Image == "" {
		return hashRow{}, fmt.Errorf("records no image for service %q (status %s): write it with bkcache build --manifest", s.Service, s.Status)
	}
	ref, err := hosts.Reference(s.Image)
	if err != nil {
		return hashRow{}, fmt.Errorf("service %q: the recorded image %q is not an image reference: the record is damaged or was altered", s.Service, s.Image)
	}
	if ref.Context().Name() != repo.Name() || ref.Identifier() != s.Hash {
		return hashRow{}, fmt.Errorf("service %q: the recorded image %q is not %s:%s, the service's repository (its image:, or the --repository given to this command) at its recorded hash: refused; if the build ran with --repository, pass the same one here, else the record is another project's or was altered", s.Service, s.Image, repo, s.Hash)
	}
	return hashRow{Service: s.Service, Hash: s.Hash, Image: s.Image}, nil
}

// explainMissing says, for a service whose R:H is missing, which images
// moved since the build under its floating tag, when that says why.
func explainMissing(ctx context.Context, w io.Writer, r *registry.Registry, j *plan.Job) {
	m, err := publish.ReadRecord(ctx, r, j.Refs.Floating)
	if err != nil {
		return
	}
	old := m.Find(j.Name())
	if old == nil || old.Inputs == nil {
		return
	}
	for _, c := range record.Compare(old.Inputs, j.Inputs, inputs.Redaction{}).Images {
		if c.Old != "" && c.New != "" {
			fmt.Fprintf(w, "bkcache: service %q: base image %s moved from %s to %s since %s was built\n", j.Name(), c.Key, c.Old, c.New, j.Refs.Floating)
		}
	}
}
