package compose

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/bkcache/bkcache/context/imageref"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/tonistiigi/go-csvvalue"
)

// Attestations say which supply-chain attestations a service's image
// carries. Both fields are canonical (keys sorted, defaults filled in),
// so that two spellings of one setting hash alike.
type Attestations struct {
	// Provenance is "" (none) or its settings, "mode=min" or
	// "mode=max", with ",version=v0.2|v1" when one was asked for.
	Provenance string
	// SBOM is "" (none) or "generator=IMAGE", the scanner image.
	SBOM string
	// ProvenanceDefault says the provenance is the default one, asked
	// for by nobody: BuildKit then puts it in the image only
	// ("inline-only"), not beside a local or tar output, as buildx does.
	ProvenanceDefault bool
}

// DefaultProvenance is the provenance a service gets when neither the
// compose file nor --provenance says: buildx's default.
const DefaultProvenance = "mode=min"

// DefaultSBOMGenerator is the scanner `sbom: true` means, BuildKit's.
const DefaultSBOMGenerator = "docker/buildkit-syft-scanner:stable-1"

// ErrAttestation marks a malformed provenance or sbom setting.
var ErrAttestation = errors.New("malformed attestation setting")

// ParseProvenance reads a provenance setting as buildx's --provenance
// and compose's build.provenance take it: true, false, or
// comma-separated mode=min|max and version=v0.2|v1. It returns the
// canonical form, "" for none.
func ParseProvenance(s string) (_ string, err error) {
	defer hint(&err, "true, false, mode=min or mode=max")
	if b, err := strconv.ParseBool(s); err == nil {
		if b {
			return DefaultProvenance, nil
		}
		return "", nil
	}
	kv, err := fields(s, "mode", "version", "disabled")
	if err != nil {
		return "", err
	}
	if off, err := disabled(kv); off || err != nil {
		return "", err
	}
	mode := kv["mode"]
	switch mode {
	case "":
		mode = "min"
	case "min", "max":
	default:
		return "", fmt.Errorf("%w %q: mode is min or max, not %q", ErrAttestation, s, mode)
	}
	out := "mode=" + mode
	switch v := kv["version"]; v {
	case "":
	case "v0.2", "v1":
		out += ",version=" + v
	default:
		return "", fmt.Errorf("%w %q: version is v0.2 or v1, not %q", ErrAttestation, s, v)
	}
	return out, nil
}

// ParseSBOM reads an SBOM setting as buildx's --sbom and compose's
// build.sbom take it: true, false, or generator=IMAGE. It returns the
// canonical form, "" for none.
func ParseSBOM(s string) (_ string, err error) {
	defer hint(&err, "true, false or generator=IMAGE")
	if b, err := strconv.ParseBool(s); err == nil {
		if b {
			return "generator=" + DefaultSBOMGenerator, nil
		}
		return "", nil
	}
	kv, err := fields(s, "generator", "disabled")
	if err != nil {
		return "", err
	}
	if off, err := disabled(kv); off || err != nil {
		return "", err
	}
	gen := kv["generator"]
	if gen == "" {
		gen = DefaultSBOMGenerator
	}
	if _, err := imageref.Parse(gen); err != nil {
		return "", fmt.Errorf("%w %q: generator %q is not an image reference: %v", ErrAttestation, s, gen, err)
	}
	return "generator=" + gen, nil
}

// hint adds what to write instead to a parse error.
func hint(err *error, use string) {
	if *err != nil {
		*err = fmt.Errorf("%w; use %s", *err, use)
	}
}

// fields splits comma-separated key=value pairs, allowing only keys.
func fields(s string, keys ...string) (map[string]string, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("%w: empty", ErrAttestation)
	}
	parts, err := csvvalue.Fields(s, nil)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %v", ErrAttestation, s, err)
	}
	kv := map[string]string{}
	for _, p := range parts {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		switch {
		case !ok || v == "":
			return nil, fmt.Errorf("%w %q: want KEY=VALUE, not %q", ErrAttestation, s, p)
		case !slices.Contains(keys, k):
			return nil, fmt.Errorf("%w %q: unknown key %q (known: %s)", ErrAttestation, s, k, strings.Join(keys, ", "))
		case kv[k] != "":
			return nil, fmt.Errorf("%w %q: %s given twice", ErrAttestation, s, k)
		}
		kv[k] = v
	}
	return kv, nil
}

func disabled(kv map[string]string) (bool, error) {
	v, ok := kv["disabled"]
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: disabled is true or false, not %q", ErrAttestation, v)
	}
	return b, nil
}

// attestations resolves a service's settings: the flag's (when given,
// already canonical) over the compose key's over the default.
func attestations(opt Options, b *types.BuildConfig) (Attestations, error) {
	var a Attestations
	var given bool
	var err error
	if a.Provenance, given, err = setting(opt.Provenance, b.Provenance, "build.provenance", ParseProvenance); err != nil {
		return a, err
	}
	if !given {
		a.Provenance, a.ProvenanceDefault = DefaultProvenance, true
	}
	a.SBOM, _, err = setting(opt.SBOM, b.SBOM, "build.sbom", ParseSBOM)
	return a, err
}

// setting is one attestation setting: the flag's value when given, else
// the compose key's, parsed; given says whether either said anything.
func setting(flag *string, key, keyName string, parse func(string) (string, error)) (v string, given bool, err error) {
	switch {
	case flag != nil:
		return *flag, true, nil
	case key != "":
		if v, err = parse(key); err != nil {
			return "", true, fmt.Errorf("%s: %w", keyName, err)
		}
		return v, true, nil
	}
	return "", false, nil
}
