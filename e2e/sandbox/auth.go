package sandbox

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Registry is a registry of a test's own, on its own loopback port and
// storage (no base images: buildkitd finds those in the sandbox's).
type Registry struct {
	Addr string // host:port
	name string // for Stop
	cfg  string // its configuration file, for Restart
	want int    // the status of GET /v2/ once it is up
	s    *Sandbox
}

// NewRegistry starts a registry of the caller's own. Close stops it, or
// Stop.
func (s *Sandbox) NewRegistry(ctx context.Context) (*Registry, error) {
	return s.newRegistry(ctx, "registry-own", "", http.StatusOK, "")
}

// NewRegistryTakingIndexes starts a registry of the caller's own that
// does not check an index's children (distribution's validation of
// indexes set to platforms: none), so that it takes a registry cache in
// the index form, as Docker Hub, GHCR and ECR do; the sandbox's own, as
// Harbor, refuses that form ("blob unknown to registry").
func (s *Sandbox) NewRegistryTakingIndexes(ctx context.Context) (*Registry, error) {
	return s.newRegistry(ctx, "registry-indexes", "", http.StatusOK, "validation:\n  manifests:\n    indexes:\n      platforms: none\n")
}

// StartAuthRegistry starts a registry of the caller's own that requires
// HTTP basic authentication with user and password (distribution's
// htpasswd auth), and returns its host:port. Close stops it.
func (s *Sandbox) StartAuthRegistry(ctx context.Context, user, password string) (string, error) {
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return "", err
	}
	r, err := s.newRegistry(ctx, "registry-auth", user+":"+string(hash)+"\n", http.StatusUnauthorized, "")
	if err != nil {
		return "", err
	}
	return r.Addr, nil
}

// newRegistry starts a registry named prefix-PORT; htpasswd, when set,
// is the password file it authenticates against, and extra is more of
// its configuration.
func (s *Sandbox) newRegistry(ctx context.Context, prefix, htpasswd string, want int, extra string) (*Registry, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	r := &Registry{Addr: fmt.Sprintf("127.0.0.1:%d", port), name: fmt.Sprintf("%s-%d", prefix, port), want: want, s: s}
	dir := filepath.Join(s.Dir, r.name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	auth := ""
	if htpasswd != "" {
		path := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(path, []byte(htpasswd), 0o600); err != nil {
			return nil, err
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: bkcache-e2e\n    path: %s\n", path)
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n%s%s",
		filepath.Join(dir, "data"), r.Addr, auth, extra)
	r.cfg = filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	return r, r.Restart(ctx)
}

// Stop stops the registry; its storage stays for Restart.
func (r *Registry) Stop() { r.s.Stop(r.name) }

// Restart starts the registry (again), with the same port and storage,
// and waits until it answers.
func (r *Registry) Restart(ctx context.Context) error {
	r.Stop()
	if err := r.s.start(r.name, filepath.Join(r.s.Bin, "registry"), "serve", r.cfg); err != nil {
		return err
	}
	return waitFor(ctx, 30*time.Second, r.name, func() error {
		resp, err := http.Get("http://" + r.Addr + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != r.want {
			return fmt.Errorf("GET /v2/: %s, want %d", resp.Status, r.want)
		}
		return nil
	}, r.s.Logs)
}
