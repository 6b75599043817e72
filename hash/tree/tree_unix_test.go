//go:build unix

package tree

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/tonistiigi/fsutil"
)

func TestUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root reads files whatever their mode: run this test again, in
		// a copy of the test binary, as nobody.
		asNobody(t, "^TestUnreadableFile$")
		return
	}
	dir := t.TempDir()
	// More small files than a worker streams before it batches, then the
	// unreadable one: through a source view with one worker, it is read
	// in a batch first.
	for i := range smallAfter + 8 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "secret.key")
	if err := os.WriteFile(p, []byte("k"), 0o000); err != nil {
		t.Fatal(err)
	}
	fsys, _ := fsutil.NewFS(dir)
	for _, fsys := range []FS{fsys, view(t, dir, false)} {
		_, err := Hash(context.Background(), fsys, Options{Workers: 1})
		if err == nil || !strings.Contains(err.Error(), "secret.key") || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("%T: want an error naming secret.key and why, got %v", fsys, err)
		}
	}
}

// asNobody runs the tests matching run in a copy of this test binary as
// the unprivileged user nobody (65534), and fails if they fail.
func asNobody(t *testing.T, run string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "bkcache-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tree.test")
	data, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run", run, "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TMPDIR=/tmp", "GOCOVERDIR=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS") {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}
