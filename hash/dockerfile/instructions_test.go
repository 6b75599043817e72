package dockerfile

import (
	"reflect"
	"testing"
)

func TestInstructions(t *testing.T) {
	for _, tc := range []struct {
		name, dockerfile string
		want             map[int]Instruction
	}{
		{"stages named and not", "FROM busybox AS deps\nRUN a \\\n  b\n\nFROM deps\nCOPY --from=deps /x /y\n", map[int]Instruction{
			1: {Stage: "deps", Line: 1, Text: "FROM busybox AS deps", From: true},
			2: {Stage: "deps", Line: 2, Text: "RUN a   b", Run: true},
			5: {Stage: "stage-1", Line: 5, Text: "FROM deps", From: true},
			6: {Stage: "stage-1", Line: 6, Text: "COPY --from=deps /x /y", Refs: []string{"deps"}},
		}},
		{"global ARG is no step", "ARG V=1\nFROM scratch\nARG A B=2\nRUN --mount=type=cache,from=tools,target=/t --mount=type=bind,target=/s true\n", map[int]Instruction{
			2: {Stage: "stage-0", Line: 2, Text: "FROM scratch", From: true},
			3: {Stage: "stage-0", Line: 3, Text: "ARG A B=2", Args: []string{"A", "B"}},
			4: {Stage: "stage-0", Line: 4, Text: "RUN --mount=type=cache,from=tools,target=/t --mount=type=bind,target=/s true", Run: true, Refs: []string{"tools"}},
		}},
		{"does not parse", "FROM\n", map[int]Instruction{}},
		{"no instruction at all", "# only a comment\n", map[int]Instruction{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Instructions([]byte(tc.dockerfile)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestStages(t *testing.T) {
	got := Stages([]byte("FROM golang:1.26 AS build\nRUN go build\nFROM build\nFROM scratch AS final\n"))
	var bases, names []string
	for _, s := range got {
		bases, names = append(bases, s.Base), append(names, s.Name)
	}
	if !reflect.DeepEqual(bases, []string{"golang:1.26", "build", "scratch"}) || !reflect.DeepEqual(names, []string{"build", "stage-1", "final"}) ||
		len(got[0].Steps) != 2 || len(got[1].Steps) != 1 {
		t.Errorf("stages %+v", got)
	}
}
