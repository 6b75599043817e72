//go:build unix

package source

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/tonistiigi/fsutil/types"
	"golang.org/x/sys/unix"
)

var errNotDir = syscall.ENOTDIR

// holdRoot keeps the source root open, so that listings and reads resolve
// their paths from it: from "/", most of each lookup would be the root's
// own ancestors, again for every file. The descriptor is closed when d is
// collected. If the root cannot be opened, paths resolve from d.root and
// the walk reports why.
func (d *dirFS) holdRoot() {
	fd, err := retry("open", d.root, func() (int, error) {
		return unix.Open(d.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	if err != nil {
		return
	}
	d.rootfd = fd
	runtime.AddCleanup(d, func(fd int) { unix.Close(fd) }, fd)
}

// at returns rel (relative to the root) as a directory descriptor and a
// name within it. The descriptor is d's: the caller must keep d reachable
// (runtime.KeepAlive) until its last use, or the cleanup may close it, and
// the number be reused, in between.
func (d *dirFS) at(rel string) (int, string) {
	if d.rootfd < 0 || !filepath.IsLocal(rel) {
		return unix.AT_FDCWD, filepath.Join(d.root, rel)
	}
	return d.rootfd, rel
}

// Open opens a regular file for reading without following a final
// symlink and without the runtime poller registration os.Open does: on a
// tree of many small files those syscalls are a large part of the cost.
func (d *dirFS) Open(p string) (io.ReadCloser, error) {
	dirfd, name := d.at(p)
	fd, err := retry("open", p, func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	})
	runtime.KeepAlive(d)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: filepath.Join(d.root, p), Err: err}
	}
	return &fdReader{fd: fd, root: d.root, rel: p}, nil
}

type fdReader struct {
	fd        int
	root, rel string // joined only for an error
}

func (r *fdReader) Read(p []byte) (int, error) {
	n, err := retry("read", r.rel, func() (int, error) { return unix.Read(r.fd, p) })
	if err != nil {
		return 0, &fs.PathError{Op: "read", Path: filepath.Join(r.root, r.rel), Err: err}
	}
	if n == 0 && len(p) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

func (r *fdReader) Close() error { return unix.Close(r.fd) }

func setOwner(fi os.FileInfo, st *types.Stat) {
	if s, ok := fi.Sys().(*syscall.Stat_t); ok {
		st.Uid, st.Gid = s.Uid, s.Gid
	}
}
