//go:build unix

package source

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestDirFSOpen: a file opens and reads to io.EOF (a zero-length read is
// no end); a missing file and a directory read as a file fail, naming
// the path.
func TestDirFSOpen(t *testing.T) {
	dir := sourcetest.Tree(t, map[string]string{"a": "abc", "sub/x": "x"})
	d := newDirFS(dir, false, nil)
	r, err := d.Open("a")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Read(nil); n != 0 || err != nil {
		t.Errorf("a zero-length read: %d, %v; want 0, nil", n, err)
	}
	if b, err := io.ReadAll(r); string(b) != "abc" || err != nil {
		t.Errorf("read %q, %v", b, err)
	}
	r.Close()
	if _, err := d.Open("missing"); !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), filepath.Join(dir, "missing")) {
		t.Errorf("a missing file: %v", err)
	}
	r, err = d.Open("sub")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := io.ReadAll(r); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "sub")) {
		t.Errorf("a directory read as a file: %v", err)
	}
}

// TestRootWithoutRead: a root the user may search but not list cannot be
// held open; its files still open and lstat by path (and the walk, which must list
// it, says why it cannot).
func TestRootWithoutRead(t *testing.T) {
	if os.Geteuid() == 0 {
		sourcetest.AsNobody(t, "^TestRootWithoutRead$")
		return
	}
	dir := sourcetest.Tree(t, map[string]string{"a": "abc"})
	if err := os.Chmod(dir, 0o311); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chmod(dir, 0o755) })
	d := newDirFS(dir, false, nil)
	r, err := d.Open("a")
	if err != nil {
		t.Fatalf("a file of a root that cannot be listed: %v", err)
	}
	r.Close()
	if e, err := d.lstat("a"); err != nil || e.stat.Size != 3 {
		t.Fatalf("lstat of a file of a root that cannot be listed: %v", err)
	}
	if _, err := d.lstat("gone"); err == nil || !strings.Contains(err.Error(), "lstat "+filepath.Join(dir, "gone")+":") {
		t.Errorf("lstat of a missing file: %v, want it named once", err)
	}
	err = d.Walk(context.Background(), "", func(_ string, _ fs.DirEntry, err error) error { return err })
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("the walk of a root that cannot be listed: %v", err)
	}
}

// TestRootDescriptorReleased: the root descriptor a view holds is closed
// once the view is collected: a process that opens many sources (a watch,
// a daemon) does not run out of descriptors.
func TestRootDescriptorReleased(t *testing.T) {
	dir := t.TempDir()
	count := func() int {
		ents, err := os.ReadDir("/dev/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := count()
	const n = 100
	for range n {
		newDirFS(dir, false, nil)
	}
	// Cleanups run after a collection, on their own goroutine: collect
	// and yield until they ran, a bounded number of times.
	for i := 0; i < 100 && count() > before+n/4; i++ {
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
	if after := count(); after > before+n/4 {
		t.Errorf("%d descriptors open after %d sources were collected, %d before", after, n, before)
	}
}
