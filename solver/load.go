package solver

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"runtime"
	"strings"

	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/plan"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
)

// A Docker image (--load, --output type=docker) holds one platform, and
// BuildKit's docker exporter refuses an index. So a service built for
// several platforms is solved for all of them (the push, the cache), then
// once more for the engine's platform alone, into the docker exporter:
// every step of that second solve comes from the first one's cache.

// oneImage reports whether out can only hold one platform and j builds
// for several: its export is then loadPlatform's, not the main solve's.
// A Docker engine holds several only with the containerd image store.
func (b *Builder) oneImage(out Output, j *plan.Job) bool {
	one := out.Type == "load" || out.Type == "docker" || (out.Type == "engine" && b.classic())
	return one && len(j.Service.Platforms) > 1
}

// loadPlatform is the one of j's platforms out takes; it fails before
// anything is built or pushed when there is none.
func loadPlatform(j *plan.Job, out Output) (string, error) {
	p, err := pickPlatform(j.Service.Platforms, cmp.Or(out.Platform, "linux/"+runtime.GOARCH))
	if err != nil {
		return "", fmt.Errorf("service %q: %w", j.Name(), err)
	}
	return p, nil
}

// exportPlatform solves so again for platform p alone, exporting only
// to out.
func (b *Builder) exportPlatform(ctx context.Context, j *plan.Job, so *client.SolveOpt, sends []send, out Output, p string, res *outcome.Result) error {
	e, err := out.exportEntry(j.Refs.Image.String(), j.EngineNames...)
	if err != nil {
		return err
	}
	one := *so
	one.FrontendAttrs = maps.Clone(so.FrontendAttrs)
	one.FrontendAttrs["platform"] = p
	one.CacheExports, one.Exports = nil, []client.ExportEntry{e}
	if a := b.solveOnNodes(ctx, j.Name(), &one, sends, res); a.err != nil {
		return fmt.Errorf("exporting its %s image (%s): %w", p, out.Type, a.err)
	}
	return nil
}

// EnginePlatform is the Docker engine's platform, OS/ARCH: the one a
// loaded image of a service built for several platforms is for.
func EnginePlatform(ctx context.Context) (string, error) {
	b, err := exec.CommandContext(ctx, "docker", "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}").Output()
	if err != nil {
		return "", &EngineError{Detail: fmt.Sprintf("docker version: %v", err)}
	}
	return strings.TrimSpace(string(b)), nil
}

// pickPlatform returns the one of the service's platforms that want
// (an engine's OS/ARCH) runs as its own.
func pickPlatform(svc []string, want string) (string, error) {
	w, err := platforms.Parse(want)
	if err != nil {
		return "", fmt.Errorf("the Docker engine's platform %q: %w", want, err)
	}
	m := platforms.OnlyStrict(w)
	for _, s := range svc {
		if p, err := platforms.Parse(s); err == nil && m.Match(p) {
			return s, nil
		}
	}
	return "", fmt.Errorf("builds for %s, not for %s, the one platform a Docker image here can hold: add %s to its platforms (or pass --platform %s), or use --output type=oci,dest=FILE for every platform",
		strings.Join(svc, ", "), want, want, want)
}
