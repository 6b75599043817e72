package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixtureEnv is an environment whose docker config directory is a copy
// of testdata (buildx's store as buildx wrote it), plus files.
func fixtureEnv(t *testing.T, goos string, root bool, vars map[string]string, files map[string]string) Env {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	all := map[string]string{"DOCKER_CONFIG": dir}
	for k, v := range vars {
		all[k] = v
	}
	return Env{Getenv: func(k string) string { return all[k] }, Home: "/home/u", GOOS: goos, Root: root}
}

// answers is a Ping that says the engine at host answers, and no other.
func answers(host string) Ping {
	return func(_ context.Context, d Docker) error {
		if d.Host == host {
			return nil
		}
		return errors.New("connection refused")
	}
}

const sock = "unix:///var/run/docker.sock"

func TestSelectOrder(t *testing.T) {
	dk := "unix:///tmp/dk/docker.sock" // where the fixture's dc builder runs
	dcCurrent := `{"Key":"` + dk + `","Name":"dc","Global":false}`
	for _, tc := range []struct {
		name     string
		goos     string
		root     bool
		flags    Flags
		vars     map[string]string
		files    map[string]string
		ping     Ping
		kind     Kind
		targets  []string // Addr, or the Docker host
		why      string
		debug    string // the first target's debug address
		errParts []string
	}{
		{name: "--addr beats everything", flags: Flags{Addrs: []string{"tcp://b:1", "tcp://a:1", "tcp://b:1"}, Builder: "ci"},
			vars: map[string]string{"BUILDKIT_HOST": "tcp://env:1", "BUILDX_BUILDER": "ci"}, ping: answers(sock),
			kind: Buildkitd, targets: []string{"tcp://a:1", "tcp://b:1"}, why: "--addr"},
		{name: "BUILDKIT_HOST beats --builder", flags: Flags{Builder: "ci"}, vars: map[string]string{"BUILDKIT_HOST": " tcp://env:1 ,tcp://env:2"},
			ping: answers(sock), kind: Buildkitd, targets: []string{"tcp://env:1", "tcp://env:2"}, why: "BUILDKIT_HOST"},
		{name: "--builder beats BUILDX_BUILDER", flags: Flags{Builder: "ci"}, vars: map[string]string{"BUILDX_BUILDER": "multi"},
			ping: answers(sock), kind: Buildkitd, targets: []string{"tcp://10.0.0.1:1234"}, why: "buildx builder ci (--builder, remote driver)"},
		{name: "BUILDX_BUILDER, any case", vars: map[string]string{"BUILDX_BUILDER": "MULTI"}, ping: answers(sock),
			kind: Buildkitd, targets: []string{"unix:///run/a.sock", "unix:///run/b.sock"}, why: "buildx builder Multi (BUILDX_BUILDER, remote driver)"},
		{name: "buildx's current builder for this engine", vars: map[string]string{"DOCKER_HOST": dk}, files: map[string]string{"buildx/current": dcCurrent},
			ping: answers(dk), kind: Buildkitd, targets: []string{"docker-container://buildx_buildkit_dc0"}, why: "buildx builder dc (buildx's current builder, docker-container driver)"},
		{name: "a current builder of another engine is not this one's", files: map[string]string{"buildx/current": `{"Key":"unix:///other.sock","Name":"ci"}`},
			ping: answers(sock), kind: DockerEngine, targets: []string{sock}, why: "docker engine at " + sock + " (the default socket)"},
		{name: "a global current builder", files: map[string]string{"buildx/current": `{"Key":"unix:///other.sock","Name":"ci","Global":true}`},
			ping: answers(sock), kind: Buildkitd, targets: []string{"tcp://10.0.0.1:1234"}, why: "buildx builder ci (buildx's current builder"},
		{name: "the default builder set with use --default", files: map[string]string{"buildx/defaults/" + endpointHash(sock): "ci"},
			ping: answers(sock), kind: Buildkitd, targets: []string{"tcp://10.0.0.1:1234"}, why: "buildx builder ci (buildx's current builder"},
		{name: "the engine's own builder as current is the engine", files: map[string]string{"buildx/current": `{"Key":"` + sock + `","Name":"default"}`},
			ping: answers(sock), kind: DockerEngine, targets: []string{sock}},
		{name: "DOCKER_HOST's engine", vars: map[string]string{"DOCKER_HOST": "tcp://dind:2375"}, ping: answers("tcp://dind:2375"),
			kind: DockerEngine, targets: []string{"tcp://dind:2375"}, why: "docker engine at tcp://dind:2375 (DOCKER_HOST)"},
		{name: "no engine answers: the private daemon as root on Linux", goos: "linux", root: true, ping: answers("nothing"), kind: Private},
		{name: "no engine answers, not root", goos: "linux", ping: answers("nothing"),
			errParts: []string{"no Docker engine answers at " + sock, "needs root", "--builder"}},
		{name: "no engine answers on macOS", goos: "darwin", root: true, ping: answers("nothing"),
			errParts: []string{"no Docker engine answers", "runs on Linux only"}},
		{name: "Windows' pipe", goos: "windows", ping: answers("npipe:////./pipe/docker_engine"),
			kind: DockerEngine, targets: []string{"npipe:////./pipe/docker_engine"}},
		{name: "an unknown builder names the known ones", flags: Flags{Builder: "nope"}, ping: answers(sock),
			errParts: []string{`no buildx builder "nope"`, "`docker buildx ls` lists ci, dc, multi"}},
		{name: "--debugaddr goes with the one buildkitd", flags: Flags{Addrs: []string{"tcp://a:1"}, Debug: "tcp://a:6060"}, ping: answers(sock),
			kind: Buildkitd, targets: []string{"tcp://a:1"}, why: "--addr", debug: "tcp://a:6060"},
		{name: "--debugaddr with two buildkitd", flags: Flags{Debug: "tcp://a:6060"}, vars: map[string]string{"BUILDKIT_HOST": "tcp://a:1,tcp://b:1"}, ping: answers(sock),
			errParts: []string{"--debugaddr tcp://a:6060 names the debug address of one buildkitd", "BUILDKIT_HOST"}},
		{name: "--debugaddr with a Docker engine", flags: Flags{Debug: "tcp://a:6060"}, ping: answers(sock),
			errParts: []string{"--debugaddr tcp://a:6060", "docker engine at " + sock}},
		{name: "--debugaddr with bkcache's own buildkitd", flags: Flags{Debug: "tcp://a:6060"}, goos: "linux", root: true, ping: answers("nothing"),
			errParts: []string{"bkcache's own buildkitd serves one by itself"}},
		{name: "a builder name buildx would refuse", vars: map[string]string{"BUILDX_BUILDER": "../ci"}, ping: answers(sock),
			errParts: []string{`buildx builder "../ci": not a builder name`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := fixtureEnv(t, cmpOr(tc.goos, "linux"), tc.root, tc.vars, tc.files)
			eng, err := Select(context.Background(), tc.flags, e, tc.ping)
			if tc.errParts != nil {
				if err == nil {
					t.Fatalf("Select = %+v, want an error", eng)
				}
				for _, p := range tc.errParts {
					if !strings.Contains(err.Error(), p) {
						t.Errorf("error %q does not say %q", err, p)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if eng.Kind != tc.kind || !strings.HasPrefix(eng.Why, tc.why) {
				t.Errorf("Select = %s (%s), want %s (%s...)", eng.Kind, eng.Why, tc.kind, tc.why)
			}
			if got := targetNames(eng.Targets); strings.Join(got, " ") != strings.Join(tc.targets, " ") {
				t.Errorf("targets = %v, want %v", got, tc.targets)
			}
			if len(eng.Targets) > 0 && eng.Targets[0].Debug != tc.debug {
				t.Errorf("debug address %q, want %q", eng.Targets[0].Debug, tc.debug)
			}
		})
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func targetNames(ts []Target) []string {
	var out []string
	for _, t := range ts {
		if t.Docker != nil {
			out = append(out, t.Docker.Host)
		} else {
			out = append(out, t.Addr)
		}
	}
	return out
}

// TestRemoteBuilderTLS: a remote builder's TLS files become the node's.
func TestRemoteBuilderTLS(t *testing.T) {
	eng, err := fixtureEnv(t, "linux", false, nil, nil).Builder("ci", "--builder")
	if err != nil {
		t.Fatal(err)
	}
	want := TLS{CACert: "/tmp/ca.pem", Cert: "/tmp/cert.pem", Key: "/tmp/key.pem", ServerName: "bk.example"}
	if len(eng.Targets) != 1 || eng.Targets[0].TLS != want {
		t.Errorf("targets = %+v, want one with %+v", eng.Targets, want)
	}
}

func TestBuilderDrivers(t *testing.T) {
	kubectlPods = func(ns, app string) (string, error) {
		if ns != "build" || app != "k0" {
			return "", errors.New("wrong pods asked for")
		}
		return "pod/k0-abc\npod/k0-def\n", nil
	}
	orig := kubectlPods
	t.Cleanup(func() { kubectlPods = orig })
	for _, tc := range []struct {
		name, builder string
		name2         string // the name asked for, when not b
		vars          map[string]string
		want          []string
		err           string
	}{
		{name: "docker-container in the engine the CLI uses", builder: `{"Name":"b","Driver":"docker-container","Nodes":[{"Name":"b0","Endpoint":"unix:///tmp/dk/docker.sock"}]}`,
			vars: map[string]string{"DOCKER_HOST": "unix:///tmp/dk/docker.sock"}, want: []string{"docker-container://buildx_buildkit_b0"}},
		{name: "docker-container in another engine", builder: `{"Name":"b","Driver":"docker-container","Nodes":[{"Name":"b0","Endpoint":"unix:///tmp/dk/docker.sock"}]}`,
			err: "set DOCKER_HOST=unix:///tmp/dk/docker.sock"},
		{name: "docker-container of a context", builder: `{"Name":"b","Driver":"docker-container","Nodes":[{"Name":"b0","Endpoint":"remote box"}]}`,
			want: []string{"docker-container://buildx_buildkit_b0?context=remote+box"}},
		{name: "kubernetes pods", builder: `{"Name":"b","Driver":"kubernetes","Nodes":[{"Name":"k0","DriverOpts":{"namespace":"build"}}]}`,
			want: []string{"kube-pod://k0-abc?namespace=build", "kube-pod://k0-def?namespace=build"}},
		{name: "a docker context is a builder of its own name", builder: `{"Name":"b","Driver":"remote","Nodes":[{"Name":"b0","Endpoint":"tcp://x:1"}]}`,
			name2: "default", vars: map[string]string{"DOCKER_HOST": "tcp://dind:2375"}, want: []string{"tcp://dind:2375"}},
		{name: "docker driver on DOCKER_HOST", builder: `{"Name":"b","Driver":"docker","Nodes":[{"Name":"b0","Endpoint":"default"}]}`,
			vars: map[string]string{"DOCKER_HOST": "tcp://dind:2375"}, want: []string{"tcp://dind:2375"}},
		{name: "an unknown driver", builder: `{"Name":"b","Driver":"cloud","Nodes":[{"Name":"b0"}]}`, err: "the cloud driver is not one bkcache can build on"},
		{name: "no nodes", builder: `{"Name":"b","Driver":"remote","Nodes":[]}`, err: "has no nodes"},
		{name: "not JSON", builder: `{`, err: "is not a builder buildx wrote"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := fixtureEnv(t, "linux", false, tc.vars, map[string]string{"buildx/instances/b": tc.builder})
			eng, err := e.Builder(cmpOr(tc.name2, "b"), "--builder")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Builder = %+v, %v; want an error saying %q", eng, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := targetNames(eng.Targets); strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("targets = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestCurrentBuilderOfAContext: buildx keys the current builder on the
// docker context's name, not on its host.
func TestCurrentBuilderOfAContext(t *testing.T) {
	e := fixtureEnv(t, "linux", false, map[string]string{"DOCKER_CONTEXT": "desk"},
		map[string]string{"buildx/current": `{"Key":"desk","Name":"ci"}`})
	writeContext(t, e.Getenv("DOCKER_CONFIG"), "desk", "unix:///home/u/.docker/run/docker.sock", false)
	eng, err := Select(context.Background(), Flags{}, e, answers("unix:///home/u/.docker/run/docker.sock"))
	if err != nil || eng.Builder != "ci" {
		t.Errorf("Select = %+v, %v; want buildx builder ci, current for context desk", eng, err)
	}
}
