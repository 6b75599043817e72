package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/bkcache/bkcache/e2e/sandbox"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// monorepo measures issue 18's project at build time: 200 services on
// one context (bench/gen -monorepo), built once from an empty registry on
// a pruned daemon, then the no-op run and check (medians of b.runs),
// then the rebuild of all 200 after one lib/ file changes. For the two
// builds it reports the context bytes buildkitd received (the final
// "transferring context" figure of every "load build context" vertex).
func (b *bench) monorepo(ctx context.Context) error {
	dir := filepath.Join(b.dir, "monorepo")
	if out, err := exec.Command("go", "run", "./bench/gen", "-dir", dir, "-monorepo", "200").CombinedOutput(); err != nil {
		return fmt.Errorf("bench/gen: %v\n%s", err, out)
	}
	r := b.repo()
	b.prune()
	first, firstMB, err := b.transfer(dir, "build", "--push", "--repository", r)
	if err != nil {
		return err
	}
	noop, check, err := b.noopAndCheck(dir, r)
	if err != nil {
		return err
	}
	far, farCheck, err := b.farRegistry(dir, r)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lib", "m00", "f0000.go"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "// changed at %d\n", time.Now().UnixNano())
	f.Close()
	rebuild, rebuildMB, err := b.transfer(dir, "build", "--push", "--repository", r)
	if err != nil {
		return err
	}
	b.row("200 services on one context (monorepo), no-op CI run", "bkcache build --push", noop,
		"bkcache check", check, "both ≤ 0.5 s")
	b.row(fmt.Sprintf("the same, registry %v away (a proxy delays every request)", farDelay), "bkcache build --push", far,
		"bkcache check", farCheck, "R:H and R:F asked while the other services hash")
	b.row("200 services, first build, pruned daemon, empty registry", "bkcache build --push (defaults)", first,
		"the rebuild of all 200 after one lib/ file changed", rebuild,
		fmt.Sprintf("context received: %.0f MB, then %.0f MB (lib/ is 26 MB, each service's own files 0.5 MB)", firstMB, rebuildMB))
	return nil
}

// farDelay is the round trip farRegistry adds: a registry in another
// data centre than the CI runner.
const farDelay = 20 * time.Millisecond

// farRegistry measures the no-op run and check of the monorepo in dir,
// pushed to repository r, through a proxy that delays every request to
// the registry by farDelay (medians of b.runs).
func (b *bench) farRegistry(dir, r string) (time.Duration, time.Duration, error) {
	p, err := faultproxy.Start(b.sb.RegistryAddr)
	if err != nil {
		return 0, 0, err
	}
	defer p.Close()
	p.Inject(faultproxy.Fault{Path: ".", Delay: farDelay})
	return b.noopAndCheck(dir, p.Addr+strings.TrimPrefix(r, b.sb.RegistryAddr))
}

// noopAndCheck returns the medians of b.runs no-op `build --push` runs
// and `check` runs of the project in dir, pushed to repository r, taking
// turns.
func (b *bench) noopAndCheck(dir, r string) (time.Duration, time.Duration, error) {
	var noop, check []time.Duration
	for range b.runs {
		d, err := b.bkcache(dir, "build", "--push", "--repository", r)
		if err != nil {
			return 0, 0, err
		}
		noop = append(noop, d)
		if d, err = b.bkcache(dir, "check", "--repository", r); err != nil {
			return 0, 0, err
		}
		check = append(check, d)
	}
	return median(noop), median(check), nil
}

// transfer runs a bkcache build with raw progress and returns its wall
// time and the context bytes buildkitd received, in MB.
func (b *bench) transfer(dir string, args ...string) (time.Duration, float64, error) {
	cmd := exec.Command(b.sb.BkcacheBin(), append(args, "--progress", "rawjson")...)
	cmd.Dir, cmd.Env = dir, b.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return 0, 0, fmt.Errorf("bkcache %s: %v\n%s", strings.Join(args, " "), err, tail(stderr.String()))
	}
	return time.Since(start), float64(sandbox.ContextBytes(stderr.Bytes())) / 1e6, nil
}

func tail(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// tagsPerService counts the tags a build left in the repositories under
// prefix, per service.
func tagsPerService(prefix string) (float64, error) {
	var total int
	for i := range services {
		repo, err := name.NewRepository(prefix+"/"+svcName(i), name.Insecure)
		if err != nil {
			return 0, err
		}
		tags, err := remote.List(repo)
		if err != nil {
			return 0, err
		}
		total += len(tags)
	}
	return float64(total) / services, nil
}
