//go:build !linux

package source

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/tonistiigi/fsutil/types"
)

// readDir lists the directory rel and lstats its children.
func (d *dirFS) readDir(rel string) ([]*entry, error) {
	names, err := readDirNames(filepath.Join(d.root, rel))
	if err != nil {
		return nil, err
	}
	return d.statAll(rel, names, func(p, _ string) (*entry, error) { return d.lstat(p) }), nil
}

func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	return names, nil
}

// lstat lstats rel.
func (d *dirFS) lstat(rel string) (*entry, error) {
	full := filepath.Join(d.root, rel)
	fi, err := os.Lstat(full)
	if err != nil {
		return nil, err
	}
	st := &types.Stat{Path: rel, Mode: uint32(fi.Mode()), ModTime: fi.ModTime().UnixNano()}
	if !fi.IsDir() {
		st.Size = fi.Size()
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if st.Linkname, err = os.Readlink(full); err != nil {
			return nil, err
		}
	}
	setOwner(fi, st)
	// No identities here: the stat cache is Linux only for now, and
	// elsewhere every file is read.
	return &entry{rel: rel, stat: st}, nil
}
