// Command builds measures bkcache against buildctl with registry cache
// flags on a stack it starts itself (the pinned buildkitd, a loopback
// registry, offline base images), and prints a Markdown table: medians
// over -runs runs, ratios to the alternative.
//
// The workload is a generated compose project of ten independent
// services, each a multi-stage Dockerfile on busybox: a dependency stage
// (a lock file, an "install" writing a few MB), a build stage (sources,
// a "compile" step), and a small runtime stage.
//
//	go run ./bench/builds -runs 3 > builds.md
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bkcache/bkcache/e2e/sandbox"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

const services = 10

func main() {
	runs := flag.Int("runs", 3, "runs per measurement (the median is reported)")
	write := flag.String("write", "", "only write the workload's compose project into this directory")
	only := flag.String("only", "", "run only these measurements: issue18 (the bake comparison and the monorepo), issue20 (what a no-op run pushes with provenance), issue38 (a heavy service's scenarios against bake, phase by phase)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("bench/builds: ")
	if *write != "" {
		if err := writeProject(*write); err != nil {
			log.Fatal(err)
		}
		return
	}
	ctx := context.Background()
	sb, err := sandbox.Start(ctx, sandbox.Options{Logf: log.Printf})
	if err != nil {
		log.Fatal(err)
	}
	defer sb.Close()
	b := &bench{sb: sb, runs: *runs, dir: filepath.Join(sb.Dir, "bench"), only: *only}
	b.buildctl = filepath.Join(sb.Bin, "buildctl")
	if out, err := exec.Command("go", "build", "-o", b.buildctl, "github.com/moby/buildkit/cmd/buildctl").CombinedOutput(); err != nil {
		log.Fatalf("building buildctl: %v\n%s", err, out)
	}
	if err := b.run(ctx); err != nil {
		log.Print(sb.Logs())
		log.Fatal(err)
	}
}

type bench struct {
	sb       *sandbox.Sandbox
	runs     int
	dir      string
	buildctl string
	n        int // repositories handed out
	rows     []string
	only     string // see -only
	// buildxBin and buildxEnv are buildx and its builder, once made.
	buildxBin string
	buildxEnv []string
}

// repo returns a fresh repository prefix.
func (b *bench) repo() string {
	b.n++
	return fmt.Sprintf("%s/bench%d", b.sb.RegistryAddr, b.n)
}

func (b *bench) run(ctx context.Context) error {
	proj := filepath.Join(b.dir, "project")
	if err := writeProject(proj); err != nil {
		return err
	}
	switch b.only {
	case "issue18":
		return b.issue18(ctx, proj)
	case "issue38":
		return b.heavy(ctx)
	case "issue20":
		if err := b.attestations(ctx, proj); err != nil {
			return err
		}
		b.print()
		return nil
	}

	// 3. No-op CI run: every R:H present, pruned daemon.
	var bk, bc []time.Duration
	for range b.runs {
		r := b.repo()
		if _, err := b.bkcache(proj, "build", "--push", "--repository", r); err != nil {
			return err
		}
		b.prune()
		d, err := b.bkcache(proj, "build", "--push", "--repository", r)
		if err != nil {
			return err
		}
		bk = append(bk, d)
		b.prune()
		d, err = b.parallel(4, func(svc string) error { return b.buildctlBuild(ctx, proj, r, svc, "ci-noop", true) })
		if err != nil {
			return err
		}
		bc = append(bc, d)
	}
	b.row("no-op CI run, 10 services, every image present, pruned daemon", "bkcache build --push", median(bk),
		"buildctl build ×10 (4 at once), --import-cache R:cache-ci, push", median(bc), "≤ 0.10")

	// 3b. The base image lookups' share of it: hashing with and without.
	var res, written []time.Duration
	for range b.runs {
		d, err := b.bkcache(proj, "hash")
		if err != nil {
			return err
		}
		res = append(res, d)
		if d, err = b.bkcache(proj, "hash", "--base-images", "as-written"); err != nil {
			return err
		}
		written = append(written, d)
	}
	b.row("hash of the 10 services: base images looked up vs as written", "bkcache hash", median(res),
		"bkcache hash --base-images as-written", median(written),
		fmt.Sprintf("lookups: %.0f ms, %.0f%% of the no-op run", float64(median(res)-median(written))/1e6, 100*float64(median(res)-median(written))/float64(median(bk))))

	// 4. One input changed, pruned daemon, cache from cache-ci.
	bk, bc = nil, nil
	for i := range b.runs {
		r := b.repo()
		if _, err := b.bkcache(proj, "build", "--push", "--repository", r); err != nil {
			return err
		}
		if err := edit(proj, "svc03", fmt.Sprintf("change %d\n", i)); err != nil {
			return err
		}
		b.prune()
		d, err := b.bkcache(proj, "build", "--push", "--repository", r)
		if err != nil {
			return err
		}
		bk = append(bk, d)
		if err := edit(proj, "svc03", fmt.Sprintf("again %d\n", i)); err != nil {
			return err
		}
		b.prune()
		start := time.Now()
		if err := b.buildctlBuild(ctx, proj, r, "svc03", "ci", true); err != nil {
			return err
		}
		bc = append(bc, time.Since(start))
	}
	restore(proj, "svc03")
	b.row("rebuild after one input changed, pruned daemon, cache from R:cache-ci", "bkcache build --push (1 built, 9 skipped)", median(bk),
		"buildctl build of that service, same cache flags", median(bc), "≤ 1.05")

	// 5. Ten independent services from scratch: wall vs sum.
	var wall, sum, slowest []time.Duration
	for range b.runs {
		b.prune()
		d, err := b.bkcache(proj, "build", "--push", "--repository", b.repo(), "--parallel", "10")
		if err != nil {
			return err
		}
		wall = append(wall, d)
		r := b.repo()
		var total, worst time.Duration
		for i := range services {
			b.prune()
			d, err := b.bkcache(proj, "build", "--push", "--repository", r, svcName(i))
			if err != nil {
				return err
			}
			total += d
			worst = max(worst, d)
		}
		sum, slowest = append(sum, total), append(slowest, worst)
	}
	b.row("10 independent services, pruned daemon, empty registry", "bkcache build --push --parallel 10 (wall)", median(wall),
		"the same services one by one (sum)", median(sum), fmt.Sprintf("slowest alone: %.2f s", median(slowest).Seconds()))

	// 6. Cache export: mode=max vs min; a second export for cache-F vs a
	// registry-side copy of cache-H.
	var maxE, minE, twoE, oneE []time.Duration
	var copyT []time.Duration
	for range b.runs {
		r := b.repo()
		for _, m := range []struct {
			mode string
			into *[]time.Duration
		}{{"max", &maxE}, {"min", &minE}} {
			b.prune()
			start := time.Now()
			if err := b.buildctlExport(ctx, proj, r, "svc01", "m-"+m.mode, "mode="+m.mode); err != nil {
				return err
			}
			*m.into = append(*m.into, time.Since(start))
		}
		b.prune()
		start := time.Now()
		if err := b.buildctlExport(ctx, proj, r, "svc02", "two", "mode=max", r+"/svc02:cache-two-f"); err != nil {
			return err
		}
		twoE = append(twoE, time.Since(start))
		b.prune()
		start = time.Now()
		if err := b.buildctlExport(ctx, proj, r, "svc02", "one", "mode=max"); err != nil {
			return err
		}
		oneE = append(oneE, time.Since(start))
		start = time.Now()
		if err := retag(r+"/svc02:cache-one", r+"/svc02:cache-one-f"); err != nil {
			return err
		}
		copyT = append(copyT, time.Since(start))
	}
	b.row("cache export of one service, pruned daemon", "mode=max", median(maxE), "mode=min", median(minE), "")

	// ... and what each buys: a source change, pruned daemon, rebuilt
	// from a max cache (the dependency stage is in it) or a min one (only
	// the final image's layers are).
	var fromMax, fromMin []time.Duration
	for i := range b.runs {
		r := b.repo()
		for _, m := range []struct {
			mode string
			into *[]time.Duration
		}{{"max", &fromMax}, {"min", &fromMin}} {
			if err := edit(proj, "svc04", fmt.Sprintf("%s base %d\n", m.mode, i)); err != nil {
				return err
			}
			b.prune()
			if err := b.buildctlExport(ctx, proj, r, "svc04", m.mode, "mode="+m.mode); err != nil {
				return err
			}
			if err := edit(proj, "svc04", fmt.Sprintf("%s change %d\n", m.mode, i)); err != nil {
				return err
			}
			b.prune()
			start := time.Now()
			if err := b.buildctlImport(ctx, proj, r, "svc04", m.mode); err != nil {
				return err
			}
			*m.into = append(*m.into, time.Since(start))
		}
	}
	restore(proj, "svc04")
	b.row("rebuild after a source change, pruned daemon, from that cache", "from a mode=max cache", median(fromMax), "from a mode=min cache", median(fromMin), "")
	b.row("exporting cache-H and cache-F", "one export + registry-side copy (bkcache)", median(oneE)+median(copyT),
		"two exports in the solve", median(twoE), fmt.Sprintf("the copy alone: %d ms", median(copyT).Milliseconds()))

	// Issue 8: the same project on one node and on two (two buildkitd
	// processes here, on the same two cores: this measures the
	// scheduling, not more hardware).
	second, err := b.sb.StartNode(ctx, "bench-node-2")
	if err != nil {
		return err
	}
	var one, two []time.Duration
	for range b.runs {
		for _, m := range []struct {
			addrs []string
			into  *[]time.Duration
		}{{[]string{b.sb.BuildkitAddr}, &one}, {[]string{b.sb.BuildkitAddr, second}, &two}} {
			b.prune()
			if err := sandbox.PruneAddr(ctx, second); err != nil {
				return err
			}
			args := []string{"build", "--push", "--repository", b.repo(), "--parallel", "5"}
			for _, a := range m.addrs {
				args = append(args, "--addr", a)
			}
			d, err := b.bkcache(proj, args...)
			if err != nil {
				return err
			}
			*m.into = append(*m.into, d)
		}
	}
	b.row("10 services, pruned daemons, empty registry, --parallel 5 per node", "two buildkitd nodes", median(two),
		"one buildkitd node", median(one), "both nodes share this machine's 2 cores")

	return b.issue18(ctx, proj)
}

// issue18 measures the first build against bake and the monorepo, and
// prints every row measured.
func (b *bench) issue18(ctx context.Context, proj string) error {
	if err := b.bake(ctx, proj); err != nil {
		return err
	}
	if err := b.monorepo(ctx); err != nil {
		return err
	}
	if err := b.attestations(ctx, proj); err != nil {
		return err
	}
	b.print()
	return nil
}

// print writes the rows measured as a Markdown table.
func (b *bench) print() {
	fmt.Printf("| measurement | bkcache | s | alternative | s | ratio | target / note |\n|---|---|---|---|---|---|---|\n")
	for _, r := range b.rows {
		fmt.Println(r)
	}
}

func (b *bench) row(what, a string, ad time.Duration, alt string, bd time.Duration, note string) {
	b.rows = append(b.rows, fmt.Sprintf("| %s | %s | %.2f | %s | %.2f | %.3f | %s |", what, a, ad.Seconds(), alt, bd.Seconds(), ad.Seconds()/bd.Seconds(), note))
	log.Printf("%s: %.2f s vs %.2f s", what, ad.Seconds(), bd.Seconds())
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func (b *bench) prune() {
	if err := sandbox.PruneAddr(context.Background(), b.sb.BuildkitAddr); err != nil {
		log.Fatalf("pruning buildkitd: %v", err)
	}
}

func (b *bench) env() []string {
	return append(append(os.Environ(), b.sb.Env()...), "BUILDKIT_HOST="+b.sb.BuildkitAddr, "XDG_CACHE_HOME="+filepath.Join(b.dir, "cache"))
}

// bkcache runs bkcache in dir and returns its wall time.
func (b *bench) bkcache(dir string, args ...string) (time.Duration, error) {
	if args[0] == "build" {
		args = append(args, "--progress", "quiet")
	}
	cmd := exec.Command(b.sb.BkcacheBin(), args...)
	cmd.Dir, cmd.Env = dir, b.env()
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("bkcache %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return time.Since(start), nil
}

// buildctlBuild builds svc the way a CI script without bkcache would:
// import R:cache-ci, export it (mode=max) and push, to R:tag.
func (b *bench) buildctlBuild(ctx context.Context, proj, r, svc, tag string, export bool) error {
	dir := filepath.Join(proj, svc)
	args := []string{"--addr", b.sb.BuildkitAddr, "build", "--frontend", "dockerfile.v0",
		"--local", "context=" + dir, "--local", "dockerfile=" + dir,
		"--import-cache", "type=registry,ref=" + r + "/" + svc + ":cache-ci",
		"--output", "type=image,name=" + r + "/" + svc + ":" + tag + ",push=true", "--progress", "quiet"}
	if export {
		args = append(args, "--export-cache", "type=registry,mode=max,ref="+r+"/"+svc+":cache-ci")
	}
	return b.exec(ctx, args)
}

// buildctlExport builds svc exporting its cache to R:cache-NAME (and to
// extra refs), without pushing an image.
func (b *bench) buildctlExport(ctx context.Context, proj, r, svc, name, mode string, extra ...string) error {
	dir := filepath.Join(proj, svc)
	args := []string{"--addr", b.sb.BuildkitAddr, "build", "--frontend", "dockerfile.v0",
		"--local", "context=" + dir, "--local", "dockerfile=" + dir, "--progress", "quiet",
		"--export-cache", "type=registry," + mode + ",ref=" + r + "/" + svc + ":cache-" + name}
	for _, e := range extra {
		args = append(args, "--export-cache", "type=registry,"+mode+",ref="+e)
	}
	return b.exec(ctx, args)
}

// buildctlImport builds svc with R:cache-NAME imported, nothing exported.
func (b *bench) buildctlImport(ctx context.Context, proj, r, svc, name string) error {
	dir := filepath.Join(proj, svc)
	return b.exec(ctx, []string{"--addr", b.sb.BuildkitAddr, "build", "--frontend", "dockerfile.v0",
		"--local", "context=" + dir, "--local", "dockerfile=" + dir, "--progress", "quiet",
		"--import-cache", "type=registry,ref=" + r + "/" + svc + ":cache-" + name})
}

func (b *bench) exec(ctx context.Context, args []string) error {
	cmd := exec.CommandContext(ctx, b.buildctl, args...)
	cmd.Env = b.env()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("buildctl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// parallel runs f for every service, n at once, and returns the wall time.
func (b *bench) parallel(n int, f func(svc string) error) (time.Duration, error) {
	start := time.Now()
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for i := range services {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := f(svcName(i)); err != nil {
				mu.Lock()
				first = err
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

// retag copies a manifest under a new tag, as bkcache moves R:cache-F.
func retag(src, dst string) error {
	s, err := name.ParseReference(src, name.Insecure)
	if err != nil {
		return err
	}
	d, err := name.NewTag(dst, name.Insecure)
	if err != nil {
		return err
	}
	desc, err := remote.Get(s)
	if err != nil {
		return err
	}
	return remote.Tag(d, desc)
}
