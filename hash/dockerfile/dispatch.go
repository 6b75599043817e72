package dockerfile

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/dfgitutil"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// dispatch walks stage i as BuildKit's dispatch does, recording every
// local source path it reads, and returns the stage's final env so that
// stages built FROM it start from there.
func (w *walker) dispatch(i int, finals []*env) (*env, error) {
	st := w.stages[i]
	var e *env
	switch base := w.bases[i]; {
	case base >= 0 && finals[base] != nil:
		e = finals[base].clone()
	case base >= 0:
		e = newEnv(false) // cannot happen: a base stage is reachable first
	default:
		e = newEnv(strings.EqualFold(st.BaseName, "scratch"))
	}
	stage := w.stageName(i)
	if w.bases[i] < 0 {
		from := Origin{Stage: stage, Line: line(st.Location), Instruction: "FROM " + st.BaseName}
		if w.from[i] == "" {
			if w.a.Undecided == "" {
				w.a.Undecided = fmt.Sprintf("line %d: FROM %s depends on a value only known at build time", from.Line, st.BaseName)
			}
		} else {
			w.readImage(w.from[i], i, from)
		}
	}
	for _, cmd := range w.commands(i) {
		if err := w.dispatchCmd(i, stage, e, cmd); err != nil {
			return nil, err
		}
	}
	return e, nil
}

func (w *walker) dispatchCmd(i int, stage string, e *env, cmd instructions.Command) error {
	o := Origin{Stage: stage, Line: line(cmd.Location()), Instruction: instructionText(cmd)}
	x := &expander{lex: w.lex, env: e}
	if arg, ok := cmd.(*instructions.ArgCommand); ok {
		for _, kv := range arg.Args {
			w.declareArg(e, x, kv, w.global)
		}
		return nil
	}
	var words []string // COPY's and ADD's sources as written: Expand rewrites them
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		words = slices.Clone(c.SourcePaths)
	case *instructions.AddCommand:
		words = slices.Clone(c.SourcePaths)
		w.checkDownloads(c, e, o)
	}
	if expanded, err := w.expand(cmd, x, o); !expanded {
		return err
	}
	switch c := cmd.(type) {
	case *instructions.EnvCommand:
		for _, kv := range c.Env {
			if x.undecided != "" {
				e.setUnknown(kv.Key)
			} else {
				e.set(kv.Key, kv.Value)
			}
		}
	case *instructions.CopyCommand:
		src := MainContext
		if c.From != "" {
			if w.isStageName(c.From) || !w.isContext(c.From) {
				w.readImage(c.From, i, o)
				return nil // another stage or an image: no local files
			}
			src = c.From
		}
		w.readSources(e, src, words, c.SourcePaths, o, c.ExcludePatterns, nil)
	case *instructions.AddCommand:
		w.readSources(e, MainContext, words, c.SourcePaths, o, c.ExcludePatterns, c)
	case *instructions.RunCommand:
		w.readMounts(i, x, c, o)
	}
	return nil
}

// expand expands the words of cmd in place. It reports false when the
// instruction is done with: its words do not expand, which fails the
// build as BuildKit fails it (the error), or may only fail with our
// partial view of the env (every source widened).
func (w *walker) expand(cmd instructions.Command, x *expander, o Origin) (bool, error) {
	ex, ok := cmd.(instructions.SupportsSingleWordExpansion)
	if !ok {
		return true, nil
	}
	err := ex.Expand(x.expand)
	switch {
	case err == nil:
		return true, nil
	case x.undecided == "":
		return false, &SyntaxError{Line: o.Line, Err: fmt.Errorf("%s: %w", o.Instruction, err)}
	}
	w.widenAll(fmt.Sprintf("line %d: %s: %v", o.Line, o.Instruction, err))
	return false, nil
}

// readMounts records what a RUN's mounts read: images, and the paths of
// bind mounts from a local source (the whole source when a word of the
// instruction is only known at build time).
func (w *walker) readMounts(i int, x *expander, c *instructions.RunCommand, o Origin) {
	for _, m := range instructions.GetMounts(c) {
		if m.From != "" && !w.isContext(m.From) {
			w.readImage(m.From, i, o)
		}
		if m.Type != instructions.MountTypeBind {
			continue
		}
		src := MainContext
		if m.From != "" {
			if w.isStageName(m.From) || !w.isContext(m.From) {
				continue
			}
			src = m.From
		}
		if x.undecided != "" {
			w.a.widen(src, fmt.Sprintf("line %d: %s uses $%s, whose value is only known at build time", o.Line, o.Instruction, x.undecided))
			continue
		}
		w.a.add(src, ctxPath(m.Source), o)
	}
}

