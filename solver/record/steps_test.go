package record

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/hash/inputs"
)

// tenSteps is a Dockerfile of ten steps after its FROM; line k+1 is
// step k, and step 4 (line 5) copies f.txt.
const tenSteps = "FROM busybox\n" +
	"RUN echo 1\nRUN echo 2\nRUN echo 3\nCOPY f.txt /f.txt\nRUN echo 5\n" +
	"RUN echo 6\nRUN echo 7\nRUN echo 8\nRUN echo 9\nRUN echo 10\n"

// planOf computes the inputs of service app in the project files, then
// with edit applied, and plans the second build's steps against the
// first's record. moved, when set, makes that image's digest move.
func planOf(t *testing.T, files, edit map[string]string, moved string) map[int]string {
	t.Helper()
	before := compute(t, sourcetest.Tree(t, files))["app"]
	after := maps.Clone(files)
	maps.Copy(after, edit)
	cur := compute(t, sourcetest.Tree(t, after))["app"]
	r := Compare(before, cur, inputs.NewRedaction(nil, "k"))
	if kind, key, ok := strings.Cut(moved, " "); ok {
		c := Change{Key: key, Old: "old", New: "new"}
		switch kind {
		case "image":
			r.Images = append(r.Images, c)
		case "remote":
			r.Remotes = append(r.Remotes, c)
		}
	}
	return PlanSteps(before, cur, r, nil).Causes
}

// causes renders a plan as "LINE: CAUSE" lines, in order.
func causes(c map[int]string) string {
	var b strings.Builder
	for _, l := range slices.Sorted(maps.Keys(c)) {
		fmt.Fprintf(&b, "%d: %s\n", l, c[l])
	}
	return b.String()
}

