package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bkcache/bkcache/context/source/sourcetest"
)

// A service whose RUN step takes as long as $SLEEP says.
var slow = map[string]string{
	"compose.yaml": "services:\n  slow:\n    build:\n      context: .\n      args:\n        SLEEP: ${SLEEP:-0}\n",
	"Dockerfile":   "FROM busybox\nARG SLEEP\nRUN echo start && sleep $SLEEP && echo done > /done\n",
}

// lockedBuffer is a bytes.Buffer safe to read while a process writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startSlow starts `bkcache build --push` of the slow service, sleeping
// for secs, and returns once its RUN step is running.
func startSlow(t *testing.T, addr, dir, r string, secs int) (*exec.Cmd, *lockedBuffer, chan error) {
	t.Helper()
	cmd := exec.Command(sb.BkcacheBin(), "build", "--push", "--progress", "plain", "--repository", r)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), sb.Env()...), "BUILDKIT_HOST="+addr, fmt.Sprintf("SLEEP=%d", secs))
	var stderr lockedBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	waitFor(t, done, &stderr, "start\n")
	return cmd, &stderr, done
}

// waitFor waits until the process printed want.
func waitFor(t *testing.T, done chan error, out *lockedBuffer, want string) {
	t.Helper()
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("bkcache ended before printing %q (%v):\n%s", want, err, out.String())
		default:
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitExit waits for the process and returns its exit code; the guard
// only keeps a hung process from hanging the suite.
func waitExit(t *testing.T, done chan error, out *lockedBuffer) int {
	t.Helper()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(2 * time.Minute):
		t.Fatalf("bkcache did not exit:\n%s", out.String())
		return -1
	}
}

// TestSignals: Ctrl-C or SIGTERM during a solve cancels it and exits
// non-zero long before the step would have ended, with no tag moved.
func TestSignals(t *testing.T) {
	requireSandbox(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			dir, r := sourcetest.Tree(t, slow), repo(t)
			cmd, out, done := startSlow(t, sb.BuildkitAddr, dir, r, 600)
			cmd.Process.Signal(sig)
			code := waitExit(t, done, out)
			t.Logf("after %s, exit %d:\n%s", sig, code, lastLines(out.String(), 6))
			if code == 0 {
				t.Fatalf("exit 0 after %s:\n%s", sig, out.String())
			}
			if strings.Contains(out.String(), "panic:") || !strings.Contains(out.String(), "cancel") {
				t.Errorf("output after %s does not say the build was cancelled:\n%s", sig, out.String())
			}
			if head(t, r+"/slow:ci") != "" || head(t, r+"/slow:cache-ci") != "" {
				t.Errorf("a tag moved after %s", sig)
			}
		})
	}
}

// TestDaemonDiesMidSolve: buildkitd killed during a solve is a clear
// error naming the service, with no tag moved; once it is back, the
// next run succeeds.
func TestDaemonDiesMidSolve(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	dir, r := sourcetest.Tree(t, slow), repo(t)
	_, out, done := startSlow(t, d.addr, dir, r, 600)
	sb.Kill(d.name)
	code := waitExit(t, done, out)
	t.Logf("after buildkitd died, exit %d:\n%s", code, lastLines(out.String(), 6))
	if _, err := sb.RestartNode(t.Context(), d.name); err != nil {
		t.Fatal(err)
	}
	if code == 0 {
		t.Fatalf("exit 0 although buildkitd died:\n%s", out.String())
	}
	if !containsAll(out.String(), `service "slow" failed`, "connection to buildkitd was lost") {
		t.Errorf("the error does not name the service:\n%s", out.String())
	}
	if head(t, r+"/slow:ci") != "" {
		t.Error("ci moved although the build died")
	}
	res := mustBuild(t, dir, d.env("SLEEP=0"), "--push", "--repository", r)
	if s := res["slow"]; s.Status != "built" || head(t, r+"/slow:ci") != s.Digest {
		t.Errorf("the run after the restart: %+v", s)
	}
}

// TestConcurrentRuns: two bkcache processes building the same project
// into the same registry at once both succeed; R:H is then a complete
// image of the inputs and ci points at one of the two results.
func TestConcurrentRuns(t *testing.T) {
	requireSandbox(t)
	d := newDaemon(t)
	r := repo(t)
	dirs := []string{project(t), project(t)}
	d.prune(t)
	var wg sync.WaitGroup
	results := make([]result, len(dirs))
	errs := make([]error, len(dirs))
	for i, dir := range dirs {
		wg.Go(func() {
			results[i], errs[i] = runBkcache(dir, d.env(), "build", "--push", "--repository", r, "--format", "json", "--progress", "quiet")
		})
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if results[i].code != 0 {
			t.Fatalf("run %d failed (exit %d):\n%s\n%s", i, results[i].code, results[i].stderr, sb.Logs())
		}
	}
	hashes := mustBuild(t, dirs[0], d.env(), "--repository", r) // all skipped now
	for svc, s := range hashes {
		if s.Status != "skipped" {
			t.Errorf("%s: %s after two complete runs", svc, s.Status)
		}
		if ci := head(t, r+"/"+svc+":ci"); ci != s.Digest {
			t.Errorf("%s: ci %s, R:H %s", svc, ci, s.Digest)
		}
	}
	files := imageFiles(t, r+"/web:"+hashes["web"].Hash, "srv/index.html")
	if files["srv/index.html"] == "" {
		t.Errorf("web's image is incomplete: %q", files)
	}
	files = imageFiles(t, r+"/app:"+hashes["app"].Hash, "etc/motd", "out")
	if files["etc/motd"] == "" || files["out"] == "" {
		t.Errorf("app's image is incomplete: %q", files)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
