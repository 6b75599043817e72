// Command bkcache builds the images of a docker compose project on
// BuildKit, skipping every service whose inputs already have an image.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
)

func main() {
	// BuildKit's client and containerd's content store log through logrus;
	// their warnings (such as a file system without fsverity, when a
	// service: dependency is written to an OCI layout) are not the user's
	// business and would land in the middle of the progress display.
	// bkcache reports what matters itself.
	logrus.SetLevel(logrus.ErrorLevel)
	tuneGC()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	stopProfile := startProfile()
	err := newRootCmd().ExecuteContext(ctx)
	stopProfile()
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bkcache:", err)
		os.Exit(exitCode(err))
	}
}
