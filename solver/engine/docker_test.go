package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	dockercontext "github.com/docker/cli/cli/context/docker"
	"github.com/docker/cli/cli/context/store"
)

// writeContext stores a docker context as `docker context create` does.
func writeContext(t *testing.T, configDir, name, host string, tls bool) {
	t.Helper()
	s := store.New(filepath.Join(configDir, "contexts"), store.NewConfig(
		func() any { return &map[string]any{} },
		store.EndpointTypeGetter(dockercontext.DockerEndpoint, func() any { return &dockercontext.EndpointMeta{} }),
	))
	err := s.CreateOrUpdate(store.Metadata{Name: name, Endpoints: map[string]any{
		dockercontext.DockerEndpoint: dockercontext.EndpointMeta{Host: host},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if tls {
		err := s.ResetEndpointTLSMaterial(name, dockercontext.DockerEndpoint, &store.EndpointTLSData{Files: map[string][]byte{"ca.pem": []byte("not a certificate")}})
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestDockerEndpoint(t *testing.T) {
	for _, tc := range []struct {
		name     string
		goos     string
		vars     map[string]string
		current  string // config.json's currentContext
		certs    bool   // ca.pem, cert.pem and key.pem in DOCKER_CERT_PATH
		host     string
		source   string
		err      string
		badTLSCA bool // the TLS material is a CA that does not parse
	}{
		{name: "the default socket", host: "unix:///var/run/docker.sock", source: "the default socket"},
		{name: "macOS' default socket", goos: "darwin", host: "unix:///var/run/docker.sock"},
		{name: "Windows' default pipe", goos: "windows", host: "npipe:////./pipe/docker_engine"},
		{name: "DOCKER_HOST beats the contexts", vars: map[string]string{"DOCKER_HOST": "tcp://dind:2375", "DOCKER_CONTEXT": "desk"}, current: "desk",
			host: "tcp://dind:2375", source: "DOCKER_HOST"},
		{name: "DOCKER_CONTEXT beats the config's", vars: map[string]string{"DOCKER_CONTEXT": "desk"}, current: "nope",
			host: "unix:///home/u/.docker/run/docker.sock", source: "docker context desk (DOCKER_CONTEXT)"},
		{name: "the config's current context", current: "desk", host: "unix:///home/u/.docker/run/docker.sock", source: "docker context desk (the docker CLI's current context)"},
		{name: "the default context is the default socket", current: "default", host: "unix:///var/run/docker.sock"},
		{name: "an unknown context", vars: map[string]string{"DOCKER_CONTEXT": "gone"}, err: "`docker context ls` lists them"},
		{name: "a context's TLS material is used", vars: map[string]string{"DOCKER_CONTEXT": "secure"}, host: "tcp://secure:2376", badTLSCA: true},
		{name: "DOCKER_TLS_VERIFY with its certificates", vars: map[string]string{"DOCKER_HOST": "tcp://dind:2376", "DOCKER_TLS_VERIFY": "1"}, certs: true, host: "tcp://dind:2376", badTLSCA: true},
		{name: "DOCKER_TLS_VERIFY without a CA", vars: map[string]string{"DOCKER_HOST": "tcp://dind:2376", "DOCKER_TLS_VERIFY": "1"},
			err: "DOCKER_CERT_PATH names the directory of ca.pem"},
		{name: "DOCKER_TLS without verifying needs no CA", vars: map[string]string{"DOCKER_HOST": "tcp://dind:2376", "DOCKER_TLS": "1"}, host: "tcp://dind:2376"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			certs := t.TempDir()
			writeContext(t, dir, "desk", "unix:///home/u/.docker/run/docker.sock", false)
			writeContext(t, dir, "secure", "tcp://secure:2376", true)
			if tc.current != "" {
				if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"currentContext":"`+tc.current+`"}`), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.certs {
				for _, f := range []string{"ca.pem", "cert.pem", "key.pem"} {
					if err := os.WriteFile(filepath.Join(certs, f), []byte("x"), 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			vars := map[string]string{"DOCKER_CONFIG": dir, "DOCKER_CERT_PATH": certs}
			for k, v := range tc.vars {
				vars[k] = v
			}
			e := Env{Getenv: func(k string) string { return vars[k] }, Home: "/home/u", GOOS: cmpOr(tc.goos, "linux")}
			d, err := DockerEndpoint(e)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("DockerEndpoint = %+v, %v; want an error saying %q", d, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Host != tc.host || !strings.HasPrefix(d.Source, tc.source) {
				t.Errorf("DockerEndpoint = %s (%s), want %s (%s)", d.Host, d.Source, tc.host, tc.source)
			}
			if tc.certs && (d.ep.TLSData == nil || d.ep.SkipTLSVerify) {
				t.Errorf("DOCKER_TLS_VERIFY: TLS = %+v, skip verify %v; want the certificates, verified", d.ep.TLSData, d.ep.SkipTLSVerify)
			}
			// The context's CA reaches the client: a CA that does not
			// parse fails there.
			if _, err := d.ClientOpts(); (err != nil) != tc.badTLSCA {
				t.Errorf("ClientOpts: %v", err)
			}
		})
	}
}
