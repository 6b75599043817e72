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
