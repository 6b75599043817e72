//go:build unix

package daemon

import (
	"os/exec"
	"syscall"
)

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func terminate(pid int) error { return syscall.Kill(pid, syscall.SIGTERM) }

func kill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

// detach starts cmd in a session of its own, so that it outlives bkcache
// and the terminal's signals.
func detach(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} }
