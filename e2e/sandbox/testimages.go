package sandbox

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// ScannerImage is the SBOM generator the sandbox pushes (testimages/
// scanner): give it as --sbom generator=REGISTRY/ScannerImage.
const ScannerImage = "library/bkcache-scanner:latest"

// MachineImage holds /machine FILE (testimages/machine), which writes
// uname -m to FILE, for linux/amd64 and linux/arm64.
const MachineImage = "library/machine:latest"

// seedTestImages builds the test programs and pushes them as images:
// the scanner for this machine, machine for amd64 and arm64.
func (s *Sandbox) seedTestImages(ctx context.Context) error {
	scanner, err := s.goImage(ctx, "scanner", runtime.GOARCH, v1.Config{Entrypoint: []string{"/scanner"}})
	if err != nil {
		return err
	}
	if err := s.push(ctx, ScannerImage, scanner); err != nil {
		return err
	}
	idx := mutate.IndexMediaType(empty.Index, "application/vnd.oci.image.index.v1+json")
	for _, arch := range []string{"amd64", "arm64"} {
		img, err := s.goImage(ctx, "machine", arch, v1.Config{Entrypoint: []string{"/machine"}})
		if err != nil {
			return err
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
	}
	ref, err := name.ParseReference(s.RegistryAddr+"/"+MachineImage, name.Insecure)
	if err != nil {
		return err
	}
	return remote.WriteIndex(ref, idx, remote.WithContext(ctx))
}

// goImage builds testimages/prog for linux/arch, statically, into an
// image holding it alone as /prog.
func (s *Sandbox) goImage(ctx context.Context, prog, arch string, cfg v1.Config) (v1.Image, error) {
	out := filepath.Join(s.Bin, prog+"-"+arch)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./e2e/sandbox/testimages/"+prog)
	cmd.Dir = s.moduleRoot
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build testimages/%s for %s: %v\n%s", prog, arch, err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777})
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: prog, Mode: 0o755, Size: int64(len(bin))})
	tw.Write(bin)
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return oneLayer(buf.Bytes(), arch, cfg)
}

func (s *Sandbox) push(ctx context.Context, repoTag string, img v1.Image) error {
	ref, err := name.ParseReference(s.RegistryAddr+"/"+repoTag, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(ref, img, remote.WithContext(ctx))
}
