package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bkcache/bkcache/e2e/sandbox"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// project copies the fixture project into a temp dir.
func project(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := os.CopyFS(dst, os.DirFS("testdata/project")); err != nil {
		t.Fatal(err)
	}
	return dst
}

var repos atomic.Int64

// repo returns a registry prefix of the test's own, new at every call so
// that repeated runs (-count) never see each other's images.
func repo(t *testing.T) string {
	name := strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name()))
	return fmt.Sprintf("%s/%s-%d", sb.RegistryAddr, name, repos.Add(1))
}

type result struct {
	stdout, stderr string
	code           int
}

// bkcache runs the binary under test in dir with the sandbox's daemon.
func bkcache(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	r, err := runBkcache(dir, env, args...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// runBkcache is bkcache for goroutines other than the test's: it returns
// what the test must fail on (it could not run, or it panicked).
func runBkcache(dir string, env []string, args ...string) (result, error) {
	return runCmd(exec.Command(sb.BkcacheBin(), args...), dir, env)
}

func runCmd(cmd *exec.Cmd, dir string, env []string) (result, error) {
	cmd.Dir = dir
	cmd.Env = append(append(append(os.Environ(), "BUILDKIT_HOST="+sb.BuildkitAddr, "XDG_CACHE_HOME="+filepath.Join(sb.Dir, "cache")), sb.Env()...), env...)
	var out, errb bytes.Buffer
	if cmd.Stdout == nil {
		cmd.Stdout = &out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &errb
	}
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.code = ee.ExitCode()
	} else if err != nil {
		return r, fmt.Errorf("running bkcache: %v", err)
	}
	if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
		return r, fmt.Errorf("bkcache panicked:\n%s", r.stderr)
	}
	return r, nil
}

type svcResult struct {
	Service     string `json:"service"`
	Status      string `json:"status"`
	Hash        string `json:"hash"`
	Image       string `json:"image"`
	Digest      string `json:"digest"`
	Floating    string `json:"floating"`
	CachedSteps int    `json:"cachedSteps"`
	TotalSteps  int    `json:"totalSteps"`
	DurationMs  int64  `json:"durationMs"`
	Error       string `json:"error"`
	// CacheImports and CacheExports are the cache refs the solve
	// imported and exported.
	CacheImports []string `json:"cacheImports"`
	CacheExports []string `json:"cacheExports"`
	// CacheReused names the imported cache R:cache-H was pointed at
	// instead of an export.
	CacheReused      string `json:"cacheReused"`
	CacheExportBytes int64  `json:"cacheExportBytes"`
	// CacheForm is the form R:cache-H was exported in, and why.
	CacheForm    string `json:"cacheForm"`
	CacheFormWhy string `json:"cacheFormWhy"`
	// Warnings are what went wrong without failing the service.
	Warnings []string `json:"warnings"`
	SameAs   string   `json:"sameAs"`
	// Steps are the Dockerfile's steps as the solve ran them.
	Steps []step `json:"steps"`
}

// step is one Dockerfile step of a summary or a record.
type step struct {
	Stage       string `json:"stage"`
	Line        int    `json:"line"`
	Instruction string `json:"instruction"`
	Status      string `json:"status"`
	DurationMs  int64  `json:"durationMs"`
	Reason      string `json:"reason"`
	Unexpected  bool   `json:"unexpected"`
}

// build runs `bkcache build --format json` and decodes the summary.
func build(t *testing.T, dir string, env []string, args ...string) (map[string]svcResult, result) {
	t.Helper()
	r := bkcache(t, dir, env, append([]string{"build", "--format", "json", "--progress", "plain"}, args...)...)
	return summary(t, r), r
}

