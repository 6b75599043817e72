// Package sandbox runs the real stack bkcache's end-to-end tests need: a
// buildkitd of the version pinned in go.mod (with runc), a distribution
// registry on loopback, and offline base images, all in one temporary
// directory and stopped with it. It is the model of BuildKit's own
// integration sandbox: requirements are checked up front with a message
// saying how to get what is missing, and daemon logs are kept for failures.
//
// What tests share: one buildkitd (BuildkitAddr) and its cache, one
// registry (RegistryAddr) holding the base images, and the bkcache
// binary. Every test writes only under a repository prefix of its own.
// A test that prunes or restarts a buildkitd does it to one of its own
// (StartNode, RestartNode, StopNode), and a test that stops a registry
// to one of its own (NewRegistry), so that no other test finds a cache
// gone or a daemon down: BuildKit's integration sandbox hands each test
// its own registry in the same way.
package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
)

// BuildkitVersion is the buildkitd version the sandbox runs: the one the
// client library in go.mod is at.
const BuildkitVersion = "v0.33.1"

// ErrMissing reports a requirement that is not on this machine.
var ErrMissing = errors.New("missing requirement")

// Check reports what the sandbox needs and this machine lacks, with how
// to get it.
func Check() error {
	var missing []string
	if runtime.GOOS != "linux" {
		missing = append(missing, "Linux (buildkitd's OCI worker: on macOS, run the e2e tests in a Linux VM or container)")
	}
	if os.Geteuid() != 0 {
		missing = append(missing, "root (buildkitd's OCI worker runs as root here: run the tests with sudo or as root)")
	}
	if _, err := exec.LookPath("runc"); err != nil {
		missing = append(missing, "runc (sudo apt-get install -y runc)")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		missing = append(missing, "/bin/busybox for the offline base image (sudo apt-get install -y busybox-static)")
	}
	if _, err := exec.LookPath("go"); err != nil {
		missing = append(missing, "go, to build the pinned buildkitd and registry")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrMissing, strings.Join(missing, "; "))
	}
	return nil
}

// Sandbox is a running stack.
type Sandbox struct {
	Dir          string // everything lives below it
	Bin          string // built binaries: buildkitd, registry, bkcache
	RegistryAddr string // host:port of the registry
	BuildkitAddr string // unix:// address of buildkitd
	// BuildkitTCP is buildkitd's second listener, tcp:// on loopback with
	// TLS and client certificates (see TLS).
	BuildkitTCP string
	TLS         *TLS

	moduleRoot string
	mu         sync.Mutex
	procs      map[string]*proc
	nodes      []string        // names of the buildkitd started by StartNode
	debugNodes map[string]bool // those started by StartDebugNode

	helperMu     sync.Mutex // GitLabHelperImage's
	helperPushed bool
}

type proc struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
}

// Options configure Start.
type Options struct {
	Dir        string // defaults to a new temp dir
	ModuleRoot string // the bkcache module; defaults to the one around the working dir
	Logf       func(format string, args ...any)
}

