package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMoreComposeBuildKeys: network, no_cache, pull, platforms, ssh and
// compose's own cache_from/cache_to reach BuildKit as docker compose
// passes them.
func TestMoreComposeBuildKeys(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	if _, err := exec.LookPath("ssh-agent"); err != nil {
		t.Skip("ssh-agent is needed for the ssh: key (apt-get install -y openssh-client)")
	}
	r := repo(t)
	dir := t.TempDir()
	cache := filepath.Join(t.TempDir(), "compose-cache")

	// An ssh agent of our own for the ssh: default entry.
	agentDir := t.TempDir()
	sock := filepath.Join(agentDir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	key := filepath.Join(agentDir, "id")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	for i := 0; ; i++ {
		add := exec.Command("ssh-add", key)
		add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
		if err := add.Run(); err == nil {
			break
		} else if i == 50 {
			t.Fatalf("ssh-add: %v", err)
		}
		exec.Command("sleep", "0.1").Run()
	}

	compose := `
services:
  keys:
    build:
      context: .
      network: none
      pull: true
      platforms: [linux/amd64]
      ssh: [default]
      cache_to: ["type=local,dest=` + cache + `,mode=max"]
      cache_from: ["type=local,src=` + cache + `"]
`
	files := map[string]string{
		"compose.yaml": compose,
		"Dockerfile": `FROM busybox
RUN --mount=type=ssh test -S "$SSH_AUTH_SOCK" && echo agent > /ssh
RUN grep -c : /proc/net/dev > /net
RUN echo built > /out
`,
	}
	for p, data := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := d.env("SSH_AUTH_SOCK=" + sock)
	res, out := build(t, dir, env, "--push", "--repository", r)
	if out.code != 0 {
		t.Fatalf("build: %s", out.stderr)
	}
	got := imageFiles(t, res["keys"].Image, "ssh", "net")
	if got["ssh"] != "agent" {
		t.Errorf("the ssh agent was not forwarded: /ssh = %q", got["ssh"])
	}
	if got["net"] != "1" {
		t.Errorf("network: none: the build saw %s interfaces, want only lo", got["net"])
	}
	if _, err := os.Stat(filepath.Join(cache, "index.json")); err != nil {
		t.Errorf("compose cache_to wrote no local cache: %v", err)
	}
	// After a prune, compose's cache_from (the local cache) serves steps.
	d.prune(t)
	res2, out := build(t, dir, env, "--push", "--repository", r, "--force")
	if out.code != 0 || res2["keys"].CachedSteps == 0 {
		t.Errorf("rebuild from compose cache_from: exit %d cached %d/%d\n%s", out.code, res2["keys"].CachedSteps, res2["keys"].TotalSteps, out.stderr)
	}

	// --no-cache, as docker compose build --no-cache: built although the
	// image exists, and no step from the caches at hand.
	res4, out := build(t, dir, env, "--repository", r, "--no-cache")
	if k := res4["keys"]; out.code != 0 || k.Status != "built" || k.TotalSteps == 0 {
		t.Errorf("--no-cache: exit %d, status %q\n%s", out.code, k.Status, out.stderr)
	}
	if c := cachedSteps(out.stderr); len(c) != 0 {
		t.Errorf("--no-cache: steps from cache: %q\n%s", c, out.stderr)
	}

	// no_cache: every step runs again even with caches at hand.
	nc := strings.Replace(compose, "network: none", "network: none\n      no_cache: true", 1)
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(nc), 0o644)
	res3, out := build(t, dir, env, "--repository", r, "--force")
	k := res3["keys"]
	if out.code != 0 || k.TotalSteps == 0 {
		t.Fatalf("no_cache build: exit %d\n%s", out.code, out.stderr)
	}
	if c := cachedSteps(out.stderr); len(c) != 0 {
		t.Errorf("no_cache: steps from cache: %q\n%s", c, out.stderr)
	}
}

// cachedSteps returns the Dockerfile steps that plain progress reports as
// CACHED, leaving out FROM: a base image already in buildkitd's content
// store is reported CACHED even when no cache is used, as with docker
// build --no-cache.
func cachedSteps(progress string) []string {
	names := map[string]string{} // "#7" -> its first line
	var cached []string
	for _, line := range strings.Split(progress, "\n") {
		id, rest, ok := strings.Cut(line, " ")
		if !ok || !strings.HasPrefix(id, "#") {
			continue
		}
		if _, seen := names[id]; !seen {
			names[id] = rest
		}
		if rest == "CACHED" && !strings.Contains(names[id], "] FROM ") {
			cached = append(cached, names[id])
		}
	}
	return cached
}
