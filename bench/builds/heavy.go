package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
)

// heavyDockerfile is a service shaped like a real one: a dependency
// stage making 300 MB of incompressible layers in three RUN steps (a
// stand-in for node_modules or a Go module cache), a compile stage over
// the sources that reads them, and a slim final stage.
const heavyDockerfile = `FROM busybox AS deps
WORKDIR /deps
COPY deps.lock .
RUN head -c 100000000 /dev/urandom > a.bin
RUN head -c 100000000 /dev/urandom > b.bin
RUN head -c 100000000 /dev/urandom > c.bin

FROM busybox AS build
WORKDIR /src
COPY --from=deps /deps /deps
COPY src/ ./
RUN cat *.txt > app && wc -c /deps/*.bin > deps.txt

FROM busybox
COPY --from=build /src/app /app/app
LABEL stage=final
`

// writeHeavy writes the heavy one-service project into dir.
func writeHeavy(dir string) error {
	return writeFiles(dir, map[string]string{
		"compose.yaml":     "name: heavy\nservices:\n  app:\n    build: ./app\n",
		"app/Dockerfile":   heavyDockerfile,
		"app/deps.lock":    "deps v1\n",
		"app/src/main.txt": "main v1\n",
	})
}

// scenario is one of issue 38's: a change to the project, then a build
// on a pruned daemon.
type scenario struct {
	name string
	edit func(dir string, i int) error
}

var heavyScenarios = []scenario{
	{"cold", nil},
	{"a source edit (compile and final stages run)", func(dir string, i int) error {
		return os.WriteFile(filepath.Join(dir, "app/src/main.txt"), fmt.Appendf(nil, "main v%d\n", i+2), 0o644)
	}},
	{"a dependency edit (everything runs)", func(dir string, i int) error {
		return os.WriteFile(filepath.Join(dir, "app/deps.lock"), fmt.Appendf(nil, "deps v%d\n", i+2), 0o644)
	}},
	{"a Dockerfile edit of the final stage only", func(dir string, i int) error {
		df := strings.Replace(heavyDockerfile, "LABEL stage=final", fmt.Sprintf("RUN echo %d > /app/edit", i), 1)
		return os.WriteFile(filepath.Join(dir, "app/Dockerfile"), []byte(df), 0o644)
	}},
	{"nothing changed but the floating tag (a branch build)", func(string, int) error { return nil }},
}

// phases is a build's wall time broken down from BuildKit's progress:
// the vertices' time summed per phase (parallel vertices overlap, so a
// phase can exceed its share of the wall time), and the tool's own time
// outside the solve.
type phases struct {
	wall, context, cacheImport, steps, image, cacheExport, own time.Duration
	uploaded                                                   int64 // bytes the registry's blob store grew by
}

// heavy runs the scenarios for bkcache and for bake, alternating which
// goes first, each on its own copy of the project and repository, the
// daemon pruned before every build; and prints one table per scenario:
// medians of the phases and bytes uploaded.
func (b *bench) heavy(ctx context.Context) error {
	buildx, env, err := b.buildx(ctx)
	if err != nil {
		return err
	}
	results := map[string][][]phases{} // tool -> scenario -> runs
	for i := range b.runs {
		tools := []string{"bkcache", "bake"}
		if i%2 == 1 {
			slices.Reverse(tools)
		}
		for _, tool := range tools {
			dir := filepath.Join(b.dir, fmt.Sprintf("heavy-%s-%d", tool, i))
			if err := writeHeavy(dir); err != nil {
				return err
			}
			r := b.repo()
			if results[tool] == nil {
				results[tool] = make([][]phases, len(heavyScenarios))
			}
			for s, sc := range heavyScenarios {
				if sc.edit != nil {
					if err := sc.edit(dir, i); err != nil {
						return err
					}
				}
				b.prune()
				p, err := b.heavyBuild(ctx, tool, dir, r, s, buildx, env)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", tool, sc.name, err)
				}
				results[tool][s] = append(results[tool][s], p)
			}
		}
	}
	b.printHeavy(results)
	return nil
}

