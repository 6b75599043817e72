package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// TestMain keeps the tests' stat caches out of the user's cache
// directory. With BKCACHE_TEST_AS_MAIN=1 the test binary is bkcache
// itself, for the tests that need a process to signal.
func TestMain(m *testing.M) {
	if os.Getenv("BKCACHE_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "bkcache-cli-test-cache-")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// asMain starts this test binary as bkcache with args.
func asMain(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "BKCACHE_TEST_AS_MAIN=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, &out, done
}

// exitOf waits for the process; the guard only keeps a hung process
// from hanging the suite (it asserts no timing).
func exitOf(t *testing.T, cmd *exec.Cmd, done chan error, out *bytes.Buffer) int {
	t.Helper()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("bkcache %v did not end:\n%s", cmd.Args[1:], out)
		return -1
	}
}

// TestFIFOs: a FIFO as the Dockerfile or as an ignore file is refused at
// once, naming it, instead of blocking the run.
func TestFIFOs(t *testing.T) {
	for _, fifo := range []string{"app/Dockerfile", "app/.dockerignore", "app/Dockerfile.dockerignore"} {
		t.Run(fifo, func(t *testing.T) {
			dir := sourcetest.Tree(t, simple)
			p := filepath.Join(dir, fifo)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd, out, done := asMain(t, "hash", "--no-stat-cache", "--project-directory", dir)
			if code := exitOf(t, cmd, done, out); code == 0 || !strings.Contains(out.String(), "not a regular file") || !strings.Contains(out.String(), filepath.Base(fifo)) {
				t.Errorf("exit %d:\n%s", code, out)
			}
		})
	}
}

// TestSignalEndsBlockedRun: a run blocked where no context reaches (a
// compose file that is a FIFO nobody writes) still ends on SIGTERM or
// SIGINT, non-zero, saying it was cancelled.
func TestSignalEndsBlockedRun(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "compose.yaml")
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd, out, done := asMain(t, "hash", "--no-stat-cache", "-f", p)
			// A non-blocking open for writing succeeds once a reader has
			// the FIFO open: bkcache is then past installing its signal
			// handler, and blocked reading a FIFO nobody writes.
			w := waitForReader(t, p, done, out)
			defer syscall.Close(w)
			cmd.Process.Signal(sig)
			if code := exitOf(t, cmd, done, out); code == 0 || !strings.Contains(out.String(), "cancel") {
				t.Errorf("exit %d after %s:\n%s", code, sig, out)
			}
		})
	}
}

// waitForReader returns a write descriptor of the FIFO at p once the
// process has it open for reading.
func waitForReader(t *testing.T, p string, done chan error, out *bytes.Buffer) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a guard, not a timing
	for {
		fd, err := syscall.Open(p, syscall.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			return fd
		}
		select {
		case <-done:
			t.Fatalf("bkcache ended before reading %s:\n%s", p, out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("bkcache never opened %s: %v", p, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWatchdog: after a signal the run has its grace, then the process
// ends with 130; a run that returns in time is left to exit by itself,
// and a run that never saw a signal is never ended.
func TestWatchdog(t *testing.T) {
	for _, tc := range []struct {
		name            string
		signal, returns bool
		want            int
	}{
		{"blocked after a signal", true, false, exitInterrupted},
		{"stops in time", true, true, -1},
		{"no signal", false, true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			stopped, exited := make(chan struct{}), make(chan int, 1)
			var w bytes.Buffer
			finished := make(chan struct{})
			grace := time.Minute // never reached when the run returns
			if !tc.returns {
				grace = time.Millisecond
			}
			go func() {
				watchdog(ctx, done, func() { close(stopped) }, grace, &w, func(c int) { exited <- c })
				close(finished)
			}()
			if tc.signal {
				cancel()
				<-stopped // the signal seen first, then the run returns
			}
			if tc.returns {
				close(done)
			}
			<-finished
			code := -1
			select {
			case code = <-exited:
			default:
			}
			if code != tc.want {
				t.Errorf("exit %d, want %d (%s)", code, tc.want, w.String())
			}
			cancel()
		})
	}
}

// TestDockerfileLinkOutside: a Dockerfile that links out of its directory
// (to the environment, here) is not followed there, and nothing of the
// environment reaches the error.
func TestDockerfileLinkOutside(t *testing.T) {
	t.Setenv("BKCACHE_TEST_SECRET", "SUPERSECRET123")
	dir := sourcetest.Tree(t, simple)
	df := filepath.Join(dir, "app", "Dockerfile")
	os.Remove(df)
	if err := os.Symlink("/proc/self/environ", df); err != nil {
		t.Fatal(err)
	}
	_, err := run(t, "hash", "--no-stat-cache", "--project-directory", dir)
	if err == nil || strings.Contains(err.Error(), "SUPERSECRET123") || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("hash of a Dockerfile linked to /proc/self/environ: %v", err)
	}
}

// TestAddrCredentialsHidden: an address's password never reaches version
// (text or JSON) or build's error.
func TestAddrCredentialsHidden(t *testing.T) {
	for _, args := range [][]string{
		{"version", "--addr", "tcp://user:hunter2@127.0.0.1:1"},
		{"version", "--addr", "tcp://user:hunter2@127.0.0.1:1", "--format", "json"},
		{"build", "--no-stat-cache", "--addr", "tcp://user:hunter2@127.0.0.1:1", "--project-directory", sourcetest.Tree(t, simple)},
	} {
		out, err := run(t, args...)
		if strings.Contains(out+fmt.Sprint(err), "hunter2") || !strings.Contains(out+fmt.Sprint(err), "tcp://127.0.0.1:1") {
			t.Errorf("%v: %s%v", args, out, err)
		}
	}
}

// TestEngineBesideThePlan: the engine is dialed while the plan loads,
// yet what the project says comes first: a compose file the schema
// refuses is reported as such, and a project with nothing to build
// succeeds, whatever the engine; only a plan to build meets its error.
func TestEngineBesideThePlan(t *testing.T) {
	down := "tcp://127.0.0.1:1"
	for _, c := range []struct {
		name  string
		files map[string]string
		want  string // in the error; "" for none
	}{
		{"a compose file the schema refuses", map[string]string{"compose.yaml": "services:\n  app:\n    build: .\n    bogus_key: 1\n", "Dockerfile": "FROM scratch\n"}, "bogus_key"},
		{"nothing builds", map[string]string{"compose.yaml": "services:\n  db:\n    image: postgres\n"}, ""},
		{"a plan to build", simple, down},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(t, "build", "--no-stat-cache", "--addr", down, "--project-directory", sourcetest.Tree(t, c.files))
			switch {
			case c.want == "" && err != nil:
				t.Errorf("failed: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Errorf("error %v, want one naming %q", err, c.want)
			case c.want != down && err != nil && strings.Contains(err.Error(), "127.0.0.1:1"):
				t.Errorf("the engine's error came before the project's: %v", err)
			}
		})
	}
}