// Start builds the tools, starts the registry and buildkitd and seeds base
// images. Stop it with Close.
func Start(ctx context.Context, opt Options) (_ *Sandbox, retErr error) {
	if err := Check(); err != nil {
		return nil, err
	}
	logf := opt.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	root := opt.ModuleRoot
	if root == "" {
		var err error
		if root, err = moduleRoot(); err != nil {
			return nil, err
		}
	}
	dir := opt.Dir
	if dir == "" {
		var err error
		// Short: buildkitd's unix socket path must fit in 108 bytes.
		if dir, err = os.MkdirTemp("", "bkc-"); err != nil {
			return nil, err
		}
	}
	s := &Sandbox{Dir: dir, Bin: filepath.Join(dir, "bin"), moduleRoot: root, procs: map[string]*proc{}, debugNodes: map[string]bool{}}
	defer func() {
		if retErr != nil {
			s.Close()
		}
	}()

	t := time.Now()
	if err := s.buildTools(ctx); err != nil {
		return nil, err
	}
	logf("sandbox: built tools in %s", time.Since(t).Round(time.Millisecond))
	if err := s.startRegistry(ctx); err != nil {
		return nil, err
	}
	if err := s.startBuildkitd(ctx); err != nil {
		return nil, err
	}
	t = time.Now()
	if err := s.seedBusybox(ctx); err != nil {
		return nil, fmt.Errorf("seeding the busybox base image: %w", err)
	}
	if err := s.seedTestImages(ctx); err != nil {
		return nil, fmt.Errorf("seeding the test images: %w", err)
	}
	logf("sandbox: registry %s, buildkitd %s, busybox and test images seeded in %s", s.RegistryAddr, s.BuildkitAddr, time.Since(t).Round(time.Millisecond))
	return s, nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the bkcache module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

// buildTools builds buildkitd and the registry from the versions go.mod
// pins as tools, and bkcache itself.
func (s *Sandbox) buildTools(ctx context.Context) error {
	builds := []struct{ out, pkg, ldflags string }{
		{"buildkitd", "github.com/moby/buildkit/cmd/buildkitd", "-X github.com/moby/buildkit/version.Version=" + BuildkitVersion},
		{"registry", "github.com/distribution/distribution/v3/cmd/registry", ""},
		{"bkcache", "./cmd/bkcache", "-X main.version=e2e"},
	}
	for _, b := range builds {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(s.Bin, b.out), "-ldflags", b.ldflags, b.pkg)
		cmd.Dir = s.moduleRoot
		if b.out == "bkcache" {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as the README installs it
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	return nil
}

// BkcacheBin is the path of the bkcache binary under test.
func (s *Sandbox) BkcacheBin() string { return filepath.Join(s.Bin, "bkcache") }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startRegistry picks the shared registry's port, writes its config,
// starts it and waits for it.
func (s *Sandbox) startRegistry(ctx context.Context) error {
	cfgPath := filepath.Join(s.Dir, "registry.yml")
	if s.RegistryAddr == "" {
		if err := s.configureRegistry(cfgPath); err != nil {
			return err
		}
	}
	if err := s.start("registry", filepath.Join(s.Bin, "registry"), "serve", cfgPath); err != nil {
		return err
	}
	return waitFor(ctx, 30*time.Second, "registry", func() error {
		c, err := net.DialTimeout("tcp", s.RegistryAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}, s.Logs)
}

// StoredManifests is how many manifests the shared registry stores for
// repo (host/path or path): every manifest and index ever pushed to it,
// tagged or not, as its own revisions directory lists them.
func (s *Sandbox) StoredManifests(repo string) (int, error) {
	if host, path, ok := strings.Cut(repo, "/"); ok && host == s.RegistryAddr {
		repo = path
	}
	revs, err := os.ReadDir(filepath.Join(s.Dir, "registry-data/docker/registry/v2/repositories", repo, "_manifests/revisions/sha256"))
	return len(revs), err
}

func (s *Sandbox) configureRegistry(cfgPath string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.RegistryAddr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(s.Dir, "registry-data"), s.RegistryAddr)
	return os.WriteFile(cfgPath, []byte(cfg), 0o644)
}

func (s *Sandbox) startBuildkitd(ctx context.Context) error {
	root := filepath.Join(s.Dir, "buildkitd")
	if err := os.MkdirAll(root, 0o711); err != nil {
		return err
	}
	s.BuildkitAddr = "unix://" + filepath.Join(s.Dir, "buildkitd.sock")
	if s.TLS == nil {
		tlsDir := filepath.Join(s.Dir, "tls")
		if err := os.MkdirAll(tlsDir, 0o700); err != nil {
			return err
		}
		t, err := writeTLS(tlsDir)
		if err != nil {
			return fmt.Errorf("generating TLS certificates: %w", err)
		}
		port, err := freePort()
		if err != nil {
			return err
		}
		s.TLS, s.BuildkitTCP = t, fmt.Sprintf("tcp://127.0.0.1:%d", port)
	}
	cfg := fmt.Sprintf(`[worker.oci]
  enabled = true
  gc = false
[worker.containerd]
  enabled = false
[registry."docker.io"]
  mirrors = [%q]
[registry.%q]
  http = true
`, s.RegistryAddr, s.RegistryAddr)
	cfgPath := filepath.Join(s.Dir, "buildkitd.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return err
	}
	if err := s.start("buildkitd", filepath.Join(s.Bin, "buildkitd"),
		"--config", cfgPath, "--root", root, "--addr", s.BuildkitAddr, "--addr", s.BuildkitTCP,
		"--tlscacert", s.TLS.CACert, "--tlscert", s.TLS.ServerCert, "--tlskey", s.TLS.ServerKey); err != nil {
		return err
	}
	return s.waitBuildkitd(ctx, "buildkitd", s.BuildkitAddr)
}

// waitBuildkitd waits until the buildkitd named name answers at addr.
func (s *Sandbox) waitBuildkitd(ctx context.Context, name, addr string) error {
	return waitFor(ctx, 60*time.Second, name, func() error {
		c, err := client.New(ctx, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		_, err = c.Info(ictx)
		return err
	}, s.Logs)
}

func (s *Sandbox) start(name, bin string, args ...string) error {
	log, err := os.Create(filepath.Join(s.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	p := &proc{cmd: cmd, log: log, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
	return nil
}

func waitFor(ctx context.Context, timeout time.Duration, name string, probe func() error, logs func() string) error {
	deadline := time.Now().Add(timeout)
	for {
		err := probe()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s did not come up in %s: %v\n%s", name, timeout, err, logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops one daemon (for tests of a daemon that went away).
func (s *Sandbox) Stop(name string) { s.stop(name, syscall.SIGTERM) }

// Kill kills one daemon with SIGKILL, as a crash or an OOM kill would.
func (s *Sandbox) Kill(name string) { s.stop(name, syscall.SIGKILL) }

func (s *Sandbox) stop(name string, sig syscall.Signal) {
	s.mu.Lock()
	p := s.procs[name]
	delete(s.procs, name)
	s.mu.Unlock()
	if p == nil {
		return
	}
	syscall.Kill(-p.cmd.Process.Pid, sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
	p.log.Close()
}

// PruneAddr empties the cache of the buildkitd at addr (a StartNode one),
// as a fresh CI machine would have it.
func PruneAddr(ctx context.Context, addr string) error {
	c, err := client.New(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	ch := make(chan client.UsageInfo)
	go func() {
		for range ch {
		}
	}()
	return c.Prune(ctx, ch, client.PruneAll)
}

// Logs returns the daemons' logs, for a failing test to print.
func (s *Sandbox) Logs() string {
	var b bytes.Buffer
	s.mu.Lock()
	names := append([]string{"buildkitd", "registry"}, s.nodes...)
	s.mu.Unlock()
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(s.Dir, name+".log"))
		if err != nil {
			continue
		}
		if len(data) > 20000 {
			data = append([]byte("...\n"), data[len(data)-20000:]...)
		}
		fmt.Fprintf(&b, "=== %s log\n%s\n", name, data)
	}
	return b.String()
}

// Close stops every daemon and removes the sandbox directory.
func (s *Sandbox) Close() {
	s.Stop("buildkitd")
	s.mu.Lock()
	names := slices.Collect(maps.Keys(s.procs))
	s.mu.Unlock()
	for _, name := range names {
		s.Stop(name)
	}
	// A killed buildkitd leaves its executors' overlay mounts, dockerd its
	// own; unmount them all before removing.
	UnmountBelow(s.Dir)
	os.RemoveAll(s.Dir)
}

// UnmountBelow detaches every mount at or below dir, deepest first.
func UnmountBelow(dir string) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		unmount(p)
	}
}

// Env is what bkcache needs set to look images up as the sandbox's
// buildkitd fetches them: Docker Hub through the sandbox registry.
func (s *Sandbox) Env() []string {
	return []string{"BKCACHE_REGISTRY_MIRRORS=docker.io=" + s.RegistryAddr}
}

// StartNode starts one more buildkitd, named name (for Kill and Logs),
// with its own root and socket and the same configuration as the first,
// sharing the registry: a node of a pool. It returns its address.
func (s *Sandbox) StartNode(ctx context.Context, name string) (string, error) {
	return s.startNode(ctx, name, false)
}

// StartDebugNode is StartNode with buildkitd saving cache-key debug
// information (--save-cache-debug) and serving it on a debug address of
// its own, returned second.
func (s *Sandbox) StartDebugNode(ctx context.Context, name string) (addr, debug string, err error) {
	addr, err = s.startNode(ctx, name, true)
	return addr, s.debugAddr(name), err
}

func (s *Sandbox) debugAddr(name string) string {
	return "unix://" + filepath.Join(s.Dir, name+"-debug.sock")
}

func (s *Sandbox) startNode(ctx context.Context, name string, debug bool) (string, error) {
	root := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(root, 0o711); err != nil {
		return "", err
	}
	s.mu.Lock()
	if !slices.Contains(s.nodes, name) {
		s.nodes = append(s.nodes, name)
	}
	if debug {
		s.debugNodes[name] = true
	}
	debug = s.debugNodes[name] // a restart keeps it
	s.mu.Unlock()
	addr := "unix://" + filepath.Join(s.Dir, name+".sock")
	args := []string{"--config", filepath.Join(s.Dir, "buildkitd.toml"), "--root", root, "--addr", addr}
	if debug {
		os.Remove(strings.TrimPrefix(s.debugAddr(name), "unix://"))
		args = append(args, "--save-cache-debug", "--debugaddr", s.debugAddr(name))
	}
	if err := s.start(name, filepath.Join(s.Bin, "buildkitd"), args...); err != nil {
		return "", err
	}
	if err := s.waitBuildkitd(ctx, name, addr); err != nil {
		return "", err
	}
	return addr, nil
}

// RestartNode starts a StartNode buildkitd again, stopped or killed,
// with its root and address.
func (s *Sandbox) RestartNode(ctx context.Context, name string) (string, error) {
	s.Stop(name)
	return s.startNode(ctx, name, false)
}

// StopNode stops a StartNode buildkitd and removes its state.
func (s *Sandbox) StopNode(name string) {
	s.Stop(name)
	root := filepath.Join(s.Dir, name)
	UnmountBelow(root)
	os.RemoveAll(root)
	s.mu.Lock()
	s.nodes = slices.DeleteFunc(s.nodes, func(n string) bool { return n == name })
	delete(s.debugNodes, name)
	s.mu.Unlock()
}
