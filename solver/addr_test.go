package solver

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/solver/engine"
)

// TestShownAddr: an address is shown and stored without credentials,
// parsable or not; an ssh user without a password stays.
func TestShownAddr(t *testing.T) {
	for addr, want := range map[string]string{
		"tcp://user:hunter2@host:1234":         "tcp://host:1234",
		"tcp://user:hun%40ter2@host:1234/x":    "tcp://host:1234/x",
		"tcp://user:pass word@host:1234":       "tcp://host:1234",
		"tcp://token@host:1234":                "tcp://host:1234",
		"ssh://deploy@builder":                 "ssh://deploy@builder",
		"ssh://deploy:hunter2@builder":         "ssh://builder",
		"unix:///run/buildkit/buildkitd.sock":  "unix:///run/buildkit/buildkitd.sock",
		"docker-container://buildx_buildkit_0": "docker-container://buildx_buildkit_0",
		"tcp://host:1234/path@x":               "tcp://host:1234/path@x",
		"no scheme@host":                       "no scheme@host",
	} {
		if got := ShownAddr(addr); got != want {
			t.Errorf("ShownAddr(%q) = %q, want %q", addr, got, want)
		}
	}
}

// TestCredentialsNeverShown: dialling a daemon whose address carries a
// password fails (nothing listens) with an error, and a node, that never
// contain the password, escaped or not.
func TestCredentialsNeverShown(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, addr := range []string{"tcp://user:hunter2@127.0.0.1:1", "tcp://user:hun%74er2@127.0.0.1:1", "tcp://hunter2@127.0.0.1:1"} {
		_, _, err := Connect(ctx, addr, engine.TLS{})
		if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun%74er2") {
			t.Errorf("Connect(%s): %v", addr, err)
		}
		p, err := Dial(ctx, []engine.Target{{Addr: addr}, {Addr: "tcp://127.0.0.1:1"}})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Dial(%s): %v", addr, err)
		}
		_ = p
	}
	if got := scrub("lookup user:hunter2@h failed, user:hun%74er2 and hunter2", "tcp://user:hun%74er2@h"); strings.Contains(got, "hunter2") || strings.Contains(got, "hun%74er2") {
		t.Errorf("scrub left the password: %q", got)
	}
}
