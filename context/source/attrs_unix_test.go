//go:build linux || darwin

package source

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bkcache/bkcache/context/source/sourcetest"
	"github.com/tonistiigi/fsutil/types"
	"golang.org/x/sys/unix"
)

// TestAttributesMatchLstat: for every permission bit, for FIFOs, sockets
// and device files, and for symlink targets around the read buffer's sizes,
// the view reports what lstat and readlink say, and the identity the
// stat cache compares holds each of stat's fields.
func TestAttributesMatchLstat(t *testing.T) {
	dir := t.TempDir()
	modes := map[string]os.FileMode{
		"plain": 0o644, "exec": 0o755, "private": 0o600, "setuid": 0o755 | os.ModeSetuid,
		"setgid": 0o755 | os.ModeSetgid, "sticky": 0o644 | os.ModeSticky, "all": 0o777 | os.ModeSetuid | os.ModeSetgid | os.ModeSticky,
		"none": 0,
	}
	for name, m := range modes {
		sourcetest.Write(t, dir, map[string]string{name: name})
		if err := os.Chmod(filepath.Join(dir, name), m); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "tmpdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(dir, "tmpdir"), 0o777|os.ModeSticky)
	for _, n := range []int{1, 255, 256, 257, 511, 512, 1000, 4000} {
		target := strings.Repeat("t", n%100) + strings.Repeat("/x", (n-n%100)/2)
		if err := os.Symlink(target[:n], filepath.Join(dir, fmt.Sprintf("link%d", n))); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o640); err != nil {
		t.Fatal(err)
	}
	sock, err := net.Listen("unix", filepath.Join(dir, "sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	devices := os.Geteuid() == 0
	if devices {
		if err := unix.Mknod(filepath.Join(dir, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
			devices = false
		}
		if err := unix.Mknod(filepath.Join(dir, "loop"), unix.S_IFBLK|0o660, int(unix.Mkdev(7, 0))); err != nil {
			devices = false
		}
	}

	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	s.Identities = true
	v, err := s.FS(nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = v.Walk(context.Background(), "", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		seen++
		full := filepath.Join(dir, p)
		want, err := os.Lstat(full)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode() != want.Mode() || d.Type().Type() != want.Mode().Type() {
			t.Errorf("%s: mode %v (type %v), lstat says %v", p, info.Mode(), d.Type(), want.Mode())
		}
		st := info.Sys().(*types.Stat)
		if want.Mode()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(full)
			if st.Linkname != target {
				t.Errorf("%s: link target of %d bytes, readlink says %d", p, len(st.Linkname), len(target))
			}
		}
		if want.Mode().IsRegular() {
			var ust unix.Stat_t
			if err := unix.Lstat(full, &ust); err != nil {
				return err
			}
			checkIdentity(t, v, p, &ust, uint32(want.Mode()))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := os.ReadDir(dir); seen != len(all) {
		t.Errorf("walked %d entries, the directory has %d", seen, len(all))
	}
	if !devices {
		// Everything else was checked; say what was not.
		sourcetest.Unavailable(t, "device files were not checked: creating them (mknod) needs root")
	}
}

func checkIdentity(t *testing.T, v *View, p string, st *unix.Stat_t, mode uint32) {
	t.Helper()
	id, ok := v.Identity(p)
	if !ok {
		t.Errorf("%s: no identity recorded", p)
		return
	}
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"size", id.Size, st.Size},
		{"mtime", id.Mtime, st.Mtim.Nano()},
		{"ctime", id.Ctime, st.Ctim.Nano()},
		{"inode", id.Ino, uint64(st.Ino)},
		{"device", id.Dev, uint64(st.Dev)},
		{"mode", id.Mode, mode},
	} {
		if fmt.Sprint(f.got) != fmt.Sprint(f.want) {
			t.Errorf("%s: identity %s %v, stat says %v", p, f.name, f.got, f.want)
		}
	}
}
