//go:build !unix

package daemon

import (
	"errors"
	"os/exec"
)

// The private daemon runs on Linux only (see Missing): elsewhere there is
// no process of ours to look for or to stop.

func alive(int) bool { return false }

var errNoDaemon = errors.New("the private buildkitd runs on Linux only")

func terminate(int) error { return errNoDaemon }

func kill(int) error { return errNoDaemon }

func detach(*exec.Cmd) {}
