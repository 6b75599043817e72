// Command stack starts the e2e sandbox (pinned buildkitd, a loopback
// registry with an offline busybox image), runs a command in it with
// BUILDKIT_HOST, REGISTRY, BKCACHE and BKCACHE_REGISTRY_MIRRORS set, and stops everything after.
//
//	go run ./e2e/cmd/stack -- sh -c '$BKCACHE build --push'
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/bkcache/bkcache/e2e/sandbox"
)

func main() {
	os.Exit(run())
}

func run() int {
	args := os.Args[1:]
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: stack -- COMMAND [ARG...]")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintln(os.Stderr, "stack: building the pinned buildkitd and registry, starting them (the first time takes a few minutes)")
	s, err := sandbox.Start(ctx, sandbox.Options{Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		fmt.Fprintln(os.Stderr, "stack:", err)
		return 1
	}
	defer s.Close()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(append(os.Environ(), s.Env()...),
		"BUILDKIT_HOST="+s.BuildkitAddr,
		"REGISTRY="+s.RegistryAddr,
		"BKCACHE="+s.BkcacheBin(),
	)
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			if ee.ExitCode() != 0 {
				fmt.Fprintf(os.Stderr, "stack: command failed; daemon logs:\n%s", s.Logs())
			}
			return ee.ExitCode()
		}
		fmt.Fprintln(os.Stderr, "stack:", err)
		return 1
	}
	return 0
}
