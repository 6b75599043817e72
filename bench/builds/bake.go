package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// buildxVersion is the peer measured against; bench/notes.md cites it.
const buildxVersion = "v0.38.2"

// bake holds a cold build of the ten services with bkcache's defaults
// against `docker buildx bake --push` with registry cache (mode=max, as
// bkcache exports), on the same buildkitd through buildx's remote driver
// and the same registry, the daemon pruned before each; and counts the
// tags each leaves per service.
func (b *bench) bake(ctx context.Context, proj string) error {
	buildx, env, err := b.buildx(ctx)
	if err != nil {
		return err
	}
	var bk, bx []time.Duration
	var bkTags, bxTags float64
	for range b.runs {
		r := b.repo()
		b.prune()
		d, err := b.bkcache(proj, "build", "--push", "--repository", r)
		if err != nil {
			return err
		}
		bk = append(bk, d)
		if bkTags, err = tagsPerService(r); err != nil {
			return err
		}
		r = b.repo()
		b.prune()
		args := bakeArgs(r)
		start := time.Now()
		if out, err := b.runTool(ctx, proj, env, buildx, args...); err != nil {
			return fmt.Errorf("buildx bake: %v\n%s", err, out)
		}
		bx = append(bx, time.Since(start))
		if bxTags, err = tagsPerService(r); err != nil {
			return err
		}
	}
	b.row("first build of the 10 services, pruned daemon, empty registry, default flags", "bkcache build --push", median(bk),
		"docker buildx bake --push, registry cache mode=max ("+buildxVersion+", remote driver)", median(bx), "≤ 1.0")
	b.rows = append(b.rows, fmt.Sprintf("| tags per service after that build | bkcache | %.1f | buildx bake | %.1f | %.2f | H, ci, cache-H, cache-ci, and the referrers fallback tag where the registry has no referrers API |", bkTags, bxTags, bkTags/bxTags))
	return nil
}

// bakeArgs is `buildx bake --push` of the ten services into repository
// prefix r (see bakeServices), quietly, with extra flags.
func bakeArgs(r string, extra ...string) []string {
	var svcs []string
	for i := range services {
		svcs = append(svcs, svcName(i))
	}
	return bakeServices(r, "quiet", svcs, extra...)
}

// bakeServices is `buildx bake --push` of svcs into repository prefix r,
// with registry cache (mode=max, as bkcache exports), the progress
// output asked for, and extra flags.
func bakeServices(r, progress string, svcs []string, extra ...string) []string {
	args := append([]string{"--builder", "bkbench", "bake", "-f", "compose.yaml", "--push", "--progress", progress}, extra...)
	for _, s := range svcs {
		args = append(args,
			"--set", s+".tags="+r+"/"+s+":bake",
			"--set", s+".cache-from=type=registry,ref="+r+"/"+s+":cache",
			"--set", s+".cache-to=type=registry,mode=max,ref="+r+"/"+s+":cache")
	}
	return args
}

// buildx builds docker/buildx with go install and creates a builder on
// the sandbox's buildkitd with its remote driver, in a config directory
// of the bench's own; it returns the binary and the environment to run
// it in.
func (b *bench) buildx(ctx context.Context) (string, []string, error) {
	if b.buildxBin != "" { // made by an earlier measurement of this run
		return b.buildxBin, b.buildxEnv, nil
	}
	bin := filepath.Join(b.sb.Bin, "buildx")
	install := exec.CommandContext(ctx, "go", "install", "github.com/docker/buildx/cmd/buildx@"+buildxVersion)
	install.Env = append(os.Environ(), "GOBIN="+b.sb.Bin)
	if out, err := install.CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("building buildx %s: %v\n%s", buildxVersion, err, out)
	}
	cfg := filepath.Join(b.dir, "buildx")
	env := append(b.env(), "BUILDX_CONFIG="+cfg, "DOCKER_CONFIG="+cfg)
	if out, err := b.runTool(ctx, b.dir, env, bin, "create", "--name", "bkbench", "--driver", "remote", b.sb.BuildkitAddr); err != nil {
		return "", nil, fmt.Errorf("buildx create: %v\n%s", err, out)
	}
	b.buildxBin, b.buildxEnv = bin, env
	return bin, env, nil
}

// runTool runs bin in dir (compose paths are relative to it for bake).
func (b *bench) runTool(ctx context.Context, dir string, env []string, bin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}
