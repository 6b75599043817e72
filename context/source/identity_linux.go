package source

import (
	"os"
	"syscall"
)

func identityOf(fi os.FileInfo) (Identity, bool) {
	s, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return Identity{}, false
	}
	return Identity{
		Size:  s.Size,
		Mtime: s.Mtim.Nano(),
		Ctime: s.Ctim.Nano(),
		Ino:   s.Ino,
		Dev:   s.Dev,
		Mode:  uint32(fi.Mode()),
	}, true
}
