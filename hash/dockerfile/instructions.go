package dockerfile

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Stage is one stage of a Dockerfile, as the list of steps BuildKit
// chains: each instruction's result is the next one's parent.
type Stage struct {
	Name  string        // its name, or stage-N as BuildKit names an unnamed one
	Base  string        // FROM's argument as written: an image, or a stage
	Steps []Instruction // FROM first
}

// Instruction is one instruction of a Dockerfile, FROM included, where
// BuildKit places it.
type Instruction struct {
	Stage string
	Line  int    // its first line
	Text  string // as written, continuation lines joined
	From  bool   // the stage's FROM
	Run   bool   // a RUN: BuildKit gives it the stage's args and the RUN settings
	// Refs are what the instruction copies or mounts from, as written:
	// COPY --from, RUN --mount from=.
	Refs []string
	Args []string // the names an ARG declares
}

// Stages lists the Dockerfile's stages in order. A Dockerfile that
// does not parse lists none.
func Stages(dockerfile []byte) []Stage {
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return nil
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return nil
	}
	out := make([]Stage, 0, len(stages))
	for i, st := range stages {
		s := Stage{Name: st.Name, Base: st.BaseName}
		if s.Name == "" {
			s.Name = "stage-" + strconv.Itoa(i)
		}
		s.Steps = append(s.Steps, Instruction{Stage: s.Name, Line: line(st.Location), Text: strings.TrimSpace(st.SourceCode), From: true})
		for _, c := range st.Commands {
			s.Steps = append(s.Steps, instruction(s.Name, c))
		}
		out = append(out, s)
	}
	return out
}

func instruction(stage string, c instructions.Command) Instruction {
	in := Instruction{Stage: stage, Line: line(c.Location()), Text: instructionText(c)}
	switch c := c.(type) {
	case *instructions.CopyCommand:
		in.Refs = appendNonEmpty(in.Refs, c.From)
	case *instructions.RunCommand:
		in.Run = true
		for _, m := range instructions.GetMounts(c) {
			in.Refs = appendNonEmpty(in.Refs, m.From)
		}
	case *instructions.ArgCommand:
		for _, kv := range c.Args {
			in.Args = append(in.Args, kv.Key)
		}
	}
	return in
}

func appendNonEmpty(s []string, v string) []string {
	if v == "" {
		return s
	}
	return append(s, v)
}

// Instructions lists the Dockerfile's instructions by line: what a step
// BuildKit ran at a line was. A Dockerfile that does not parse lists
// none.
func Instructions(dockerfile []byte) map[int]Instruction {
	out := map[int]Instruction{}
	for _, s := range Stages(dockerfile) {
		for _, in := range s.Steps {
			if in.Line > 0 {
				out[in.Line] = in
			}
		}
	}
	return out
}
