package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/solver/plan"
	"github.com/spf13/cobra"
)

// The flags several commands share, each defined here once.

// choice is a flag value that must be one of its allowed values: a
// wrong one is a usage error when the flags are parsed.
type choice struct {
	p       *string
	allowed []string
}

func (c choice) String() string { return *c.p }
func (c choice) Type() string   { return "string" }

func (c choice) Set(s string) error {
	if !slices.Contains(c.allowed, s) {
		return fmt.Errorf("use one of %s", strings.Join(c.allowed, ", "))
	}
	*c.p = s
	return nil
}

// bindChoice defines the flag name on cmd, one of allowed, the first
// being the default; usage describes it.
func bindChoice(cmd *cobra.Command, p *string, name, usage string, allowed ...string) {
	*p = allowed[0]
	cmd.Flags().Var(choice{p, allowed}, name, fmt.Sprintf("%s: %s", usage, orList(allowed)))
}

// bindFormat defines --format, the output format.
func bindFormat(cmd *cobra.Command, p *string, allowed ...string) {
	bindChoice(cmd, p, "format", "output format on stdout", allowed...)
}

func orList(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// manifestFlags write a run's cache manifest.
type manifestFlags struct {
	file   string
	redact []string
}

func (f *manifestFlags) bind(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&f.file, "manifest", "", usage)
	cmd.Flags().StringArrayVar(&f.redact, "redact-arg", nil, "store this build arg's value redacted in manifests (repeatable)")
}

// bindFloating defines --ci-tag, the floating tag; usage says what for.
func bindFloating(cmd *cobra.Command, p *string, usage string) {
	cmd.Flags().StringVar(p, "ci-tag", plan.DefaultFloating, usage)
}