// readSources records what a COPY or ADD (add set) reads from source
// src, word by word: a URL an ADD downloads, or a path. A word only known
// at build time widens src; only the sources decide what is read, never
// the destination or the flags.
func (w *walker) readSources(e *env, src string, words, paths []string, o Origin, excludes []string, add *instructions.AddCommand) {
	for i, p := range paths {
		y := &expander{lex: w.lex, env: e}
		if _, _ = y.expand(words[i]); y.undecided != "" {
			w.a.widen(src, fmt.Sprintf("line %d: %s uses $%s, whose value is only known at build time", o.Line, o.Instruction, y.undecided))
			continue
		}
		if add != nil && IsURL(p) {
			d := Download{URL: p, Checksum: add.Checksum, Origin: o}
			if !slices.Contains(w.a.Downloads, d) {
				w.a.Downloads = append(w.a.Downloads, d)
			}
			continue
		}
		w.a.add(src, ctxPath(p), o, excludes...)
	}
}

// checkDownloads marks the analysis undecided when an ADD may download
// from a URL that depends on a value only known at build time: what it
// fetches cannot be looked up, so it cannot enter the hash. A source is
// such a URL when its expansion is one, or when a variable comes before
// any '/' (the scheme or host may be in it). A checksum known statically
// pins the content whatever the URL.
func (w *walker) checkDownloads(c *instructions.AddCommand, e *env, o Origin) {
	if w.a.Undecided != "" {
		return
	}
	if c.Checksum != "" {
		if y := (&expander{lex: w.lex, env: e}); decided(y, c.Checksum) {
			return
		}
	}
	for _, word := range c.SourcePaths {
		y := &expander{lex: w.lex, env: e}
		v, err := y.expand(word)
		if y.undecided == "" {
			continue
		}
		head, _, _ := strings.Cut(word, "$")
		if err == nil && !IsURL(v) && strings.Contains(head, "/") {
			continue // a local path: its context was widened
		}
		w.a.Undecided = fmt.Sprintf("line %d: %s may download %s, which depends on $%s, whose value is only known at build time", o.Line, o.Instruction, word, y.undecided)
		return
	}
}

// decided reports whether word expands to a value known statically.
func decided(x *expander, word string) bool {
	_, err := x.expand(word)
	return err == nil && x.undecided == ""
}

// IsURL reports whether an ADD source is downloaded rather than read
// from the context: an HTTP URL or a Git repository, as the frontend
// decides.
func IsURL(src string) bool {
	if strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://") {
		return true
	}
	_, isGit, _ := dfgitutil.ParseGitRef(src)
	return isGit
}

// declareArg follows dispatchArg: a build arg wins, then the default
// (expanded), then the global value of the same name.
func (w *walker) declareArg(e *env, x *expander, kv instructions.KeyValuePairOptional, global *env) {
	if v, ok := w.opt.BuildArgs[kv.Key]; ok {
		e.set(kv.Key, v)
		return
	}
	if kv.Value != nil {
		x.undecided = ""
		v, err := x.expand(*kv.Value)
		if err != nil || x.undecided != "" {
			e.setUnknown(kv.Key)
			return
		}
		e.set(kv.Key, v)
		return
	}
	if global == nil {
		return // a global ARG without value stays undefined
	}
	{
		if v, ok := global.Get(kv.Key); ok {
			e.set(kv.Key, v)
			return
		}
		if global.unknown[kv.Key] {
			e.setUnknown(kv.Key)
			return
		}
	}
	// Declared without a value: BuildKit adds nothing to the env, so an
	// ENV of that name (the stage's, or the base image's) still holds.
}

func instructionText(cmd instructions.Command) string {
	if s, ok := cmd.(fmt.Stringer); ok {
		return strings.TrimSpace(s.String())
	}
	return cmd.Name()
}
