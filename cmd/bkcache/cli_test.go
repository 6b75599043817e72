package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/bkcache/bkcache/hash/inputs"
	"github.com/bkcache/bkcache/solver/outcome"
	"github.com/bkcache/bkcache/solver/record"
	rt "github.com/bkcache/bkcache/solver/registry/registrytest"
	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/spf13/cobra"
)

func run(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err = cmd.ExecuteContext(context.Background())
	return out.String(), err
}

// hashOf returns the one service of a project as `bkcache hash --format
// json` reports it.
func hashOf(t *testing.T, dir string) hashRow {
	t.Helper()
	js, err := run(t, "hash", "--project-directory", dir, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct{ Services []hashRow }
	if err := json.Unmarshal([]byte(js), &doc); err != nil || len(doc.Services) != 1 {
		t.Fatalf("hash --format json (%v):\n%s", err, js)
	}
	return doc.Services[0]
}

var simple = map[string]string{
	"compose.yaml":    "name: demo\nservices:\n  my-app:\n    image: reg.local/demo/app:latest\n    build: ./app\n  db:\n    image: postgres\n",
	"app/Dockerfile":  "FROM scratch\nCOPY main.txt /\n",
	"app/main.txt":    "hi\n",
	"app/ignored.txt": "not an input\n",
}

func TestHashFormats(t *testing.T) {
	dir := sourcetest.Tree(t, simple)
	text, err := run(t, "hash", "--project-directory", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^my-app\s+[0-9a-f]{64}\s+reg\.local/demo/app:[0-9a-f]{64}$`).MatchString(text) {
		t.Fatalf("text output:\n%s", text)
	}

	js, err := run(t, "hash", "--project-directory", dir, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services []hashRow `json:"services"`
	}
	if err := json.Unmarshal([]byte(js), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Services) != 1 || len(doc.Services[0].Hash) < 32 || doc.Services[0].Image != "reg.local/demo/app:"+doc.Services[0].Hash {
		t.Fatalf("json output: %s", js)
	}

	env, err := run(t, "hash", "--project-directory", dir, "--format", "env", "--repository", "ghcr.io/acme")
	if err != nil {
		t.Fatal(err)
	}
	want := "BKCACHE_MY_APP_IMAGE=ghcr.io/acme/my-app:" + doc.Services[0].Hash + "\nBKCACHE_MY_APP_HASH=" + doc.Services[0].Hash + "\n"
	if env != want {
		t.Fatalf("env output:\n%s\nwant\n%s", env, want)
	}
}

// TestBuildArgFlag: --build-arg moves the hash exactly as the same arg
// written in the compose file does, in every command that hashes.
func TestBuildArgFlag(t *testing.T) {
	files := map[string]string{
		"compose.yaml":   "services:\n  app:\n    build: ./app\n",
		"app/Dockerfile": "FROM scratch\nARG VERSION\nCOPY main.txt /\n",
		"app/main.txt":   "hi\n",
	}
	dir := sourcetest.Tree(t, files)
	plain := hashOf(t, dir)
	hashWith := func(args ...string) string {
		t.Helper()
		out, err := run(t, append([]string{"hash", "--project-directory", dir, "--format", "env"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	cli := hashWith("--build-arg", "VERSION=1.2")
	if strings.Contains(cli, plain.Hash) {
		t.Fatalf("--build-arg VERSION=1.2 left the hash at %s", plain.Hash)
	}
	files["compose.yaml"] = "services:\n  app:\n    build: {context: ./app, args: {VERSION: \"1.2\"}}\n"
	if inYAML := hashOf(t, sourcetest.Tree(t, files)); !strings.Contains(cli, inYAML.Hash) {
		t.Fatalf("--build-arg VERSION=1.2 gave\n%s\nthe same arg in compose.yaml %s", cli, inYAML.Hash)
	}
	t.Setenv("VERSION", "1.2")
	if fromEnv := hashWith("--build-arg", "VERSION"); fromEnv != cli {
		t.Fatalf("--build-arg VERSION with VERSION=1.2 in the environment gave\n%s\nwant\n%s", fromEnv, cli)
	}
	in, err := run(t, "inputs", "app", "--project-directory", dir, "--build-arg", "VERSION=1.2")
	if err != nil || !strings.Contains(in, "VERSION") || !strings.Contains(in, "1.2") {
		t.Fatalf("inputs --build-arg (%v):\n%s", err, in)
	}
	if _, err := run(t, "hash", "--project-directory", dir, "--build-arg", "=1"); err == nil || !strings.Contains(err.Error(), "--build-arg") {
		t.Fatalf("--build-arg =1: %v", err)
	}
}

func TestInputsCommand(t *testing.T) {
	dir := sourcetest.Tree(t, simple)
	out, err := run(t, "inputs", "my-app", "--project-directory", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "main.txt") || strings.Contains(out, "ignored.txt") || !strings.Contains(out, "COPY main.txt /") {
		t.Fatalf("inputs output:\n%s", out)
	}
	js, err := run(t, "inputs", "my-app", "--project-directory", dir, "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Hash    string `json:"hash"`
		Sources []struct {
			Files []struct{ Path, Digest string }
		}
	}
	if err := json.Unmarshal([]byte(js), &in); err != nil || len(in.Sources) != 1 || in.Sources[0].Files[0].Path != "main.txt" {
		t.Fatalf("inputs json (%v):\n%s", err, js)
	}
}

func TestHashManifestAndDiff(t *testing.T) {
	dir := sourcetest.Tree(t, simple)
	m1 := filepath.Join(t.TempDir(), "m1.json")
	if _, err := run(t, "hash", "--project-directory", dir, "--manifest", m1); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app", "main.txt"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	m2 := filepath.Join(t.TempDir(), "m2.json")
	if _, err := run(t, "hash", "--project-directory", dir, "--manifest", m2); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "manifest", "diff", m1, m2)
	if err != nil || !strings.Contains(out, "file modified context:main.txt") {
		t.Fatalf("manifest diff (%v):\n%s", err, out)
	}
	// explain against a file works without a registry.
	out, err = run(t, "explain", "my-app", "--project-directory", dir, "--against", m2)
	if err != nil || !strings.Contains(out, "nothing changed") {
		t.Fatalf("explain against a file (%v):\n%s", err, out)
	}

	v2 := filepath.Join(t.TempDir(), "v2.json")
	os.WriteFile(v2, []byte(`{"schemaVersion": 2, "services": []}`), 0o644)
	for _, args := range [][]string{
		{"manifest", "diff", m1, v2},
		{"explain", "my-app", "--project-directory", dir, "--against", v2},
	} {
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), "schema version 2") || !strings.Contains(err.Error(), v2) {
			t.Errorf("%v: %v", args, err)
		}
	}
	if _, err := run(t, "manifest", "diff", m1, filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing manifest file: %v", err)
	}
}

// TestExplainRedactedArg: explain against a record written with
// --redact-arg never prints the arg's value, in text or JSON: with the
// key, an unchanged value is no change and a changed one a change of
// MACs; an arg the record lacks is redacted by explain's own
// --redact-arg; and without a key the user is told what is lost.
func TestExplainRedactedArg(t *testing.T) {
	t.Setenv(inputs.RedactKeyEnv, "test-key")
	files := maps.Clone(simple)
	files["compose.yaml"] = strings.Replace(files["compose.yaml"], "build: ./app\n", "build: {context: ./app, args: {TOKEN: hunter2}}\n", 1)
	files["app/Dockerfile"] = "FROM scratch\nARG TOKEN\nCOPY main.txt /\n"
	dir := sourcetest.Tree(t, files)
	m := filepath.Join(t.TempDir(), "m.json")
	if _, err := run(t, "hash", "--project-directory", dir, "--manifest", m, "--redact-arg", "TOKEN"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(m); strings.Contains(string(b), "hunter") || !strings.Contains(string(b), "redacted:hmac-sha256:") {
		t.Fatalf("the record keeps TOKEN as:\n%s", b)
	}
	explain := func(format string, extra ...string) string {
		out, err := run(t, append([]string{"explain", "my-app", "--project-directory", dir, "--against", m, "--format", format, "--redact-arg", "TOKEN"}, extra...)...)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, "hunter") || strings.Contains(out, "s3cr3t") {
			t.Fatalf("explain --format %s printed a redacted value:\n%s", format, out)
		}
		return out
	}
	if out := explain("text"); !strings.Contains(out, "nothing changed") {
		t.Fatalf("explain with the value unchanged:\n%s", out)
	}
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(strings.Replace(files["compose.yaml"], "hunter2", "hunter3", 1)), 0o644)
	if out := explain("text"); !strings.Contains(out, "TOKEN") || !strings.Contains(out, "redacted:hmac-sha256:") {
		t.Fatalf("explain with the value changed names no change of TOKEN's MAC:\n%s", out)
	}
	explain("json")
	// An arg the record does not have: explain's --redact-arg hides it.
	os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(strings.Replace(files["compose.yaml"], "TOKEN: hunter2", "TOKEN: hunter2, API_KEY: s3cr3t-value", 1)), 0o644)
	if out := explain("text", "--redact-arg", "API_KEY"); !strings.Contains(out, "API_KEY") {
		t.Fatalf("explain of an added redacted arg:\n%s", out)
	}
	explain("json", "--redact-arg", "API_KEY")
	// Without a key nothing of the value is stored, and the user is told.
	t.Setenv(inputs.RedactKeyEnv, "")
	var stderr bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"hash", "--project-directory", dir, "--manifest", m, "--redact-arg", "TOKEN"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(&stderr)
	if err := cmd.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(m); strings.Contains(string(b), "hunter") || !strings.Contains(string(b), `"TOKEN": "redacted"`) || !strings.Contains(stderr.String(), inputs.RedactKeyEnv) {
		t.Fatalf("without a key: stderr %q, record:\n%s", stderr.String(), b)
	}
}

func TestEnvFormats(t *testing.T) {
	dir := sourcetest.Tree(t, simple)
	row := hashOf(t, dir)
	h, img := row.Hash, row.Image
	for format, want := range map[string]string{
		"dotenv":   "BKCACHE_MY_APP_IMAGE=" + img + "\nBKCACHE_MY_APP_HASH=" + h + "\n",
		"github":   "BKCACHE_MY_APP_IMAGE=" + img + "\nBKCACHE_MY_APP_HASH=" + h + "\n",
		"gitlab":   "BKCACHE_MY_APP_IMAGE=" + img + "\nBKCACHE_MY_APP_HASH=" + h + "\n",
		"circleci": "export BKCACHE_MY_APP_IMAGE='" + img + "'\nexport BKCACHE_MY_APP_HASH='" + h + "'\n",
	} {
		got, err := run(t, "env", "--project-directory", dir, "--format", format)
		if err != nil || got != want {
			t.Errorf("env --format %s (%v):\n%s\nwant\n%s", format, err, got, want)
		}
	}
	if _, err := run(t, "env", "--project-directory", dir, "--format", "jenkins"); exitCode(err) != 2 {
		t.Errorf("unknown env format: %v", err)
	}
}

// TestComposeOverride: the override file, read the way docker compose
// reads it (compose-go, with the project's own file first), pins every
// building service to REPOSITORY:HASH and leaves the others alone.
func TestComposeOverride(t *testing.T) {
	dir := sourcetest.Tree(t, simple)
	want := hashOf(t, dir)
	override := filepath.Join(dir, "compose.ci.yaml")
	if _, err := run(t, "compose-override", "--project-directory", dir, "-o", override); err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "compose.yaml"), override}, cli.WithWorkingDirectory(dir))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker compose could not read the override: %v", err)
	}
	if got := p.Services["my-app"].Image; got != want.Image {
		t.Errorf("my-app image = %q, want %q", got, want.Image)
	}
	if got := p.Services["db"].Image; got != "postgres" {
		t.Errorf("db image changed to %q", got)
	}
}

func TestVersionWithoutDaemon(t *testing.T) {
	out, err := run(t, "version", "--addr", "unix://"+t.TempDir()+"/none.sock", "--format", "json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Buildkit string        `json:"buildkitClient"`
		Daemons  []nodeVersion `json:"daemons"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Buildkit != "v0.33.1" || len(v.Daemons) != 1 || v.Daemons[0].Error == "" {
		t.Fatalf("version: %v %s", err, out)
	}
}

// TestVersionEachNode: BUILDKIT_HOST holds several nodes, comma-separated,
// as build reads it; version reports each.
func TestVersionEachNode(t *testing.T) {
	a, b := "unix://"+t.TempDir()+"/a.sock", "unix://"+t.TempDir()+"/b.sock"
	t.Setenv("BUILDKIT_HOST", a+", "+b)
	out, err := run(t, "version")
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{a, b} {
		if !strings.Contains(out, "buildkitd        not reachable ("+addr+")") {
			t.Errorf("no line for %s:\n%s", addr, out)
		}
	}
}

// TestEveryCommandHasExamples walks the command tree: each command a user
// runs shows examples in its --help.
func TestEveryCommandHasExamples(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Name() == "help" || sub.Name() == "completion" || sub.Hidden {
				continue
			}
			if sub.Example == "" {
				t.Errorf("%s has no examples in its --help", sub.CommandPath())
			}
			walk(sub)
		}
	}
	root := newRootCmd()
	root.InitDefaultCompletionCmd()
	walk(root)
	if c, _, err := root.Find([]string{"completion", "bash"}); err != nil || c.Name() != "bash" {
		t.Errorf("shell completion is missing: %v", err)
	}
}

