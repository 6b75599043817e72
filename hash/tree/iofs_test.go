package tree

import (
	"context"
	"io"
	"io/fs"

	"github.com/tonistiigi/fsutil/types"
)

// FromFS adapts an io/fs.FS to FS, so that tests and tools can hash an
// fstest.MapFS or an os.DirFS. Symlink targets come from fs.ReadLink.
func FromFS(fsys fs.FS) FS { return ioFS{fsys} }

type ioFS struct{ fsys fs.FS }

func (f ioFS) Open(p string) (io.ReadCloser, error) { return f.fsys.Open(p) }

func (f ioFS) Walk(ctx context.Context, target string, fn fs.WalkDirFunc) error {
	if target == "" {
		target = "."
	}
	return fs.WalkDir(f.fsys, target, func(p string, d fs.DirEntry, err error) error {
		if p == "." {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d != nil {
			d = linkDirEntry{DirEntry: d, fsys: f.fsys, path: p}
		}
		return fn(p, d, err)
	})
}

type linkDirEntry struct {
	fs.DirEntry
	fsys fs.FS
	path string
}

func (d linkDirEntry) Info() (fs.FileInfo, error) {
	info, err := d.DirEntry.Info()
	if err != nil || info.Mode()&fs.ModeSymlink == 0 {
		return info, err
	}
	target, err := fs.ReadLink(d.fsys, d.path)
	if err != nil {
		return nil, err
	}
	return linkInfo{FileInfo: info, stat: &types.Stat{Path: d.path, Mode: uint32(info.Mode()), Linkname: target}}, nil
}

type linkInfo struct {
	fs.FileInfo
	stat *types.Stat
}

func (i linkInfo) Sys() any { return i.stat }
