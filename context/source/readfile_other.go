//go:build !unix

package source

import (
	"io"
	"io/fs"
	"os"
)

// openRegular opens p and refuses anything but a regular file. (On
// Windows a named pipe is not a path below a build context.)
func openRegular(p string) (io.ReadCloser, error) {
	st, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: p, Err: ErrNotRegular}
	}
	return os.Open(p)
}