// TestEnvConsumedByCompose: the dotenv output, given to compose as an
// env file, resolves ${BKCACHE_<SERVICE>_IMAGE} in a test job's compose file.
func TestEnvConsumedByCompose(t *testing.T) {
	dir := sourcetest.Tree(t, simple)
	envOut, err := run(t, "env", "--project-directory", dir, "--format", "dotenv")
	if err != nil {
		t.Fatal(err)
	}
	testDir := sourcetest.Tree(t, map[string]string{
		"images.env":   envOut,
		"compose.yaml": "services:\n  app:\n    image: ${BKCACHE_MY_APP_IMAGE:?run bkcache env first}\n",
	})
	opts, err := cli.NewProjectOptions(nil, cli.WithWorkingDirectory(testDir), cli.WithDefaultConfigPath,
		cli.WithEnvFiles(filepath.Join(testDir, "images.env")), cli.WithDotEnv)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Services["app"].Image; !strings.HasPrefix(got, "reg.local/demo/app:") || len(got) != len("reg.local/demo/app:")+64 {
		t.Errorf("image from the env file = %q", got)
	}
}

// TestBuildFlagsApply: --no-cache and --pull reach the plan, which
// applies them to every service as the compose keys no_cache and pull
// would (plan's TestNoCacheAndPull), and --no-cache implies --force.
func TestBuildFlagsApply(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		o                    buildOptions
		noCache, pull, force bool
	}{
		{"neither", buildOptions{}, false, false, false},
		{"--no-cache", buildOptions{noCache: true}, true, false, true},
		{"--pull", buildOptions{pull: true}, false, true, false},
		{"--force", buildOptions{force: true}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			po := tc.o.planOptions(nil)
			if po.NoCache != tc.noCache || po.Pull != tc.pull {
				t.Errorf("plan options no_cache %v pull %v, want %v %v", po.NoCache, po.Pull, tc.noCache, tc.pull)
			}
			if got := tc.o.forced(); got != tc.force {
				t.Errorf("force = %v, want %v", got, tc.force)
			}
		})
	}
}

