package inputs

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection keeps hash/... and context/... free of anything
// that talks to buildkitd or a registry: they must work with no daemon.
func TestDependencyDirection(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/bkcache/bkcache/hash/...", "github.com/bkcache/bkcache/context/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/moby/buildkit/client",
		"github.com/moby/buildkit/session",
		"github.com/moby/buildkit/solver",
		"github.com/bkcache/bkcache/solver",
		"github.com/google/go-containerregistry",
		"google.golang.org/grpc",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f+"/") {
				t.Errorf("hash/ or context/ depends on %s", dep)
			}
		}
	}
}