func TestPlanSteps(t *testing.T) {
	compose := "services:\n  app:\n    build: .\n"
	for _, tc := range []struct {
		name        string
		dockerfile  string
		files, edit map[string]string
		moved       string
		want        string
	}{
		{
			name: "a changed file read at step 4 of 10", dockerfile: tenSteps,
			files: map[string]string{"f.txt": "1"}, edit: map[string]string{"f.txt": "2"},
			want: "5: read a changed file: f.txt\n" +
				"6: after line 5 `COPY f.txt /f.txt`, which read a changed file: f.txt\n" +
				"7: after line 5 `COPY f.txt /f.txt`, which read a changed file: f.txt\n" +
				"8: after line 5 `COPY f.txt /f.txt`, which read a changed file: f.txt\n" +
				"9: after line 5 `COPY f.txt /f.txt`, which read a changed file: f.txt\n" +
				"10: after line 5 `COPY f.txt /f.txt`, which read a changed file: f.txt\n" +
				"11: after line 5 `COPY f.txt /f.txt`, which read a changed file: f.txt\n",
		},
		{
			name:       "a file nothing reads",
			dockerfile: "FROM busybox\nCOPY f.txt /f.txt\nRUN true\n",
			files:      map[string]string{"f.txt": "1", "g.txt": "1"}, edit: map[string]string{"g.txt": "2"},
			want: "",
		},
		{
			name:       "an arg used only in a later stage",
			dockerfile: "FROM busybox AS one\nRUN echo one\nFROM busybox\nARG V\nCOPY f.txt /\nRUN echo $V\n",
			files:      map[string]string{"f.txt": "1", "compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args: {V: a}\n"},
			edit:       map[string]string{"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args: {V: b}\n"},
			want:       "6: uses arg V, which changed\n",
		},
		{
			name:       "a declared arg reaches every later RUN",
			dockerfile: "FROM busybox\nCOPY f.txt /\nARG V\nCOPY f.txt /g\nRUN true\nRUN true\n",
			files:      map[string]string{"f.txt": "1", "compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args: {V: a}\n"},
			edit:       map[string]string{"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args: {V: b}\n"},
			want:       "5: uses arg V, which changed\n6: after line 5 `RUN true`, which uses arg V, which changed\n",
		},
		{
			name:       "a base moved",
			dockerfile: "FROM busybox AS b\nRUN one\nRUN two\nFROM scratch\nCOPY f.txt /\nCOPY --from=b /x /\n",
			files:      map[string]string{"f.txt": "1"}, moved: "image docker.io/library/busybox:latest",
			want: "2: reads image docker.io/library/busybox:latest, which moved\n3: after line 2 `RUN one`, which reads image docker.io/library/busybox:latest, which moved\n" +
				"6: reads from stage `b`, which ran (line 2 `RUN one`)\n",
		},
		{
			name: "two images, one moved; a file and a moved image on one line",
			dockerfile: "FROM busybox AS a\nRUN --mount=type=bind,source=f.txt,target=/f --mount=type=bind,from=alpine,target=/al cat /f\n" +
				"FROM busybox AS b\nCOPY --from=debian /etc/os-release /d\nFROM busybox\nCOPY --from=a /x /x\nCOPY --from=b /y /y\n",
			files: map[string]string{"f.txt": "1"}, edit: map[string]string{"f.txt": "2"}, moved: "image docker.io/library/alpine:latest",
			want: "2: read a changed file: f.txt\n" +
				"6: reads from stage `a`, which ran (line 2 `RUN --mount=type=bind,source=f.txt,target=/f --mount=type=bind,from=alpine,target=/al cat /f`)\n" +
				"7: after line 6 `COPY --from=a /x /x`, which reads from stage `a`, which ran (line 2 `RUN --mount=type=bind,source=f.txt,target=/f --mount=type=bind,from=alpine,target=/al cat /f`)\n",
		},
		{
			name:       "a remote source changed",
			dockerfile: "FROM busybox\nRUN one\nADD https://example.com/x.tgz /x\nADD https://example.com/y.tgz /y\n",
			moved:      "remote https://example.com/y.tgz",
			want:       "4: reads https://example.com/y.tgz, which changed\n",
		},
		{
			name:       "a setting of RUN steps changed",
			dockerfile: "FROM busybox\nCOPY f.txt /\nRUN one\nRUN two\n",
			files:      map[string]string{"f.txt": "1"},
			edit:       map[string]string{"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      network: none\n"},
			want:       "3: the service's network changed\n4: after line 3 `RUN one`, which the service's network changed\n",
		},
		{
			name:       "the platforms changed",
			dockerfile: "FROM busybox\nCOPY f.txt /\nRUN one\n",
			files:      map[string]string{"f.txt": "1", "compose.yaml": "services:\n  app:\n    build:\n      context: .\n      platforms: [linux/amd64]\n"},
			edit:       map[string]string{"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      platforms: [linux/arm64]\n"},
			want:       "3: the service's platforms changed\n",
		},
		{
			name:       "a label changed: no step",
			dockerfile: "FROM busybox\nRUN one\n",
			edit:       map[string]string{"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      labels: {a: b}\n"},
			want:       "",
		},
		{
			name:       "an arg in a WORKDIR",
			dockerfile: "FROM busybox\nARG V\nWORKDIR /w/$V\nCOPY f.txt /\n",
			files:      map[string]string{"f.txt": "1", "compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args: {V: a}\n"},
			edit:       map[string]string{"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      args: {V: b}\n"},
			want:       "3: uses arg V, which changed\n4: after line 3 `WORKDIR /w/$V`, which uses arg V, which changed\n",
		},
		{
			name:       "the whole context, many files",
			dockerfile: "FROM busybox\nRUN one\nCOPY . /app\n",
			files:      map[string]string{"a": "1", "b": "1", "c": "1", "d": "1"},
			edit:       map[string]string{"a": "2", "b": "2", "c": "2", "d": "2"},
			want:       "3: read a changed file: a, b, c, …\n",
		},
		{
			name:       "a file of another context",
			dockerfile: "FROM busybox\nCOPY f.txt /\nCOPY --from=lib f.txt /lib\n",
			files: map[string]string{"f.txt": "1", "lib/f.txt": "1",
				"compose.yaml": "services:\n  app:\n    build:\n      context: .\n      additional_contexts: {lib: ./lib}\n"},
			edit: map[string]string{"lib/f.txt": "2"},
			want: "3: read a changed file: f.txt\n",
		},
		{
			name:       "a line edited",
			dockerfile: "FROM busybox\nRUN one\nRUN two\nRUN three\n",
			edit:       map[string]string{"Dockerfile": "FROM busybox\nRUN one\nRUN 2\nRUN three\n"},
			want:       "3: changed (line 3)\n4: after line 3 `RUN 2`, which changed (line 3)\n",
		},
		{
			name:       "a line inserted",
			dockerfile: "FROM busybox\nRUN one\nRUN three\n",
			edit:       map[string]string{"Dockerfile": "FROM busybox\nRUN one\nRUN two\nRUN three\n"},
			want:       "3: changed (line 3)\n4: after line 3 `RUN two`, which changed (line 3)\n",
		},
		{
			name:       "a line appended to a stage",
			dockerfile: "FROM busybox AS a\nRUN one\nFROM busybox\nRUN final\n",
			edit:       map[string]string{"Dockerfile": "FROM busybox AS a\nRUN one\nRUN two\nFROM busybox\nRUN final\n"},
			want:       "3: changed (line 3)\n",
		},
		{
			name:       "COPY --from chains",
			dockerfile: "FROM busybox AS a\nCOPY f.txt /\nFROM busybox AS b\nRUN b\nCOPY --from=a /f.txt /\nRUN after\nFROM busybox AS untouched\nRUN untouched\nFROM b\nRUN c\nCOPY --from=untouched / /u\n",
			files:      map[string]string{"f.txt": "1"}, edit: map[string]string{"f.txt": "2"},
			want: "2: read a changed file: f.txt\n" +
				"5: reads from stage `a`, which ran (line 2 `COPY f.txt /`)\n" +
				"6: after line 5 `COPY --from=a /f.txt /`, which reads from stage `a`, which ran (line 2 `COPY f.txt /`)\n" +
				"10: starts from stage `b`, which ran (line 5 `COPY --from=a /f.txt /`)\n" +
				"11: after line 10 `RUN c`, which starts from stage `b`, which ran (line 5 `COPY --from=a /f.txt /`)\n",
		},
		{
			name:       "RUN --mount=type=bind reads",
			dockerfile: "FROM busybox\nRUN true\nRUN --mount=type=bind,source=f.txt,target=/f cat /f\nRUN after\n",
			files:      map[string]string{"f.txt": "1"}, edit: map[string]string{"f.txt": "2"},
			want: "3: read a changed file: f.txt\n4: after line 3 `RUN --mount=type=bind,source=f.txt,target=/f cat /f`, which read a changed file: f.txt\n",
		},
		{
			name:       "a changed file read by two stages",
			dockerfile: "FROM busybox AS a\nRUN a\nCOPY f.txt /\nFROM busybox\nRUN b\nCOPY f.txt /\nCOPY --from=a /f.txt /a\n",
			files:      map[string]string{"f.txt": "1"}, edit: map[string]string{"f.txt": "2"},
			want: "3: read a changed file: f.txt\n6: read a changed file: f.txt\n" +
				"7: after line 6 `COPY f.txt /`, which read a changed file: f.txt\n",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"compose.yaml": compose, "Dockerfile": tc.dockerfile}
			maps.Copy(files, tc.files)
			if got := causes(planOf(t, files, tc.edit, tc.moved)); got != tc.want {
				t.Errorf("plan:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// TestCheckSteps: a step that ran is explained by the plan, or marked
// an unexpected miss with miss's reason; one that had to run but came
// from cache says so; a cached step without a cause says nothing.
func TestCheckSteps(t *testing.T) {
	steps := []Step{
		{Line: 2, Status: StepCached},
		{Line: 3, Status: StepRan},
		{Line: 4, Status: StepRan},
		{Line: 5, Status: StepCached},
	}
	plan := &StepPlan{Causes: map[int]string{3: "read a changed file: f", 5: "changed (line 5)"}, Earlier: map[int]int64{2: 1500, 3: 700}}
	CheckSteps(steps, plan, func(s Step) string { return fmt.Sprintf("no cache was imported (line %d)", s.Line) })
	want := []Step{
		{Line: 2, Status: StepCached, EarlierMs: 1500},
		{Line: 3, Status: StepRan, Reason: "read a changed file: f"},
		{Line: 4, Status: StepRan, Reason: "unexpected: nothing it depends on changed; no cache was imported (line 4)", Unexpected: true},
		{Line: 5, Status: StepCached, Reason: "cached from an earlier build, though a change reached it: changed (line 5)"},
	}
	if !slices.Equal(steps, want) {
		t.Errorf("checked:\n%+v\nwant:\n%+v", steps, want)
	}
}

// TestPlanEarlier: the earlier build's durations land on the lines of
// the same instructions now, a step from cache then carrying the time
// it took before that.
func TestPlanEarlier(t *testing.T) {
	files := map[string]string{"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "FROM busybox\nRUN a\nRUN b\nRUN c\n"}
	before := compute(t, sourcetest.Tree(t, files))["app"]
	files["Dockerfile"] = "FROM busybox\nRUN new\nRUN a\nRUN b\nRUN c\n"
	cur := compute(t, sourcetest.Tree(t, files))["app"]
	earlier := []Step{
		{Stage: "stage-0", Line: 2, Instruction: "RUN a", Status: StepRan, DurationMs: 100},
		{Stage: "stage-0", Line: 3, Instruction: "RUN b", Status: StepCached, EarlierMs: 200},
		{Stage: "stage-0", Line: 4, Instruction: "RUN c", Status: StepCached},
	}
	p := PlanSteps(before, cur, Compare(before, cur, inputs.NewRedaction(nil, "k")), earlier)
	if want := map[int]int64{3: 100, 4: 200}; !maps.Equal(p.Earlier, want) {
		t.Errorf("earlier %v, want %v", p.Earlier, want)
	}
}

// TestPlatformMoved: a service without platforms builds for its
// builder's; a builder of another platform than the earlier build's is
// the cause of every miss, and CheckSteps says so.
func TestPlatformMoved(t *testing.T) {
	amd, arm := &Buildkit{Platform: "linux/amd64"}, &Buildkit{Platform: "linux/arm64"}
	none, set := &inputs.Inputs{}, &inputs.Inputs{Platforms: []string{"linux/amd64"}}
	for _, tc := range []struct {
		name         string
		cur          *inputs.Inputs
		earlier, now *Buildkit
		moved        bool
	}{
		{"another builder platform", none, arm, amd, true},
		{"this builder's platform unknown", none, arm, &Buildkit{}, false},
		{"no daemon now", none, arm, nil, false},
		{"the same", none, amd, amd, false},
		{"platforms set: hashed, so a change is a cause", set, arm, amd, false},
		{"an earlier record without it", none, &Buildkit{}, amd, false},
		{"no daemon recorded", none, nil, amd, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := PlatformMoved(tc.cur, tc.earlier, tc.now)
			if (got != "") != tc.moved || tc.moved && !strings.Contains(got, "built for linux/arm64") {
				t.Errorf("%q, want moved %v", got, tc.moved)
			}
		})
	}
	steps := []Step{{Line: 2, Status: StepRan}}
	CheckSteps(steps, &StepPlan{OtherPlatform: PlatformMoved(none, arm, amd)}, func(Step) string { return "other" })
	if !steps[0].Unexpected || !strings.Contains(steps[0].Reason, "this build is for linux/amd64") {
		t.Errorf("a miss after the builder's platform moved: %+v", steps[0])
	}
}

// TestPlanEarlierByStage: the same instruction in two stages takes its
// time from its own stage's step.
func TestPlanEarlierByStage(t *testing.T) {
	files := map[string]string{"compose.yaml": "services:\n  app:\n    build: .\n", "Dockerfile": "FROM busybox AS x\nRUN a\nFROM busybox\nCOPY --from=x / /x\nRUN a\n"}
	in := compute(t, sourcetest.Tree(t, files))["app"]
	earlier := []Step{{Stage: "stage-1", Line: 5, Instruction: "RUN a", Status: StepRan, DurationMs: 300}}
	p := PlanSteps(in, in, Compare(in, in, inputs.NewRedaction(nil, "k")), earlier)
	if want := map[int]int64{5: 300}; !maps.Equal(p.Earlier, want) {
		t.Errorf("earlier %v, want %v", p.Earlier, want)
	}
}
