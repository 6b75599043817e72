package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/hash/statcache"
	"github.com/bkcache/bkcache/solver"
	"github.com/spf13/cobra"
)

type hashOptions struct {
	format   string
	manifest string
	redact   []string
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
			if err := checkFormat(o.format, "text", "json", "env"); err != nil {
				return err
			}
			p, all, err := loadProjectInputs(cmd.Context(), pf, args)
			if err != nil {
				return err
			}
			if err := writeInputsManifest(o.manifest, p, all, o.redact); err != nil {
				return err
			}
			rows, err := hashRows(p, all, args, pf.repository)
			if err != nil {
				return err
			}
			return writeHashes(cmd.OutOrStdout(), o.format, rows, isTerminal(cmd.OutOrStdout()))
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json or env")
	cmd.Flags().StringVar(&o.manifest, "manifest", "", "write the inputs part of a cache manifest to FILE")
	cmd.Flags().StringArrayVar(&o.redact, "redact-arg", nil, "store this build arg's value redacted in the manifest (repeatable)")
	return cmd
}

func loadProjectInputs(ctx context.Context, pf *projectFlags, names []string) (*compose.Project, []*inputs.Inputs, error) {
	var store *statcache.Store
	if !pf.noStatCache {
		if dir, err := statcache.DefaultDir(); err == nil {
			store = statcache.NewStore(dir)
		}
	}
	// Hash while compose's schema checks the files.
	var all []*inputs.Inputs
	p, err := compose.LoadAnd(ctx, pf.options(), func(p *compose.Project) (err error) {
		all, err = inputs.ComputeProject(ctx, p, names, inputs.Options{StatCache: store})
		return err
	})
	if errors.Is(err, compose.ErrBuildArg) {
		return nil, nil, usageError{err}
	}
	if err != nil {
		return nil, nil, err
	}
	if len(all) == 0 {
		fmt.Fprintf(pf.stderr, "bkcache: no service of project %q builds: none has a build: section (%s)\n", p.Name, strings.Join(p.Files, ", "))
	}
	for _, n := range store.Notes() {
		fmt.Fprintf(pf.stderr, "bkcache: %s\n", n)
	}
	if err := store.Save(); err != nil {
		// It only saves work next time: say so, carry on.
		fmt.Fprintf(pf.stderr, "bkcache: warning: %v (hashing works without it; --no-stat-cache skips it)\n", err)
	}
	return p, all, nil
}

// writeInputsManifest writes the inputs part of a cache manifest, with
// nothing built, to file; an empty file name writes nothing.
func writeInputsManifest(file string, p *compose.Project, all []*inputs.Inputs, redact []string) error {
	if file == "" {
		return nil
	}
	rec := &recorder{project: p.Name, redact: redact, start: time.Now()}
	return rec.run(all, nil).WriteFile(file)
}

type hashRow struct {
	Service string `json:"service"`
	Hash    string `json:"hash"`
	Image   string `json:"image"`
	// local: no image: and no --repository, so Image is compose's local
	// name and no registry has it.
	local bool
}

// hashRows keeps the services asked for (dependencies were hashed only
// because their hash is an input), in build order.
// checkRefs fails, naming the service, when a service's image
// repository or a tag bkcache would write in it (the hash, and the
// floating tags with their cache- twins) is not a valid reference, or
// when its build section holds something BuildKit would refuse: before
// anything is built or pushed.
func checkRefs(p *compose.Project, all []*inputs.Inputs, repository string, floating ...string) error {
	for _, in := range all {
		svc := p.Services[in.Service]
		tags := []string{in.Tag(), "cache-" + in.Tag()}
		for _, f := range floating {
			tags = append(tags, f, "cache-"+f)
		}
		if err := solver.CheckRefs(svc.Repository(p.Name, repository), tags...); err != nil {
			return fmt.Errorf("service %q: %w", in.Service, err)
		}
		if err := solver.CheckService(svc); err != nil {
			return err
		}
	}
	return nil
}

// loadImages loads the project and returns the image of each service
// asked for: what env, compose-override and check print or look up.
func loadImages(ctx context.Context, pf *projectFlags, names []string) ([]hashRow, error) {
	p, all, err := loadProjectInputs(ctx, pf, names)
	if err != nil {
		return nil, err
	}
	return hashRows(p, all, names, pf.repository)
}

func hashRows(p *compose.Project, all []*inputs.Inputs, names []string, repository string) ([]hashRow, error) {
	if err := checkRefs(p, all, repository); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	var rows []hashRow
	for _, in := range all {
		if len(names) > 0 && !want[in.Service] {
			continue
		}
		svc := p.Services[in.Service]
		repo := svc.Repository(p.Name, repository)
		rows = append(rows, hashRow{Service: in.Service, Hash: in.Tag(), Image: repo + ":" + in.Tag(), local: !svc.HasRepository(repository)})
	}
	return rows, nil
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
