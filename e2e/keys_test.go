package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestComposeBuildKeys: target, args, labels, secrets, tags, extra_hosts
// and shm_size reach the build as docker compose would pass them, and the
// secret's value is in neither bkcache's output nor its hash inputs.
func TestComposeBuildKeys(t *testing.T) {
	requireSandbox(t)
	r := repo(t)
	dir := t.TempDir()
	const secret = "s3cr3t-value-for-e2e"
	files := map[string]string{
		"compose.yaml": `
services:
  keys:
    build:
      context: .
      target: final
      args: {VERSION: "1.2.3"}
      labels: {org.example.team: e2e}
      secrets: [token]
      tags: ["` + r + `/keys:extra"]
      extra_hosts: ["db.internal=10.1.2.3"]
      shm_size: 128m
secrets:
  token: {file: ./token.txt}
`,
		"token.txt": secret,
		"Dockerfile": `FROM busybox AS final
ARG VERSION
RUN --mount=type=secret,id=token wc -c < /run/secrets/token > /token.len && echo "$VERSION" > /version && grep db.internal /etc/hosts > /hosts && df -k /dev/shm | tail -1 > /shm
FROM final AS unused
RUN exit 1
`,
	}
	for p, data := range files {
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, out := build(t, dir, nil, "--push", "--repository", r)
	if out.code != 0 {
		t.Fatalf("build failed:\n%s", out.stderr)
	}
	k := res["keys"]
	if strings.Contains(out.stdout+out.stderr, secret) {
		t.Error("the secret value appears in bkcache's output")
	}
	if got := head(t, r+"/keys:extra"); got != k.Digest {
		t.Errorf("compose tag keys:extra is %q, want %s", got, k.Digest)
	}
	in := bkcache(t, dir, nil, "inputs", "keys", "--repository", r, "--format", "json")
	if in.code != 0 || strings.Contains(in.stdout, secret) || !strings.Contains(in.stdout, `"token"`) {
		t.Errorf("inputs: exit %d, secret id listed %v, value leaked %v", in.code, strings.Contains(in.stdout, `"token"`), strings.Contains(in.stdout, secret))
	}

	cfg, err := remoteImage(t, k.Image).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Labels["org.example.team"] != "e2e" {
		t.Errorf("labels = %v", cfg.Config.Labels)
	}
	got := imageFiles(t, k.Image, "token.len", "version", "hosts", "shm")
	if got["version"] != "1.2.3" || got["token.len"] != "20" || !strings.Contains(got["hosts"], "10.1.2.3") || !strings.Contains(got["shm"], "131072") {
		t.Errorf("files in the image: %q", got)
	}

	// --build-arg overrides the compose arg, as docker compose build
	// --build-arg does: a new hash, a rebuild with the new value, and
	// `hash` with the same flag names the image the build pushed.
	res, out = build(t, dir, nil, "--push", "--repository", r, "--build-arg", "VERSION=2.0.0")
	k2 := res["keys"]
	if out.code != 0 || k2.Status != "built" || k2.Hash == k.Hash {
		t.Fatalf("build --build-arg VERSION=2.0.0: exit %d, status %q, hash %s (was %s)\n%s", out.code, k2.Status, k2.Hash, k.Hash, out.stderr)
	}
	if v := imageFiles(t, k2.Image, "version")["version"]; v != "2.0.0" {
		t.Errorf("version in the image built with --build-arg: %q", v)
	}
	h := bkcache(t, dir, nil, "hash", "--repository", r, "--build-arg", "VERSION=2.0.0")
	if h.code != 0 || !strings.Contains(h.stdout, k2.Hash) {
		t.Errorf("hash --build-arg VERSION=2.0.0 (exit %d):\n%s\nwant %s", h.code, h.stdout, k2.Hash)
	}
}
