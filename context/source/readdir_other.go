//go:build !linux

package source

import (
	"os"
	"path/filepath"
	"slices"
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
