package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/e2e/sandbox"
	"github.com/bkcache/bkcache/solver/registry/registrytest/faultproxy"
)

// The user and group the engine tests run bkcache as: not root, in the
// group that owns the engine's socket, as a developer in the docker group.
const (
	engineUser  = "bkcache-e2e"
	engineGroup = "bkcache-docker"
)

// unprivileged is a user bkcache runs as, with a home of its own.
type unprivileged struct {
	cred *syscall.Credential
	home string
}

// needRoot is why the engine tests cannot run without root.
const needRoot = "the Docker engine tests start dockerd and need root: run them with sudo (CI runs as root)"

// startEngine builds the pinned dockerd and starts it as opt says, until
// the test ends.
func startEngine(ctx context.Context, t *testing.T, opt sandbox.EngineOptions) *sandbox.Docker {
	t.Helper()
	requireSandbox(t)
	if err := sandbox.CheckDocker(); err != nil {
		sourcetest.Unavailable(t, err.Error())
	}
	if os.Geteuid() != 0 {
		sourcetest.Unavailable(t, needRoot)
	}
	var err error
	if opt.Bin, err = sb.BuildDockerd(ctx); err != nil {
		t.Fatal(err)
	}
	eng, err := sb.StartEngine(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sb.Stop(opt.Name) })
	return eng
}

// newUnprivileged makes (once per machine) the user and the group, and a
// home for this test. It needs root, as starting a Docker engine does.
func newUnprivileged(t *testing.T) unprivileged {
	t.Helper()
	requireSandbox(t)
	if os.Geteuid() != 0 {
		sourcetest.Unavailable(t, needRoot)
	}
	for _, c := range [][]string{{"groupadd", "--system", engineGroup}, {"useradd", "--system", "--no-create-home", "--gid", engineGroup, engineUser}} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil && !strings.Contains(string(out), "already exists") {
			sourcetest.Unavailable(t, fmt.Sprintf("%s: %v: %s (the shadow package provides it: apt-get install -y passwd)", strings.Join(c, " "), err, out))
		}
	}
	u, err := user.Lookup(engineUser)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	// The sandbox's directory holds the binary under test and the
	// engine's socket: the user must be able to go through it.
	for _, d := range []string{sb.Dir, sb.Bin} {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	for _, d := range []string{filepath.Dir(home), home} { // t.TempDir's parent is private too
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return unprivileged{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{uint32(gid)}}, home: home}
}

// tree writes files into a directory the user owns.
func (u unprivileged) tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir, err := os.MkdirTemp(u.home, "project-")
	if err != nil {
		t.Fatal(err)
	}
	sourcetest.Write(t, dir, files)
	u.chown(t, u.home)
	return dir
}

func (u unprivileged) chown(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(u.cred.Uid), int(u.cred.Gid))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// build is `bkcache build` as the user, on the engine at host: no
// BUILDKIT_HOST, so that bkcache chooses the engine itself.
func (u unprivileged) build(t *testing.T, dir, host string, args ...string) (map[string]svcResult, result) {
	t.Helper()
	r := u.run(t, dir, host, sb.BkcacheBin(), append([]string{"build", "--format", "json", "--progress", "plain", "-v"}, args...)...)
	return summary(t, r), r
}

// run runs a command as the user, in its environment, on the engine at
// host.
func (u unprivileged) run(t *testing.T, dir, host, name string, args ...string) result {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: u.cred}
	r, err := runCmd(cmd, dir, []string{"BUILDKIT_HOST=", "DOCKER_HOST=" + host, "HOME=" + u.home,
		"XDG_CACHE_HOME=" + filepath.Join(u.home, ".cache"), "DOCKER_CONFIG=" + filepath.Join(u.home, ".docker")})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (u unprivileged) mustBuild(t *testing.T, dir, host string, args ...string) map[string]svcResult {
	t.Helper()
	res, r := u.build(t, dir, host, args...)
	if r.code != 0 {
		t.Fatalf("bkcache build as %s failed (exit %d):\n%s\n%s", engineUser, r.code, r.stderr, sb.Logs())
	}
	return res
}

