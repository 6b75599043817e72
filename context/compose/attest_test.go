package compose

import (
	"errors"
	"regexp"
	"slices"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

func TestParseProvenance(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "true", want: "mode=min"},
		{in: "1", want: "mode=min"},
		{in: "false", want: ""},
		{in: "mode=min", want: "mode=min"},
		{in: "mode=max", want: "mode=max"},
		{in: " mode=max ", want: "mode=max"},
		{in: "version=v1,mode=max", want: "mode=max,version=v1"},
		{in: "mode=max,version=v0.2", want: "mode=max,version=v0.2"},
		{in: "version=v1", want: "mode=min,version=v1"},
		{in: "mode=max,disabled=true", want: ""},
		{in: "mode=max,disabled=false", want: "mode=max"},
		{in: "", err: "empty"},
		{in: "max", err: `want KEY=VALUE, not "max"`},
		{in: "mode=mid", err: `mode is min or max, not "mid"`},
		{in: "mode=", err: "want KEY=VALUE"},
		{in: "mode=min,mode=max", err: "mode given twice"},
		{in: "version=v3", err: "version is v0.2 or v1"},
		{in: "generator=x", err: `unknown key "generator"`},
		{in: "disabled=maybe", err: "disabled is true or false"},
		{in: `"mode=min`, err: "malformed"},
		{in: "max", err: "; use true, false, mode=min or mode=max"},
	} {
		got, err := ParseProvenance(tc.in)
		checkParse(t, "provenance", tc.in, got, err, tc.want, tc.err)
	}
}

func TestParseSBOM(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{in: "true", want: "generator=" + DefaultSBOMGenerator},
		{in: "false", want: ""},
		{in: "generator=reg.local/scanner:1", want: "generator=reg.local/scanner:1"},
		{in: "generator=reg.local/scanner@sha256:" + sixtyFour, want: "generator=reg.local/scanner@sha256:" + sixtyFour},
		{in: "disabled=true", want: ""},
		{in: "disabled=false", want: "generator=" + DefaultSBOMGenerator},
		{in: "", err: "empty"},
		{in: "syft", err: "want KEY=VALUE"},
		{in: "mode=max", err: `unknown key "mode"`},
		{in: "generator=Not A/Ref", err: "is not an image reference"},
		{in: "generator=a\n0", err: "is not an image reference"},
		{in: "disabled=maybe", err: "disabled is true or false"},
		{in: "syft", err: "; use true, false or generator=IMAGE"},
	} {
		got, err := ParseSBOM(tc.in)
		checkParse(t, "sbom", tc.in, got, err, tc.want, tc.err)
	}
}

const sixtyFour = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func checkParse(t *testing.T, kind, in, got string, err error, want, wantErr string) {
	t.Helper()
	if wantErr != "" {
		if !errors.Is(err, ErrAttestation) || !regexp.MustCompile(regexp.QuoteMeta(wantErr)).MatchString(err.Error()) {
			t.Errorf("%s %q: error %v, want ErrAttestation saying %q", kind, in, err, wantErr)
		}
		return
	}
	if err != nil || got != want {
		t.Errorf("%s %q = %q, %v; want %q", kind, in, got, err, want)
	}
}

// canonicalProvenance and canonicalSBOM are what the manifest schema
// allows (docs/manifest.schema.json).
var (
	canonicalProvenance = regexp.MustCompile(`^(|mode=(min|max)(,version=(v0\.2|v1))?)$`)
	canonicalSBOM       = regexp.MustCompile(`^(|generator=[^\s]+)$`)
)

// FuzzAttestations: whatever parses comes out canonical, and the
// canonical form parses to itself, so that one setting always hashes
// alike however it was spelt.
func FuzzAttestations(f *testing.F) {
	for _, s := range []string{"true", "false", "mode=max", "version=v1,mode=min", "generator=a/b:c", "disabled=1", `"mode=max"`, "mode=max,,", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, p := range []struct {
			parse     func(string) (string, error)
			canonical *regexp.Regexp
		}{{ParseProvenance, canonicalProvenance}, {ParseSBOM, canonicalSBOM}} {
			got, err := p.parse(s)
			if err != nil {
				if !errors.Is(err, ErrAttestation) {
					t.Fatalf("%q: error %v is not ErrAttestation", s, err)
				}
				continue
			}
			if !p.canonical.MatchString(got) {
				t.Fatalf("%q parsed to %q, which is not canonical", s, got)
			}
			if got == "" {
				continue
			}
			again, err := p.parse(got)
			if err != nil || again != got {
				t.Fatalf("%q parsed to %q, which parses to %q, %v", s, got, again, err)
			}
		}
	})
}

// TestLoadAttestations: the flag wins over the compose key, which wins
// over the default; --platform replaces every service's platforms.
func TestLoadAttestations(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"compose.yaml": `
services:
  keyed:
    platform: linux/arm64
    build: {context: ., provenance: "mode=max", sbom: "true"}
  plain:
    build: {context: ., platforms: [linux/amd64, linux/arm64]}
`})
	off, gen := "", "generator=reg.local/scan:1"
	for _, tc := range []struct {
		name      string
		opt       Options
		keyed     Attestations
		plain     Attestations
		platforms []string
	}{
		{"compose keys and default", Options{},
			Attestations{Provenance: "mode=max", SBOM: "generator=" + DefaultSBOMGenerator},
			Attestations{Provenance: "mode=min", ProvenanceDefault: true}, nil},
		{"flags over keys", Options{Provenance: &off, SBOM: &gen, Platforms: []string{"linux/s390x"}},
			Attestations{SBOM: gen}, Attestations{SBOM: gen}, []string{"linux/s390x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := load(t, dir, tc.opt)
			if got := p.Services["keyed"].Attestations; got != tc.keyed {
				t.Errorf("keyed: %+v, want %+v", got, tc.keyed)
			}
			if got := p.Services["plain"].Attestations; got != tc.plain {
				t.Errorf("plain: %+v, want %+v", got, tc.plain)
			}
			wantKeyed, wantPlain := []string{"linux/arm64"}, []string{"linux/amd64", "linux/arm64"}
			if tc.platforms != nil {
				wantKeyed, wantPlain = tc.platforms, tc.platforms
			}
			if got := p.Services["keyed"].Platforms; !slices.Equal(got, wantKeyed) {
				t.Errorf("keyed platforms %v, want %v", got, wantKeyed)
			}
			if got := p.Services["plain"].Platforms; !slices.Equal(got, wantPlain) {
				t.Errorf("plain platforms %v, want %v", got, wantPlain)
			}
		})
	}
}
