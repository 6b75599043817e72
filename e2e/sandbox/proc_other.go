//go:build !linux

package sandbox

import "syscall"

// procAttr starts a sandbox process in a group of its own. (Elsewhere
// than Linux the sandbox does not start: buildkitd needs Linux; this
// only lets the tests compile, and skip saying so.)
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func unmount(string) {}
