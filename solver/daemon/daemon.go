// Package daemon runs bkcache's private buildkitd on this machine, for
// developers with no daemon of their own: the version bkcache was built
// against, with its state, pid file and log under the XDG state
// directory. It covers Linux as root (buildkitd's OCI worker with runc);
// elsewhere it says what is missing.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
)

// Dirs are where the private daemon keeps its state.
type Dirs struct {
	State string // buildkitd --root, the pid file and the log
}

// DefaultDirs returns $XDG_STATE_HOME/bkcache/buildkitd, or
// ~/.local/state/bkcache/buildkitd.
func DefaultDirs() (Dirs, error) {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return Dirs{}, fmt.Errorf("no XDG_STATE_HOME and no home directory: %w", err)
		}
		base = filepath.Join(home, ".local", "state")
	}
	return Dirs{State: filepath.Join(base, "bkcache", "buildkitd")}, nil
}

// Node returns the directories of the i-th private daemon of a local
// pool (1 is the default daemon itself): buildkitd-2, buildkitd-3...
func (d Dirs) Node(i int) Dirs {
	if i <= 1 {
		return d
	}
	return Dirs{State: fmt.Sprintf("%s-%d", d.State, i)}
}

func (d Dirs) pidFile() string { return filepath.Join(d.State, "buildkitd.pid") }

// Log is the daemon's log file, kept for errors.
func (d Dirs) Log() string { return filepath.Join(d.State, "buildkitd.log") }

// Addr is the private daemon's socket address.
func (d Dirs) Addr() string { return "unix://" + filepath.Join(d.State, "buildkitd.sock") }

// DebugAddr is the private daemon's debug address: its cache-key debug
// information (--save-cache-debug) is read there.
func (d Dirs) DebugAddr() string { return "unix://" + filepath.Join(d.State, "debug.sock") }

// debug is d's debug address when its socket is there, else "".
func (d Dirs) debug() string {
	if _, err := os.Stat(strings.TrimPrefix(d.DebugAddr(), "unix://")); err != nil {
		return ""
	}
	return d.DebugAddr()
}

// Version is the buildkitd version the private daemon runs: the BuildKit
// client library's.
func Version() string {
	for _, dep := range buildDeps() {
		if dep.Path == "github.com/moby/buildkit" {
			return dep.Version
		}
	}
	return ""
}

// buildDeps returns the modules bkcache was built from (none in a test
// binary, which carries no dependency versions).
func buildDeps() []*debug.Module {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return nil
	}
	return bi.Deps
}

// pins returns bkcache's own dependencies as path@version, the versions
// the private buildkitd is built with.
func pins() []string {
	var out []string
	for _, dep := range buildDeps() {
		if dep.Replace == nil && dep.Version != "" && dep.Version != "(devel)" {
			out = append(out, dep.Path+"@"+dep.Version)
		}
	}
	return out
}

// Status is the private daemon's state.
type Status struct {
	Running bool
	PID     int
	Stale   bool // a pid file whose process is gone
	Addr    string
	Version string
	// Debug is its debug address (buildkitd's --debugaddr), where it
	// serves the cache-key debug information it saves; "" for a daemon
	// started without (by an earlier bkcache).
	Debug string
}

