// Command releasetool writes bkcache's release into a directory: one
// archive per platform (the static binary, README.md and LICENSE), an
// SPDX SBOM per binary from its build info, SHA256SUMS, image/, an OCI
// layout of the bkcache image for the linux platforms, and, given
// Debian's busybox-static packages (-busybox), image-debug/, the same
// image with a shell. Two runs
// from the same commit write the same bytes: every time in them is the
// commit's (SOURCE_DATE_EPOCH), entries are sorted, owners are fixed.
// .ci/release runs it.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Platform is one target of a release.
type Platform struct{ OS, Arch string }

// Platforms are the release's targets.
var Platforms = []Platform{{"darwin", "amd64"}, {"darwin", "arm64"}, {"linux", "amd64"}, {"linux", "arm64"}, {"windows", "amd64"}}

func main() {
	out := flag.String("o", "dist", "output directory (replaced)")
	only := flag.String("platforms", "", "only these of the release's platforms, OS/ARCH comma-separated (for quick checks)")
	shells := flag.String("busybox", "", "a directory of Debian's busybox-static_*_ARCH.deb, one per linux platform, for the debug image (none: no debug image)")
	flag.Parse()
	platforms, err := pick(*only)
	if err == nil {
		err = run(*out, flag.Arg(0), platforms, *shells)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// pick is the release's platforms, or those of only.
func pick(only string) ([]Platform, error) {
	if only == "" {
		return Platforms, nil
	}
	var out []Platform
	for _, s := range strings.Split(only, ",") {
		goos, arch, _ := strings.Cut(strings.TrimSpace(s), "/")
		p := Platform{goos, arch}
		if !slices.Contains(Platforms, p) {
			return nil, fmt.Errorf("-platforms: %q is not one of the release's platforms", s)
		}
		out = append(out, p)
	}
	return out, nil
}

func run(out, version string, platforms []Platform, shellDir string) error {
	epoch, err := sourceDate()
	if err != nil {
		return err
	}
	var shells map[string]busybox
	if shellDir != "" {
		if shells, err = busyboxes(shellDir, platforms); err != nil {
			return err
		}
	}
	rev := revision()
	if version == "" {
		if version, err = pseudoVersion(epoch, rev); err != nil {
			return err
		}
	}
	docs, err := docFiles(version)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "bkcache-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var files []string
	bins := map[Platform]string{}
	for _, p := range platforms {
		made, bin, err := release(out, tmp, version, p, epoch, docs)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", p.OS, p.Arch, err)
		}
		files, bins[p] = append(files, made...), bin
	}
	if err := writeSums(out, files); err != nil {
		return err
	}
	meta := imageMeta{Version: version, Revision: rev, Source: "https://github.com/bkcache/bkcache", Created: epoch, Tag: version}
	if err := writeImage(filepath.Join(out, "image"), bins, meta, nil); err != nil || shells == nil {
		return err
	}
	return writeImage(filepath.Join(out, "image-debug"), bins, debugMeta(meta, shells), shells)
}

// revision is the commit released, or "unknown" outside a checkout.
func revision() string {
	b, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	return strings.TrimSpace(string(b))
}

// release builds one platform's binary and writes its archive and SBOM;
// it returns their names and the binary's path.
func release(out, tmp, version string, p Platform, epoch time.Time, docs []entry) ([]string, string, error) {
	bin := filepath.Join(tmp, p.OS+"_"+p.Arch, "bkcache")
	if p.OS == "windows" {
		bin += ".exe"
	}
	if err := build(bin, version, p); err != nil {
		return nil, "", err
	}
	base := fmt.Sprintf("bkcache_%s_%s_%s", version, p.OS, p.Arch)
	entries := append([]entry{{name: filepath.Base(bin), path: bin, mode: 0o755}}, docs...)
	archive := base + ".tar.gz"
	write := writeTarGz
	if p.OS == "windows" {
		archive, write = base+".zip", writeZip
	}
	if err := write(filepath.Join(out, archive), entries, epoch); err != nil {
		return nil, "", err
	}
	sbom := base + ".spdx.json"
	if err := writeSBOM(filepath.Join(out, sbom), bin, base, version, epoch); err != nil {
		return nil, "", err
	}
	return []string{archive, sbom}, bin, nil
}

// docFiles are what every archive holds beside the binary: README.md,
// and LICENSE when the checkout has one, which a release version must.
func docFiles(version string) ([]entry, error) {
	docs := []entry{{name: "README.md", path: "README.md", mode: 0o644}}
	if _, err := os.Stat("LICENSE"); err == nil {
		return append(docs, entry{name: "LICENSE", path: "LICENSE", mode: 0o644}), nil
	}
	return docs, unlicensed(version)
}

// unlicensed refuses a release version without a LICENSE to put in its
// archives; a pre-release (v1.0.0-rc.1, a pseudo-version, CI's
// v0.0.0-ci) may go without.
func unlicensed(version string) error {
	if strings.Contains(version, "-") {
		return nil
	}
	return fmt.Errorf("%s: no LICENSE at the top of the checkout to put in the archives; add one, or release a pre-release version (%s-rc.1)", version, version)
}

// build compiles a static, reproducible binary: no cgo, no paths of
// this machine, no build ID, the version stamped.
func build(bin, version string, p Platform) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=true",
		"-ldflags", "-s -w -buildid= -X main.version="+version, "-o", bin, "./cmd/bkcache")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch, "GOFLAGS=")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v\n%s", err, b)
	}
	return nil
}

// sourceDate is SOURCE_DATE_EPOCH, else the commit's time.
func sourceDate() (time.Time, error) {
	s := os.Getenv("SOURCE_DATE_EPOCH")
	if s == "" {
		b, err := exec.Command("git", "log", "-1", "--format=%ct").Output()
		if err != nil {
			return time.Time{}, fmt.Errorf("no SOURCE_DATE_EPOCH and no git commit to take the time from: %v", err)
		}
		s = strings.TrimSpace(string(b))
	}
	sec, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH %q: %v", s, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

// pseudoVersion is the Go pseudo-version of the commit rev, as
// `bkcache version` reports a build from a checkout.
func pseudoVersion(epoch time.Time, rev string) (string, error) {
	if len(rev) < 12 {
		return "", fmt.Errorf("no version given and no git commit to derive one from")
	}
	return fmt.Sprintf("v0.0.0-%s-%s", epoch.Format("20060102150405"), rev[:12]), nil
}