// heavyBuild runs one build of the heavy project with tool, its progress
// as rawjson, and breaks it down.
func (b *bench) heavyBuild(ctx context.Context, tool, dir, r string, s int, buildx string, env []string) (phases, error) {
	before, err := dirSize(filepath.Join(b.sb.Dir, "registry-data"))
	if err != nil {
		return phases{}, err
	}
	var args []string
	bin := buildx
	switch tool {
	case "bkcache":
		bin, env = b.sb.BkcacheBin(), b.env()
		args = []string{"build", "--push", "--repository", r, "--progress", "rawjson"}
		if s == len(heavyScenarios)-1 {
			args = append(args, "--ci-tag", "branch")
		}
	default:
		args = bakeServices(r, "rawjson", []string{"app"})
	}
	start := time.Now()
	out, err := b.runTool(ctx, dir, env, bin, args...)
	wall := time.Since(start)
	if err != nil {
		return phases{}, fmt.Errorf("%v\n%s", err, tail(out))
	}
	p := breakdown(out, wall)
	after, err := dirSize(filepath.Join(b.sb.Dir, "registry-data"))
	p.uploaded = after - before
	return p, err
}

// breakdown sorts the vertices of a rawjson progress stream into phases
// by the names BuildKit gives them. A vertex sent again with another
// start ran again: BuildKit v0.33 restarts the image exporter's for the
// push, and a step loaded lazily from cache for the pull of its layers.
// Each run counts.
func breakdown(out string, wall time.Duration) phases {
	type key struct {
		vertex string
		start  time.Time
	}
	runs := map[key]*client.Vertex{}
	for _, line := range strings.Split(out, "\n") {
		var st client.SolveStatus
		if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &st) != nil {
			continue
		}
		for _, v := range st.Vertexes {
			if v.Started != nil {
				runs[key{v.Digest.String() + v.Name, *v.Started}] = v
			}
		}
	}
	p := phases{wall: wall}
	var first, end time.Time
	for k, v := range runs {
		if v.Completed == nil {
			continue
		}
		if first.IsZero() || k.start.Before(first) {
			first = k.start
		}
		if v.Completed.After(end) {
			end = *v.Completed
		}
		d := v.Completed.Sub(k.start)
		switch n := v.Name; {
		case strings.Contains(n, "importing cache manifest"):
			p.cacheImport += d
		case strings.Contains(n, "exporting cache"):
			p.cacheExport += d
		case strings.Contains(n, "exporting to image") || strings.Contains(n, "pushing"):
			p.image += d
		case strings.Contains(n, "[internal] load") || strings.Contains(n, "load build context"):
			p.context += d
		default:
			p.steps += d
		}
	}
	if !first.IsZero() {
		p.own = max(0, wall-end.Sub(first))
	}
	return p
}

func (b *bench) printHeavy(results map[string][][]phases) {
	sec := func(ps []phases, f func(phases) time.Duration) string {
		return fmt.Sprintf("%.2f", medianOf(ps, f).Seconds())
	}
	mb := func(ps []phases) string {
		return fmt.Sprintf("%.0f", float64(medianOf(ps, func(p phases) time.Duration { return time.Duration(p.uploaded) }))/1e6)
	}
	wall := func(p phases) time.Duration { return p.wall }
	fmt.Printf("| scenario | tool | wall s | ratio | context s | cache import s | steps s | image export and push s | cache export s | tool's own s | MB uploaded |\n")
	fmt.Printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	for s, sc := range heavyScenarios {
		bk, bx := results["bkcache"][s], results["bake"][s]
		for _, row := range []struct {
			tool string
			ps   []phases
		}{{"bkcache", bk}, {"bake " + buildxVersion, bx}} {
			ratio := ""
			if row.tool == "bkcache" {
				ratio = fmt.Sprintf("%.2f", medianOf(bk, wall).Seconds()/medianOf(bx, wall).Seconds())
			}
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sc.name, row.tool,
				sec(row.ps, wall), ratio,
				sec(row.ps, func(p phases) time.Duration { return p.context }),
				sec(row.ps, func(p phases) time.Duration { return p.cacheImport }),
				sec(row.ps, func(p phases) time.Duration { return p.steps }),
				sec(row.ps, func(p phases) time.Duration { return p.image }),
				sec(row.ps, func(p phases) time.Duration { return p.cacheExport }),
				sec(row.ps, func(p phases) time.Duration { return p.own }), mb(row.ps))
		}
	}
}

// medianOf is the median of f over the runs ps.
func medianOf(ps []phases, f func(phases) time.Duration) time.Duration {
	var ds []time.Duration
	for _, p := range ps {
		ds = append(ds, f(p))
	}
	return median(ds)
}

// dirSize is the bytes of the regular files under dir.
func dirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	return n, err
}
