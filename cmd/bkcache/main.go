// Command bkcache builds the images of a docker compose project on
// BuildKit, skipping every service whose inputs already have an image.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bkcache:", err)
		os.Exit(exitCode(err))
	}
}