// Get reports the private daemon's state.
func Get(ctx context.Context, d Dirs) Status {
	st := Status{Addr: d.Addr()}
	pid, err := readPID(d.pidFile())
	if err != nil {
		return st
	}
	st.PID = pid
	if !alive(pid) {
		st.Stale = true
		return st
	}
	if v, err := info(ctx, st.Addr, 2*time.Second); err == nil {
		st.Running, st.Version, st.Debug = true, v, d.debug()
	}
	return st
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func info(ctx context.Context, addr string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := client.New(ctx, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	i, err := c.Info(ctx)
	if err != nil {
		return "", err
	}
	return i.BuildkitVersion.Version, nil
}

// Missing says, in one line, what this machine lacks to run the private
// daemon, or "" when nothing is.
func Missing() string {
	var m []string
	if runtime.GOOS != "linux" {
		return "the private buildkitd runs on Linux only: point bkcache at a daemon through BUILDKIT_HOST (for example docker-container://NAME)"
	}
	if os.Geteuid() != 0 {
		m = append(m, "root (run as root, or start a rootless buildkitd yourself and set BUILDKIT_HOST)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		m = append(m, "runc (apt-get install -y runc)")
	}
	if len(m) == 0 {
		return ""
	}
	return "the private buildkitd needs " + strings.Join(m, " and ")
}

// ErrUnavailable reports a machine that cannot run the private daemon.
var ErrUnavailable = errors.New("cannot run a private buildkitd here")

// StartOptions configure a daemon Start starts.
type StartOptions struct {
	Logf func(string, ...any) // reports what Start does
	// Mirrors maps registry hosts (docker.io) to pull-through mirrors,
	// written into the daemon's config as bkcache looks images up.
	Mirrors map[string]string
}

// config is buildkitd.toml for the mirrors: "" when there are none.
func (o StartOptions) config() string {
	var b strings.Builder
	for _, host := range slices.Sorted(maps.Keys(o.Mirrors)) {
		fmt.Fprintf(&b, "[registry.%q]\n  mirrors = [%q]\n", host, o.Mirrors[host])
	}
	return b.String()
}

// Start starts the private daemon unless it already runs, and returns its
// state. A stale pid file is replaced. A daemon already running keeps the
// mirrors it was started with.
func Start(ctx context.Context, d Dirs, opt StartOptions) (Status, error) {
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	if st := Get(ctx, d); st.Running {
		return st, nil
	} else if st.PID != 0 && !st.Stale {
		return st, fmt.Errorf("a buildkitd (pid %d) from %s does not answer at %s: stop it with `bkcache daemon stop`, see %s", st.PID, d.pidFile(), st.Addr, d.Log())
	}
	if m := Missing(); m != "" {
		return Status{}, fmt.Errorf("%w: %s", ErrUnavailable, m)
	}
	if err := os.MkdirAll(d.State, 0o700); err != nil {
		return Status{}, err
	}
	os.Remove(d.pidFile())
	bin, err := binary(ctx, d, logf)
	if err != nil {
		return Status{}, err
	}
	os.Remove(strings.TrimPrefix(d.Addr(), "unix://"))
	os.Remove(strings.TrimPrefix(d.DebugAddr(), "unix://"))
	log, err := os.OpenFile(d.Log(), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return Status{}, err
	}
	defer log.Close()
	// --save-cache-debug keeps, per cache key, what it was computed
	// from: bkcache names the part of a key that differed when a step
	// ran that it expected from cache.
	args := []string{"--root", filepath.Join(d.State, "root"), "--addr", d.Addr(), "--oci-worker=true", "--containerd-worker=false",
		"--save-cache-debug", "--debugaddr", d.DebugAddr()}
	if cfg := opt.config(); cfg != "" {
		path := filepath.Join(d.State, "buildkitd.toml")
		if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
			return Status{}, err
		}
		args = append(args, "--config", path)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	detach(cmd) // outlives bkcache
	if err := cmd.Start(); err != nil {
		return Status{}, fmt.Errorf("starting %s: %w", bin, err)
	}
	pid := cmd.Process.Pid
	go cmd.Wait() // reap it if it dies while we wait
	if err := os.WriteFile(d.pidFile(), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return Status{}, err
	}
	logf("started buildkitd %s (pid %d) at %s, state in %s", Version(), pid, d.Addr(), d.State)
	deadline := time.Now().Add(60 * time.Second)
	for {
		if v, err := info(ctx, d.Addr(), time.Second); err == nil {
			return Status{Running: true, PID: pid, Addr: d.Addr(), Version: v, Debug: d.debug()}, nil
		}
		if !alive(pid) || time.Now().After(deadline) || ctx.Err() != nil {
			terminate(pid)
			return Status{}, fmt.Errorf("buildkitd did not come up at %s; its log %s ends with:\n%s", d.Addr(), d.Log(), tail(d.Log(), 15))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the private daemon, if it runs, and removes its pid file.
func Stop(ctx context.Context, d Dirs) (bool, error) {
	st := Get(ctx, d)
	defer os.Remove(d.pidFile())
	if st.PID == 0 || st.Stale {
		return false, nil
	}
	if err := terminate(st.PID); err != nil {
		return false, fmt.Errorf("stopping buildkitd (pid %d): %w", st.PID, err)
	}
	for deadline := time.Now().Add(20 * time.Second); alive(st.PID); {
		if time.Now().After(deadline) {
			kill(st.PID)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true, nil
}

// binary finds a buildkitd of the pinned version: $BKCACHE_BUILDKITD,
// then beside bkcache, then on PATH, then one built before in the state
// directory; else it builds it when a Go toolchain is present.
func binary(ctx context.Context, d Dirs, logf func(string, ...any)) (string, error) {
	want := Version()
	var candidates []string
	if v := os.Getenv("BKCACHE_BUILDKITD"); v != "" {
		candidates = append(candidates, v)
	}
	if exe, err := os.Executable(); err == nil {
		candidates = append(candidates, filepath.Join(filepath.Dir(exe), "buildkitd"))
	}
	if p, err := exec.LookPath("buildkitd"); err == nil {
		candidates = append(candidates, p)
	}
	installed := filepath.Join(d.State, "bin", "buildkitd")
	candidates = append(candidates, installed)
	var seen []string
	for _, c := range candidates {
		out, err := exec.CommandContext(ctx, c, "--version").Output()
		if err != nil {
			continue
		}
		if strings.Contains(string(out), " "+want+" ") || strings.HasSuffix(strings.TrimSpace(string(out)), " "+want) {
			return c, nil
		}
		seen = append(seen, c+": "+strings.TrimSpace(string(out)))
	}
	if _, err := exec.LookPath("go"); err != nil {
		return "", fmt.Errorf("%w: no buildkitd %s found (looked at $BKCACHE_BUILDKITD, beside bkcache and on PATH%s) and no Go toolchain to build it: install buildkitd %s on PATH", ErrUnavailable, want, seenList(seen), want)
	}
	logf("building buildkitd %s with the Go toolchain (once; a few minutes)", want)
	if err := build(ctx, want, pins(), installed); err != nil {
		return "", fmt.Errorf("building buildkitd %s: %w", want, err)
	}
	return installed, nil
}

// build compiles buildkitd at version into out. `go install pkg@version`
// refuses BuildKit (its go.mod has exclude directives), so it builds in a
// throwaway module that requires BuildKit, as this repository's own tool
// directive does. pins (path@version) hold every module shared with the
// BuildKit client bkcache was built with at that module's version, so the
// daemon runs the code bkcache was tested against, and the Go build cache
// already holds most of its packages when bkcache was built here.
func build(ctx context.Context, version string, pins []string, out string) error {
	mod, err := os.MkdirTemp("", "bkcache-buildkitd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(mod)
	if err := os.WriteFile(filepath.Join(mod, "go.mod"), []byte(goMod(pins)), 0o644); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"get", "github.com/moby/buildkit/cmd/buildkitd@" + version},
		{"build", "-o", out, "-ldflags", "-X github.com/moby/buildkit/version.Version=" + version, "github.com/moby/buildkit/cmd/buildkitd"},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %v\n%s", args[0], err, b)
		}
	}
	return nil
}

// goMod is the throwaway module's go.mod: a require of each pin, which
// minimal version selection keeps as the floor of that module's version.
func goMod(pins []string) string {
	var b strings.Builder
	// A go line of 1.17 or later prunes the module graph to what the
	// build needs, as the go.mod bkcache was built from does: without it
	// go loads (and checksums) every go.mod BuildKit's graph mentions.
	b.WriteString("module bkcache.local/buildkitd\n\ngo 1.21\n")
	if len(pins) > 0 {
		b.WriteString("\nrequire (\n")
		for _, p := range pins {
			path, v, _ := strings.Cut(p, "@")
			fmt.Fprintf(&b, "\t%s %s\n", path, v)
		}
		b.WriteString(")\n")
	}
	return b.String()
}

func seenList(seen []string) string {
	if len(seen) == 0 {
		return ""
	}
	return "; other versions: " + strings.Join(seen, ", ")
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
