package publish

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/compose"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan/plantest"
	"github.com/bkcache/bkcache/solver/registry"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	digest "github.com/opencontainers/go-digest"
)

// TestFloatingFollowsWhatWasChecked: another run pushes R:H again (an
// image of the same inputs, not yet carrying its record) at the worst
// moment, while this run attaches the record to the image it checked.
// R:F and the compose tags must then name an image that carries its
// record: the one this run checked and attached to, not whatever R:H
// names a moment later. Both the skip path (promote) and the build path
// (publish) are driven, with R:F first nowhere and first elsewhere (a
// revert onto an older R:H that has no record yet).
func TestFloatingFollowsWhatWasChecked(t *testing.T) {
	p, host := rt.Faulty(t)
	for i, tc := range []struct {
		name    string
		built   bool // a build's publish, else a skip's promote
		ciFirst bool // R:F names another image first
	}{
		{"skip", false, false},
		{"skip, revert of R:F", false, true},
		{"build", true, false},
		{"build, R:F elsewhere", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			repo := fmt.Sprintf("p/race%d", i)
			direct := host + "/" + repo
			checked := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
			if tc.ciFirst {
				rt.PushRandom(t, direct+":ci")
			}
			var repushed digest.Digest
			p.Inject(faultproxy.Fault{Method: "PUT", Path: "^/v2/" + repo + "/manifests/sha256:", Times: 1, Before: func() {
				repushed = digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
			}})
			reg := registry.New(registry.Options{})
			b := New(reg, Options{Attach: true, Recorder: testRecorder})
			j := taggedLatest(t, p.Addr+"/"+repo)
			res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
			if tc.built {
				publishBuilt(b, j, checked, nil, "", res)
			} else {
				skip(t, b, j, res)
			}
			p.Clear()
			if repushed == "" {
				t.Fatal("the attach was never made: the race was not driven")
			}
			if res.Error != "" || res.Floating == "" {
				t.Fatalf("status %s, error %q, floating %q", res.Status, res.Error, res.Floating)
			}
			ci := digest.Digest(rt.Head(t, direct+":ci"))
			if ci != checked {
				t.Errorf("R:F at %s, want the image checked and attached to, %s (R:H now %s)", ci, checked, repushed)
			}
			m, err := ReadRecord(context.Background(), reg, rt.Ref(t, direct+":ci"))
			if err != nil || m.Services[0].Hash != testHash.Encoded() {
				t.Errorf("R:F names an image without its manifest: %v", err)
			}
			if !tc.built && digest.Digest(rt.Head(t, direct+":latest")) != checked {
				t.Errorf("the compose tag is at %s, want %s", digest.Digest(rt.Head(t, direct+":latest")), checked)
			}
		})
	}
}

// TestPublishForOutputOnly: a --push run that solved only for an output
// (R:H was there at the skip check) reports R:H's image, not the
// output's, and moves R:F there; a build's failed cache exports are its
// warnings.
func TestPublishForOutputOnly(t *testing.T) {
	host := rt.Serve(t, true).Host
	direct := host + "/p/output"
	rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
	b := New(registry.New(registry.Options{}), Options{})
	j := plantest.Job(t, direct, testHash, &compose.Service{Name: "s", Image: direct})
	res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	publishBuilt(b, j, digest.FromString("the output's own image"), []string{"exporting cache: refused"}, rh, res)
	if res.Status != outcome.Built || res.Digest != rh || res.Floating == "" || res.Error != "" {
		t.Fatalf("%+v, want built at R:H %s with R:F moved", res, rh)
	}
	if got := digest.Digest(rt.Head(t, direct+":ci")); got != rh {
		t.Errorf("R:F at %s, want R:H %s", got, rh)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "exporting cache: refused") {
		t.Errorf("warnings %q do not report the failed cache export", res.Warnings)
	}
}

