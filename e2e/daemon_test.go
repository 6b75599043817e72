package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestPrivateDaemon: bkcache's own buildkitd starts, is reused, builds
// when no BUILDKIT_HOST is set, stops, survives a stale pid file and is
// started by `build` itself when needed.
func TestPrivateDaemon(t *testing.T) {
	requireSandbox(t)
	state := t.TempDir()
	env := []string{
		"BUILDKIT_HOST=", // unset: the private daemon is the fallback
		"XDG_STATE_HOME=" + state,
		"BKCACHE_BUILDKITD=" + filepath.Join(sb.Bin, "buildkitd"),
	}
	t.Cleanup(func() { bkcache(t, ".", env, "daemon", "stop") })
	dir, r := project(t), repo(t)

	if st := bkcache(t, dir, env, "daemon", "status"); st.code == 0 || !strings.Contains(st.stderr, "not running") {
		t.Fatalf("status before start: exit %d %s", st.code, st.stderr)
	}
	start := bkcache(t, dir, env, "daemon", "start")
	if start.code != 0 || !strings.Contains(start.stdout, "running: buildkitd v0.33.1") {
		t.Fatalf("start: exit %d\n%s%s", start.code, start.stdout, start.stderr)
	}
	again := bkcache(t, dir, env, "daemon", "start")
	if again.code != 0 || !strings.Contains(again.stdout, "already running") || pid(again.stdout) != pid(start.stdout) {
		t.Fatalf("second start did not reuse the daemon:\n%s\n%s", start.stdout, again.stdout)
	}

	res, out := build(t, dir, env, "--push", "--repository", r, "web")
	if out.code != 0 || res["web"].Status != "built" {
		t.Fatalf("build on the private daemon: exit %d\n%s", out.code, out.stderr)
	}
	// It keeps cache-key debug information: a step that ran because its
	// sources changed owner (which bkcache does not hash) names the file.
	if st := bkcache(t, dir, env, "daemon", "status"); !strings.Contains(st.stdout, "cache-key debug information: unix://") {
		t.Errorf("status does not name the debug address:\n%s", st.stdout)
	}
	if err := os.Chown(filepath.Join(dir, "web/static/index.html"), 4321, 4321); err != nil {
		t.Fatal(err)
	}
	res, out = build(t, dir, env, "--push", "--force", "--repository", r, "web")
	if out.code != 0 {
		t.Fatalf("forced build on the private daemon: exit %d\n%s", out.code, out.stderr)
	}
	wantMiss(t, res["web"].Steps, 2, "in the files it reads: static/index.html: uid 4321 (was 0), gid 4321 (was 0)")

	// A local pool: the first node is the running daemon, a second starts.
	pool := bkcache(t, dir, env, "daemon", "start", "--nodes", "2")
	_, hosts, ok := strings.Cut(pool.stdout, "BUILDKIT_HOST=")
	if pool.code != 0 || !ok || !strings.Contains(pool.stdout, "already running") || strings.Count(hosts, ",") != 1 {
		t.Fatalf("start --nodes 2: exit %d\n%s%s", pool.code, pool.stdout, pool.stderr)
	}
	writeFile(t, dir, "web/static/index.html", "<p>on the pool</p>")
	// (The private daemons have no docker.io mirror: web is FROM scratch.)
	res, out = build(t, dir, []string{"BUILDKIT_HOST=" + strings.TrimSpace(hosts)}, "--push", "--repository", r, "web")
	if out.code != 0 || res["web"].Status != "built" {
		t.Fatalf("build on the pool: exit %d\n%s", out.code, out.stderr)
	}
	if stop := bkcache(t, dir, env, "daemon", "stop", "--nodes", "2"); stop.code != 0 || strings.Count(stop.stdout, "stopped") != 2 {
		t.Fatalf("stop --nodes 2: %s %s", stop.stdout, stop.stderr)
	}

	if stop := bkcache(t, dir, env, "daemon", "stop"); stop.code != 0 || !strings.Contains(stop.stdout, "not running") {
		t.Fatalf("stop: %s %s", stop.stdout, stop.stderr)
	}
	if st := bkcache(t, dir, env, "daemon", "status"); st.code == 0 {
		t.Fatalf("status after stop: %s", st.stdout)
	}

	// A pid file left by a daemon that died.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(state, "bkcache", "buildkitd", "buildkitd.pid")
	os.WriteFile(pidFile, []byte(strconv.Itoa(dead.Process.Pid)+"\n"), 0o600)
	if st := bkcache(t, dir, env, "daemon", "status"); !strings.Contains(st.stderr, "stale pid file") {
		t.Errorf("status with a stale pid file: %s", st.stderr)
	}
	// build starts the daemon itself, replacing the stale pid file.
	writeFile(t, dir, "web/static/index.html", "<p>auto-started</p>")
	res, out = build(t, dir, env, "--push", "--repository", r, "web")
	if out.code != 0 || res["web"].Status != "built" || !strings.Contains(out.stderr, "started buildkitd") {
		t.Fatalf("build with auto-start: exit %d\n%s", out.code, out.stderr)
	}
	if st := bkcache(t, dir, env, "daemon", "status"); st.code != 0 {
		t.Errorf("status after auto-start: %s", st.stderr)
	}
}

func pid(out string) string {
	_, after, _ := strings.Cut(out, "(pid ")
	p, _, _ := strings.Cut(after, ")")
	return p
}
