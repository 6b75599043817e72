//go:build !unix

package source

import (
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/tonistiigi/fsutil/types"
)

var errNotDir = errors.New("not a directory")

func (d *dirFS) holdRoot() {}

func (d *dirFS) Open(p string) (io.ReadCloser, error) { return os.Open(filepath.Join(d.root, p)) }

func setOwner(os.FileInfo, *types.Stat) {}
