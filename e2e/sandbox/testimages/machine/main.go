//go:build linux

// Command machine writes the machine its kernel reports (uname -m) to the
// file it is given, for the e2e tests of RUN steps on a foreign platform:
// under emulation, an arm64 build of it says aarch64. The sandbox pushes
// it for amd64 and arm64 as one image, so that it needs nothing from
// outside.
package main

import (
	"fmt"
	"os"
	"syscall"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: machine FILE")
		os.Exit(2)
	}
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		fmt.Fprintln(os.Stderr, "machine:", err)
		os.Exit(1)
	}
	var b []byte
	for _, c := range u.Machine {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	if err := os.WriteFile(os.Args[1], append(b, '\n'), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "machine:", err)
		os.Exit(1)
	}
}
