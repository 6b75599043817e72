// Package e2e runs the real bkcache binary against a real buildkitd and a
// real registry, started by the sandbox. Tests are skipped, with the way
// to get what is missing, when the machine lacks a requirement; under CI
// (CI=true) a missing requirement fails the run instead.
package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/bkcache/bkcache/e2e/sandbox"
)

var sb *sandbox.Sandbox

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode")
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	var err error
	sb, err = sandbox.Start(ctx, sandbox.Options{Logf: func(f string, a ...any) { fmt.Printf(f+"\n", a...) }})
	if err != nil {
		if errors.Is(err, sandbox.ErrMissing) && os.Getenv("CI") != "true" {
			fmt.Printf("e2e: SKIP: %v\n", err)
			return m.Run() // each test skips through requireSandbox
		}
		fmt.Printf("e2e: FAIL: cannot start the sandbox: %v\n", err)
		return 1
	}
	defer sb.Close()
	return m.Run()
}

func requireSandbox(t *testing.T) {
	t.Helper()
	if sb == nil {
		t.Skip("the e2e sandbox is not available on this machine (see the SKIP line above for what to install)")
	}
}
