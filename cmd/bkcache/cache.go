package main

import (
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/bkcache/bkcache/solver/registry"
	"github.com/spf13/cobra"
)

func newCacheCmd(pf *projectFlags) *cobra.Command {
	cmd := &cobra.Command{Use: "cache", Short: "Audit BuildKit registry caches",
		Example: "  bkcache cache inspect registry.example.com/shop/api:cache-ci"}
	var format string
	inspect := &cobra.Command{
		Use:   "inspect REF",
		Short: "List a registry cache's layers, records, size and age",
		Example: `  bkcache cache inspect registry.example.com/shop/api:cache-ci
  bkcache cache inspect registry.example.com/shop/api:cache-ci --format json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := pf.reg.hosts().Reference(args[0])
			if err != nil {
				return fmt.Errorf("invalid image reference %q: %w", args[0], err)
			}
			info, err := pf.reg.registry(0).InspectCache(cmd.Context(), ref)
			if errors.Is(err, registry.ErrNotFound) {
				return fmt.Errorf("%w: cache refs are REPOSITORY:cache-HASH and REPOSITORY:cache-ci, written by bkcache build --push", err)
			}
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			w := cmd.OutOrStdout()
			created := "unknown"
			if info.Created != nil {
				created = info.Created.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(w, "ref       %s\ndigest    %s\nform      %s (%s)\nrecords   %d\nlayers    %d\nsize      %d bytes\ncreated   %s\n\n",
				info.Ref, info.Digest, info.Form, info.MediaType, info.Records, len(info.Layers), info.Size, created)
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DIGEST\tMEDIA TYPE\tSIZE")
			for _, l := range info.Layers {
				fmt.Fprintf(tw, "%s\t%s\t%d\n", l.Digest, l.MediaType, l.Size)
			}
			return tw.Flush()
		},
	}
	bindFormat(inspect, &format, "text", "json")
	cmd.AddCommand(inspect)
	return cmd
}