// TestOnDockerEngine: a user with no root and no BUILDKIT_HOST, in the
// group of a current Docker engine (containerd image store), builds,
// skips and pushes on the engine's own BuildKit; bkcache starts no
// daemon.
func TestOnDockerEngine(t *testing.T) {
	u := newUnprivileged(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	eng := startEngine(ctx, t, sandbox.EngineOptions{Name: "engine", Group: engineGroup})
	r := repo(t)
	dir := u.tree(t, map[string]string{
		"compose.yaml": "name: e2e-engine\nservices:\n  svc:\n    image: " + r + "/svc\n    build: .\n",
		"Dockerfile":   tiny["Dockerfile"], "input.txt": "v1\n",
	})
	docker := func(args ...string) (string, error) { return eng.Run(ctx, nil, args...) }

	s, out := u.build(t, dir, eng.Host)
	if s["svc"].Status != "built" || out.code != 0 {
		t.Fatalf("first build on the engine: %+v (exit %d)\n%s", s["svc"], out.code, out.stderr)
	}
	if !strings.Contains(out.stderr, "building on docker engine at "+eng.Host+" (DOCKER_HOST), BuildKit v0.33.0, containerd image store") {
		t.Errorf("-v does not name the engine and why:\n%s", out.stderr)
	}
	// The engine's build history gives the steps, as buildkitd's does.
	if got := stepLines(s["svc"].Steps); got != "2 ran\n3 ran\n" {
		t.Errorf("the steps of the first build on the engine:\n%s", got)
	}
	ref := r + "/svc:" + s["svc"].Hash
	for _, name := range []string{ref, r + "/svc:latest"} {
		if _, err := docker("image", "inspect", name); err != nil {
			t.Errorf("the engine lacks %s: %v", name, err)
		}
	}
	if head(t, ref) != "" {
		t.Errorf("a build without --push pushed %s", ref)
	}
	if s := u.mustBuild(t, dir, eng.Host)["svc"]; s.Status != "skipped" {
		t.Errorf("again, with the image in the engine: %+v, want skipped", s)
	}

	s = u.mustBuild(t, dir, eng.Host, "--push")
	d := head(t, ref)
	if s["svc"].Status != "built" || d == "" || d != s["svc"].Digest || head(t, r+"/svc:ci") != d || head(t, r+"/svc:cache-"+s["svc"].Hash) == "" {
		t.Fatalf("--push: %+v; R:H %q, R:F %q, R:cache-H %q", s["svc"], d, head(t, r+"/svc:ci"), head(t, r+"/svc:cache-"+s["svc"].Hash))
	}
	// The engine's image and R:H are one manifest.
	if id, err := docker("image", "inspect", "--format", "{{.Id}}", ref); err != nil || strings.TrimSpace(id) != d {
		t.Errorf("the engine's %s is %q (%v), the registry's %s", ref, id, err, d)
	}

	// Without the image in the engine, the registry's R:H is a skip: the
	// engine pulls it instead of building.
	if _, err := docker("image", "rm", "--force", ref, r+"/svc:latest"); err != nil {
		t.Fatal(err)
	}
	if s := u.mustBuild(t, dir, eng.Host, "--push")["svc"]; s.Status != "skipped" {
		t.Errorf("after docker image rm: %+v, want skipped through the registry", s)
	}
	c, err := docker("create", r+"/svc:latest")
	if err != nil {
		t.Fatal(err)
	}
	got, err := docker("cp", strings.TrimSpace(c)+":/input.txt", "-")
	if err != nil || !strings.Contains(got, "v1") {
		t.Errorf("the engine's image after the skip: %q %v", got, err)
	}
	// New inputs, in neither the engine nor the registry: built, and
	// nothing pulled.
	writeFile(t, dir, "input.txt", "v2\n")
	if s := u.mustBuild(t, dir, eng.Host, "--push")["svc"]; s.Status != "built" || slices.ContainsFunc(s.Warnings, func(w string) bool { return strings.Contains(w, "pulling") }) {
		t.Errorf("--push of new inputs on the engine: %+v, want built without a pull", s)
	}
	// R:H is in the registry, but an output of another kind is written
	// all the same: pulling into the engine would write nothing.
	dest := filepath.Join(u.home, "out")
	if s := u.mustBuild(t, dir, eng.Host, "--push", "--output", "type=local,dest="+dest)["svc"]; s.Status != "built" {
		t.Errorf("--push --output type=local of an image the registry has: %+v, want built", s)
	}
	if b, err := os.ReadFile(filepath.Join(dest, "input.txt")); err != nil || string(b) != "v2\n" {
		t.Errorf("--push --output type=local of an image the registry has: input.txt %q %v", b, err)
	}

	// As a docker CLI plugin, installed by bkcache itself, on the
	// docker CLI's engine.
	if r := u.run(t, dir, eng.Host, sb.BkcacheBin(), "install-plugin"); r.code != 0 {
		t.Fatalf("install-plugin: %s", r.stderr)
	}
	r2 := u.run(t, dir, eng.Host, "docker", "bkcache", "build", "--format", "json", "--progress", "plain", "-v", "--push")
	if s := summary(t, r2)["svc"]; r2.code != 0 || s.Status != "skipped" || !strings.Contains(r2.stderr, "building on docker engine at "+eng.Host) {
		t.Errorf("docker bkcache build: %+v (exit %d)\n%s", s, r2.code, r2.stderr)
	}
}

// TestOnClassicEngines: on an engine whose BuildKit cannot do what the
// hash promises, bkcache refuses before building, naming the fix, and
// pushes nothing; what it can do there works. A current engine with the
// classic image store builds and pushes (the engine pushes) without
// registry cache; Debian's dockerd 20.10 is refused outright.
func TestOnClassicEngines(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	eng := startEngine(ctx, t, sandbox.EngineOptions{Name: "classic", Classic: true})
	project := func(r string) string {
		return sourcetest.Tree(t, map[string]string{
			"compose.yaml": "name: e2e-classic\nservices:\n  svc:\n    image: " + r + "/svc\n    build:\n      context: .\n      tags: [" + r + "/svc:release]\n",
			"Dockerfile":   tiny["Dockerfile"], "input.txt": "v1\n",
		})
	}
	r := repo(t)
	dir := project(r)
	env := []string{"BUILDKIT_HOST=", "DOCKER_HOST=" + eng.Host}
	refused := func(t *testing.T, dir, r string, env []string, args []string, says ...string) {
		t.Helper()
		res := bkcache(t, dir, env, append([]string{"build", "--progress", "plain"}, args...)...)
		if res.code == 0 {
			t.Fatalf("build %v on a classic engine succeeded, want a refusal:\n%s", args, res.stderr)
		}
		for _, s := range says {
			if !strings.Contains(res.stderr, s) {
				t.Errorf("build %v: the refusal does not say %q:\n%s", args, s, res.stderr)
			}
		}
		if tags := tagsOrNone(t, r+"/svc"); len(tags) > 0 {
			t.Errorf("build %v was refused but pushed %v", args, tags)
		}
	}
	// The default provenance attestation would be lost: the image would
	// not be what its hash says.
	refused(t, dir, r, env, []string{"--push"}, `service "svc": its image gets attestations`, "--provenance false", "containerd image store")
	refused(t, dir, r, env, []string{"--push", "--provenance", "false", "--require-cache-export"}, "--require-cache-export", "cannot export registry cache")

	// Without --push the image stays in the engine: nothing reaches
	// the registry.
	if s := mustBuild(t, dir, env, "--provenance", "false")["svc"]; s.Status != "built" {
		t.Errorf("a build without --push on the classic engine: %+v", s)
	}
	if tags := tagsOrNone(t, r+"/svc"); len(tags) > 0 {
		t.Errorf("a build without --push on the classic engine pushed %v", tags)
	}

	s, res := build(t, dir, env, "--push", "--provenance", "false")
	svc := s["svc"]
	if res.code != 0 || svc.Status != "built" {
		t.Fatalf("--push --provenance false on the classic engine: %+v\n%s", svc, res.stderr)
	}
	if n := strings.Count(res.stderr, "uses the classic image store"); n != 1 {
		t.Errorf("the classic store's lost cache export was said %d times, want once:\n%s", n, res.stderr)
	}
	ref := r + "/svc:" + svc.Hash
	if d := head(t, ref); d == "" || d != svc.Digest || head(t, r+"/svc:ci") != d {
		t.Errorf("pushed by the engine: R:H %q, R:F %q, reported %q", d, head(t, r+"/svc:ci"), svc.Digest)
	}
	if head(t, r+"/svc:cache-"+svc.Hash) != "" || len(svc.CacheExports) > 0 {
		t.Errorf("a classic engine exported cache? The summary says %q", svc.CacheExports)
	}
	if _, err := eng.Run(ctx, nil, "image", "inspect", r+"/svc:latest"); err != nil {
		t.Errorf("the engine lacks compose's name: %v", err)
	}
	if d := head(t, r+"/svc:release"); d != svc.Digest {
		t.Errorf("the compose tag %s/svc:release is %q, want R:H's %s", r, d, svc.Digest)
	}
	if s := mustBuild(t, dir, env, "--push", "--provenance", "false")["svc"]; s.Status != "skipped" {
		t.Errorf("again: %+v, want skipped", s)
	}

	// The engine pushes the compose tags after R:H: one the registry
	// refuses fails the service, naming it, and R:F does not move.
	t.Run("a compose tag refused", func(t *testing.T) {
		p, viaProxy, direct := faulty(t)
		p.Inject(faultproxy.Fault{Method: http.MethodPut, Path: "/manifests/release$", Status: http.StatusForbidden, Code: "DENIED", Message: "tag release is protected"})
		tagged := sourcetest.Tree(t, map[string]string{
			"compose.yaml": "services:\n  svc:\n    image: " + direct + "/svc\n    build:\n      context: .\n      tags: [" + viaProxy + "/svc:release]\n",
			"Dockerfile":   tiny["Dockerfile"], "input.txt": "tagged\n",
		})
		s, res := build(t, tagged, env, "--push", "--provenance", "false")
		if res.code == 0 || s["svc"].Status != "failed" || !strings.Contains(s["svc"].Error, "pushing "+viaProxy+"/svc:release from the Docker engine") {
			t.Errorf("a refused compose tag: exit %d, %+v\n%s", res.code, s["svc"], res.stderr)
		}
		if d := head(t, direct+"/svc:ci"); d != "" {
			t.Errorf("R:F moved to %s although a compose tag was refused", d)
		}
	})
	// R:H itself refused: the service fails naming it, before any
	// compose tag or R:F.
	t.Run("the image refused", func(t *testing.T) {
		p, viaProxy, direct := faulty(t)
		p.Inject(faultproxy.Fault{Method: http.MethodPut, Path: "/manifests/[0-9a-f]{64}$", Status: http.StatusForbidden, Code: "DENIED", Message: "no pushes today"})
		dir := project(viaProxy)
		s, res := build(t, dir, env, "--push", "--provenance", "false")
		want := "pushing " + viaProxy + "/svc:" + s["svc"].Hash + " from the Docker engine"
		if res.code == 0 || s["svc"].Status != "failed" || !strings.Contains(s["svc"].Error, want) {
			t.Errorf("R:H refused: exit %d, %+v, want an error %q\n%s", res.code, s["svc"], want, res.stderr)
		}
		if tags := tagsOrNone(t, direct+"/svc"); len(tags) > 0 {
			t.Errorf("R:H refused, yet the registry has %v", tags)
		}
	})

	t.Run("docker 20.10", func(t *testing.T) {
		old, err := sb.StartDocker(ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := repo(t)
		refused(t, project(r), r, []string{"BUILDKIT_HOST=", "DOCKER_HOST=" + old.Host}, []string{"--push", "--provenance", "false"},
			"older than v0.11", "Docker Engine 26 or later", "buildx builder")
	})
}
