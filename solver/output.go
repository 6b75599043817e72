package solver

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/moby/buildkit/client"
	"github.com/tonistiigi/go-csvvalue"
)

// Output is where a built image goes on this machine, besides (or instead
// of) the registry.
type Output struct {
	Type string // oci, docker or tar (a file), local (a directory), load, or engine (the Docker engine built in, directly)
	Dest string // file or directory; unused for load
	// Platform is the one platform a docker image (load, docker) of a
	// service built for several holds: the engine's for load (see
	// EnginePlatform); "" is this machine's.
	Platform string
}

// ParseOutput reads an output: type=oci|docker|tar|local,dest=PATH.
func ParseOutput(s string) (Output, error) {
	fields, err := csvvalue.Fields(s, nil)
	if err != nil {
		return Output{}, fmt.Errorf("%q: %w", s, err)
	}
	var o Output
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Output{}, fmt.Errorf("%q: %q is not key=value", s, f)
		}
		switch strings.TrimSpace(k) {
		case "type":
			o.Type = v
		case "dest":
			o.Dest = v
		default:
			return Output{}, fmt.Errorf("%q: unknown key %q (use type= and dest=)", s, k)
		}
	}
	switch o.Type {
	case "oci", "docker", "tar", "local":
	default:
		return Output{}, fmt.Errorf("%q: type must be oci, docker, tar or local", s)
	}
	if o.Dest == "" {
		return Output{}, fmt.Errorf("%q: dest= is required", s)
	}
	return o, nil
}

// ForService returns the output of one of several services: dest is then
// a directory holding SERVICE (local) or SERVICE.tar (the others).
func (o Output) ForService(service string) Output {
	if o.Type == "local" {
		o.Dest = filepath.Join(o.Dest, service)
	} else {
		o.Dest = filepath.Join(o.Dest, service+".tar")
	}
	return o
}

// EngineError reports that no Docker engine answers, which loading an
// image needs.
type EngineError struct{ Detail string } // the last line `docker info` printed

func (e *EngineError) Error() string {
	return "no Docker engine answers: `docker info` failed: " + e.Detail
}

// CheckDocker reports whether a Docker engine answers, for the load
// output.
func CheckDocker(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput()
	if err != nil {
		return &EngineError{Detail: strings.TrimSpace(lastLine(string(out), err))}
	}
	return nil
}

func lastLine(s string, err error) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return err.Error()
	}
	lines := strings.Split(s, "\n")
	return lines[len(lines)-1]
}

// exportEntry turns an Output into BuildKit's export entry for image
// name. A Docker engine (load, and docker tarballs it will load) also gets
// the aliases: the names docker compose looks for.
func (o Output) exportEntry(name string, aliases ...string) (client.ExportEntry, error) {
	attrs := map[string]string{"name": name}
	if o.Type == "load" || o.Type == "docker" || o.Type == "engine" {
		attrs["name"] = strings.Join(append([]string{name}, aliases...), ",")
	}
	file := func(map[string]string) (io.WriteCloser, error) {
		if err := os.MkdirAll(filepath.Dir(o.Dest), 0o755); err != nil {
			return nil, err
		}
		return os.Create(o.Dest)
	}
	switch o.Type {
	case "local":
		return client.ExportEntry{Type: client.ExporterLocal, OutputDir: o.Dest}, nil
	case "tar":
		return client.ExportEntry{Type: client.ExporterTar, Output: file}, nil
	case "oci":
		return client.ExportEntry{Type: client.ExporterOCI, Attrs: attrs, Output: file}, nil
	case "docker":
		return client.ExportEntry{Type: client.ExporterDocker, Attrs: attrs, Output: file}, nil
	case "load":
		return client.ExportEntry{Type: client.ExporterDocker, Attrs: attrs, Output: dockerLoad}, nil
	case "engine":
		// The engine's own exporter: the image goes into its store as it
		// is built, under every name, with no tarball in between.
		return client.ExportEntry{Type: "moby", Attrs: attrs}, nil
	}
	return client.ExportEntry{}, fmt.Errorf("unknown output type %q", o.Type)
}

// dockerLoad streams the docker exporter's tarball into `docker load`.
func dockerLoad(map[string]string) (io.WriteCloser, error) {
	cmd := exec.Command("docker", "load")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting docker load: %w", err)
	}
	return &loadWriter{WriteCloser: stdin, cmd: cmd, out: &out}, nil
}

// intoEngine reports whether o puts the image into a Docker engine.
func (o Output) intoEngine() bool { return o.Type == "load" || o.Type == "engine" }

// inEngine reports whether the Docker engine already has image, and if
// so names it also as each alias (docker tag): the engine built on when
// there is one, else the docker CLI's. Any failure, of the engine
// included, reads as not there: the build and its load then report what
// is wrong.
func (b *Builder) inEngine(ctx context.Context, image string, aliases []string) bool {
	if e := b.pool.Engine(); e != nil {
		return e.has(ctx, image, aliases)
	}
	if exec.CommandContext(ctx, "docker", "image", "inspect", "--format", "{{.Id}}", image).Run() != nil {
		return false
	}
	for _, a := range aliases {
		if exec.CommandContext(ctx, "docker", "tag", image, a).Run() != nil {
			return false
		}
	}
	return true
}

type loadWriter struct {
	io.WriteCloser
	cmd *exec.Cmd
	out *strings.Builder
}

func (w *loadWriter) Close() error {
	if err := w.WriteCloser.Close(); err != nil {
		return err
	}
	if err := w.cmd.Wait(); err != nil {
		return fmt.Errorf("docker load: %v: %s", err, strings.TrimSpace(w.out.String()))
	}
	return nil
}
