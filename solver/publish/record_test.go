package publish

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	"github.com/bkcache/bkcache/solver/record"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/google/go-containerregistry/pkg/name"
	digest "github.com/opencontainers/go-digest"
)

// TestRecorderRun: a run's record holds every job, in order: a built or
// failed service with its cache and steps, a skipped one without them,
// one with no result as only hashed; each result's facts and timing as
// it happened (a start before the run's counts from the run's); the
// args the redaction names redacted in the record, never in the inputs.
func TestRecorderRun(t *testing.T) {
	start := time.Unix(1000, 0)
	job := func(name string) *plan.Job {
		j := plantest.Job(t, "reg.local/p/"+name, digest.FromString(name), &compose.Service{Name: name})
		j.Inputs.Scheme, j.Inputs.Args = inputs.Scheme, map[string]string{"TOKEN": "hunter2", "V": "1"}
		return j
	}
	p := &plan.Plan{Jobs: []*plan.Job{job("built"), job("skipped"), job("failed"), job("hashed")}}
	at := &record.Location{File: "Dockerfile", Line: 3}
	changes := &record.Report{Service: "built"}
	results := []*outcome.Result{
		{Service: "built", Status: outcome.Built, Image: "reg.local/p/built:h", Digest: "sha256:b", Node: "tcp://n1",
			CachedSteps: 2, TotalSteps: 5, CacheImports: []string{"registry:i"}, Warnings: []string{"w"}, Changes: changes,
			Start: start.Add(1500 * time.Millisecond), Duration: 2 * time.Second,
			CacheImportMs: 3, CacheExportMs: 4, CacheImportBytes: 5, CacheExportBytes: 6},
		{Service: "skipped", Status: outcome.Skipped, Digest: "sha256:s", CachedSteps: 9, TotalSteps: 9, Start: start.Add(-time.Second)},
		{Service: "failed", Status: outcome.Failed, Error: "boom", ErrorAt: at, Start: start},
	}
	r := &Recorder{Project: "p", Tool: "test", Buildkit: &record.Buildkit{Version: "v0"}, Redact: inputs.NewRedaction([]string{"TOKEN"}, "key"), Start: start}
	m := r.Run(p, results)
	if m.Project != "p" || m.Tool.Version != "test" || m.Buildkit.Version != "v0" || !m.Created.Equal(start) || len(m.Services) != 4 {
		t.Fatalf("manifest %+v", m)
	}
	timing := func(startMs, totalMs, im, em, ib, eb int64) *record.Timing {
		return &record.Timing{StartMs: startMs, TotalMs: totalMs, CacheImportMs: im, CacheExportMs: em, CacheImportBytes: ib, CacheExportBytes: eb}
	}
	want := []record.Service{
		{Service: "built", Status: "built", Image: "reg.local/p/built:h", Digest: "sha256:b", Node: "tcp://n1", Warnings: []string{"w"}, Changes: changes,
			Cache: &record.Cache{Imports: []string{"registry:i"}, Exports: []string{}}, Steps: &record.Steps{Cached: 2, Total: 5}, Timing: timing(1500, 2000, 3, 4, 5, 6)},
		{Service: "skipped", Status: "skipped", Digest: "sha256:s", Timing: timing(0, 0, 0, 0, 0, 0)},
		{Service: "failed", Status: "failed", Error: "boom", ErrorAt: at,
			Cache: &record.Cache{Imports: []string{}, Exports: []string{}}, Steps: &record.Steps{}, Timing: timing(0, 0, 0, 0, 0, 0)},
		{Service: "hashed", Status: "hashed"},
	}
	for i, s := range m.Services {
		j := p.Jobs[i]
		w := want[i]
		w.Hash, w.Scheme = j.Inputs.Tag(), inputs.Scheme
		got := *s
		got.Inputs = nil
		if !reflect.DeepEqual(got, w) {
			t.Errorf("record %d:\n got %+v\nwant %+v", i, got, w)
		}
		if s.Inputs == nil || s.Inputs.Args["TOKEN"] == "hunter2" || s.Inputs.Args["V"] != "1" {
			t.Errorf("record %d: args %v, want TOKEN redacted, V as it is", i, s.Inputs.Args)
		}
		if j.Inputs.Args["TOKEN"] != "hunter2" {
			t.Errorf("the job's own inputs were redacted")
		}
	}
}

// attachRecord attaches a record of the service in of r to the image
// repository@d, as a publish would.
func attachRecord(t *testing.T, repository string, d digest.Digest, in *inputs.Inputs) {
	t.Helper()
	attachResult(t, testRecorder, repository, in, &outcome.Result{Service: in.Service, Status: outcome.Built, Digest: d})
}

