//go:build unix

package source

import (
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/tonistiigi/fsutil/types"
)

var errNotDir = syscall.ENOTDIR

// openFile opens a regular file for reading without following a final
// symlink and without the runtime poller registration os.Open does: on a
// tree of many small files those syscalls are a large part of the cost.
func openFile(path string) (io.ReadCloser, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return &fdReader{fd: fd, path: path}, nil
	}
}

type fdReader struct {
	fd   int
	path string
}

func (r *fdReader) Read(p []byte) (int, error) {
	for {
		n, err := syscall.Read(r.fd, p)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return 0, &fs.PathError{Op: "read", Path: r.path, Err: err}
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func (r *fdReader) Close() error { return syscall.Close(r.fd) }

func setOwner(fi os.FileInfo, st *types.Stat) {
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Uid, st.Gid = s.Uid, s.Gid
	}
}
