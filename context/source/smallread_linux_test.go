package source

import (
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"golang.org/x/sys/unix"
)

// TestSmallReaderRingFailure breaks the ring under a queued batch: the
// batch comes back not read, and the reader takes nothing more, so that
// its callers stream every file.
func TestSmallReaderRingFailure(t *testing.T) {
	dir := t.TempDir()
	sourcetest.Write(t, dir, map[string]string{"a": "a", "b": "b"})
	r := smallReaderFor(t, dir)
	if !r.Add("a", 1) {
		t.Fatal("Add refused a file on an empty batch")
	}
	// Close the ring's descriptor, not its mappings: io_uring_enter now
	// fails with EBADF, as a ring the kernel gave up on would.
	unix.Close(r.ring.fd)
	r.ring.fd = -1
	for _, f := range r.Read() {
		if f.Whole {
			t.Errorf("%s: read whole through a closed ring", f.Path)
		}
	}
	if r.Add("b", 1) {
		t.Error("a reader whose ring failed took another file")
	}
}
