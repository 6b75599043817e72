package daemon

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestBuildPinnedBuildkitd builds buildkitd the way a developer machine
// with only Go gets it, and checks it reports the pinned version. Pinned
// to go.mod's versions, it reuses the packages test.sh compiled for the
// e2e sandbox's buildkitd: seconds, not the minutes a build from
// BuildKit's own minimum versions took; -short skips it all the same.
func TestBuildPinnedBuildkitd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds buildkitd: minutes on a cold cache")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no Go toolchain")
	}
	// Test binaries carry no dependency versions: ask go.mod, for
	// BuildKit's and for the pins bkcache's build info gives a release.
	v, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/moby/buildkit").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(string(v))
	// The modules of the packages linked into bkcache: what its build
	// info lists.
	all, err := exec.Command("go", "list", "-deps", "-f", "{{with .Module}}{{if and .Version (not .Replace)}}{{.Path}}@{{.Version}}{{end}}{{end}}", "github.com/bkcache/bkcache/cmd/bkcache").Output()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "buildkitd")
	if err := build(context.Background(), want, slices.Compact(slices.Sorted(slices.Values(strings.Fields(string(all))))), out); err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command(out, "--version").Output()
	if err != nil || !strings.Contains(string(got), " "+want) {
		t.Fatalf("built buildkitd reports %q (%v), want %s", got, err, want)
	}
}

func TestMissingNamesWhatToInstall(t *testing.T) {
	m := Missing()
	if m == "" {
		return // this machine has everything
	}
	if !strings.Contains(m, "root") && !strings.Contains(m, "runc") && !strings.Contains(m, "Linux") {
		t.Fatalf("Missing() = %q names nothing to install", m)
	}
}

func TestGetWithoutDaemon(t *testing.T) {
	st := Get(context.Background(), Dirs{State: t.TempDir()})
	if st.Running || st.PID != 0 || st.Stale {
		t.Fatalf("status of a fresh state dir: %+v", st)
	}
}

// TestMirrorConfig: the private daemon fetches through the mirrors
// bkcache looks images up through.
func TestMirrorConfig(t *testing.T) {
	got := StartOptions{Mirrors: map[string]string{"docker.io": "127.0.0.1:5000", "ghcr.io": "mirror.local"}}.config()
	want := "[registry.\"docker.io\"]\n  mirrors = [\"127.0.0.1:5000\"]\n[registry.\"ghcr.io\"]\n  mirrors = [\"mirror.local\"]\n"
	if got != want {
		t.Errorf("config:\n%s\nwant\n%s", got, want)
	}
	if (StartOptions{}).config() != "" {
		t.Error("a config without mirrors")
	}
}
