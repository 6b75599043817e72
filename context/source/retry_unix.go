//go:build unix

package source

import "golang.org/x/sys/unix"

// retry makes the system call f, again while a signal interrupts it. op
// names the call and path what it acts on (relative to the source root
// where there is one), for syscallFault.
func retry(op, path string, f func() (int, error)) (int, error) {
	for {
		var n int
		err := syscallFault(op, path)
		if err == nil {
			n, err = f()
		}
		if err != unix.EINTR {
			return n, err
		}
	}
}

// syscallFault is asked before each call retry makes; an error it
// returns is the call's. Tests set it to fail what root cannot provoke
// here: a listing or a read of a directory or file already open, a link
// that vanishes between its lstat and its readlink, an interrupted call.
// It must not be changed while a walk runs.
var syscallFault = func(op, path string) error { return nil }
