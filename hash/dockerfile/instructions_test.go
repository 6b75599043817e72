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
			2: {Stage: "deps", Line: 2, Text: "RUN a   b"},
			5: {Stage: "stage-1", Line: 5, Text: "FROM deps", From: true},
			6: {Stage: "stage-1", Line: 6, Text: "COPY --from=deps /x /y"},
		}},
		{"global ARG is no step", "ARG V=1\nFROM scratch\nENV A=$V\n", map[int]Instruction{
			2: {Stage: "stage-0", Line: 2, Text: "FROM scratch", From: true},
			3: {Stage: "stage-0", Line: 3, Text: "ENV A=$V"},
		}},
		{"does not parse", "FROM\n", map[int]Instruction{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Instructions([]byte(tc.dockerfile)); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
