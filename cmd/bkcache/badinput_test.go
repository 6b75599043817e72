package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestBadInput is the bad-input corpus: compose files, Dockerfiles,
// ignore files, image references and flags a user can get wrong. Each
// must end in an error (exit 1, or 2 for how a command was called) whose
// message names the culprit, before anything is built, and never in a
// panic (which would crash this test binary).
func TestBadInput(t *testing.T) {
	// No daemon: a case that got as far as connecting would fail on
	// that, not on its culprit.
	t.Setenv("BUILDKIT_HOST", "unix://"+filepath.Join(t.TempDir(), "no-daemon.sock"))
	tree := func(edit map[string]string) string {
		files := map[string]string{}
		for k, v := range simple {
			files[k] = v
		}
		for k, v := range edit {
			if v == "" {
				delete(files, k)
			} else {
				files[k] = v
			}
		}
		return sourcetest.Tree(t, files)
	}
	compose := func(svc string) string {
		return tree(map[string]string{"compose.yaml": "services:\n  a:\n" + svc})
	}
	empty := t.TempDir()
	wrongSchema := filepath.Join(empty, "v9.json")
	os.WriteFile(wrongSchema, []byte(`{"schemaVersion": 9, "services": []}`), 0o644)
	notJSON := filepath.Join(empty, "notjson.json")
	os.WriteFile(notJSON, []byte(`{"schemaVersion": 1,`), 0o644)
	hostile := filepath.Join(empty, "hostile.json")
	os.WriteFile(hostile, []byte(`{"schemaVersion": 1, "project": "p", "services": [{"service": "my-app", "status": "built", "hash": "**[x](y)**\u001b]0;t\u0007", "image": "x"}]}`), 0o644)
	foreign := filepath.Join(empty, "foreign.json")
	h := strings.Repeat("ab", 32)
	os.WriteFile(foreign, []byte(`{"schemaVersion": 1, "project": "p", "services": [{"service": "my-app", "status": "built", "hash": "`+h+`", "image": "evil.io/x/my-app:`+h+`\nBASH_ENV=/tmp/evil.sh"}]}`), 0o644)
	dirAsFile := tree(nil)
	os.Mkdir(filepath.Join(dirAsFile, "app", "Dockerfile.d"), 0o755)

	for _, tc := range []struct {
		name string
		args []string
		want []string
		code int
	}{
		// Compose files.
		{"no compose file", []string{"hash", "--project-directory", empty}, []string{"no compose file"}, 1},
		{"missing -f file", []string{"hash", "-f", filepath.Join(empty, "nope.yaml")}, []string{"nope.yaml"}, 1},
		{"malformed compose", []string{"hash", "--project-directory", tree(map[string]string{"compose.yaml": "services:\n  a: [\n"})}, []string{"compose.yaml"}, 1},
		{"unknown service key", []string{"hash", "--project-directory", compose("    build: ./app\n    bogus_key: 1\n")}, []string{"bogus_key"}, 1},
		{"unknown service", []string{"hash", "ghost", "--project-directory", tree(nil)}, []string{`"ghost"`, "my-app"}, 1},
		{"service without build", []string{"inputs", "db", "--project-directory", tree(nil)}, []string{`"db"`}, 1},
		{"missing context", []string{"hash", "--project-directory", compose("    build: ./nope\n")}, []string{`service "a"`, "nope"}, 1},
		{"context is a file", []string{"hash", "--project-directory", compose("    build: ./app/main.txt\n")}, []string{"main.txt"}, 1},
		{"required variable unset", []string{"hash", "--project-directory", compose("    build:\n      context: ./app\n      args:\n        V: ${NEEDED:?set NEEDED first}\n")}, []string{"NEEDED"}, 1},
		{"extends a missing service", []string{"hash", "--project-directory", compose("    build: ./app\n    extends:\n      service: ghost\n")}, []string{"ghost"}, 1},
		{"include a missing file", []string{"hash", "--project-directory", tree(map[string]string{"compose.yaml": "include:\n  - other.yaml\nservices:\n  a:\n    build: ./app\n"})}, []string{"other.yaml"}, 1},
		{"missing --env-file", []string{"hash", "--project-directory", tree(nil), "--env-file", filepath.Join(empty, "ci.env")}, []string{"ci.env"}, 1},
		{"service: context names no service", []string{"hash", "--project-directory", compose("    build:\n      context: ./app\n      additional_contexts:\n        base: service:ghost\n")}, []string{"ghost"}, 1},
		{"service: contexts in a cycle", []string{"hash", "--project-directory", tree(map[string]string{"compose.yaml": "services:\n  a:\n    build:\n      context: ./app\n      additional_contexts:\n        x: service:b\n  b:\n    build:\n      context: ./app\n      additional_contexts:\n        x: service:a\n"})}, []string{"a -> b -> a"}, 1},
		{"unsupported build network", []string{"hash", "--project-directory", compose("    build:\n      context: ./app\n      network: bridge2\n")}, []string{`service "a"`, "bridge2"}, 1},
		{"extra host not an address", []string{"build", "--project-directory", compose("    build:\n      context: ./app\n      extra_hosts: [\"db=host-gateway\"]\n")}, []string{`service "a"`, "extra_hosts", "db=host-gateway"}, 1},
		{"unknown ulimit", []string{"hash", "--project-directory", compose("    build:\n      context: ./app\n      ulimits: {files: 10}\n")}, []string{`service "a"`, "ulimits", "files"}, 1},
		{"malformed cache_from", []string{"build", "--project-directory", compose("    build:\n      context: ./app\n      cache_from: [\"type=registry,ref\"]\n")}, []string{`service "a"`, "cache_from"}, 1},
		{"malformed cache_to", []string{"hash", "--project-directory", compose("    build:\n      context: ./app\n      cache_to: [\"type=\"]\n")}, []string{`service "a"`, "cache_to"}, 1},

		// Dockerfiles.
		{"missing Dockerfile", []string{"hash", "--project-directory", compose("    build: {context: ./app, dockerfile: Nope.Dockerfile}\n")}, []string{`service "a"`, "Nope.Dockerfile"}, 1},
		{"Dockerfile is a directory", []string{"hash", "--project-directory", dirAsFile, "-f", filepath.Join(dirAsFile, "compose.yaml"), "-f", writeOverride(t, dirAsFile, "services:\n  my-app:\n    build:\n      dockerfile: Dockerfile.d\n")}, []string{"Dockerfile.d"}, 1},
		{"Dockerfile syntax", []string{"hash", "--project-directory", tree(map[string]string{"app/Dockerfile": "FROM scratch\nCOPY --chmod=xyz --what a /\n"})}, []string{`service "my-app"`, "line 2"}, 1},
		{"unknown instruction", []string{"hash", "--project-directory", tree(map[string]string{"app/Dockerfile": "FROM scratch\nCOPPY main.txt /\n"})}, []string{`service "my-app"`, "COPPY"}, 1},
		{"empty Dockerfile", []string{"hash", "--project-directory", tree(map[string]string{"app/Dockerfile": "# nothing here\n"})}, []string{`service "my-app"`, "Dockerfile"}, 1},
		{"target not in the Dockerfile", []string{"hash", "--project-directory", compose("    build: {context: ./app, target: nope}\n")}, []string{`service "a"`, `"nope"`}, 1},
		{"unterminated variable", []string{"hash", "--project-directory", tree(map[string]string{"app/Dockerfile": "FROM scratch\nCOPY ${SRC main.txt /\n"})}, []string{`service "my-app"`, "line 2"}, 1},

		// Ignore files.
		{"bad .dockerignore pattern", []string{"hash", "--project-directory", tree(map[string]string{"app/.dockerignore": "[\n"})}, []string{".dockerignore"}, 1},
		{"bad Dockerfile.dockerignore pattern", []string{"hash", "--project-directory", tree(map[string]string{"app/Dockerfile.dockerignore": "a/[z\n"})}, []string{"Dockerfile.dockerignore"}, 1},
		{".dockerignore is a directory", []string{"hash", "--project-directory", tree(map[string]string{"app/.dockerignore/x": "x"})}, []string{".dockerignore"}, 1},

		// Image references.
		{"invalid image name", []string{"hash", "--project-directory", compose("    image: Reg.Local/UPPER/App\n    build: ./app\n")}, []string{`service "a"`, "UPPER"}, 1},
		{"invalid --repository", []string{"hash", "--project-directory", tree(nil), "--repository", "reg.local/bad repo"}, []string{`service "my-app"`, "bad repo"}, 1},
		{"invalid build.tags", []string{"build", "--project-directory", compose("    build:\n      context: ./app\n      tags: [\"reg.local/x:bad tag\"]\n")}, []string{`service "a"`, "bad tag"}, 1},
		{"invalid ref to inspect", []string{"cache", "inspect", "not a ref!"}, []string{"not a ref!"}, 1},
		{"invalid --against ref", []string{"explain", "my-app", "--project-directory", tree(nil), "--against", "reg.local/x::y"}, []string{"reg.local/x::y"}, 1},
		{"--push of a service without image: or --repository", []string{"build", "--push", "--project-directory", compose("    build: ./app\n")}, []string{"--push", `service "a"`, "image:", "--repository"}, 1},
		{"check of a service without image: or --repository", []string{"check", "--project-directory", compose("    build: ./app\n")}, []string{`service "a"`, "image:", "--repository"}, 1},
		{"explain of a service without image: or --repository", []string{"explain", "a", "--project-directory", compose("    build: ./app\n")}, []string{`service "a"`, "--repository", "--against FILE"}, 1},
		{"invalid --ci-tag", []string{"build", "--project-directory", tree(nil), "--ci-tag", "ci/main"}, []string{"--ci-tag", "ci/main"}, 2},
		{"malformed --registry-mirror of a build", []string{"build", "--project-directory", tree(nil), "--registry-mirror", "docker.io"}, []string{"--registry-mirror", "docker.io"}, 2},
		{"malformed --registry-mirror of a hash", []string{"hash", "--project-directory", tree(nil), "--registry-mirror", "=mirror.local"}, []string{"--registry-mirror"}, 2},
		{"invalid --cache-fallback", []string{"build", "--project-directory", tree(nil), "--cache-fallback", ".hidden"}, []string{"--cache-fallback", ".hidden"}, 2},

		// Flags and arguments.
		{"bad --format", []string{"hash", "--format", "yaml", "--project-directory", tree(nil)}, []string{"yaml"}, 2},
		{"bad env --format", []string{"env", "--format", "jenkins", "--project-directory", tree(nil)}, []string{"jenkins"}, 2},
		{"bad --progress", []string{"build", "--progress", "fancy", "--project-directory", tree(nil)}, []string{"fancy"}, 2},
		{"--parallel -1", []string{"build", "--parallel", "-1", "--project-directory", tree(nil)}, []string{"--parallel"}, 2},
		{"--attempts 0", []string{"build", "--attempts", "0", "--project-directory", tree(nil)}, []string{"--attempts"}, 2},
		{"build --prune without --push", []string{"build", "--prune", "--project-directory", tree(nil)}, []string{"--prune", "--push"}, 2},
		{"prune --keep -1", []string{"prune", "--keep", "-1", "--project-directory", tree(nil)}, []string{"--keep"}, 2},
		{"prune --keep-within -1h", []string{"prune", "--keep-within", "-1h", "--project-directory", tree(nil)}, []string{"--keep-within"}, 2},
		{"prune --format yaml", []string{"prune", "--format", "yaml", "--project-directory", tree(nil)}, []string{"yaml"}, 2},
		{"prune --format ecr-lifecycle with --keep and --keep-within", []string{"prune", "--format", "ecr-lifecycle", "--project-directory", tree(nil)}, []string{"ecr-lifecycle", "--keep-within 0s to keep the newest 10", "--keep 0"}, 2},
		{"prune --format ecr-lifecycle --yes", []string{"prune", "--format", "ecr-lifecycle", "--keep-within", "0s", "--yes", "--project-directory", tree(nil)}, []string{"ecr-lifecycle", "deletes nothing", "--yes"}, 2},
		{"--registry-timeout 0", []string{"build", "--registry-timeout", "0s", "--project-directory", tree(nil)}, []string{"--registry-timeout"}, 2},
		{"unknown --output type", []string{"build", "--output", "type=bogus,dest=x", "--project-directory", tree(nil)}, []string{"bogus"}, 2},
		{"--output and --load", []string{"build", "--output", "type=oci,dest=x", "--load", "--project-directory", tree(nil)}, []string{"--output", "--load"}, 2},
		{"--build-arg without a name", []string{"hash", "--build-arg", "=1", "--project-directory", tree(nil)}, []string{"--build-arg", "=1"}, 2},
		{"--provenance not a setting", []string{"build", "--provenance", "max", "--project-directory", tree(nil)}, []string{"--provenance", `"max"`, "mode=max"}, 2},
		{"--sbom with an unknown key", []string{"hash", "--sbom", "scanner=x", "--project-directory", tree(nil)}, []string{"--sbom", `"scanner"`, "generator=IMAGE"}, 2},
		{"--platform not a platform", []string{"build", "--platform", "linux/amd64,", "--project-directory", tree(nil)}, []string{"--platform", "OS/ARCH"}, 2},
		{"build.provenance mode", []string{"hash", "--project-directory", compose("    build: {context: ./app, provenance: 'mode=mid'}\n")}, []string{`service "a"`, "compose.yaml", "build.provenance", `"mid"`}, 1},
		{"--build-arg with a space in its name", []string{"build", "--build-arg", "MY ARG=1", "--project-directory", tree(nil)}, []string{"--build-arg", "MY ARG=1"}, 2},
		{"unknown flag", []string{"build", "--no-such-flag"}, []string{"--no-such-flag"}, 2},
		{"flag value of the wrong type", []string{"build", "--parallel", "many"}, []string{"many"}, 2},
		{"inputs needs a service", []string{"inputs", "--project-directory", tree(nil)}, []string{"arg"}, 1},

		// Manifests.
		{"manifest of another schema", []string{"manifest", "diff", wrongSchema, wrongSchema}, []string{"v9.json", "9"}, 1},
		{"manifest not JSON", []string{"manifest", "diff", notJSON, notJSON}, []string{"notjson.json"}, 1},
		{"manifest missing", []string{"manifest", "diff", filepath.Join(empty, "a.json"), filepath.Join(empty, "b.json")}, []string{"a.json"}, 1},
		{"record with a hash that is not hex", []string{"explain", "my-app", "--project-directory", tree(nil), "--against", hostile}, []string{"hostile.json", "malformed", `service "my-app"`, "64 hex"}, 1},
		{"record with a foreign image", []string{"env", "--from-manifest", foreign, "--format", "github", "--project-directory", tree(nil)}, []string{"foreign.json", `service "my-app"`, "not an image reference"}, 1},
		{"record of another project's service", []string{"compose-override", "--from-manifest", foreign, "--project-directory", compose("    build: ./app\n")}, []string{"foreign.json", `"my-app"`, "does not build"}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, tc.args...)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "no-daemon.sock") {
				t.Errorf("got as far as connecting to buildkitd: %v", err)
			}
			if c := exitCode(err); c != tc.code {
				t.Errorf("exit code %d, want %d (%v)", c, tc.code, err)
			}
		})
	}
}

// writeOverride writes a compose override file into dir.
func writeOverride(t *testing.T, dir, content string) string {
	t.Helper()
	p := filepath.Join(dir, "override.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
