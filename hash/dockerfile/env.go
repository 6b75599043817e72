package dockerfile

import (
	"maps"
	"slices"
	"strings"

	"github.com/containerd/platforms"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// env is what a stage's variable expansion can see at one point of the
// stage: ENV and ARG values set so far, and whether that is everything.
// A stage built FROM an image inherits the image's ENV, which is only
// known at build time: its env is incomplete, and an expansion that finds
// no value in it cannot be decided statically.
type env struct {
	vars     map[string]string
	unknown  map[string]bool // defined, but with a value only known at build time
	complete bool
}

func newEnv(complete bool) *env {
	return &env{vars: map[string]string{}, unknown: map[string]bool{}, complete: complete}
}

func (e *env) clone() *env {
	return &env{vars: maps.Clone(e.vars), unknown: maps.Clone(e.unknown), complete: e.complete}
}

func (e *env) set(k, v string) { e.vars[k] = v; delete(e.unknown, k) }

func (e *env) setUnknown(k string) { delete(e.vars, k); e.unknown[k] = true }

// Get and Keys make env a shell.EnvGetter.
func (e *env) Get(k string) (string, bool) { v, ok := e.vars[k]; return v, ok }

// Keys lists the variables with a known value.
func (e *env) Keys() []string { return slices.Sorted(maps.Keys(e.vars)) }

// expander expands words as BuildKit's dispatch does, and remembers the
// first variable whose value cannot be known statically.
type expander struct {
	lex       *shell.Lex
	env       *env
	undecided string // name of the first undecidable variable, if any
}

func (x *expander) expand(word string) (string, error) {
	res, err := x.lex.ProcessWordWithMatches(word, x.env)
	if err != nil {
		// ${V:?message} fails on an unset V; V from the base image's
		// ENV may well be set. Then the failure is undecided, not
		// BuildKit's.
		if x.undecided == "" {
			g := &guessing{env: x.env}
			if _, again := x.lex.ProcessWordWithMatches(word, g); again == nil && len(g.guessed) > 0 {
				x.undecided = g.guessed[0]
			}
		}
		return "", err
	}
	// An unknown variable is never in vars, so it always lands in
	// Unmatched; in an incomplete env any unmatched name may come from the
	// base image's ENV.
	for _, k := range sortedKeys(res.Unmatched) {
		if x.undecided == "" && (x.env.unknown[k] || !x.env.complete) {
			x.undecided = k
		}
	}
	return res.Result, nil
}

// guessing is an env in which every variable whose value is only known
// at build time has one: what expands in it may expand in BuildKit.
type guessing struct {
	*env
	guessed []string // the variables given a value, in order
}

func (g *guessing) Get(k string) (string, bool) {
	if v, ok := g.vars[k]; ok {
		return v, true
	}
	if g.unknown[k] || !g.complete {
		g.guessed = append(g.guessed, k)
		return "set", true
	}
	return "", false
}

func sortedKeys(m map[string]struct{}) []string { return slices.Sorted(maps.Keys(m)) }

// platformArgs are the automatic platform ARGs BuildKit defines in the
// global scope. TARGET* follow the requested platform as BuildKit's
// frontend reads it (parsed, then normalized: linux/arm is linux/arm/v7);
// BUILD* depend on the daemon and are never known statically, and so do
// TARGET* for a platform of one part ("linux", "arm64"), which BuildKit
// completes from the daemon's own.
func platformArgs(platform string) (known map[string]string, unknown []string) {
	unknown = []string{"BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"}
	target := []string{"TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT"}
	if !strings.Contains(platform, "/") {
		return nil, append(unknown, target...)
	}
	p, err := platforms.Parse(platform)
	if err != nil {
		return nil, append(unknown, target...)
	}
	p = platforms.Normalize(p)
	known = map[string]string{"TARGETPLATFORM": platforms.FormatAll(p), "TARGETOS": p.OS, "TARGETARCH": p.Architecture, "TARGETVARIANT": p.Variant}
	return known, unknown
}
