// Command bkcache builds the images of a docker compose project on
// BuildKit, skipping every service whose inputs already have an image.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

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
	done := make(chan struct{})
	go watchdog(ctx, done, stop, stopGrace, os.Stderr, os.Exit)
	stopProfile := startProfile()
	root := newRootCmd()
	root.SetArgs(pluginArgs(os.Args))
	err := root.ExecuteContext(ctx)
	close(done)
	stopProfile()
	stop()
	if err != nil {
		os.Stderr.Write(escapeTerminal([]byte("bkcache: " + err.Error() + "\n")))
		os.Exit(exitCode(err))
	}
}

// stopGrace is how long a run may take to stop after a signal. Every wait
// bkcache makes watches the context, and a cancelled solve or push ends
// at once; a run still going past this is blocked somewhere that does
// not (a read of a FIFO given as a compose or env file, a hung mount),
// and must end anyway.
const stopGrace = time.Second

// exitInterrupted is the exit code of a run ended by a signal, as a shell
// reports one ended by SIGINT.
const exitInterrupted = 130

// watchdog waits for the first signal (ctx done), then gives the run
// grace to stop before ending the process: a run ended by a signal never
// hangs. It restores the default signal handling (stop), so a second
// signal ends the process at once. done closes when the run returned.
func watchdog(ctx context.Context, done <-chan struct{}, stop func(), grace time.Duration, w io.Writer, exit func(int)) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	stop()
	select {
	case <-done:
	case <-time.After(grace):
		fmt.Fprintf(w, "bkcache: interrupted: cancelled, but still not stopped after %s (blocked reading a file?): exiting now; no tag moves after a build that did not finish\n", grace)
		exit(exitInterrupted)
	}
}
