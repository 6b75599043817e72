package source

import (
	"path/filepath"
	"sync"

	"github.com/tonistiigi/fsutil"
)

// Identity is what the stat cache compares to decide that a regular file
// has not changed since its content was last read: as git does for its
// index, size, modification and change times, inode and device. A write
// changes the change time even when it restores the modification time.
type Identity struct {
	Size  int64
	Mtime int64 // nanoseconds since the epoch
	Ctime int64 // nanoseconds since the epoch
	Ino   uint64
	Dev   uint64
	Mode  uint32
}

// View is a source as BuildKit's file sync would send it (an fsutil.FS)
// that can also tell the identity of the regular files its walk saw.
type View struct {
	fsutil.FS
	ids  *identities
	base *dirFS
}

// Identity returns the identity the walk recorded for the regular file
// at path (slash-separated, relative to the source), if it did: only a
// view of a Source with Identities set records them.
func (v *View) Identity(path string) (Identity, bool) {
	return v.ids.get(filepath.FromSlash(path))
}

// identities collects what lstat said about each regular file.
type identities struct {
	mu sync.Mutex
	m  map[string]Identity
}

func newIdentities() *identities { return &identities{m: make(map[string]Identity, 1024)} }

func (i *identities) put(rel string, id Identity) {
	i.mu.Lock()
	i.m[rel] = id
	i.mu.Unlock()
}

func (i *identities) get(rel string) (Identity, bool) {
	if i == nil {
		return Identity{}, false
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	id, ok := i.m[rel]
	return id, ok
}