// TestBuildTable: the summary keeps every ref whole off a terminal, and
// on one cuts the hash tag and the digest so that a line fits a window.
func TestBuildTable(t *testing.T) {
	const h = "6c277117e9b0cac93a46e4bbf578f4bb87558ec0e4b5bc49960ec707859ff7e8"
	results := []*outcome.Result{
		{Service: "base", Status: outcome.Built, Hash: h, Image: "127.0.0.1:5000/example/base:" + h,
			Digest: "sha256:b243530cba9ab6757bf1840639d6bdc8123084c0c3891f3cde56da57d09fd532", CachedSteps: 1, TotalSteps: 9, Duration: 798 * time.Millisecond,
			PushMs: 123, CacheExportMs: 456},
		{Service: "web", Status: outcome.Failed, Hash: h, Duration: 5 * time.Millisecond},
	}
	for _, tc := range []struct {
		name           string
		nodes, compact bool
		want           string
	}{
		{"full", false, false, `SERVICE  STATUS  HASH          IMAGE                                                                                         DIGEST                                                                   CACHED  DURATION
base     built   6c277117e9b0  127.0.0.1:5000/example/base:6c277117e9b0cac93a46e4bbf578f4bb87558ec0e4b5bc49960ec707859ff7e8  sha256:b243530cba9ab6757bf1840639d6bdc8123084c0c3891f3cde56da57d09fd532  1/9     798ms (build 220ms, push 120ms, cache 460ms)
web      failed  6c277117e9b0  -                                                                                             -                                                                        -       5ms
`},
		{"compact", false, true, `SERVICE  STATUS  IMAGE                                      DIGEST        CACHED  DURATION
base     built   127.0.0.1:5000/example/base:6c277117e9b0…  b243530cba9a  1/9     798ms (build 220ms, push 120ms, cache 460ms)
web      failed  -                                          -             -       5ms
`},
		{"compact, nodes", true, true, `SERVICE  STATUS  IMAGE                                      DIGEST        CACHED  DURATION                                      NODE
base     built   127.0.0.1:5000/example/base:6c277117e9b0…  b243530cba9a  1/9     798ms (build 220ms, push 120ms, cache 460ms)  -
web      failed  -                                          -             -       5ms                                           -
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			writeBuildTable(&b, results, tc.nodes, tc.compact)
			if b.String() != tc.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tc.want)
			}
		})
	}
	for ref, want := range map[string]string{
		"reg:5000/a/b:tag":   "reg:5000/a/b:tag",
		"reg:5000/a/b":       "reg:5000/a/b",
		"b:tag":              "b:tag",
		"reg:5000/a/b:" + h:  "reg:5000/a/b:6c277117e9b0…",
		"b:0123456789abcdef": "b:0123456789ab…",
	} {
		if got := shortRef(ref); got != want {
			t.Errorf("shortRef(%q) = %q, want %q", ref, got, want)
		}
	}
}

// TestNothingToBuild: a project none of whose services builds is not an
// error, as with docker compose build, and build does not need a daemon.
func TestNothingToBuild(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"compose.yaml": "services:\n  db:\n    image: postgres\n"})
	t.Setenv("BUILDKIT_HOST", "unix://"+filepath.Join(t.TempDir(), "no-daemon.sock"))
	var errOut bytes.Buffer
	cmd := newRootCmd()
	cmd.SetArgs([]string{"hash", "--project-directory", dir, "--format", "env"})
	cmd.SetOut(io.Discard)
	cmd.SetErr(&errOut)
	if err := cmd.ExecuteContext(context.Background()); err != nil || !strings.Contains(errOut.String(), "none has a build: section") {
		t.Fatalf("hash: %v, stderr %q", err, errOut.String())
	}
	m := filepath.Join(t.TempDir(), "m.json")
	if _, err := run(t, "build", "--push", "--project-directory", dir, "--manifest", m); err != nil {
		t.Fatalf("build: %v", err)
	}
	if data, err := os.ReadFile(m); err != nil || !strings.Contains(string(data), `"services": []`) {
		t.Fatalf("manifest: %s %v", data, err)
	}
}

// TestHashTable: on a terminal the image's tag is cut, the hash is not.
func TestHashTable(t *testing.T) {
	const h = "6c277117e9b0cac93a46e4bbf578f4bb87558ec0e4b5bc49960ec707859ff7e8"
	rows := []hashRow{{Service: "base", Hash: h, Image: "127.0.0.1:5000/example/base:" + h}}
	for compact, want := range map[bool]string{
		false: "SERVICE  HASH                                                              IMAGE\nbase     " + h + "  127.0.0.1:5000/example/base:" + h + "\n",
		true:  "SERVICE  HASH                                                              IMAGE\nbase     " + h + "  127.0.0.1:5000/example/base:6c277117e9b0…\n",
	} {
		var b bytes.Buffer
		if err := writeHashes(&b, "text", rows, compact); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Errorf("compact %v: got\n%s\nwant\n%s", compact, b.String(), want)
		}
	}
}

// TestEnvFromManifest: env and compose-override print what a build job's
// manifest recorded, checked against the project but not hashed, and
// say what is missing.
func TestEnvFromManifest(t *testing.T) {
	h := strings.Repeat("ab", 32)
	proj := recordProject(t)
	mf := writeRecord(t, &record.Service{Service: "api", Status: "built", Hash: h, Image: "reg.io/p/api:" + h},
		&record.Service{Service: "hashed", Status: "hashed", Hash: h})
	out, err := run(t, "env", "api", "--from-manifest", mf, "--project-directory", proj)
	if err != nil || out != "BKCACHE_API_IMAGE=reg.io/p/api:"+h+"\nBKCACHE_API_HASH="+h+"\n" {
		t.Errorf("env --from-manifest (%v):\n%s", err, out)
	}
	ov, err := run(t, "compose-override", "api", "--from-manifest", mf, "--project-directory", proj)
	if err != nil || !strings.Contains(ov, "image: reg.io/p/api:"+h) {
		t.Errorf("compose-override --from-manifest (%v):\n%s", err, ov)
	}
	for args, want := range map[string]string{"ghost": `no service "ghost"`, "hashed": `no image for service "hashed"`} {
		if _, err := run(t, "env", args, "--from-manifest", mf, "--project-directory", proj); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("env %s --from-manifest: %v, want %q", args, err, want)
		}
	}
}

// TestHostileRecords: a record is a file a test job downloads, and what
// env writes from it is sourced by CI. A tampered record (a newline in an
// image, an image in another repository or not at its hash, a service the
// project does not build, a hash that is not hex) is refused by every
// format and by compose-override, and nothing is written.
func TestHostileRecords(t *testing.T) {
	h := strings.Repeat("ab", 32)
	proj := recordProject(t)
	for _, tc := range []struct {
		name string
		svc  record.Service
		want string
	}{
		{"newline in the image", record.Service{Service: "api", Hash: h, Image: "reg.io/p/api:" + h + "\nBASH_ENV=/tmp/evil.sh"}, "not an image reference"},
		{"another repository", record.Service{Service: "api", Hash: h, Image: "reg.io/evil/api:" + h}, "refused"},
		{"not at its hash", record.Service{Service: "api", Hash: h, Image: "reg.io/p/api:latest"}, "refused"},
		{"by digest", record.Service{Service: "api", Hash: h, Image: "reg.io/p/api@sha256:" + h}, "refused"},
		{"unknown service", record.Service{Service: "ghost", Hash: h, Image: "reg.io/p/ghost:" + h}, `service "ghost", which this project does not build`},
		{"hash with a newline", record.Service{Service: "api", Hash: h + "\nX=1", Image: "reg.io/p/api:" + h}, "not 64 hex digits"},
	} {
		mf := writeRecord(t, &tc.svc)
		for _, args := range [][]string{
			{"env", "--format", "dotenv"}, {"env", "--format", "github"}, {"env", "--format", "gitlab"},
			{"env", "--format", "circleci"}, {"compose-override"},
		} {
			t.Run(tc.name+"/"+strings.Join(args, " "), func(t *testing.T) {
				out, err := run(t, append(args, "--from-manifest", mf, "--project-directory", proj)...)
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%v, want an error saying %q", err, tc.want)
				}
				if out != "" || strings.Contains(fmt.Sprint(err), "\n") {
					t.Errorf("wrote %q; error %q spans lines", out, err)
				}
			})
		}
	}
}

// TestWriteEnvRefuses: a value that is not one plain word is never
// written, whatever the format.
func TestWriteEnvRefuses(t *testing.T) {
	for _, v := range []string{"a\nB=1", "a\rb", "a b", "a'b", "a$(id)", "a`id`", "a\x1b[31m", "a\u2028b"} {
		for _, f := range []string{"dotenv", "github", "gitlab", "circleci"} {
			var b bytes.Buffer
			if err := writeEnv(&b, f, []hashRow{{Service: "s", Image: v, Hash: "h"}}); err == nil || b.Len() != 0 {
				t.Errorf("%s: %q written as %q (%v)", f, v, b.String(), err)
			}
		}
	}
}

// recordProject is a project building api and hashed in reg.io/p.
func recordProject(t *testing.T) string {
	return sourcetest.Tree(t, map[string]string{
		"compose.yaml":   "services:\n  api:\n    image: reg.io/p/api\n    build: ./app\n  hashed:\n    image: reg.io/p/hashed\n    build: ./app\n",
		"app/Dockerfile": "FROM scratch\n",
	})
}

// writeRecord writes a run record of the services and returns its path.
func writeRecord(t *testing.T, svcs ...*record.Service) string {
	t.Helper()
	m := record.New("p", "test", time.Unix(1, 0))
	m.Services = append(m.Services, svcs...)
	mf := filepath.Join(t.TempDir(), "m.json")
	if err := m.WriteFile(mf); err != nil {
		t.Fatal(err)
	}
	return mf
}

// TestSchemaErrorAsksNoRegistry: a project the compose schema refuses
// fails with the schema's error before any registry is asked about the
// images its builds read; the same project, valid, asks.
func TestSchemaErrorAsksNoRegistry(t *testing.T) {
	srv := rt.Serve(t, true)
	rt.PushRandom(t, srv.Host+"/base:1")
	for _, tc := range []struct {
		build   string
		wantErr string
	}{
		{"{context: ., nope: 1}", "nope"},
		{"{context: .}", ""},
	} {
		dir := sourcetest.Tree(t, map[string]string{
			"compose.yaml": "services:\n  a:\n    build: " + tc.build + "\n",
			"Dockerfile":   "FROM " + srv.Host + "/base:1\n",
		})
		before := srv.Requests()
		_, err := run(t, "hash", "--project-directory", dir, "--base-images", "resolve")
		asked := srv.Requests() != before
		if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr) || asked) {
			t.Errorf("%s: error %v, registry asked %v; want the schema's error and no request", tc.build, err, asked)
		}
		if tc.wantErr == "" && (err != nil || !asked) {
			t.Errorf("%s: error %v, registry asked %v; want a lookup", tc.build, err, asked)
		}
	}
}
