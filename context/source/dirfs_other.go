//go:build !unix

package source

import (
	"errors"
	"io"
	"os"

	"github.com/tonistiigi/fsutil/types"
)

var errNotDir = errors.New("not a directory")

func openFile(path string) (io.ReadCloser, error) { return os.Open(path) }

func setOwner(os.FileInfo, *types.Stat) {}
