package dockerfile

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// Instruction is one instruction of a Dockerfile, FROM included, where
// BuildKit places it.
type Instruction struct {
	Stage string // the stage's name, or stage-N as BuildKit names an unnamed one
	Line  int    // its first line
	Text  string // as written, continuation lines joined
	From  bool   // the stage's FROM
}

// Instructions lists the Dockerfile's instructions by line: what a step
// BuildKit ran at a line was. A Dockerfile that does not parse lists
// none.
func Instructions(dockerfile []byte) map[int]Instruction {
	out := map[int]Instruction{}
	res, err := parser.Parse(bytes.NewReader(dockerfile))
	if err != nil {
		return out
	}
	stages, _, err := instructions.Parse(res.AST, nil)
	if err != nil {
		return out
	}
	for i, st := range stages {
		name := st.Name
		if name == "" {
			name = "stage-" + strconv.Itoa(i)
		}
		if l := line(st.Location); l > 0 {
			out[l] = Instruction{Stage: name, Line: l, Text: strings.TrimSpace(st.SourceCode), From: true}
		}
		for _, c := range st.Commands {
			if l := line(c.Location()); l > 0 {
				out[l] = Instruction{Stage: name, Line: l, Text: instructionText(c)}
			}
		}
	}
	return out
}
