package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/bkcache/bkcache/hash/inputs"
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
	file string
}

func (f *manifestFlags) bind(cmd *cobra.Command, usage string) {
	cmd.Flags().StringVar(&f.file, "manifest", "", usage)
}

// redactor redacts args under the key in $BKCACHE_REDACT_KEY. Without a
// key, records store only "redacted", explain cannot tell whether such
// an arg changed, and the hash in R:H covers the value itself (a low-
// entropy value can be guessed from it): it says so once, on w.
func redactor(args []string, w io.Writer) inputs.Redaction {
	key := os.Getenv(inputs.RedactKeyEnv)
	if len(args) > 0 && key == "" {
		fmt.Fprintf(w, "bkcache: warning: --redact-arg %s: $%s is not set, so the image's hash covers the value itself (a short value can be guessed from it) and explain cannot tell whether it changed; set it to a random secret kept as a CI secret (for example `openssl rand -hex 32`)\n", strings.Join(args, ", "), inputs.RedactKeyEnv)
	}
	return inputs.NewRedaction(args, key)
}

// floating is a --ci-tag value, checked as the flag is parsed: a wrong
// one is a usage error before any work. Unset, it is DefaultFloating.
type floating struct{ p *plan.Floating }

func (f floating) Type() string   { return "tag" }
func (f floating) String() string { return f.p.String() }

func (f floating) Set(s string) (err error) {
	*f.p, err = plan.ParseFloating(s)
	return err
}

// floatings is a repeatable flag of floating tags, each checked as it is
// parsed.
type floatings struct{ p *[]plan.Floating }

func (f floatings) Type() string { return "tag" }

func (f floatings) String() string {
	var s []string
	for _, t := range *f.p {
		s = append(s, t.String())
	}
	return strings.Join(s, ",")
}

func (f floatings) Set(s string) error {
	t, err := plan.ParseFloating(s)
	if err != nil {
		return err
	}
	*f.p = append(*f.p, t)
	return nil
}

// bindFloating defines --ci-tag, the floating tag; usage says what for.
func bindFloating(cmd *cobra.Command, p *plan.Floating, usage string) {
	cmd.Flags().Var(floating{p}, "ci-tag", usage)
}

// bindFallbacks defines --cache-fallback, further floating tags.
func bindFallbacks(cmd *cobra.Command, p *[]plan.Floating) {
	cmd.Flags().Var(floatings{p}, "cache-fallback", "also import cache from REPOSITORY:cache-TAG, in order (repeatable; for example ci on a branch)")
}
