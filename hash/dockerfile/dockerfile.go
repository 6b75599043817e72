// Package dockerfile works out, without a daemon, which local files a
// Dockerfile can see: the COPY and ADD sources without --from and the
// RUN --mount=type=bind sources, in the stages the build target reaches,
// after ARG and ENV expansion. It mirrors the walk of BuildKit's own
// dockerfile frontend (dockerfile2llb), which computes the same set to
// decide which files to transfer, and uses that frontend's parser, its
// instruction model and its shell lexer so that both read a Dockerfile
// alike. Whatever cannot be decided statically widens to the whole source,
// never narrows.
package dockerfile

import (
	"bytes"
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/bkcache/bkcache/context/imageref"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// MainContext names the build context among the sources of a Use.
const MainContext = "context"

// DescribeSource names a source for people: "build context", or
// `additional context "NAME"`.
func DescribeSource(name string) string {
	if name == MainContext {
		return "build context"
	}
	return fmt.Sprintf("additional context %q", name)
}

// Options describe one build of a Dockerfile.
type Options struct {
	Target    string            // stage to build; empty means the last
	BuildArgs map[string]string // build args that have a value
	// Platforms requested; empty means the daemon's default, which is
	// not known statically (TARGETARCH and friends are then undecidable).
	Platforms []string
	// Contexts names the additional contexts that are local directories:
	// `COPY --from=NAME` and `FROM NAME` then read that source.
	Contexts []string
	// Named names every additional context, of any kind: an image ref
	// that names one (as BuildKit matches them) reads that context, not
	// the image.
	Named []string
}

// Origin says which instruction pulled a path in.
type Origin struct {
	Stage       string `json:"stage"`
	Line        int    `json:"line"`
	Instruction string `json:"instruction"`
}

// Pattern is one path a source contributes, as BuildKit's FollowPaths
// would send it: relative, cleaned, possibly with wildcards; "." is all.
type Pattern struct {
	Path   string `json:"path"`
	Origin Origin `json:"origin"`
	// Excludes are the instruction's --exclude patterns.
	Excludes []string `json:"excludes,omitempty"`
}

// Use says what the build reads from one local source.
type Use struct {
	// Whole means every file of the source (after .dockerignore) counts,
	// either because the Dockerfile copies "." or because what it copies
	// could not be decided statically; Reason says which.
	Whole bool `json:"whole"`
	// Widened says the source counts whole because something could not
	// be decided: then no --exclude leaves a file out.
	Widened  bool      `json:"widened,omitempty"`
	Reason   string    `json:"reason,omitempty"`
	Patterns []Pattern `json:"patterns,omitempty"`
}

// Paths returns the FollowPaths for the source, or nil for the whole.
func (u *Use) Paths() []string {
	if u.Whole {
		return nil
	}
	var out []string
	for _, p := range u.Patterns {
		out = append(out, p.Path)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Image is an image the build reads: a FROM base, a COPY --from= or RUN
// --mount from= source, or the `# syntax=` frontend.
type Image struct {
	Ref     string   `json:"ref"` // as written, after ARG expansion
	Origins []Origin `json:"origins"`
}

// Download is an ADD of a URL: a Git repository or a file over HTTP.
type Download struct {
	URL      string `json:"url"`                // as written, after ARG expansion
	Checksum string `json:"checksum,omitempty"` // ADD --checksum, hashed as written
	Origin   Origin `json:"origin"`
}

// Analysis is what a Dockerfile reads from its local sources, and the
// images and downloads it reads.
type Analysis struct {
	Target    string          // the stage built
	Stages    []string        // stages the target reaches, in file order
	Syntax    string          // the `# syntax=` frontend, if any
	Sources   map[string]*Use // by source name; absent means unused
	Images    []Image         // sorted by Ref
	Downloads []Download      // in file order
	// Undecided says why a FROM of a reached stage names an image, or
	// an ADD may download from a URL, only known at build time (it
	// depends on an undecidable variable); "" when none does.
	Undecided string
}

func (a *Analysis) image(ref string, o Origin) {
	for i := range a.Images {
		if a.Images[i].Ref == ref {
			if !slices.Contains(a.Images[i].Origins, o) {
				a.Images[i].Origins = append(a.Images[i].Origins, o)
			}
			return
		}
	}
	a.Images = append(a.Images, Image{Ref: ref, Origins: []Origin{o}})
}

func (a *Analysis) use(src string) *Use {
	u := a.Sources[src]
	if u == nil {
		u = &Use{}
		a.Sources[src] = u
	}
	return u
}

func (a *Analysis) add(src, p string, o Origin, excludes ...string) {
	u := a.use(src)
	if p == "." {
		u.Whole = true
		if u.Reason == "" {
			u.Reason = fmt.Sprintf("line %d: %s copies the whole source", o.Line, o.Instruction)
		}
	}
	u.Patterns = append(u.Patterns, Pattern{Path: p, Origin: o, Excludes: excludes})
}

func (a *Analysis) widen(src, reason string) {
	u := a.use(src)
	u.Widened = true
	// The first reason that is not only "copies the whole" stays.
	if u.Reason == "" || strings.Contains(u.Reason, "copies the whole") {
		u.Reason = reason
	}
	u.Whole = true
}

// Analyze reads a Dockerfile and returns what it reads from local sources.
func Analyze(dockerfile []byte, opt Options) (*Analysis, error) {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil, syntaxErr(err)
	}
	stages, metaArgs, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil, syntaxErr(err)
	}
	if len(stages) == 0 {
		return nil, &SyntaxError{Err: fmt.Errorf("no FROM instruction: a Dockerfile needs at least one stage")}
	}
	a := &Analysis{Sources: map[string]*Use{}}
	if syntax, _, loc, ok := parser.DetectSyntax(dockerfile); ok {
		a.Syntax = syntax
		a.image(syntax, Origin{Line: max(line(loc), 1), Instruction: "# syntax=" + syntax})
		if !isDockerfileFrontend(syntax) {
			reason := fmt.Sprintf("custom frontend %q decides what it reads", syntax)
			a.widen(MainContext, reason)
			for _, c := range opt.Contexts {
				a.widen(c, reason)
			}
		}
	}

	platforms := opt.Platforms
	if len(platforms) == 0 {
		platforms = []string{""}
	}
	for n, pl := range platforms {
		if n > 0 {
			// Expansion rewrites commands in place: each platform starts
			// from a fresh parse.
			res, _ = parser.Parse(bytes.NewReader(dockerfile))
			stages, metaArgs, _ = instructions.Parse(res.AST, nil)
		}
		w := &walker{a: a, opt: opt, stages: stages, lex: shell.NewLex(res.EscapeToken)}
		if err := w.run(metaArgs, pl); err != nil {
			return nil, err
		}
	}
	for _, u := range a.Sources {
		slices.SortStableFunc(u.Patterns, func(x, y Pattern) int { return strings.Compare(x.Path, y.Path) })
	}
	slices.SortFunc(a.Images, func(x, y Image) int { return strings.Compare(x.Ref, y.Ref) })
	return a, nil
}

// isDockerfileFrontend accepts the official frontend images, whose read
// set is what this package models.
func isDockerfileFrontend(ref string) bool {
	ref = strings.TrimPrefix(ref, "docker.io/")
	return ref == "docker/dockerfile" || strings.HasPrefix(ref, "docker/dockerfile:") ||
		strings.HasPrefix(ref, "docker/dockerfile@") || strings.HasPrefix(ref, "docker/dockerfile-upstream")
}

// walker evaluates one platform's build of the Dockerfile.
type walker struct {
	a      *Analysis
	opt    Options
	stages []instructions.Stage
	lex    *shell.Lex
	global *env
	byName map[string]int
	bases  []int    // base stage of each stage, or -1
	from   []string // each stage's FROM, expanded; "" when undecidable
}

func (w *walker) isContext(name string) bool { return slices.Contains(w.opt.Contexts, name) }

// isNamed reports whether an image ref is overridden by an additional
// context, matched as BuildKit's dockerui matches it: the ref as docker
// writes it, without :latest. Only that name: a context named
// docker.io/library/alpine or alpine:latest shadows nothing.
func (w *walker) isNamed(ref string) bool {
	r, err := imageref.Parse(ref)
	return err == nil && slices.Contains(w.opt.Named, strings.TrimSuffix(r.Familiar(), ":latest"))
}

// readImage records ref as an image the stage reads, unless it is a
// stage (by name or index), scratch, or an additional context.
func (w *walker) readImage(ref string, current int, o Origin) {
	if _, ok := w.stageRef(ref, current); ok || w.isStageName(ref) || strings.EqualFold(ref, "scratch") || w.isNamed(ref) {
		return
	}
	w.a.image(ref, o)
}

func (w *walker) run(metaArgs []instructions.ArgCommand, platform string) error {
	w.global = newEnv(true)
	known, unknown := platformArgs(platform)
	for k, v := range known {
		w.global.set(k, v)
	}
	for _, k := range unknown {
		w.global.setUnknown(k)
	}
	for _, cmd := range metaArgs {
		for _, kv := range cmd.Args {
			x := &expander{lex: w.lex, env: w.global}
			w.declareArg(w.global, x, kv, nil)
		}
	}

	w.byName = map[string]int{}
	for i, st := range w.stages {
		if st.Name != "" {
			w.byName[strings.ToLower(st.Name)] = i
		}
	}
	target := len(w.stages) - 1
	if w.opt.Target != "" {
		i, ok := w.byName[strings.ToLower(w.opt.Target)]
		if !ok {
			return fmt.Errorf("target stage %q not found in the Dockerfile (stages: %s)", w.opt.Target, strings.Join(w.stageNames(), ", "))
		}
		target = i
	}
	w.a.Target = w.stageName(target)

	w.bases = make([]int, len(w.stages))
	w.from = make([]string, len(w.stages))
	for i := range w.stages {
		w.bases[i] = w.baseOf(i)
	}
	reach := w.reachable(target)
	finals := make([]*env, len(w.stages))
	for i := range w.stages {
		if !reach[i] {
			continue
		}
		if !slices.Contains(w.a.Stages, w.stageName(i)) {
			w.a.Stages = append(w.a.Stages, w.stageName(i))
		}
		f, err := w.dispatch(i, finals)
		if err != nil {
			return err
		}
		finals[i] = f
	}
	return nil
}

func (w *walker) stageName(i int) string {
	if n := w.stages[i].Name; n != "" {
		return strings.ToLower(n)
	}
	return strconv.Itoa(i)
}

func (w *walker) stageNames() []string {
	var out []string
	for i := range w.stages {
		out = append(out, w.stageName(i))
	}
	return out
}

// baseOf expands FROM with the global ARGs and resolves it to an earlier
// stage (its index), or -1 for an image, scratch or a named context.
func (w *walker) baseOf(i int) int {
	st := w.stages[i]
	x := &expander{lex: w.lex, env: w.global}
	name, err := x.expand(st.BaseName)
	if err != nil || x.undecided != "" {
		// Any stage could be the base: read everything.
		w.widenAll(fmt.Sprintf("line %d: FROM %s depends on a value only known at build time", line(st.Location), st.BaseName))
		return -1
	}
	w.from[i] = name
	if b, ok := w.byName[strings.ToLower(name)]; ok && b < i {
		return b
	}
	if w.isContext(name) {
		w.a.widen(name, fmt.Sprintf("line %d: FROM %s uses the context as a base", line(st.Location), name))
	}
	return -1
}

func (w *walker) widenAll(reason string) {
	w.a.widen(MainContext, reason)
	for _, c := range w.opt.Contexts {
		w.a.widen(c, reason)
	}
}

// reachable marks the stages the target depends on: its base and the
// stages named by COPY --from and RUN --mount from=, transitively.
func (w *walker) reachable(target int) []bool {
	reach := make([]bool, len(w.stages))
	var visit func(i int)
	visit = func(i int) {
		if reach[i] {
			return
		}
		reach[i] = true
		if w.bases[i] >= 0 {
			visit(w.bases[i])
		}
		for _, from := range w.fromRefs(i) {
			if j, ok := w.stageRef(from, i); ok {
				visit(j)
			}
		}
	}
	visit(target)
	return reach
}

// isStageName reports whether name is a stage's name (in any case): a
// source that is not a local context. A number is not a name here: one
// that names no context reads no local files either.
func (w *walker) isStageName(name string) bool {
	_, ok := w.byName[strings.ToLower(name)]
	return ok
}

func (w *walker) stageRef(from string, current int) (int, bool) {
	if j, err := strconv.Atoi(from); err == nil && j >= 0 && j < current {
		return j, true
	}
	j, ok := w.byName[strings.ToLower(from)]
	return j, ok && j != current
}

// commands returns the stage's commands with the ONBUILD triggers of an
// in-file base stage in front, as BuildKit runs them.
func (w *walker) commands(i int) []instructions.Command {
	var cmds []instructions.Command
	if b := w.bases[i]; b >= 0 {
		for _, c := range w.stages[b].Commands {
			ob, ok := c.(*instructions.OnbuildCommand)
			if !ok {
				continue
			}
			res, err := parser.Parse(strings.NewReader(ob.Expression))
			if err != nil || len(res.AST.Children) == 0 {
				continue
			}
			if cmd, err := instructions.ParseCommand(res.AST.Children[0]); err == nil {
				cmds = append(cmds, cmd)
			}
		}
	}
	return append(cmds, w.stages[i].Commands...)
}

func (w *walker) fromRefs(i int) []string {
	var out []string
	for _, c := range w.commands(i) {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From != "" {
				out = append(out, c.From)
			}
		case *instructions.RunCommand:
			for _, m := range instructions.GetMounts(c) {
				if m.From != "" {
					out = append(out, m.From)
				}
			}
		}
	}
	return out
}

func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}

// ctxPath normalizes a source path as dockerfile2llb does before handing
// it to FollowPaths: rooted, cleaned, then made relative.
func ctxPath(src string) string {
	return path.Join(".", path.Join("/", filepath.ToSlash(src)))
}
