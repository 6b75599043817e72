package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/e2e/sandbox"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const (
	predicateSPDX    = "https://spdx.dev/Document"
	predicateSLSA02  = "https://slsa.dev/provenance/v0.2"
	predicateSLSA1   = "https://slsa.dev/provenance/v1"
	attestationIndex = "attestation-manifest"
)

// index is what an image index in the registry holds: each platform's
// image digest and the predicate types attested for it.
type index struct {
	images  map[string]string   // "linux/arm64": digest
	attests map[string][]string // "linux/arm64": predicate types, sorted
	layers  map[string]map[string]string
}

// readIndex reads the index at ref and its attestation manifests. layers
// holds, per platform, each attestation layer's content by predicate type.
func readIndex(t *testing.T, ref string) index {
	t.Helper()
	r := mustRef(t, ref)
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("%s is not an index: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	out := index{images: map[string]string{}, attests: map[string][]string{}, layers: map[string]map[string]string{}}
	byDigest := map[string]string{}
	for _, m := range im.Manifests {
		if m.Annotations["vnd.docker.reference.type"] != attestationIndex {
			p := m.Platform.OS + "/" + m.Platform.Architecture
			out.images[p], byDigest[m.Digest.String()] = m.Digest.String(), p
		}
	}
	for _, m := range im.Manifests {
		if m.Annotations["vnd.docker.reference.type"] != attestationIndex {
			continue
		}
		p, ok := byDigest[m.Annotations["vnd.docker.reference.digest"]]
		if !ok {
			t.Fatalf("%s: attestation manifest %s is for %s, no image of the index", ref, m.Digest, m.Annotations["vnd.docker.reference.digest"])
		}
		img, err := remote.Image(r.Context().Digest(m.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		man, err := img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		out.layers[p] = map[string]string{}
		for _, l := range man.Layers {
			pt := l.Annotations["in-toto.io/predicate-type"]
			out.attests[p] = append(out.attests[p], pt)
			layer, err := img.LayerByDigest(l.Digest)
			if err != nil {
				t.Fatal(err)
			}
			rc, err := layer.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			out.layers[p][pt] = string(b)
		}
		slices.Sort(out.attests[p])
	}
	return out
}

// registryState is what a run could have pushed to repository r: each
// tag with its digest, and how many manifests the registry stores for r
// (every manifest and index ever pushed, tagged or not: the registry's
// own revisions directory).
func registryState(t *testing.T, r string) (map[string]string, int) {
	t.Helper()
	tags := map[string]string{}
	for _, tag := range tagsOf(t, r) {
		tags[tag] = head(t, r+":"+tag)
	}
	n, err := sb.StoredManifests(r)
	if err != nil {
		t.Fatal(err)
	}
	return tags, n
}

// TestAttestations: provenance (on by default, as buildx) and an SBOM
// from a scanner the sandbox built are in R:H's index, one per platform;
// --provenance=false leaves them out under another hash; and a run with
// nothing changed is a skip that pushes no manifest at all, mode=max and
// SBOM included, where buildx pushes a new index every time.
func TestAttestations(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := twoPlatforms(t, r, nil)
	d := newDaemon(t)
	byDefault := mustBuild(t, dir, d.env(), "--push")["app"]
	idx := readIndex(t, byDefault.Image)
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		if got := idx.attests[p]; len(got) != 1 || (got[0] != predicateSLSA1 && got[0] != predicateSLSA02) {
			t.Errorf("default: %s attested %v, want one SLSA provenance", p, got)
		}
	}

	none := mustBuild(t, dir, d.env(), "--push", "--provenance=false")["app"]
	if none.Hash == byDefault.Hash {
		t.Errorf("--provenance=false has the default's hash %s: the two images would share a tag", none.Hash)
	}
	if idx := readIndex(t, none.Image); len(idx.attests) != 0 || len(idx.images) != 2 {
		t.Errorf("--provenance=false: index holds %v and attestations %v, want both platforms, none", idx.images, idx.attests)
	}

	full := []string{"--push", "--provenance", "mode=max", "--sbom", "generator=" + sb.RegistryAddr + "/" + sandbox.ScannerImage}
	first := mustBuild(t, dir, d.env(), full...)["app"]
	idx = readIndex(t, first.Image)
	for _, p := range []string{"linux/amd64", "linux/arm64"} {
		want := []string{predicateSLSA1, predicateSPDX}
		if got := idx.attests[p]; !slices.Equal(got, want) {
			t.Errorf("mode=max and SBOM: %s attested %v, want %v", p, got, want)
		}
		arch := strings.TrimPrefix(p, "linux/")
		if sbom := idx.layers[p][predicateSPDX]; !strings.Contains(sbom, `"fileName":"/arch.txt"`) || !strings.Contains(sbom, sha256Hex(arch+" of "+r)) {
			t.Errorf("%s SBOM does not list /arch.txt with its digest:\n%s", p, sbom)
		}
	}

	tags, manifests := registryState(t, r+"/app")
	d.prune(t)
	again := mustBuild(t, dir, d.env(), full...)["app"]
	if again.Status != "skipped" || again.Digest != first.Digest {
		t.Errorf("no-op run: %s %s, want skipped with %s", again.Status, again.Digest, first.Digest)
	}
	tagsAfter, manifestsAfter := registryState(t, r+"/app")
	if !maps.Equal(tags, tagsAfter) || manifests != manifestsAfter {
		t.Errorf("the no-op run pushed: tags %v -> %v, %d -> %d manifests", tags, tagsAfter, manifests, manifestsAfter)
	}
	t.Logf("no-op run with mode=max provenance and SBOM: %d tags and %d manifests before and after", len(tags), manifests)
}

// TestEmulatedRun: a RUN step for linux/arm64 runs the arm64 binary
// under qemu (binfmt_misc), and the image says so; amd64 runs natively.
func TestEmulatedRun(t *testing.T) {
	requireSandbox(t)
	requireEmulation(t)
	r := repo(t)
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  app:\n    image: " + r + "/app\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n",
		"Dockerfile":   "FROM " + sb.RegistryAddr + "/" + sandbox.MachineImage + "\nRUN [\"/machine\", \"/uname-m.txt\"]\n",
	})
	built := mustBuild(t, dir, nil, "--push")["app"]
	for arch, want := range map[string]string{"amd64": "x86_64", "arm64": "aarch64"} {
		files := platformFiles(t, built.Image, arch, "uname-m.txt")
		if got := files["uname-m.txt"]; got != want {
			t.Errorf("linux/%s: RUN saw machine %q, want %q", arch, got, want)
		}
	}
}

// requireEmulation skips (fails under CI) unless binfmt_misc runs arm64
// binaries through qemu.
func requireEmulation(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/fs/binfmt_misc/qemu-aarch64")
	if err == nil && strings.HasPrefix(string(b), "enabled") {
		return
	}
	msg := fmt.Sprintf("arm64 emulation is not registered (/proc/sys/fs/binfmt_misc/qemu-aarch64: %v): run `sudo .ci/deps --test`, which installs qemu-user-static and registers it", firstLine(b, err))
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func firstLine(b []byte, err error) string {
	if err != nil {
		return err.Error()
	}
	l, _, _ := strings.Cut(string(b), "\n")
	return l
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
