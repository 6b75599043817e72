package main

import (
	"cmp"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/spf13/cobra"
)

type inputsOptions struct {
	format string
}

func newInputsCmd(pf *projectFlags) *cobra.Command {
	o := &inputsOptions{}
	cmd := &cobra.Command{
		Use:   "inputs SERVICE",
		Short: "List every input that made a service's hash",
		Long: `List every input that made a service's hash: the Dockerfile, build args,
target, platforms, labels, secret and ssh ids, and each file with its mode,
digest and the Dockerfile instruction that pulled it in.`,
		Example: `  bkcache inputs api
  bkcache inputs api --format json | jq '.sources[].files[].path'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := loadPlan(cmd.Context(), pf, plan.Options{Services: args})
			if err != nil {
				return err
			}
			j := p.Job(args[0])
			if o.format == "json" {
				return writeJSON(cmd.OutOrStdout(), j.Inputs)
			}
			return writeInputs(cmd.OutOrStdout(), j.Inputs, j.Refs.Floating.String())
		},
	}
	bindFormat(cmd, &o.format, "text", "json")
	return cmd
}

func writeInputs(w io.Writer, in *inputs.Inputs, floating string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	kv := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	kv("service", in.Service)
	kv("hash", in.Hash.String()+"  ("+in.Scheme+")")
	kv("floating tag", floating)
	df := in.Dockerfile.Path
	if in.Dockerfile.Inline {
		df = "(dockerfile_inline)"
	}
	kv("dockerfile", df+"  "+in.Dockerfile.Digest.String())
	kv("stages", strings.Join(in.Dockerfile.Stages, ", "))
	kv("target", record.OrNone(in.Target))
	kv("platforms", record.OrNone(strings.Join(in.Platforms, ", ")))
	kv("provenance", record.OrNone(in.Attestations.Provenance))
	kv("sbom", record.OrNone(in.Attestations.SBOM))
	kv("args", record.OrNone(joinMap(in.Args)))
	kv("labels", record.OrNone(joinMap(in.Labels)))
	kv("run", record.OrNone(joinMap(in.Run)))
	kv("secrets", record.OrNone(strings.Join(in.Secrets, ", ")))
	kv("ssh", record.OrNone(strings.Join(in.SSH, ", ")))
	for _, s := range in.Services {
		kv("context "+s.Name, "service:"+s.Service+"  "+s.Hash.String())
	}
	for _, r := range in.Refs {
		kv("context "+r.Name, r.Value)
	}
	kv("base images", string(in.BaseImages))
	for _, im := range in.Images {
		kv("image "+im.Ref, orDash(im.Digest.String())+"  ("+strings.Join(im.By, "; ")+")")
	}
	for _, r := range in.Remotes {
		kv(r.Kind+" "+r.URL, orDash(cmp.Or(r.Resolved, r.Checksum))+"  ("+strings.Join(r.By, "; ")+")")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range in.Sources {
		fmt.Fprintf(w, "\nsource %s: %s  %s\n", s.Name, s.Dir, s.Digest)
		if s.IgnoreFile != "" {
			fmt.Fprintf(w, "  ignore file: %s\n", s.IgnoreFile)
		}
		if s.Whole {
			fmt.Fprintf(w, "  whole source: %s\n", s.Reason)
		}
		fmt.Fprintf(w, "  %d entries, %d bytes\n", len(s.Files), s.Bytes)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  MODE\tTYPE\tPATH\tDIGEST\tBY")
		for _, f := range s.Files {
			var d string
			switch {
			case f.Link != "":
				d = "-> " + f.Link
			case f.Digest != "":
				d = f.Digest.Encoded()[:16]
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", f.Mode, f.Type, f.Path, orDash(d), f.By)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func joinMap(m map[string]string) string {
	var out []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return strings.Join(out, " ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
