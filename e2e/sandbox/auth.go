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

// StartAuthRegistry starts a second registry, on its own loopback port
// and storage, that requires HTTP basic authentication with user and
// password (distribution's htpasswd auth), and returns its host:port.
// Close stops it.
func (s *Sandbox) StartAuthRegistry(ctx context.Context, user, password string) (string, error) {
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	dir := filepath.Join(s.Dir, "registry-auth-"+fmt.Sprint(port))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return "", err
	}
	htpasswd := filepath.Join(dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
		return "", err
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: %s
http:
  addr: %s
auth:
  htpasswd:
    realm: bkcache-e2e
    path: %s
`, filepath.Join(dir, "data"), addr, htpasswd)
	cfgPath := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return "", err
	}
	name := "registry-auth-" + fmt.Sprint(port)
	if err := s.start(name, filepath.Join(s.Bin, "registry"), "serve", cfgPath); err != nil {
		return "", err
	}
	err = waitFor(ctx, 30*time.Second, name, func() error {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			return fmt.Errorf("GET /v2/ without credentials: %s, want 401", resp.Status)
		}
		return nil
	}, s.Logs)
	if err != nil {
		return "", err
	}
	return addr, nil
}
