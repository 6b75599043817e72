//go:build unix

package source

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestReadFile: a Dockerfile or ignore file is read as BuildKit's file
// sync sees it. A link resolves inside the root, never out of it; a FIFO,
// a socket or a directory is refused at once, not waited on.
func TestReadFile(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("TOKEN=s3cr3t"), 0o644)
	root := t.TempDir()
	write := func(name, body string) { os.WriteFile(filepath.Join(root, name), []byte(body), 0o644) }
	link := func(name, target string) { os.Symlink(target, filepath.Join(root, name)) }
	write("Dockerfile", "FROM scratch\n")
	write("real", "FROM real\n")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	write("etc/abs", "FROM abs\n")
	link("rel", "real")
	link("abs", "/etc/abs") // taken from the root, as in a chroot
	link("environ", "/proc/self/environ")
	link("up", "../"+filepath.Base(outside)+"/secret")
	link("far", filepath.Join(outside, "secret"))
	link("loop1", "loop2")
	link("loop2", "loop1")
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	for _, tc := range []struct {
		name string
		want string
		err  error
	}{
		{"Dockerfile", "FROM scratch\n", nil},
		{"rel", "FROM real\n", nil},
		{"abs", "FROM abs\n", nil},
		{"environ", "", fs.ErrNotExist},
		{"up", "", fs.ErrNotExist},
		{"far", "", fs.ErrNotExist},
		{"fifo", "", ErrNotRegular},
		{"dir", "", ErrNotRegular},
		{"missing", "", fs.ErrNotExist},
		{"loop1", "", syscall.ELOOP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			var b []byte
			var err error
			go func() { b, err = ReadFile(root, tc.name); close(done) }()
			select {
			case <-done:
			case <-time.After(time.Minute):
				t.Fatal("ReadFile blocked") // a guard, not a timing
			}
			if string(b) != tc.want || !errors.Is(err, tc.err) {
				t.Errorf("ReadFile = %q, %v; want %q, %v", b, err, tc.want, tc.err)
			}
		})
	}
}

// TestReadFileClosesWhatItRefuses: a FIFO or a directory refused leaves
// no descriptor open behind it, however often it is asked for.
func TestReadFileClosesWhatItRefuses(t *testing.T) {
	root := t.TempDir()
	if err := syscall.Mkfifo(filepath.Join(root, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	open := func() int {
		ents, err := os.ReadDir("/dev/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	before := open()
	for range 50 {
		for _, name := range []string{"fifo", "dir"} {
			if _, err := ReadFile(root, name); !errors.Is(err, ErrNotRegular) {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	if after := open(); after > before+5 { // other goroutines may hold a few
		t.Errorf("%d descriptors open after 100 refused reads, %d before", after, before)
	}
}
