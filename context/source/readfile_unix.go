//go:build unix

package source

import (
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// openRegular opens p, which must not be a symlink (ReadFile resolved
// them), without blocking, and refuses anything but a regular file.
func openRegular(p string) (io.ReadCloser, error) {
	fd, err := retry("open", p, func() (int, error) {
		return unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if _, err := retry("fstat", p, func() (int, error) { return 0, unix.Fstat(fd, &st) }); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: p, Err: ErrNotRegular}
	}
	// A regular file never blocks; clear O_NONBLOCK for the os.File.
	if _, err := retry("setnonblock", p, func() (int, error) { return 0, unix.SetNonblock(fd, false) }); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}