// summary decodes `bkcache build --format json`.
func summary(t *testing.T, r result) map[string]svcResult {
	t.Helper()
	var doc struct {
		Services []svcResult `json:"services"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("bkcache build (exit %d) printed no JSON summary: %v\nstdout:\n%s\nstderr:\n%s\n%s", r.code, err, r.stdout, r.stderr, sb.Logs())
	}
	out := map[string]svcResult{}
	for _, s := range doc.Services {
		out[s.Service] = s
	}
	return out
}

func mustBuild(t *testing.T, dir string, env []string, args ...string) map[string]svcResult {
	t.Helper()
	res, r := build(t, dir, env, args...)
	if r.code != 0 {
		t.Fatalf("bkcache build failed (exit %d):\n%s\n%s", r.code, r.stderr, sb.Logs())
	}
	return res
}

// head returns the digest of ref, or "" when the registry has no such
// manifest.
// mustRef parses s, a ref in a loopback registry.
func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// keychain reads registries with the test process's docker config, as
// bkcache does: none for most tests, a password for TestChaos's.
var keychain = remote.WithAuthFromKeychain(authn.DefaultKeychain)

func head(t *testing.T, ref string) string {
	t.Helper()
	d, err := remote.Head(mustRef(t, ref), remote.WithContext(context.Background()), keychain)
	var te *transport.Error
	if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
		return ""
	}
	if err != nil {
		t.Fatalf("HEAD %s: %v", ref, err)
	}
	return d.Digest.String()
}

func writeFile(t *testing.T, dir, rel, data string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, rel), []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

var daemons atomic.Int64

// daemon is a buildkitd of one test's own, sharing the sandbox registry:
// for tests that prune a daemon's cache or kill a daemon, so that no
// other test finds its cache gone or its daemon down.
type daemon struct{ name, addr, debug string } // debug: its debug address, when it saves cache-key debug information

// newDaemon starts a daemon for t, stopped when t ends.
func newDaemon(t *testing.T) *daemon {
	t.Helper()
	return ownDaemon(t, func(ctx context.Context, name string) (string, string, error) {
		addr, err := sb.StartNode(ctx, name)
		return addr, "", err
	})
}

// newDebugDaemon is newDaemon saving cache-key debug information, and
// its debug address.
func newDebugDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	d := ownDaemon(t, sb.StartDebugNode)
	return d, d.debug
}

// ownDaemon starts a buildkitd of t's own with start, stopped when t
// ends.
func ownDaemon(t *testing.T, start func(ctx context.Context, name string) (addr, debug string, err error)) *daemon {
	t.Helper()
	d := &daemon{name: fmt.Sprintf("buildkitd-own-%d", daemons.Add(1))}
	addr, debug, err := start(t.Context(), d.name)
	if err != nil {
		t.Fatal(err)
	}
	d.addr, d.debug = addr, debug
	t.Cleanup(func() { sb.StopNode(d.name) })
	return d
}

// env points bkcache at the daemon, with the extra variables.
func (d *daemon) env(extra ...string) []string {
	return append([]string{"BUILDKIT_HOST=" + d.addr}, extra...)
}

// prune empties the daemon's cache, as a fresh CI machine would have it.
func (d *daemon) prune(t *testing.T) {
	t.Helper()
	if err := sandbox.PruneAddr(context.Background(), d.addr); err != nil {
		t.Fatalf("pruning %s: %v", d.addr, err)
	}
}

// newRegistry starts a registry of t's own, stopped with the sandbox.
func newRegistry(t *testing.T) *sandbox.Registry { return ownRegistry(t, sb.NewRegistry) }

// newRegistryTakingIndexes is a registry of t's own that takes a cache
// in the index form.
func newRegistryTakingIndexes(t *testing.T) *sandbox.Registry {
	return ownRegistry(t, sb.NewRegistryTakingIndexes)
}

// ownRegistry is a registry start, stopped at t's end.
func ownRegistry(t *testing.T, start func(context.Context) (*sandbox.Registry, error)) *sandbox.Registry {
	t.Helper()
	r, err := start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)
	return r
}

// remoteImage is the image at ref in a loopback registry.
func remoteImage(t *testing.T, ref string) v1.Image {
	t.Helper()
	img, err := remote.Image(mustRef(t, ref), keychain)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// layers lists the layer digests of the image at ref.
func layers(t *testing.T, ref string) []string {
	t.Helper()
	ls, err := remoteImage(t, ref).Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		d, _ := l.Digest()
		out = append(out, d.String())
	}
	return out
}

// imageFiles returns the named files of the image at ref (paths without
// a leading slash), trimmed.
func imageFiles(t *testing.T, ref string, names ...string) map[string]string {
	t.Helper()
	return filesOf(t, remoteImage(t, ref), names...)
}

// platformFiles is imageFiles of the linux/arch image of the index at ref.
func platformFiles(t *testing.T, ref, arch string, names ...string) map[string]string {
	t.Helper()
	img, err := remote.Image(mustRef(t, ref), remote.WithPlatform(v1.Platform{OS: "linux", Architecture: arch}))
	if err != nil {
		t.Fatal(err)
	}
	return filesOf(t, img, names...)
}

// filesOf reads the named files of img, trimmed of surrounding space.
func filesOf(t *testing.T, img v1.Image, names ...string) map[string]string {
	t.Helper()
	all := regularFiles(t, img)
	got := map[string]string{}
	for _, nm := range names {
		if v, ok := all[nm]; ok {
			got[nm] = v
		}
	}
	return got
}

// regularFiles returns every regular file of img and its content,
// trimmed of surrounding space.
func regularFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	got := map[string]string{}
	tr := tar.NewReader(mutate.Extract(img))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			b, _ := io.ReadAll(tr)
			got[h.Name] = strings.TrimSpace(string(b))
		}
	}
}
