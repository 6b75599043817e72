package source

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// TestSmallReaderReleasesItsRing: a closed reader leaves neither its
// ring's descriptor nor its ring's mappings behind (a hash makes one
// reader per worker, a long-lived process many), and a second Close
// closes nothing that another file opened since holds.
func TestSmallReaderReleasesItsRing(t *testing.T) {
	dir := t.TempDir()
	sourcetest.Write(t, dir, map[string]string{"a": "a"})
	v := viewOf(t, dir)
	smallReaderOf(t, v) // skips where there is no io_uring
	count := func(p string, lines bool) int {
		if lines {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			return strings.Count(string(b), "\n")
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	fds, maps := count("/dev/fd", false), count("/proc/self/maps", true)
	const n = 64
	for range n {
		r := v.SmallReader()
		r.Add("a", 1)
		r.Read()
		r.Close()
	}
	// A few descriptors or mappings may come and go with the runtime;
	// a leak is one (or two) per reader.
	if d := count("/dev/fd", false) - fds; d >= n/2 {
		t.Errorf("%d more descriptors open after %d readers closed", d, n)
	}
	if d := count("/proc/self/maps", true) - maps; d >= n/2 {
		t.Errorf("%d more mappings after %d readers closed", d, n)
	}

	r := v.SmallReader()
	r.Close()
	f, err := os.Open(filepath.Join(dir, "a")) // most likely the ring's number
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r.Close()
	if _, err := f.Stat(); err != nil {
		t.Errorf("a second Close closed another file's descriptor: %v", err)
	}
}

// TestSmallReadersOff: BKCACHE_IO_URING=0 (the README's switch) turns
// batch reads off: views hand out no batch reader. The switch is read
// once per process, so the test runs itself again with it set.
func TestSmallReadersOff(t *testing.T) {
	if os.Getenv("BKCACHE_IO_URING") != "0" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestSmallReadersOff$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "BKCACHE_IO_URING=0", "GOCOVERDIR=")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS") {
			t.Fatalf("with BKCACHE_IO_URING=0: %v\n%s", err, out)
		}
		return
	}
	if r := viewOf(t, t.TempDir()).SmallReader(); r != nil {
		r.Close()
		t.Error("a batch reader with BKCACHE_IO_URING=0")
	}
}
