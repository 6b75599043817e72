package sandbox

import "syscall"

// procAttr starts a sandbox process in a group of its own (to stop it
// with its children), killed if the test binary dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// unmount detaches the mount at p, even if busy.
func unmount(p string) { syscall.Unmount(p, syscall.MNT_DETACH) }
