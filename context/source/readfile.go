package source

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// MaxReadFile bounds the files ReadFile reads: Dockerfiles and ignore
// files, which are text a person writes.
const MaxReadFile = 64 << 20

// ErrNotRegular reports a path that is not a regular file: a FIFO, a
// socket, a device or a directory, which no build reads as a Dockerfile
// or an ignore file, and which could block a read forever.
var ErrNotRegular = errors.New("not a regular file")

// ReadFile reads name, a path below root, as BuildKit's file sync sees
// it: symlinks are resolved inside root (an absolute target is taken from
// root, as in a chroot), so a link cannot reach a file outside it, and
// only a regular file is read: the type is checked on the opened file,
// which is opened without blocking, so a FIFO is refused, not waited on.
func ReadFile(root, name string) ([]byte, error) {
	p, err := securejoin.SecureJoin(root, name)
	if err != nil {
		return nil, err
	}
	f, err := openRegular(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxReadFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxReadFile {
		return nil, &fs.PathError{Op: "read", Path: filepath.Join(root, name), Err: fmt.Errorf("larger than %d MiB", MaxReadFile>>20)}
	}
	return b, nil
}
