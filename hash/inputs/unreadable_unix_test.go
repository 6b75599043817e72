//go:build unix

package inputs

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestUnreadableInputs: a Dockerfile or a context file the user cannot
// read fails the hash with an error naming the service, the file and
// why, through a service's own walk and through the walk services share;
// it is never hashed as empty or left out.
func TestUnreadableInputs(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root reads files whatever their mode: run it as nobody.
		sourcetest.AsNobody(t, "^TestUnreadableInputs$")
		return
	}
	one := "services:\n  app:\n    build: .\n"
	two := one + "  web:\n    build: .\n"
	for _, tc := range []struct {
		name, compose, unreadable string
		want                      []string
	}{
		{"the Dockerfile", one, "Dockerfile", []string{`service "app"`, "reading Dockerfile", "permission denied"}},
		{"a context file, one service", one, "src/secret", []string{`service "app"`, "build context", "secret", "permission denied"}},
		{"a context file, a shared walk", two, "src/secret", []string{`service "`, "build context", "secret", "permission denied"}},
		{"a context directory, one service", one, "src", []string{`service "app"`, "build context", "src", "permission denied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := sourcetest.Tree(t, map[string]string{
				"compose.yaml": tc.compose,
				"Dockerfile":   "FROM scratch\nCOPY src /src\n",
				"src/secret":   "k",
				"src/public":   "p",
			})
			if err := os.Chmod(filepath.Join(dir, tc.unreadable), 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(filepath.Join(dir, tc.unreadable), 0o755) })
			got, err := ComputeAll(context.Background(), loadServices(t, dir), Options{})
			if err == nil {
				t.Fatalf("no error; inputs %v", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