// attachResult attaches to repository@res.Digest the record rec writes
// of a build of in that ended as res.
func attachResult(t *testing.T, rec Recorder, repository string, in *inputs.Inputs, res *outcome.Result) {
	t.Helper()
	d := res.Digest
	j := plantest.Job(t, repository, in.Hash, &compose.Service{Name: in.Service})
	j.Inputs = in
	doc, err := rec.document(j, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := registry.New(registry.Options{}).Attach(context.Background(), rt.Ref(t, repository+"@"+d.String()).(name.Digest), record.ArtifactType, doc, time.Now()); err != nil {
		t.Fatal(err)
	}
}

// TestExplain: with Options.Explain a solved service gets why it
// rebuilt, compared with the record on the image R:F names; nothing
// without the option, for a service with no repository, or when R:F
// names no image, no record, or a record without the service.
func TestExplain(t *testing.T) {
	srv := rt.Serve(t, true)
	host := srv.Host
	old := &inputs.Inputs{Scheme: inputs.Scheme, Service: "s", Hash: digest.FromString("old"), Args: map[string]string{"V": "1"}}
	cur := &inputs.Inputs{Scheme: inputs.Scheme, Service: "s", Hash: testHash, Args: map[string]string{"V": "2"}}
	withRecord := host + "/p/with"
	d := digest.Digest(rt.PushRandom(t, withRecord+":ci"))
	attachRecord(t, withRecord, d, old)
	other := host + "/p/other"
	d = digest.Digest(rt.PushRandom(t, other+":ci"))
	attachRecord(t, other, d, &inputs.Inputs{Scheme: inputs.Scheme, Service: "another", Hash: digest.FromString("x")})
	bare := host + "/p/bare"
	rt.PushRandom(t, bare+":ci")
	// A record anyone could have pushed: the service, without inputs.
	hollow := host + "/p/hollow"
	d = digest.Digest(rt.PushRandom(t, hollow+":ci"))
	doc := `{"schemaVersion": 1, "tool": {"name": "bkcache", "version": "x"}, "project": "p", "created": "2026-01-01T00:00:00Z", "services": [{"service": "s", "status": "built", "hash": "` + testHash.Encoded() + `", "scheme": "x"}]}`
	if err := registry.New(registry.Options{}).Attach(context.Background(), rt.Ref(t, hollow+"@"+d.String()).(name.Digest), record.ArtifactType, []byte(doc), time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		repository string
		explain    bool
		local      bool
		want       bool
	}{
		{"a record on R:F", withRecord, true, false, true},
		{"not asked", withRecord, false, false, false},
		{"no repository", withRecord, true, true, false},
		{"R:F names nothing", host + "/p/none", true, false, false},
		{"no record on R:F", bare, true, false, false},
		{"a record of other services", other, true, false, false},
		{"a record of the service without its inputs", hollow, true, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := plantest.Job(t, tc.repository, testHash, &compose.Service{Name: "s"})
			j.Inputs, j.Local = cur, tc.local
			before := srv.Requests()
			res := &outcome.Result{Service: "s"}
			wait := New(registry.New(registry.Options{}), Options{Explain: tc.explain, Recorder: testRecorder}).Explain(context.Background(), j, res)
			wait()
			wait() // again: the answer stays, and nothing blocks
			if (res.Changes != nil) != tc.want {
				t.Fatalf("changes %+v, want some: %v", res.Changes, tc.want)
			}
			if tc.want && (res.Changes.Same || len(res.Changes.Args) != 1 || res.Changes.Args[0].Old != "1") {
				t.Errorf("changes %+v, want the arg V 1 -> 2", res.Changes)
			}
			if asked := srv.Requests() != before; asked != (tc.explain && !tc.local) {
				t.Errorf("the registry was asked: %v", asked)
			}
		})
	}
}

