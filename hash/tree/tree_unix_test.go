//go:build unix

package tree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/tonistiigi/fsutil"
)

func TestUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root reads files whatever their mode: run this test again, in
		// a copy of the test binary, as nobody.
		sourcetest.AsNobody(t, "^TestUnreadableFile$")
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