// TestPublishOutcomes: what finish reports and leaves in the registry for
// each way the registry side can go after a solve.
func TestPublishOutcomes(t *testing.T) {
	p, host := rt.Faulty(t)
	for i, tc := range []struct {
		name        string
		inRegistry  bool   // R:H was there at the skip check (an output-only solve)
		reported    string // the digest buildkitd reports: "rh", "other" or ""
		fault       *faultproxy.Fault
		wantStatus  outcome.Status
		wantWarn    string // in the warnings, or "" for none
		wantErr     string
		wantLatest  bool // the compose tag at R:H afterwards
		wantAttach  bool // a manifest attached to R:H
		attachAllow bool // Options.Attach
	}{
		{name: "output only: R:H's image, tags converged, no warning", inRegistry: true, reported: "other", wantStatus: outcome.Built, wantLatest: true},
		{name: "output only: R:F refused", inRegistry: true, reported: "other", fault: &faultproxy.Fault{Method: "PUT", Path: "/manifests/ci$", Status: 400, Code: "MANIFEST_INVALID"}, wantStatus: outcome.Failed, wantErr: "ci", wantLatest: true},
		{name: "no digest reported", reported: "", wantStatus: outcome.Failed, wantErr: "buildkitd reported no image digest"},
		{name: "R:H unreadable", reported: "rh", fault: &faultproxy.Fault{Method: "HEAD", Path: "/manifests/" + testHash.Encoded() + "$", Status: 401, Code: "UNAUTHORIZED"}, wantStatus: outcome.Failed, wantErr: "checking the push of"},
		{name: "R:H pushed again by another run", reported: "other", wantStatus: outcome.Built, wantWarn: "was pushed again by another build of the same inputs"},
		{name: "no attach asked", reported: "rh", wantStatus: outcome.Built},
		{name: "attach asked", reported: "rh", wantStatus: outcome.Built, wantAttach: true, attachAllow: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.Clear()
			repo := fmt.Sprintf("p/finish%d", i)
			direct := host + "/" + repo
			rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
			reported := map[string]digest.Digest{"rh": rh, "other": digest.FromString("another build"), "": ""}[tc.reported]
			if tc.fault != nil {
				p.Inject(*tc.fault)
			}
			reg := registry.New(registry.Options{})
			b := New(reg, Options{Attach: tc.attachAllow, Recorder: testRecorder})
			j := taggedLatest(t, p.Addr+"/"+repo)
			res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
			var inRegistry digest.Digest
			if tc.inRegistry {
				inRegistry = rh
			}
			publishBuilt(b, j, reported, nil, inRegistry, res)
			p.Clear()
			if res.Status != tc.wantStatus || !strings.Contains(res.Error, tc.wantErr) {
				t.Fatalf("status %s, error %q; want %s, %q", res.Status, res.Error, tc.wantStatus, tc.wantErr)
			}
			warnings := strings.Join(res.Warnings, "\n")
			if (tc.wantWarn == "") != (warnings == "") || !strings.Contains(warnings, tc.wantWarn) {
				t.Errorf("warnings %q, want %q", warnings, tc.wantWarn)
			}
			if tc.wantStatus == outcome.Built && (res.Digest != rh || digest.Digest(rt.Head(t, direct+":ci")) != rh) {
				t.Errorf("digest %s, ci at %s; want both at R:H %s", res.Digest, digest.Digest(rt.Head(t, direct+":ci")), rh)
			}
			if latest, _, _ := registry.New(registry.Options{}).Head(context.Background(), rt.Ref(t, direct+":latest")); (latest == rh) != tc.wantLatest {
				t.Errorf("latest at %s: at R:H = %v, want %v", latest, latest == rh, tc.wantLatest)
			}
			_, err := ReadRecord(context.Background(), reg, rt.Ref(t, direct+"@"+rh.String()))
			if (err == nil) != tc.wantAttach {
				t.Errorf("a manifest attached = %v, want %v (%v)", err == nil, tc.wantAttach, err)
			}
		})
	}
}

// TestOutputOnlyAttachesOnce: with --push and an output, an R:H that was
// there is promoted once: one record attached to it, not one by the
// promotion and another by a publish after it.
func TestOutputOnlyAttachesOnce(t *testing.T) {
	host := rt.Serve(t, true).Host
	direct := host + "/p/once"
	rh := digest.Digest(rt.PushRandom(t, direct+":"+testHash.Encoded()))
	reg := registry.New(registry.Options{})
	b := New(reg, Options{Attach: true, Recorder: testRecorder})
	j := taggedLatest(t, direct)
	res := &outcome.Result{Service: "s", Hash: j.Inputs.Tag()}
	publishBuilt(b, j, digest.FromString("the output's image"), nil, rh, res)
	if res.Status != outcome.Built || res.Digest != rh {
		t.Fatalf("status %s (%q), digest %s", res.Status, res.Error, res.Digest)
	}
	idx, err := remote.Referrers(rt.Ref(t, direct+"@"+rh.String()).Context().Digest(rh.String()))
	if err != nil {
		t.Fatal(err)
	}
	if im, _ := idx.IndexManifest(); len(im.Manifests) != 1 {
		t.Errorf("%d records attached to R:H, want 1", len(im.Manifests))
	}
}