// TestReadRecord: the newest record on an image, or an error that says
// which of the three things is missing or wrong, naming the ref.
func TestReadRecord(t *testing.T) {
	host := rt.Serve(t, true).Host
	ctx := context.Background()
	reg := registry.New(registry.Options{})
	repo := host + "/p/app"
	d := digest.Digest(rt.PushRandom(t, repo+":ci"))
	if _, err := ReadRecord(ctx, reg, rt.Ref(t, repo+":nope")); !errors.Is(err, registry.ErrNotFound) {
		t.Errorf("no image: %v", err)
	}
	_, err := ReadRecord(ctx, reg, rt.Ref(t, repo+":ci"))
	if !errors.Is(err, ErrNoRecord) || !strings.Contains(err.Error(), repo+":ci") || !strings.Contains(err.Error(), d.String()) {
		t.Errorf("no record: %v", err)
	}
	if err := reg.Attach(ctx, rt.Ref(t, repo+"@"+d.String()).(name.Digest), record.ArtifactType, []byte(`{"schemaVersion": 99}`), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRecord(ctx, reg, rt.Ref(t, repo+":ci")); err == nil || errors.Is(err, ErrNoRecord) || !strings.Contains(err.Error(), repo+":ci") {
		t.Errorf("a record of another version: %v", err)
	}
	attachRecord(t, repo, d, &inputs.Inputs{Scheme: inputs.Scheme, Service: "s", Hash: testHash})
	m, err := ReadRecord(ctx, reg, rt.Ref(t, repo+":ci"))
	if err != nil || m.Find("s") == nil {
		t.Errorf("the newest record: %v, %v", m, err)
	}
	if has, err := hasRecord(ctx, reg, rt.Ref(t, repo+"@"+d.String()).(name.Digest)); !has || err != nil {
		t.Errorf("hasRecord = %v, %v", has, err)
	}
}

// TestExplainCarriesEarlierSteps: the steps recorded on R:F's image give
// the plan the earlier build's duration of each instruction, by its
// line in this Dockerfile.
func TestExplainCarriesEarlierSteps(t *testing.T) {
	host := rt.Serve(t, true).Host
	const df = "FROM busybox\nRUN one\nCOPY f /f\n"
	old := &inputs.Inputs{Scheme: inputs.Scheme, Service: "s", Hash: digest.FromString("old"), Args: map[string]string{"V": "1"}, Dockerfile: inputs.Dockerfile{Content: df}}
	cur := &inputs.Inputs{Scheme: inputs.Scheme, Service: "s", Hash: testHash, Args: map[string]string{"V": "2"}, Dockerfile: inputs.Dockerfile{Content: "FROM busybox\nARG V\nRUN one\nCOPY f /f\n"}}
	// explain explains cur against the record on repository:ci, as a run
	// with rec.
	explain := func(repository string, rec Recorder) *outcome.Result {
		j := plantest.Job(t, repository, testHash, &compose.Service{Name: "s"})
		j.Inputs = cur
		res := &outcome.Result{Service: "s"}
		New(registry.New(registry.Options{}), Options{Explain: true, Recorder: rec}).Explain(context.Background(), j, res)()
		return res
	}
	repository := host + "/p/steps"
	arm, amd := testRecorder, testRecorder
	arm.Buildkit, amd.Buildkit = &record.Buildkit{Platform: "linux/arm64"}, &record.Buildkit{Platform: "linux/amd64"}
	attachResult(t, arm, repository, old, &outcome.Result{Service: "s", Status: outcome.Built, Digest: digest.Digest(rt.PushRandom(t, repository+":ci")), Steps: []record.Step{
		{Stage: "stage-0", Line: 2, Instruction: "RUN one", Status: record.StepRan, DurationMs: 1234},
		{Stage: "stage-0", Line: 3, Instruction: "COPY f /f", Status: record.StepCached, DurationMs: 5},
	}})
	res := explain(repository, amd)
	if res.StepPlan == nil || res.StepPlan.Earlier[3] != 1234 {
		t.Fatalf("plan %+v: want line 3 (RUN one, line 2 before) to have taken 1234 ms the last time", res.StepPlan)
	}
	// The earlier build's builder was arm64, this one's amd64: the plan
	// says so, the likely cause of every miss.
	if !strings.Contains(res.StepPlan.OtherPlatform, "linux/arm64") || !strings.Contains(res.StepPlan.OtherPlatform, "linux/amd64") {
		t.Errorf("the plan's other platform: %q", res.StepPlan.OtherPlatform)
	}

	// A record attached to a skipped service (a promotion that gave R:H
	// its missing record) has no steps: a plan all the same, without
	// earlier durations; and by the same builder, no other platform.
	skipped := host + "/p/skipped"
	attachResult(t, testRecorder, skipped, old, &outcome.Result{Service: "s", Status: outcome.Skipped, Digest: digest.Digest(rt.PushRandom(t, skipped+":ci"))})
	res = explain(skipped, testRecorder)
	if res.StepPlan == nil || len(res.StepPlan.Earlier) > 0 || res.StepPlan.OtherPlatform != "" {
		t.Errorf("plan %+v after a record without steps: want one, without earlier durations or another platform", res.StepPlan)
	}
}
