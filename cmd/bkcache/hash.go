package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/hash/statcache"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/publish"
	"github.com/spf13/cobra"
)

type hashOptions struct {
	format   string
	manifest manifestFlags
}

func newHashCmd(pf *projectFlags) *cobra.Command {
	o := &hashOptions{}
	cmd := &cobra.Command{
		Use:   "hash [SERVICE...]",
		Short: "Print each service's input hash and the image ref it is stored under",
		Example: `  bkcache hash
  bkcache hash api worker --format json
  bkcache hash --format env >> "$GITHUB_ENV"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPlan(cmd.Context(), pf, plan.Options{Services: args})
			if err != nil {
				return err
			}
			if err := writeInputsManifest(o.manifest, p, pf.redact()); err != nil {
				return err
			}
			return writeHashes(cmd.OutOrStdout(), o.format, hashRows(p), isTerminal(cmd.OutOrStdout()))
		},
	}
	bindFormat(cmd, &o.format, "text", "json", "env")
	o.manifest.bind(cmd, "write the inputs part of a cache manifest to FILE")
	return cmd
}

// loadPlan loads the project and resolves the run opt describes, with
// the project-wide flags filled in: every command starts here.
func loadPlan(ctx context.Context, pf *projectFlags, opt plan.Options) (*plan.Plan, error) {
	if !pf.noStatCache {
		if dir, err := statcache.DefaultDir(); err == nil {
			opt.StatCache = statcache.NewStore(dir)
		}
	}
	opt.Repository = pf.repository
	opt.Hosts = pf.reg.hosts()
	opt.Redact = pf.redact()
	opt.BaseImages = inputs.BaseImages(pf.baseImages)
	flags, err := pf.parse()
	if err != nil {
		return nil, err
	}
	opt.Mirrors = flags.mirrors
	if opt.Registry == nil {
		opt.Registry = pf.reg.registry(0)
	}
	copt := flags.compose
	// Load, then resolve: resolving asks registries, which a project
	// the schema refuses must never get to.
	project, err := compose.Load(ctx, copt)
	if err != nil {
		return nil, err
	}
	p, err := plan.New(ctx, project, opt)
	if err != nil {
		return nil, err
	}
	if len(p.Jobs) == 0 {
		fmt.Fprintf(pf.stderr, "bkcache: no service of project %q builds: none has a build: section (%s)\n", project.Name, strings.Join(project.Files, ", "))
	}
	for _, n := range opt.StatCache.Notes() {
		fmt.Fprintf(pf.stderr, "bkcache: %s\n", n)
	}
	if err := opt.StatCache.Save(); err != nil {
		// It only saves work next time: say so, carry on.
		fmt.Fprintf(pf.stderr, "bkcache: warning: %v (hashing works without it; --no-stat-cache skips it)\n", err)
	}
	return p, nil
}

// writeInputsManifest writes the inputs part of a cache manifest, with
// nothing built, to f.file; an empty file name writes nothing.
func writeInputsManifest(f manifestFlags, p *plan.Plan, red inputs.Redaction) error {
	if f.file == "" {
		return nil
	}
	rec := &publish.Recorder{Project: p.Project, Tool: version, Redact: red, Start: time.Now()}
	return rec.Run(p, nil).WriteFile(f.file)
}

type hashRow struct {
	Service string `json:"service"`
	Hash    string `json:"hash"`
	Image   string `json:"image"`
	// Floating is R:F, the tag moved to the service's last build: its
	// own when services with different builds share its repository.
	Floating string `json:"floating,omitempty"`
}

// hashRows are the services asked for (dependencies were hashed only
// because their hash is an input), in build order.
func hashRows(p *plan.Plan) []hashRow {
	var rows []hashRow
	for _, j := range askedJobs(p) {
		rows = append(rows, hashRow{Service: j.Name(), Hash: j.Inputs.Tag(), Image: j.Refs.Image.String(), Floating: j.Refs.Floating.String()})
	}
	return rows
}

// askedJobs are the jobs of the services asked for, in build order.
func askedJobs(p *plan.Plan) []*plan.Job {
	var out []*plan.Job
	for _, j := range p.Jobs {
		if j.Asked {
			out = append(out, j)
		}
	}
	return out
}

// writeHashes prints the hashes. On a terminal (compact) the image ref's
// tag, the hash again, is cut to 12 characters, as in the build summary.
func writeHashes(w io.Writer, format string, rows []hashRow, compact bool) error {
	switch format {
	case "json":
		return writeJSON(w, map[string]any{"scheme": inputs.Scheme, "services": rows})
	case "env":
		return writeEnv(w, "dotenv", rows)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tHASH\tIMAGE")
	for _, r := range rows {
		image := r.Image
		if compact {
			image = shortRef(image)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Service, r.Hash, image)
	}
	return tw.Flush()
}

var nonEnv = regexp.MustCompile(`[^A-Z0-9_]`)

// EnvKey turns a service name into the middle of an environment variable
// name: upper case, anything but letters, digits and _ as _.
func EnvKey(service string) string {
	return nonEnv.ReplaceAllString(strings.ToUpper(service), "_")
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
