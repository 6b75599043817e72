package source

import (
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"sync"

	"github.com/tonistiigi/fsutil/types"
	"golang.org/x/sys/unix"
)

// readDir lists the directory rel and stats its children relative to the
// directory's own descriptor: no path resolution per child, and no
// registration of the directory with the runtime poller, which os.Open
// does and which costs more than the listing on a tree of small
// directories.
func (d *dirFS) readDir(rel string) ([]*entry, error) {
	dir := filepath.Join(d.root, rel)
	dirfd, name := d.at(rel)
	fd, err := retry("open", rel, func() (int, error) {
		return unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	})
	runtime.KeepAlive(d)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	names, err := d.names(fd, dir, rel)
	if err != nil {
		return nil, err
	}
	return d.statAll(rel, names, func(p, name string) (*entry, error) { return d.statAt(fd, dir, p, name) }), nil
}

// names returns the sorted names in the directory open as fd: from
// d.dirs when the directory's identity is the one recorded, else read.
// The identity is the one the walk's lstat of rel saw (the root's is
// asked now): taken before the listing, so a change between the two
// leaves a record that the next run finds out of date.
func (d *dirFS) names(fd int, dir, rel string) ([]string, error) {
	if d.dirs == nil {
		return readNames(fd, dir, rel)
	}
	id, ok := d.ids.get(rel)
	if !ok {
		var st unix.Stat_t
		if _, err := retry("fstat", rel, func() (int, error) { return 0, unix.Fstat(fd, &st) }); err != nil {
			return nil, &fs.PathError{Op: "fstat", Path: dir, Err: err}
		}
		id = identityOf(&st)
	}
	if names, ok := d.dirs.Names(rel, id); ok {
		return names, nil
	}
	names, err := readNames(fd, dir, rel)
	if err == nil {
		d.dirs.StoreNames(rel, id, slices.Clone(names))
	}
	return names, err
}

// readNames lists the directory open as fd, sorted.
func readNames(fd int, dir, rel string) ([]string, error) {
	var names []string
	bufp := direntBufs.Get().(*[]byte)
	defer direntBufs.Put(bufp)
	buf := *bufp
	for {
		n, err := retry("readdirent", rel, func() (int, error) { return unix.ReadDirent(fd, buf) })
		if err != nil {
			return nil, &fs.PathError{Op: "readdirent", Path: dir, Err: err}
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	slices.Sort(names)
	return names, nil
}

// identityOf is the identity of what st describes.
func identityOf(st *unix.Stat_t) Identity {
	return Identity{Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano(), Ino: st.Ino, Dev: st.Dev, Mode: uint32(fileMode(st.Mode))}
}

// direntBufs holds getdents buffers: a walk lists thousands of
// directories, most of them small.
var direntBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// lstat lstats rel, relative to the source root.
func (d *dirFS) lstat(rel string) (*entry, error) {
	dirfd, name := d.at(rel)
	defer runtime.KeepAlive(d)
	if dirfd == unix.AT_FDCWD {
		return d.statAt(dirfd, "", rel, name) // name is absolute
	}
	return d.statAt(dirfd, d.root, rel, name)
}

// statAt lstats name in the directory open as dirfd, recording the
// identity of a regular file for the stat cache.
func (d *dirFS) statAt(dirfd int, dir, rel, name string) (*entry, error) {
	var st unix.Stat_t
	if _, err := retry("lstat", rel, func() (int, error) { return 0, unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) }); err != nil {
		return nil, &fs.PathError{Op: "lstat", Path: filepath.Join(dir, name), Err: err}
	}
	mode := fileMode(st.Mode)
	s := &types.Stat{Path: rel, Mode: uint32(mode), ModTime: st.Mtim.Nano(), Uid: st.Uid, Gid: st.Gid}
	if !mode.IsDir() {
		s.Size = st.Size
	}
	switch {
	case mode&fs.ModeSymlink != 0:
		target, err := readlinkAt(dirfd, rel, name)
		if err != nil {
			return nil, &fs.PathError{Op: "readlink", Path: filepath.Join(dir, name), Err: err}
		}
		s.Linkname = target
	case mode.IsRegular() && d.ids != nil, mode.IsDir() && d.dirs != nil && d.ids != nil:
		d.ids.put(rel, identityOf(&st))
	}
	return &entry{rel: rel, stat: s}, nil
}

func readlinkAt(dirfd int, rel, name string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := retry("readlink", rel, func() (int, error) { return unix.Readlinkat(dirfd, name, b) })
		if err != nil {
			return "", err
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

// fileMode converts a Unix mode to Go's, as os.Lstat does.
func fileMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
