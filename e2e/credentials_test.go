package e2e

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// dockerConfig writes a docker config holding user:password for host
// and returns its directory, for DOCKER_CONFIG.
func dockerConfig(t *testing.T, host, user, password string) string {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	cfg := fmt.Sprintf(`{"auths": {%q: {"auth": %q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// credentialHelper installs a docker credential helper (the protocol of
// docker-credential-helpers: `get` reads a server URL on stdin and prints
// JSON) answering user:password for host, and returns the environment of
// a docker config that names it for host, with the helper on PATH.
func credentialHelper(t *testing.T, host, user, password string) []string {
	t.Helper()
	bin, cfg := t.TempDir(), t.TempDir()
	script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\n"+
		"[ \"$server\" = %q ] || { echo \"credentials not found in native keychain\"; exit 1; }\n"+
		"printf '{\"ServerURL\":\"%%s\",\"Username\":%q,\"Secret\":%q}\\n' \"$server\"\n", host, user, password)
	if err := os.WriteFile(filepath.Join(bin, "docker-credential-e2e"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg, "config.json"), []byte(fmt.Sprintf(`{"credHelpers": {%q: "e2e"}}`, host)), 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"DOCKER_CONFIG=" + cfg, "PATH=" + bin + ":" + os.Getenv("PATH")}
}

// TestCredentialsNeverLeak builds, checks, explains and inspects against a
// registry that requires basic auth, with a build secret, and checks
// every byte bkcache printed or wrote (outputs, manifests, the manifest
// attached in the registry) for the password, the encoded credentials
// and the secret's value. Wrong credentials are an error naming the
// registry and how to log in, without echoing them.
func TestCredentialsNeverLeak(t *testing.T) {
	requireSandbox(t)
	const user, password, secret = "ci-bot", "pw-Zq9xV7-never-print", "secret-value-Kd83-never-print"
	const wrongPassword = "wrong-Pq1-never-print"
	addr, err := sb.StartAuthRegistry(t.Context(), user, password)
	if err != nil {
		t.Fatal(err)
	}
	dir := sourcetest.Tree(t, map[string]string{
		"compose.yaml": "services:\n  svc:\n    build:\n      context: .\n      secrets: [token]\nsecrets:\n  token:\n    file: ./token.txt\n",
		"Dockerfile":   "FROM busybox\nRUN --mount=type=secret,id=token,required=true test -s /run/secrets/token && echo ok > /ok\nCOPY input.txt /input.txt\n",
		"input.txt":    "v1\n",
		"token.txt":    secret,
	})
	r := addr + "/leak"
	env := []string{"DOCKER_CONFIG=" + dockerConfig(t, addr, user, password)}
	out := t.TempDir()
	m1, m2 := filepath.Join(out, "build.json"), filepath.Join(out, "hash.json")

	var seen strings.Builder
	run := func(wantOK bool, env []string, args ...string) result {
		t.Helper()
		res := bkcache(t, dir, env, args...)
		fmt.Fprintf(&seen, "$ bkcache %s\n%s%s", strings.Join(args, " "), res.stdout, res.stderr)
		if (res.code == 0) != wantOK {
			t.Fatalf("bkcache %s: exit %d\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
		}
		return res
	}
	run(true, env, "build", "--push", "--repository", r, "--progress", "plain", "--manifest", m1)
	run(true, env, "build", "--push", "--repository", r, "--progress", "rawjson", "--force")
	run(true, env, "check", "--repository", r)
	run(true, env, "explain", "svc", "--repository", r, "--format", "json")
	run(true, env, "cache", "inspect", r+"/svc:cache-ci")
	run(true, env, "hash", "--repository", r, "--format", "json", "--manifest", m2)
	run(true, env, "env", "--repository", r)
	run(true, env, "version")
	// The same credentials from a credential helper instead of the config
	// file: bkcache's own registry requests and buildkitd's push both
	// ask docker-credential-e2e.
	helper := credentialHelper(t, addr, user, password)
	run(true, helper, "build", "--push", "--repository", r, "--force", "--progress", "plain")
	run(true, helper, "check", "--repository", r)

	// Refused credentials, and none at all.
	writeFile(t, dir, "input.txt", "v2\n")
	for _, e := range [][]string{
		{"DOCKER_CONFIG=" + dockerConfig(t, addr, user, wrongPassword)},
		{"DOCKER_CONFIG=" + t.TempDir()},
	} {
		res := run(false, e, "build", "--push", "--repository", r)
		if !containsAll(res.stderr, addr, "docker login "+addr) {
			t.Errorf("a refused login does not say which registry and what to do:\n%s", res.stderr)
		}
	}

	// The manifest bkcache attached to the image, as the registry has it.
	for _, f := range []string{m1, m2} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen.Write(b)
	}
	seen.WriteString(attachedManifests(t, r+"/svc:ci", &authn.Basic{Username: user, Password: password}))
	if !strings.Contains(seen.String(), `"token"`) {
		t.Error("the secret's id is not recorded") // the check below must have looked at something
	}

	all := seen.String()
	for _, s := range []string{
		password, wrongPassword, secret,
		base64.StdEncoding.EncodeToString([]byte(user + ":" + password)),
		base64.StdEncoding.EncodeToString([]byte(user + ":" + wrongPassword)),
		base64.StdEncoding.EncodeToString([]byte(secret)),
	} {
		if i := strings.Index(all, s); i >= 0 {
			t.Errorf("bkcache printed or wrote a credential or secret: %q at %q", s, all[max(0, i-200):min(len(all), i+100)])
		}
	}

	// The secret's value is not an input: changing it keeps the hash.
	before := bkcache(t, dir, env, "hash", "--format", "env").stdout
	writeFile(t, dir, "token.txt", "another value")
	if after := bkcache(t, dir, env, "hash", "--format", "env").stdout; after != before {
		t.Errorf("the secret's value moved the hash:\n%s\n%s", before, after)
	}
}

// attachedManifests returns the bkcache manifests attached to ref's
// image, as the registry serves them.
func attachedManifests(t *testing.T, ref string, auth authn.Authenticator) string {
	t.Helper()
	n := mustRef(t, ref)
	desc, err := remote.Head(n, remote.WithAuth(auth))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Referrers(n.Context().Digest(desc.Digest.String()), remote.WithAuth(auth))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, m := range im.Manifests {
		img, err := remote.Image(n.Context().Digest(m.Digest.String()), remote.WithAuth(auth))
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			data, _ := io.ReadAll(rc)
			rc.Close()
			b.Write(data)
		}
	}
	if b.Len() == 0 {
		t.Fatalf("no manifest is attached to %s", ref)
	}
	return b.String()
}
