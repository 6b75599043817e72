//go:build !linux

package source

import "os"

// identityOf is Linux only for now: elsewhere the stat cache is unused
// and every file is read.
func identityOf(os.FileInfo) (Identity, bool) { return Identity{}, false }
